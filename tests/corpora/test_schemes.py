"""Tag schemes: decoding tags into spans and back, on made-up and real CoNLL-2003 tags."""

import pytest

from spacy_lsllama.corpora import spans_to_tags, tags_to_spans

IOB1 = ["I-LOC", "B-LOC", "O", "I-PER", "I-PER", "I-ORG", "B-ORG", "I-ORG", "O"]


IOB2 = ["B-LOC", "B-LOC", "O", "B-PER", "I-PER", "B-ORG", "B-ORG", "I-ORG", "O"]


BILUO = ["U-LOC", "U-LOC", "O", "B-PER", "L-PER", "U-ORG", "B-ORG", "L-ORG", "O"]


IOBES = ["S-LOC", "S-LOC", "O", "B-PER", "E-PER", "S-ORG", "B-ORG", "E-ORG", "O"]


SPANS = [(0, 1, "LOC"), (1, 2, "LOC"), (3, 5, "PER"), (5, 6, "ORG"), (6, 8, "ORG")]


@pytest.mark.parametrize(
    "tags,scheme", [(IOB1, "iob1"), (IOB2, "iob2"), (BILUO, "biluo"), (IOBES, "iobes")]
)
def test_tags_spans_round_trip(tags, scheme):
    assert tags_to_spans(tags, scheme=scheme) == SPANS
    assert tags_to_spans(tags, scheme="auto") == SPANS
    assert spans_to_tags(SPANS, len(tags), scheme=scheme) == tags


def _canonical_iob1(tags: list[str]) -> list[str]:
    """IOB1 writes B-X only after an X entity; eng.train breaks this twice (B-MISC after O)."""
    previous = ["O", *tags]
    return [
        "I-" + tag[2:] if tag.startswith("B-") and before[2:] != tag[2:] else tag
        for before, tag in zip(previous, tags, strict=False)
    ]


@pytest.mark.slow
def test_real_conll2003_tags_round_trip(shared_datasets):
    root = shared_datasets
    for file, scheme in [("eng.train", "iob1"), ("iob2_NguyenHoangAn0511/eng.train", "iob2")]:
        sentences: list[list[str]] = [[]]
        for line in (root / "conll2003" / file).read_text(encoding="utf-8").splitlines():
            if not line.strip() or line.startswith("-DOCSTART-"):
                sentences.append([])
            else:
                sentences[-1].append(line.split()[-1])
        for tags in filter(None, sentences):
            expected = _canonical_iob1(tags) if scheme == "iob1" else tags
            assert (
                spans_to_tags(tags_to_spans(tags, scheme=scheme), len(tags), scheme=scheme)
                == expected
            )
