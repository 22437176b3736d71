"""Tag schemes and constrained decoding: decoded sequences are always valid spans."""

import numpy
import pytest

from spacy_lsllama.pipeline.tag_schemes import (
    biluo_to_scheme,
    boundary_masks,
    scheme_to_spans,
    tag_names,
    transition_mask,
    viterbi,
)

LABELS = ["PER", "ORG", "LOC"]


def is_valid(tags: list[str], scheme: str) -> bool:
    allowed = transition_mask(tag_names(LABELS, scheme), scheme)
    index = {tag: i for i, tag in enumerate(tag_names(LABELS, scheme))}
    start, end = boundary_masks(tag_names(LABELS, scheme), scheme)
    if tags and (not start[index[tags[0]]] or not end[index[tags[-1]]]):
        return False
    return all(allowed[index[a], index[b]] for a, b in zip(tags, tags[1:]))


@pytest.mark.parametrize("scheme", ["BIO", "BILUO"])
def test_decoding_random_scores_always_gives_valid_sequences(scheme):
    rng = numpy.random.default_rng(0)
    tags = tag_names(LABELS, scheme)
    allowed = transition_mask(tags, scheme)
    start, end = boundary_masks(tags, scheme)
    for length in [1, 2, 5, 17]:
        for _ in range(50):
            probs = rng.dirichlet(numpy.ones(len(tags)) * 0.3, size=length)
            best = [tags[i] for i in viterbi(numpy.log(probs), allowed, start, end)]
            assert is_valid(best, scheme), best


def test_argmax_invalid_sequence_is_repaired():
    tags = tag_names(["PER"], "BIO")
    probs = numpy.full((2, len(tags)), 0.01)
    probs[0, tags.index("O")] = 0.5
    probs[1, tags.index("I-PER")] = 0.9
    allowed = transition_mask(tags, "BIO")
    start, end = boundary_masks(tags, "BIO")
    best = [tags[i] for i in viterbi(numpy.log(probs), allowed, start, end)]
    # argmax says O I-PER (invalid); the best valid reading is B-PER I-PER (.01*.9 > .5*.01)
    assert best == ["B-PER", "I-PER"]


def test_decoding_follows_clear_scores():
    tags = tag_names(LABELS, "BILUO")
    sequence = ["B-PER", "L-PER", "O", "U-LOC", "B-ORG", "I-ORG", "L-ORG"]
    probs = numpy.full((len(sequence), len(tags)), 0.01)
    for i, tag in enumerate(sequence):
        probs[i, tags.index(tag)] = 0.9
    allowed = transition_mask(tags, "BILUO")
    start, end = boundary_masks(tags, "BILUO")
    assert [tags[i] for i in viterbi(numpy.log(probs), allowed, start, end)] == sequence


def test_biluo_converts_to_bio_and_back_to_the_same_spans():
    biluo = ["B-PER", "L-PER", "O", "U-LOC", "U-LOC", "B-ORG", "I-ORG", "L-ORG"]
    bio = biluo_to_scheme(biluo, "BIO")
    assert bio == ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "B-ORG", "I-ORG", "I-ORG"]
    assert (
        scheme_to_spans(bio)
        == scheme_to_spans(biluo)
        == [
            (0, 2, "PER"),
            (3, 4, "LOC"),
            (4, 5, "LOC"),
            (5, 8, "ORG"),
        ]
    )


def test_unknown_gold_tags_become_missing():
    assert biluo_to_scheme(["-", None, "U-PER"], "BIO") == [None, None, "B-PER"]


def test_unknown_scheme_is_refused():
    with pytest.raises(ValueError, match="Unknown tag scheme"):
        tag_names(LABELS, "IOBES")
