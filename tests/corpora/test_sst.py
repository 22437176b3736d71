"""Stanford Sentiment Treebank trees and Kim's stsa lines."""

import pytest
from corpus_helpers import error_of, top_cat, write
from spacy.vocab import Vocab

from spacy_lsllama.corpora import SST5_LABELS, parse_sst_tree, read_sst_trees, read_stsa


def test_sst_trees_leaves_and_root_label(tmp_path):
    trees = (
        "(3 (2 (2 Almodóvar) (2 -LRB-again-RRB-)) (4 (2 -LRB-) (3 8\xa01\\/2) (2 -RRB-)))\n"
        "(0 (1 Bad) (2 .))\n"
    )
    docs = list(read_sst_trees(write(tmp_path, "train.txt", trees), vocab=Vocab()))
    assert [t.text for t in docs[0]] == ["Almodóvar", "-LRB-again-RRB-", "(", "8\xa01/2", ")"]
    assert docs[0].cats == dict.fromkeys(SST5_LABELS, 0.0) | {"positive": 1.0}
    assert docs[1].text == "Bad ."
    assert top_cat(docs[1]) == "very negative"


@pytest.mark.parametrize(
    "tree,message",
    [
        ("(3 (2 a) (2 b)", "column 15: unexpected end of tree"),
        ("(7 (2 a))", "column 2: expected a label 0-4, got '7'"),
        ("(3 (2 a)) (2 b)", "column 11: text after the end of the tree"),
        ("(3 ())", "column 5: expected a label 0-4, got ')'"),
        ("(3 (2 a) b)", "column 10: expected ')', got 'b'"),
    ],
)
def test_sst_tree_errors_name_line_and_column(tmp_path, tree, message):
    path = write(tmp_path, "dev.txt", f"(2 (2 ok))\n{tree}\n")
    assert str(error_of(read_sst_trees, path, vocab=Vocab())) == f"{path}:2: {message}"


def test_parse_sst_tree():
    assert parse_sst_tree("(1 (2 (2 It) (1 drags)) (2 .))") == (1, ["It", "drags", "."])


def test_stsa(tmp_path):
    path = write(tmp_path, "stsa.binary.dev", "1 a stirring , funny film\n0 wo n't sit\n")
    docs = list(read_stsa(path, vocab=Vocab()))
    assert [(doc.text, top_cat(doc)) for doc in docs] == [
        ("a stirring , funny film", "positive"),
        ("wo n't sit", "negative"),
    ]
    assert docs[0].cats == {"negative": 0.0, "positive": 1.0}
    bad = write(tmp_path, "stsa.bad", "1 fine\n2 not binary\n")
    assert error_of(read_stsa, bad, vocab=Vocab()).line == 2
