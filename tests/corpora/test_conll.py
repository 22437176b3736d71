"""General token-tagged files: comments, column choice, schemes, nested tags, label maps."""

import json
from pathlib import Path

import pytest
from spacy.tokens import Doc
from spacy.vocab import Vocab

from spacy_lsllama.corpora import ConversionError, CorpusCounts, read_conll

# CoNLL-U-like: comments before each sentence, an index column, the tag not the last column.
COMMENTED = """\
# newdoc id = d1
# sent_id = 1
# text = EU rejects German call
1\tEU\tB-ORG\tNNP
2\trejects\tO\tVBZ
3\tGerman\tB-MISC\tJJ
4\tcall\tO\tNN

# sent_id = 2
1\t#fb\tO\tNN
2\tPeter\tB-PER\tNNP
3\tBlackburn\tI-PER\tNNP
"""

# GermEval-like nested entities: outer and inner tag columns.
NESTED = """\
# http://de.wikipedia.org/wiki/Manfred_Korfmann [2009-10-17]
1\tAachener\tB-ORG\tB-LOCderiv
2\tUniversität\tI-ORG\tO
3\tlehrt\tO\tO
"""


def _write(tmp_path: Path, text: str | bytes, name: str = "data.conll") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def _ents(doc: Doc) -> list[tuple[str, str]]:
    return [(ent.text, ent.label_) for ent in doc.ents]


def _read(path: Path, **options) -> list[Doc]:
    return list(read_conll(path, vocab=Vocab(), **options))


def test_comments_are_skipped_and_counted_hashtag_tokens_kept(tmp_path):
    counts = CorpusCounts()
    docs = _read(_write(tmp_path, COMMENTED), token_column=1, tag_column=2, counts=counts)
    assert [doc.text for doc in docs] == ["EU rejects German call", "#fb Peter Blackburn"]
    assert _ents(docs[0]) == [("EU", "ORG"), ("German", "MISC")]
    assert _ents(docs[1]) == [("Peter Blackburn", "PER")]
    assert counts.comments == 4
    assert counts.scheme == "iob2"


def test_comment_prefix_can_be_changed_or_turned_off(tmp_path):
    path = _write(tmp_path, "% a comment\nAnn B-PER\n")
    assert [doc.text for doc in _read(path, comment="%")] == ["Ann"]
    err = _error(path, comment=None)
    assert str(err) == f"{path}:2: expected 3 columns, got 2"


@pytest.mark.parametrize(
    "token,tag", [(1, 2), (-3, -2), ("form", "ner")], ids=["index", "negative", "header"]
)
def test_token_and_tag_column_by_index_negative_index_or_header(tmp_path, token, tag):
    text = "id\tform\tner\tpos\n1\tAnn\tB-PER\tNNP\n2\tsmiles\tO\tVBZ\n"
    text = text if isinstance(token, str) else text.split("\n", 1)[1]
    docs = _read(_write(tmp_path, text), token_column=token, tag_column=tag)
    assert [(doc.text, _ents(doc)) for doc in docs] == [("Ann smiles", [("Ann", "PER")])]


def test_nested_tags_take_the_named_column(tmp_path):
    path = _write(tmp_path, NESTED)
    outer = _read(path, token_column=1, tag_column=2)
    inner = _read(path, token_column=1, tag_column=3)
    assert _ents(outer[0]) == [("Aachener Universität", "ORG")]
    assert _ents(inner[0]) == [("Aachener", "LOCderiv")]


SCHEME_FILES = {
    "iob1": "Ann I-PER\nBob B-PER\nin O\nRome I-LOC\n",
    "iob2": "Ann B-PER\nBob B-PER\nin O\nRome B-LOC\n",
    "iobes": "Ann S-PER\nBob S-PER\nin O\nRome S-LOC\n",
    "biluo": "Ann U-PER\nBob U-PER\nin O\nRome U-LOC\n",
}


@pytest.mark.parametrize("scheme", sorted(SCHEME_FILES))
def test_each_scheme_given_or_detected_reads_the_same_spans(tmp_path, scheme):
    path = _write(tmp_path, SCHEME_FILES[scheme])
    expected = [("Ann", "PER"), ("Bob", "PER"), ("Rome", "LOC")]
    assert _ents(_read(path, scheme=scheme)[0]) == expected
    counts = CorpusCounts()
    assert _ents(_read(path, counts=counts)[0]) == expected
    assert counts.scheme == scheme


def test_a_given_scheme_rejects_other_prefixes_with_file_line_and_field(tmp_path):
    path = _write(tmp_path, SCHEME_FILES["iobes"])
    err = _error(path, scheme="biluo")
    assert (err.line, err.field) == (1, "tag")
    assert "'S-PER' is not one of O, B-X, I-X, L-X, U-X" in str(err)


def test_label_map_renames_and_drops(tmp_path):
    path = _write(tmp_path, "Ann B-PER\nin O\nRome B-LOC\nfor O\nFIFA B-MISC\n")
    counts = CorpusCounts()
    docs = _read(path, label_map={"PER": "PERSON", "MISC": ""}, counts=counts)
    assert _ents(docs[0]) == [("Ann", "PERSON"), ("Rome", "LOC")]
    assert counts.dropped == {"MISC": 1}
    err = _error(path, label_map={"MISC": ""}, labels=["PER"])
    assert (err.line, err.field) == (3, "tag")
    assert "unknown entity label 'LOC'" in str(err)


def test_bom_and_crlf(tmp_path):
    path = _write(tmp_path, "\ufeff# c\r\nAnn\tB-PER\r\nsmiles\tO\r\n\r\nBob\tB-PER\r\n".encode())
    counts = CorpusCounts()
    docs = _read(path, counts=counts)
    assert [(doc.text, _ents(doc)) for doc in docs] == [
        ("Ann smiles", [("Ann", "PER")]),
        ("Bob", [("Bob", "PER")]),
    ]
    assert counts.comments == 1


def test_docstart_in_the_token_column(tmp_path):
    path = _write(tmp_path, "1 -DOCSTART- O\n\n1 Ann B-PER\n2 -DOCSTART- O\n3 Bob B-PER\n")
    counts = CorpusCounts()
    docs = _read(path, token_column=1, counts=counts)
    assert [doc.text for doc in docs] == ["Ann", "Bob"]
    assert counts.documents == 2


def test_space_delimiter_splits_tabs_and_spaces_alike_only_when_asked(tmp_path):
    path = _write(tmp_path, "Ann  B-PER\nsmiles O\n")
    assert _read(path, delimiter="space")[0].text == "Ann smiles"
    tabbed = _write(tmp_path, "New York\tB-LOC\n", "tab.conll")
    assert _read(tabbed, delimiter="tab")[0].text == "New York"


@pytest.mark.parametrize(
    "text,options,message",
    [
        ("a\tO\nb\tO\tx\n", {}, "2: expected 2 columns, got 3"),
        ("a\tO\n", {"tag_column": 5}, "1: tag column: column 5 is not among the 2 columns"),
        ("form\tner\na\tO\n", {"tag_column": "tag"}, "1: tag column: no column 'tag' in header"),
        ("a\tO\nb\tB_PER\n", {}, "2: tag: 'B_PER' is not one of O, B-X"),
        ("a\tO\n", {"token_column": -1}, "1: expected a token and a tag column, got 2"),
    ],
)
def test_malformed_lines_name_file_line_and_field(tmp_path, text, options, message):
    path = _write(tmp_path, text)
    assert str(_error(path, **options)).startswith(f"{path}:{message}")


def _error(path: Path, **options) -> ConversionError:
    with pytest.raises(ConversionError) as info:
        _read(path, **options)
    return info.value


def test_label_map_json_file_and_pairs(tmp_path):
    from spacy_lsllama.corpora import parse_label_map

    path = tmp_path / "map.json"
    path.write_text(json.dumps({"PER": "PERSON", "MISC": ""}))
    assert parse_label_map([str(path)]) == {"PER": "PERSON", "MISC": ""}
    assert parse_label_map(["PER=PERSON", "MISC="]) == {"PER": "PERSON", "MISC": ""}
    with pytest.raises(ValueError, match="'PER': expected OLD=NEW"):
        parse_label_map(["PER", "LOC=GPE"])
    path.write_text('["PER"]')
    with pytest.raises(ConversionError, match="expected a JSON object of strings"):
        parse_label_map([str(path)])
