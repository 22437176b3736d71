"""convert_file: one source of a format into a DocBin, nothing written on error."""

import pytest
from corpus_helpers import ents, write
from spacy.tokens import DocBin
from test_conll import CONLL_IOB1

from spacy_lsllama.corpora import ConversionError, convert_file


def test_convert_file_writes_docbin_and_counts(tmp_path, nlp):
    source = write(tmp_path, "eng.train", CONLL_IOB1)
    output = tmp_path / "out" / "train.spacy"
    counts = convert_file(source, output, format="conll", scheme="iob1")
    assert (counts.docs, counts.tokens) == (2, 9)
    assert counts.labels == {"LOC": 2, "MISC": 1, "ORG": 1, "PER": 1}
    docs = list(DocBin().from_disk(output).get_docs(nlp.vocab))
    assert [ents(doc) for doc in docs] == [
        [("EU", "ORG"), ("German", "MISC")],
        [("Italy", "LOC"), ("Germany", "LOC"), ("Peter Blackburn", "PER")],
    ]


def test_convert_file_writes_nothing_on_error(tmp_path):
    source = write(tmp_path, "bad.tsv", "sentence\tlabel\nfine\t1\n")
    output = tmp_path / "bad.spacy"
    with pytest.raises(ConversionError):
        convert_file(source, output, format="tsv-textcat")
    assert not output.exists()
    with pytest.raises(ValueError, match="unknown format 'xml'"):
        convert_file(source, output, format="xml")
