"""Reading input files line by line and record by record, with the line number of every error.

Text is decoded as UTF-8 one line at a time (a byte-order mark is dropped, CRLF endings are
kept for the caller to strip), so a bad byte is reported at its line instead of as a traceback.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

from spacy.tokens import Doc
from spacy.vocab import Vocab

from .errors import ConversionError


def read_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield (line number, line with its ending), decoding UTF-8 line by line to locate errors."""
    try:
        with Path(path).open("rb") as file:
            for number, raw in enumerate(file, start=1):
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as err:
                    bad = raw[err.start : err.start + 1].hex()
                    message = f"invalid UTF-8 (byte 0x{bad} at offset {err.start})"
                    raise ConversionError(path, number, message) from None
                yield number, text.removeprefix("\ufeff") if number == 1 else text
    except OSError as err:
        raise ConversionError(path, None, f"cannot read file: {err.strerror or err}") from err


def read_csv(path: Path, *, delimiter: str = ",") -> Iterator[tuple[int, list[str]]]:
    """Yield (physical start line, fields) per CSV record; quoted fields may span lines.

    Tab-separated files are read without quote handling, as GLUE writes them.
    """
    lines = read_lines(path)
    texts = (text for _, text in lines)
    if delimiter == "\t":
        reader = csv.reader(texts, delimiter=delimiter, quoting=csv.QUOTE_NONE, strict=True)
    else:
        reader = csv.reader(texts, delimiter=delimiter, quoting=csv.QUOTE_MINIMAL, strict=True)
    start = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise ConversionError(path, start, f"malformed CSV: {err}") from None
        if row:
            yield start, row
        start = reader.line_num + 1


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) per non-blank line of a JSON Lines file."""
    for number, text in read_lines(path):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as err:
            message = f"invalid JSON: {err.msg} (column {err.colno})"
            raise ConversionError(path, number, message) from None
        if not isinstance(record, dict):
            raise ConversionError(path, number, "expected a JSON object")
        yield number, record


def string_field(path: Path | str, line: int, record: dict[str, Any], name: str) -> str:
    """The non-empty string `record[name]`, or an error naming the field."""
    value = record.get(name)
    if not isinstance(value, str):
        raise ConversionError(path, line, "missing or not a string", field=name)
    return require_text(path, line, value, name)


def require_text(path: Path | str, line: int, text: str, name: str) -> str:
    if not text.strip():
        raise ConversionError(path, line, "empty text", field=name)
    return text


def words_doc(vocab: Vocab, words: Sequence[str]) -> Doc:
    """A Doc of pre-tokenised words joined by single spaces."""
    return Doc(vocab, words=list(words), spaces=[True] * (len(words) - 1) + [False])


def one_hot(doc: Doc, labels: Sequence[str], gold: Collection[str]) -> Doc:
    """Set `doc.cats` to 1.0 for the gold labels and 0.0 for the others."""
    doc.cats = {label: float(label in gold) for label in labels}
    return doc
