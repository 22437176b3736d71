import pytest
import spacy
from spacy.scorer import Scorer, get_ner_prf
from spacy.tokens import Doc, Span
from spacy.training import Example
from spacy.vocab import Vocab

from spacy_lsllama.pipeline.scorers import ner_scores, score_seqeval_ents

WORDS = "John Smith works for Acme Corp in New York City today".split()


def _ner_doc(vocab: Vocab, words: list[str], ents: list[tuple[int, int, str]]) -> Doc:
    doc = Doc(vocab, words=words)
    doc.set_ents([Span(doc, start, end, label=label) for start, end, label in ents])
    return doc


def _ner_example(words, gold, pred) -> Example:
    vocab = Vocab()
    return Example(_ner_doc(vocab, words, pred), _ner_doc(vocab, words, gold))


@pytest.fixture
def ner_examples() -> list[Example]:
    """Hit, boundary error, wrong type, spurious, merged neighbours and missed entities."""
    return [
        _ner_example(
            WORDS,
            [(0, 2, "PER"), (3, 5, "ORG"), (7, 10, "LOC")],
            [(0, 2, "PER"), (3, 4, "ORG"), (7, 10, "ORG"), (10, 11, "MISC")],
        ),
        _ner_example(["Alice", "Bob", "met"], [(0, 1, "PER"), (1, 2, "PER")], [(0, 2, "PER")]),
        _ner_example(["Nothing", "here", "."], [], [(0, 1, "MISC"), (1, 2, "MISC")]),
        _ner_example(["Paris", "and", "IBM", "."], [(0, 1, "LOC"), (2, 3, "ORG")], [(0, 1, "LOC")]),
    ]


def test_ner_scores_count_entities_exactly(ner_examples):
    scores = ner_scores(ner_examples)
    assert scores["precision"] == pytest.approx(2 / 8)
    assert scores["recall"] == pytest.approx(2 / 7)
    assert scores["f1"] == pytest.approx(4 / 15)
    assert scores["per_type"] == {
        "LOC": {"p": 1.0, "r": 0.5, "f": pytest.approx(2 / 3), "support": 2},
        "MISC": {"p": 0.0, "r": 0.0, "f": 0.0, "support": 0},
        "ORG": {"p": 0.0, "r": 0.0, "f": 0.0, "support": 2},
        "PER": {"p": 0.5, "r": pytest.approx(1 / 3), "f": 0.4, "support": 3},
    }


@pytest.mark.parametrize("spacy_scores", ["score_spans", "get_ner_prf"])
def test_ner_scores_agree_with_spacy_scorer(ner_examples, spacy_scores):
    if spacy_scores == "score_spans":
        expected = Scorer.score_spans(ner_examples, "ents")
    else:
        expected = get_ner_prf(ner_examples)
    scores = ner_scores(ner_examples)
    assert scores["precision"] == pytest.approx(expected["ents_p"])
    assert scores["recall"] == pytest.approx(expected["ents_r"])
    assert scores["f1"] == pytest.approx(expected["ents_f"])
    assert set(scores["per_type"]) == set(expected["ents_per_type"])
    for label, prf in expected["ents_per_type"].items():
        ours = scores["per_type"][label]
        assert (ours["p"], ours["r"], ours["f"]) == pytest.approx((prf["p"], prf["r"], prf["f"]))


def test_ner_scores_ignore_predictions_on_unannotated_tokens():
    vocab = Vocab()
    words = ["Ann", "saw", "Big", "Corp", "."]
    gold = Doc(vocab, words=words)
    gold.set_ents([Span(gold, 0, 1, label="PER")], missing=[Span(gold, 2, 4)], default="outside")
    pred = _ner_doc(vocab, words, [(0, 1, "PER"), (2, 4, "ORG")])
    examples = [Example(pred, gold)]
    assert ner_scores(examples)["precision"] == 1.0
    assert get_ner_prf(examples)["ents_p"] == pytest.approx(1.0)


def test_ner_scores_skip_references_without_entity_annotation():
    vocab = Vocab()
    unannotated = Example(_ner_doc(vocab, ["Ann"], [(0, 1, "PER")]), Doc(vocab, words=["Ann"]))
    scores = ner_scores([unannotated, _ner_example(["Bo"], [(0, 1, "PER")], [(0, 1, "PER")])])
    assert (scores["precision"], scores["recall"]) == (1.0, 1.0)


def test_ner_scores_without_entities_are_zero():
    scores = ner_scores([_ner_example(["a", "b"], [], [])])
    assert scores == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "per_type": {}}
    assert ner_scores([]) == scores


def test_seqeval_scorer_is_registered_and_reports_spacy_keys(ner_examples):
    scorer = spacy.registry.scorers.get("spacy-lsllama.seqeval_ner_scorer.v1")()
    scores = scorer(ner_examples, labels=("LOC",), scheme="BIO", spans_key=None)
    assert scores["ents_f"] == pytest.approx(4 / 15)
    assert scores["ents_per_type"]["PER"]["support"] == 3
    assert scores.keys() == get_ner_prf(ner_examples).keys()
    assert score_seqeval_ents([]) == get_ner_prf([])


def test_seqeval_scorer_scores_a_span_group_with_spacy():
    vocab = Vocab()
    gold, pred = Doc(vocab, words=["Ann", "Lee"]), Doc(vocab, words=["Ann", "Lee"])
    gold.spans["sc"] = [Span(gold, 0, 2, label="PER"), Span(gold, 0, 1, label="GIVEN")]
    pred.spans["sc"] = [Span(pred, 0, 2, label="PER")]
    scores = score_seqeval_ents([Example(pred, gold)], spans_key="sc")
    assert (scores["spans_sc_p"], scores["spans_sc_r"]) == (1.0, 0.5)


def test_lsllama_ner_scores_with_seqeval_by_default():
    nlp = spacy.blank("en")
    config = {"model": {"tok2vec": {"@architectures": "spacy.HashEmbedCNN.v2", "width": 8,
              "depth": 1, "embed_size": 50, "window_size": 1, "maxout_pieces": 2,
              "subword_features": False, "pretrained_vectors": None}}}  # fmt: skip
    ner = nlp.add_pipe("lsllama_ner", config=config)
    assert ner.scorer is score_seqeval_ents
