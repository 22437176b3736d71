"""JSON Lines corpora: texts with character-offset entity spans, or texts with class labels."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from spacy.language import Language
from spacy.tokens import Doc, Span

from .errors import ConversionError
from .labels import check_entity_label, map_spans, textcat_docs
from .lines import read_jsonl, string_field
from .summary import CorpusCounts


def read_jsonl_ner(
    path: str | Path,
    *,
    nlp: Language,
    text_field: str = "text",
    spans_field: str | None = None,
    labels: Collection[str] | None = None,
    label_map: Mapping[str, str] | None = None,
    counts: CorpusCounts | None = None,
) -> Iterator[Doc]:
    """Read JSONL records {"text": ..., "spans"/"ents": [{"start", "end", "label"}]} as Docs.

    Character offsets must fall on token boundaries of `nlp`'s tokenizer; spans_field=None
    takes "spans", else "ents". label_map renames labels ("" drops one).
    """
    path = Path(path)
    for number, record in read_jsonl(path):
        text = string_field(path, number, record, text_field)
        name = spans_field or ("ents" if "ents" in record and "spans" not in record else "spans")
        raw_spans = record.get(name)
        if not isinstance(raw_spans, list):
            raise ConversionError(path, number, "missing or not a list", field=name)
        doc = nlp.make_doc(text)
        offsets = [
            _token_offsets(path, number, doc, item, f"{name}[{i}]")
            for i, item in enumerate(raw_spans)
        ]
        spans = []
        for start, end, label in map_spans(offsets, label_map, counts):
            check_entity_label(path, number, label, labels, name)
            spans.append(Span(doc, start, end, label=label))
        try:
            doc.set_ents(spans)
        except ValueError as err:
            raise ConversionError(path, number, f"overlapping spans: {err}", field=name) from None
        yield doc


def _token_offsets(path: Path, line: int, doc: Doc, item: Any, where: str) -> tuple[int, int, str]:
    """(start token, end token, label) of one span object, checked against the text."""
    if not isinstance(item, dict):
        raise ConversionError(path, line, "expected an object with start, end, label", field=where)
    start, end, label = item.get("start"), item.get("end"), item.get("label")
    if not (isinstance(start, int) and isinstance(end, int) and isinstance(label, str)):
        raise ConversionError(path, line, "needs integer start/end and string label", field=where)
    if not 0 <= start < end <= len(doc.text):
        message = f"offsets {start}-{end} outside text of length {len(doc.text)}"
        raise ConversionError(path, line, message, field=where)
    span: Span | None = doc.char_span(start, end, label=label, alignment_mode="strict")
    if span is None:
        message = f"{start}-{end} {doc.text[start:end]!r} does not fall on token boundaries"
        raise ConversionError(path, line, message, field=where)
    return span.start, span.end, label


def read_jsonl_textcat(
    path: str | Path,
    *,
    nlp: Language,
    text_field: str = "text",
    label_field: str = "label",
    labels: Sequence[str] | None = None,
    label_map: Mapping[str, str] | None = None,
) -> Iterator[Doc]:
    """Read JSONL records {"text": ..., "label": ...} as Docs; a list of labels is multi-label.

    Labels may be strings or integers; `labels` and `label_map` work as in `read_csv_textcat`.
    """
    path = Path(path)
    yield from textcat_docs(
        path, nlp, _textcat_records(path, text_field, label_field), labels, label_map, label_field
    )


def _textcat_records(
    path: Path, text_name: str, label_field: str
) -> Iterator[tuple[int, str, list[str]]]:
    for number, record in read_jsonl(path):
        text = string_field(path, number, record, text_name)
        value = record.get(label_field)
        values = value if isinstance(value, list) else [value]
        if not values or not all(isinstance(v, str | int) for v in values):
            message = "missing, or not a string, integer or list of them"
            raise ConversionError(path, number, message, field=label_field)
        yield number, text, [str(v) for v in values]
