"""Stanford Sentiment Treebank files: PTB-style trees (SST-5) and Kim's `stsa.*` lines (SST-2)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from spacy.tokens import Doc
from spacy.vocab import Vocab

from .errors import ConversionError
from .lines import one_hot, read_lines, words_doc

SST2_LABELS = ("negative", "positive")
SST5_LABELS = ("very negative", "negative", "neutral", "positive", "very positive")

_PTB_ESCAPES = {"-LRB-": "(", "-RRB-": ")", "-LSB-": "[", "-RSB-": "]", "-LCB-": "{", "-RCB-": "}"}
_SST_TOKEN = re.compile(r"\(|\)|[^ \t\r\n()]+")  # leaves may hold U+00A0 ("8\xa01\/2")


def read_stsa(
    path: str | Path, *, vocab: Vocab, labels: Sequence[str] = SST2_LABELS
) -> Iterator[Doc]:
    """Read Kim (2014) `stsa.*` files: "<label index> <tokenised sentence>" per line.

    Tokens are the space-separated words; the label index picks from `labels`
    (SST-2 by default, pass SST5_LABELS for `stsa.fine.*`).
    """
    path = Path(path)
    for number, text in read_lines(path):
        if not text.strip():
            continue
        raw_label, _, sentence = text.strip().partition(" ")
        if raw_label not in {str(i) for i in range(len(labels))} or not sentence.strip():
            message = f"expected '<label 0-{len(labels) - 1}> <sentence>', got {text.strip()!r}"
            raise ConversionError(path, number, message)
        yield one_hot(words_doc(vocab, sentence.split()), labels, {labels[int(raw_label)]})


def read_sst_trees(
    path: str | Path, *, vocab: Vocab, labels: Sequence[str] = SST5_LABELS
) -> Iterator[Doc]:
    """Read SST PTB-style trees, one per line: the leaves are the tokens, the root the class.

    Root labels 0-4 map to SST5_LABELS ("very negative" ... "very positive"). Bracket escapes
    (-LRB-, -RRB-, ...) and backslash escapes (\\/, \\*) are undone; quote tokens `` and '' stay.
    """
    path = Path(path)
    for number, text in read_lines(path):
        if not text.strip():
            continue
        try:
            label, leaves = parse_sst_tree(text, n_labels=len(labels))
        except ValueError as err:
            raise ConversionError(path, number, str(err)) from None
        doc = words_doc(vocab, [_unescape_ptb(leaf) for leaf in leaves])
        yield one_hot(doc, labels, {labels[label]})


def parse_sst_tree(text: str, *, n_labels: int = 5) -> tuple[int, list[str]]:
    """Parse "(3 (2 It) (4 works))" into (root label, leaves); errors name the column."""
    tokens = [(match.group(), match.start() + 1) for match in _SST_TOKEN.finditer(text)]
    leaves: list[str] = []
    label, end = _parse_sst_node(tokens, 0, leaves, n_labels)
    if end < len(tokens):
        raise ValueError(f"column {tokens[end][1]}: text after the end of the tree")
    return label, leaves


def _parse_sst_node(
    tokens: list[tuple[str, int]], i: int, leaves: list[str], n_labels: int
) -> tuple[int, int]:
    """Parse the node at tokens[i] ("(label leaf)" or "(label node+)"); return label, next i."""
    _expect(tokens, i, "(")
    label, column = _token(tokens, i + 1)
    if label not in {str(n) for n in range(n_labels)}:
        raise ValueError(f"column {column}: expected a label 0-{n_labels - 1}, got {label!r}")
    child, column = _token(tokens, i + 2)
    if child == ")":
        raise ValueError(f"column {column}: empty node")
    if child != "(":
        leaves.append(child)
        i += 3
    else:
        i += 2
        while _token(tokens, i)[0] == "(":
            _, i = _parse_sst_node(tokens, i, leaves, n_labels)
    _expect(tokens, i, ")")
    return int(label), i + 1


def _token(tokens: list[tuple[str, int]], i: int) -> tuple[str, int]:
    if i >= len(tokens):
        column = tokens[-1][1] + len(tokens[-1][0]) if tokens else 1
        raise ValueError(f"column {column}: unexpected end of tree")
    return tokens[i]


def _expect(tokens: list[tuple[str, int]], i: int, bracket: str) -> None:
    token, column = _token(tokens, i)
    if token != bracket:
        raise ValueError(f"column {column}: expected {bracket!r}, got {token!r}")


def _unescape_ptb(token: str) -> str:
    return _PTB_ESCAPES.get(token, token).replace("\\/", "/").replace("\\*", "*")
