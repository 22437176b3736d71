"""Token-tagged files in the CoNLL layout: one token per line, a blank line between sentences.

Columns are separated by tabs or spaces (empty columns at the end of a line, as a trailing
tab leaves, are ignored); the token and the tag column are chosen by index
(negative counts from the end) or by header name, so files with extra annotation columns
after the tag, or with two tag columns for nested entities, read as well as CoNLL-2003.
Comment lines (`#` by default, as in CoNLL-U-derived sets) are skipped and counted, and
`-DOCSTART-` lines mark documents, never tokens: in a file that has them, each sentence keeps
its document's number in `doc.user_data[DOCUMENT_KEY]`, so training can join a document's
consecutive sentences again (`training/document_corpus.py`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from spacy.tokens import Doc, Span
from spacy.vocab import Vocab

from .errors import ConversionError, TagError
from .labels import check_entity_label, map_spans
from .lines import read_lines, words_doc
from .schemes import SchemeDetector, is_tag, tags_to_spans
from .summary import CorpusCounts

DELIMITERS = ("auto", "tab", "space")
DOCSTART = "-DOCSTART-"
# The user_data key of a sentence's document number (0 for sentences before the first mark).
DOCUMENT_KEY = "lsllama_document"
Column = int | str


@dataclass
class _Columns:
    """The file's column count and the resolved token and tag indices."""

    count: int
    token: int
    tag: int


def read_conll(
    path: str | Path,
    *,
    vocab: Vocab,
    scheme: str = "auto",
    token_column: Column = 0,
    tag_column: Column = -1,
    labels: Collection[str] | None = None,
    comment: str | None = "#",
    delimiter: str = "auto",
    label_map: Mapping[str, str] | None = None,
    counts: CorpusCounts | None = None,
) -> Iterator[Doc]:
    """Read a token-tagged file as one Doc per sentence with `doc.ents` set from the tags.

    delimiter: "tab", "space" (runs of spaces) or "auto" (tabs on a line that has one).
    token_column / tag_column: an index, or a header name (the first line is then a header).
    comment: lines starting with it are skipped unless they read as a token row (the file's
    column count and a valid tag), so a `#hashtag` token stays a token; None keeps all lines.
    scheme: "iob1", "iob2", "biluo", "iobes" or "auto" (any; `counts.scheme` says which).
    label_map: rename entity labels, "" drops one. labels: the allowed entity types.
    """
    if delimiter not in DELIMITERS:
        raise ValueError(
            f"unknown delimiter {delimiter!r}; expected one of {', '.join(DELIMITERS)}"
        )
    path = Path(path)
    counts = counts if counts is not None else CorpusCounts()
    detector = SchemeDetector()
    needs_header = isinstance(token_column, str) or isinstance(tag_column, str)
    columns: _Columns | None = None
    rows: list[tuple[int, str, str]] = []
    document: int | None = None  # the current document's number, once a file marks one
    for number, text in read_lines(path):
        line = text.rstrip("\r\n")
        cells = _split(line, delimiter)
        if comment and line.startswith(comment) and not _is_token_row(cells, columns, tag_column):
            counts.comments += 1
            continue
        if line.strip() and columns is None and cells[0] != DOCSTART:
            columns = _resolve(path, number, cells, token_column, tag_column, needs_header)
            if needs_header:
                continue
        if not line.strip() or _is_docstart(cells, columns):
            if rows:
                yield _doc(path, vocab, rows, scheme, labels, label_map, counts, detector, document)
            if line.strip():  # a -DOCSTART- line
                counts.documents += 1
                document = 0 if document is None else document + 1
            rows = []
            continue
        assert columns is not None  # resolved from the first row that is not a boundary
        if len(cells) != columns.count:
            raise ConversionError(
                path, number, f"expected {columns.count} columns, got {len(cells)}"
            )
        rows.append((number, cells[columns.token], cells[columns.tag]))
    if rows:
        yield _doc(path, vocab, rows, scheme, labels, label_map, counts, detector, document)
    counts.scheme = detector.scheme if scheme == "auto" else scheme


def _split(line: str, delimiter: str) -> list[str]:
    """A line's cells; empty cells at the end (a line ending in a tab) are no columns."""
    if delimiter == "tab" or (delimiter == "auto" and "\t" in line):
        cells = line.split("\t")
        while len(cells) > 1 and not cells[-1].strip():
            cells.pop()
        return cells
    return [cell for cell in line.split(" ") if cell]


def _is_docstart(cells: list[str], columns: _Columns | None) -> bool:
    """A `-DOCSTART-` line: in the first column, or in the token column of a full row."""
    if cells[0] == DOCSTART:
        return True
    return columns is not None and len(cells) == columns.count and cells[columns.token] == DOCSTART


def _is_token_row(cells: list[str], columns: _Columns | None, tag_column: Column) -> bool:
    """True when a line that starts with the comment prefix is a token row after all."""
    if columns is not None:
        return len(cells) == columns.count and is_tag(cells[columns.tag])
    if isinstance(tag_column, str) or len(cells) < 2 or not -len(cells) <= tag_column < len(cells):
        return False
    return is_tag(cells[tag_column])


def _resolve(
    path: Path, line: int, cells: list[str], token: Column, tag: Column, header: bool
) -> _Columns:
    """Column indices from the first row: names are looked up in it (a header), indices checked."""
    count = len(cells)
    indices = []
    for name, column in (("token", token), ("tag", tag)):
        if isinstance(column, str):
            if column not in cells:
                message = f"no column {column!r} in header {cells}"
                raise ConversionError(path, line, message, field=f"{name} column")
            indices.append(cells.index(column))
        elif not -count <= column < count:
            message = f"column {column} is not among the {count} columns of the first row"
            raise ConversionError(path, line, message, field=f"{name} column")
        else:
            indices.append(column % count)
    if indices[0] == indices[1]:
        raise ConversionError(path, line, f"expected a token and a tag column, got {count}")
    return _Columns(count, indices[0], indices[1])


def _doc(
    path: Path,
    vocab: Vocab,
    rows: list[tuple[int, str, str]],
    scheme: str,
    labels: Collection[str] | None,
    label_map: Mapping[str, str] | None,
    counts: CorpusCounts,
    detector: SchemeDetector,
    document: int | None,
) -> Doc:
    lines, words, tags = zip(*rows, strict=True)
    try:
        spans = tags_to_spans(tags, scheme=scheme)
    except TagError as err:
        raise ConversionError(path, lines[err.index], err.message, field="tag") from None
    detector.update(tags)
    spans = map_spans(spans, label_map, counts)
    for start, _, label in spans:
        check_entity_label(path, lines[start], label, labels, "tag")
    doc = words_doc(vocab, words)
    doc.set_ents([Span(doc, start, end, label=label) for start, end, label in spans])
    if document is not None:
        doc.user_data[DOCUMENT_KEY] = document
    return doc
