"""General token-tagged files: comments, column choice, schemes, nested tags, label maps."""

import json
from pathlib import Path

import pytest
from corpus_helpers import ents, error_of, write
from spacy.tokens import Doc, DocBin
from spacy.vocab import Vocab

from spacy_lsllama.corpora import ConversionError, CorpusCounts, read_conll, write_docbin
from spacy_lsllama.corpora.conll import DOCUMENT_KEY

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


def _read(path: Path, **options) -> list[Doc]:
    return list(read_conll(path, vocab=Vocab(), **options))


def test_comments_are_skipped_and_counted_hashtag_tokens_kept(tmp_path):
    counts = CorpusCounts()
    docs = _read(
        write(tmp_path, "data.conll", COMMENTED), token_column=1, tag_column=2, counts=counts
    )
    assert [doc.text for doc in docs] == ["EU rejects German call", "#fb Peter Blackburn"]
    assert ents(docs[0]) == [("EU", "ORG"), ("German", "MISC")]
    assert ents(docs[1]) == [("Peter Blackburn", "PER")]
    assert counts.comments == 4
    assert counts.scheme == "iob2"


def test_comment_prefix_can_be_changed_or_turned_off(tmp_path):
    path = write(tmp_path, "data.conll", "% a comment\nAnn B-PER\n")
    assert [doc.text for doc in _read(path, comment="%")] == ["Ann"]
    err = _read_error(path, comment=None)
    assert str(err) == f"{path}:2: expected 3 columns, got 2"


@pytest.mark.parametrize(
    "token,tag", [(1, 2), (-3, -2), ("form", "ner")], ids=["index", "negative", "header"]
)
def test_token_and_tag_column_by_index_negative_index_or_header(tmp_path, token, tag):
    text = "id\tform\tner\tpos\n1\tAnn\tB-PER\tNNP\n2\tsmiles\tO\tVBZ\n"
    text = text if isinstance(token, str) else text.split("\n", 1)[1]
    docs = _read(write(tmp_path, "data.conll", text), token_column=token, tag_column=tag)
    assert [(doc.text, ents(doc)) for doc in docs] == [("Ann smiles", [("Ann", "PER")])]


def test_nested_tags_take_the_named_column(tmp_path):
    path = write(tmp_path, "data.conll", NESTED)
    outer = _read(path, token_column=1, tag_column=2)
    inner = _read(path, token_column=1, tag_column=3)
    assert ents(outer[0]) == [("Aachener Universität", "ORG")]
    assert ents(inner[0]) == [("Aachener", "LOCderiv")]


SCHEME_FILES = {
    "iob1": "Ann I-PER\nBob B-PER\nin O\nRome I-LOC\n",
    "iob2": "Ann B-PER\nBob B-PER\nin O\nRome B-LOC\n",
    "iobes": "Ann S-PER\nBob S-PER\nin O\nRome S-LOC\n",
    "biluo": "Ann U-PER\nBob U-PER\nin O\nRome U-LOC\n",
}


@pytest.mark.parametrize("scheme", sorted(SCHEME_FILES))
def test_each_scheme_given_or_detected_reads_the_same_spans(tmp_path, scheme):
    path = write(tmp_path, "data.conll", SCHEME_FILES[scheme])
    expected = [("Ann", "PER"), ("Bob", "PER"), ("Rome", "LOC")]
    assert ents(_read(path, scheme=scheme)[0]) == expected
    counts = CorpusCounts()
    assert ents(_read(path, counts=counts)[0]) == expected
    assert counts.scheme == scheme


def test_a_given_scheme_rejects_other_prefixes_with_file_line_and_field(tmp_path):
    path = write(tmp_path, "data.conll", SCHEME_FILES["iobes"])
    err = _read_error(path, scheme="biluo")
    assert (err.line, err.field) == (1, "tag")
    assert "'S-PER' is not one of O, B-X, I-X, L-X, U-X" in str(err)


def test_label_map_renames_and_drops(tmp_path):
    path = write(tmp_path, "data.conll", "Ann B-PER\nin O\nRome B-LOC\nfor O\nFIFA B-MISC\n")
    counts = CorpusCounts()
    docs = _read(path, label_map={"PER": "PERSON", "MISC": ""}, counts=counts)
    assert ents(docs[0]) == [("Ann", "PERSON"), ("Rome", "LOC")]
    assert counts.dropped == {"MISC": 1}
    err = _read_error(path, label_map={"MISC": ""}, labels=["PER"])
    assert (err.line, err.field) == (3, "tag")
    assert "unknown entity label 'LOC'" in str(err)


def test_bom_and_crlf(tmp_path):
    path = write(
        tmp_path,
        "data.conll",
        "\ufeff# c\r\nAnn\tB-PER\r\nsmiles\tO\r\n\r\nBob\tB-PER\r\n".encode(),
    )
    counts = CorpusCounts()
    docs = _read(path, counts=counts)
    assert [(doc.text, ents(doc)) for doc in docs] == [
        ("Ann smiles", [("Ann", "PER")]),
        ("Bob", [("Bob", "PER")]),
    ]
    assert counts.comments == 1


def test_docstart_in_the_token_column(tmp_path):
    path = write(
        tmp_path, "data.conll", "1 -DOCSTART- O\n\n1 Ann B-PER\n2 -DOCSTART- O\n3 Bob B-PER\n"
    )
    counts = CorpusCounts()
    docs = _read(path, token_column=1, counts=counts)
    assert [doc.text for doc in docs] == ["Ann", "Bob"]
    assert counts.documents == 2


def test_space_delimiter_splits_tabs_and_spaces_alike_only_when_asked(tmp_path):
    path = write(tmp_path, "data.conll", "Ann  B-PER\nsmiles O\n")
    assert _read(path, delimiter="space")[0].text == "Ann smiles"
    tabbed = write(tmp_path, "tab.conll", "New York\tB-LOC\n")
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
    path = write(tmp_path, "data.conll", text)
    assert str(_read_error(path, **options)).startswith(f"{path}:{message}")


def _read_error(path: Path, **options) -> ConversionError:
    return error_of(read_conll, path, vocab=Vocab(), **options)


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


CONLL_IOB1 = """\
-DOCSTART- -X- -X- O

EU NNP B-NP I-ORG
rejects VBZ B-VP O
German JJ B-NP I-MISC
call NN I-NP O

-DOCSTART- -X- -X- O

In IN B-PP O
Italy NNP B-NP I-LOC
Germany NNP I-NP B-LOC
Peter NNP I-NP I-PER
Blackburn NNP I-NP I-PER
"""


def test_read_conll_iob1(tmp_path):
    docs = list(read_conll(write(tmp_path, "eng.train", CONLL_IOB1), vocab=Vocab()))
    assert [doc.text for doc in docs] == [
        "EU rejects German call",
        "In Italy Germany Peter Blackburn",
    ]
    assert ents(docs[0]) == [("EU", "ORG"), ("German", "MISC")]
    assert ents(docs[1]) == [("Italy", "LOC"), ("Germany", "LOC"), ("Peter Blackburn", "PER")]
    assert [[token.ent_iob_ for token in doc] for doc in docs] == [
        ["B", "O", "B", "O"],
        ["O", "B", "B", "B", "I"],
    ]


def test_iob2_rejects_entity_starting_with_i(tmp_path):
    path = write(tmp_path, "x.conll", "Hi O\nAnn I-PER\n")
    err = error_of(read_conll, path, vocab=Vocab(), scheme="iob2")
    assert (err.path, err.line, err.field) == (str(path), 2, "tag")
    assert "'I-PER' starts an entity, which IOB2 forbids" in str(err)
    assert ents(next(read_conll(path, vocab=Vocab(), scheme="auto"))) == [("Ann", "PER")]


def test_unknown_tag_names_file_line_and_field(tmp_path):
    path = write(tmp_path, "eng.train", "EU NNP I-ORG\nrejects VBZ X-ORG\n")
    err = error_of(read_conll, path, vocab=Vocab(), scheme="iob1")
    assert str(err) == f"{path}:2: tag: 'X-ORG' is not one of O, B-X, I-X (scheme iob1)"
    biluo = write(tmp_path, "biluo.conll", "Ann U-PER\n")
    assert "'U-PER' is not one of" in str(error_of(read_conll, biluo, vocab=Vocab(), scheme="iob2"))
    assert ents(next(read_conll(biluo, vocab=Vocab()))) == [("Ann", "PER")]


def test_unknown_entity_label_is_rejected(tmp_path):
    path = write(tmp_path, "emerging.test.conll", "Hi\tO\n\nApple\tB-corporation,B-person\n")
    err = error_of(read_conll, path, vocab=Vocab(), labels=["corporation", "person"])
    assert err.line == 3
    assert "unknown entity label 'corporation,B-person'" in str(err)


def test_column_count_mismatch(tmp_path):
    path = write(tmp_path, "eng.train", "EU NNP B-NP I-ORG\n\nrejects O\n")
    assert str(error_of(read_conll, path, vocab=Vocab())) == f"{path}:3: expected 4 columns, got 2"


def test_docstart_inside_sentence_is_a_boundary_not_a_token(tmp_path):
    docstart = "-DOCSTART- -DOCSTART- O\n"
    text = f"{docstart}De Art O\nbal N O\n\nJan N B-PER\n{docstart}In Prep O\n"
    docs = list(read_conll(write(tmp_path, "ned.train", text), vocab=Vocab(), scheme="iob2"))
    assert [[t.text for t in doc] for doc in docs] == [["De", "bal"], ["Jan"], ["In"]]
    assert ents(docs[1]) == [("Jan", "PER")]


def test_wnut_lone_tab_line_ends_sentence(tmp_path):
    text = "Hi\tO\nLondon\tB-location\n\t\n@bob\tO\nNew\tB-location\nYork\tI-location\n"
    docs = list(read_conll(write(tmp_path, "wnut.conll", text), vocab=Vocab(), scheme="iob2"))
    assert [doc.text for doc in docs] == ["Hi London", "@bob New York"]
    assert ents(docs[1]) == [("New York", "location")]


def test_invalid_utf8_reports_line(tmp_path):
    path = write(tmp_path, "bad.conll", b"a O\n\nb O\nc\xff O\n")
    err = error_of(read_conll, path, vocab=Vocab())
    assert err.line == 4
    assert str(err).startswith(f"{path}:4: invalid UTF-8")


def test_missing_file_is_a_conversion_error(tmp_path):
    err = error_of(read_conll, tmp_path / "nope.conll", vocab=Vocab())
    assert err.line is None
    assert str(err).startswith(f"{tmp_path / 'nope.conll'}: cannot read file")


def test_sentences_keep_their_document_number_where_the_file_marks_documents(tmp_path):
    text = CONLL_IOB1.replace("call NN I-NP O\n", "call NN I-NP O\n\nNo NN B-NP O\n")
    docs = _read(write(tmp_path, "eng.train", text))
    assert [doc.user_data.get(DOCUMENT_KEY) for doc in docs] == [0, 0, 1]


def test_sentences_of_a_file_without_document_marks_have_no_document(tmp_path):
    docs = _read(write(tmp_path, "data.conll", "Ann B-PER\n\nBob B-PER\n"))
    assert all(DOCUMENT_KEY not in doc.user_data for doc in docs)


def test_document_numbers_survive_the_docbin(tmp_path):
    docs = _read(write(tmp_path, "eng.train", CONLL_IOB1))
    write_docbin(docs, tmp_path / "train.spacy")
    vocab = Vocab()
    stored = list(DocBin().from_disk(tmp_path / "train.spacy").get_docs(vocab))
    assert [doc.user_data[DOCUMENT_KEY] for doc in stored] == [0, 1]


def test_a_trailing_tab_leaves_no_column(tmp_path):
    """Real corpora end some lines with a tab: an empty last column, which is no column."""
    text = "EU\tNNP\tB-NP\tB-ORG\t\nrejects\tVBZ\tB-VP\tO\n\nGerman\tJJ\tB-NP\tB-MISC\t \t\n"
    docs = _read(write(tmp_path, "eng.train", text), scheme="iob2")
    assert [[t.text for t in doc] for doc in docs] == [["EU", "rejects"], ["German"]]
    assert ents(docs[0]) == [("EU", "ORG")] and ents(docs[1]) == [("German", "MISC")]
    path = write(tmp_path, "short.train", "EU\tNNP\tB-NP\tB-ORG\t\nrejects\tO\t\n")
    assert str(error_of(read_conll, path, vocab=Vocab())) == f"{path}:2: expected 4 columns, got 2"
