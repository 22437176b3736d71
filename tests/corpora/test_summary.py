"""The conversion summary: what was read, and what was skipped or dropped."""

from spacy.tokens import Doc, Span
from spacy.vocab import Vocab

from spacy_lsllama.corpora import CorpusCounts


def test_entities_and_skipped_lines_are_described():
    counts = CorpusCounts(comments=3, documents=1, scheme="iob1")
    doc = Doc(Vocab(), words=["Ann", "in", "Rome"])
    doc.ents = [Span(doc, 0, 1, "PER"), Span(doc, 2, 3, "LOC")]
    counts.add(doc)
    counts.drop("MISC")
    assert counts.describe() == [
        "1 docs, 3 tokens",
        "entities: LOC 1, PER 1",
        "tag scheme: iob1",
        "-DOCSTART- lines: 1",
        "comment lines skipped: 3",
        "entities dropped by the label map: MISC 1",
    ]


def test_classes_are_described_as_classes():
    counts = CorpusCounts()
    for label in ("pos", "neg", "pos"):
        doc = Doc(Vocab(), words=["fine"])
        doc.cats = {"pos": float(label == "pos"), "neg": float(label == "neg")}
        counts.add(doc)
    assert counts.describe() == ["3 docs, 3 tokens", "classes: neg 1, pos 2"]
