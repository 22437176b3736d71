"""Comma- and tab-separated text-classification files, with a header row or in AG News' layout."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from html import unescape
from pathlib import Path

from spacy.language import Language
from spacy.tokens import Doc

from .errors import ConversionError
from .labels import textcat_docs
from .lines import one_hot, read_csv, read_lines, require_text

_HTML_NUMBER = re.compile(r" #(\d+);")


def read_csv_textcat(
    path: str | Path,
    *,
    nlp: Language,
    text_field: str = "text",
    label_field: str = "label",
    labels: Sequence[str] | None = None,
    label_map: Mapping[str, str] | None = None,
    delimiter: str = ",",
) -> Iterator[Doc]:
    """Read a CSV (or, with delimiter="\\t", unquoted TSV) file with a header row as Docs.

    Raw label values go through `label_map` (which must name every value; "" drops one);
    `labels` fixes the label set and order, otherwise it is every label seen, sorted.
    """
    path = Path(path)
    rows = read_csv(path, delimiter=delimiter)
    _, header = next(rows, (1, []))
    columns = {name: i for i, name in enumerate(header)}
    for name in (text_field, label_field):
        if name not in columns:
            message = f"no column {name!r} in header {header}"
            raise ConversionError(path, 1, message, field=name)

    def records() -> Iterator[tuple[int, str, list[str]]]:
        for number, row in rows:
            if len(row) != len(header):
                message = f"expected {len(header)} fields, got {len(row)}"
                raise ConversionError(path, number, message)
            text = require_text(path, number, row[columns[text_field]], text_field)
            yield number, text, [row[columns[label_field]]]

    yield from textcat_docs(path, nlp, records(), labels, label_map, label_field)


def read_ag_news(
    path: str | Path, *, nlp: Language, labels: Sequence[str] | None = None
) -> Iterator[Doc]:
    """Read the AG News CSV (no header: class index 1-4, title, description) as Docs.

    The text is "title description" after undoing the corpus' escapes: " #39;" and friends were
    HTML character references, "\\$" is "$" and other backslashes stand for line breaks.
    `labels` defaults to the names in classes.txt beside the CSV.
    """
    path = Path(path)
    if labels is None:
        classes = read_lines(path.parent / "classes.txt")
        labels = [name.strip() for _, name in classes if name.strip()]
    indices = {str(i): name for i, name in enumerate(labels, start=1)}
    for number, row in read_csv(path):
        if len(row) != 3:
            raise ConversionError(path, number, f"expected 3 fields, got {len(row)}")
        if row[0] not in indices:
            message = f"unknown class index {row[0]!r} (expected 1-{len(labels)})"
            raise ConversionError(path, number, message, field="class index")
        text = require_text(path, number, _clean_ag_news(f"{row[1]} {row[2]}"), "text")
        yield one_hot(nlp.make_doc(text), labels, {indices[row[0]]})


def _clean_ag_news(text: str) -> str:
    text = _HTML_NUMBER.sub(r"&#\1;", text).replace("\\$", "$").replace("\\", " ")
    return unescape(text)
