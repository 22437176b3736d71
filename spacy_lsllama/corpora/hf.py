"""Hugging Face `datasets` as input: saved datasets, data files and hub names, read row by row.

Token-classification sets have a `tokens` column and a tag column (a sequence of `ClassLabel`
ids, whose names are the tags, or of tag strings); text-classification sets have `text` and
`label` (a `ClassLabel`, a string, or a list of them for multi-label). Rows are read one at a
time from the memory-mapped Arrow files or a streaming reader, so a dataset is never held in
memory as a whole. Errors name the source, the split and the 1-based row.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import datasets
from spacy.language import Language
from spacy.tokens import Doc, Span

from .errors import ConversionError, TagError
from .labels import check_entity_label, map_spans, textcat_docs
from .lines import words_doc
from .schemes import SchemeDetector, tags_to_spans
from .summary import CorpusCounts

FILE_BUILDERS = {".parquet": "parquet", ".arrow": "arrow", ".json": "json", ".jsonl": "json"}
TAG_COLUMNS = ("ner_tags", "tags", "labels")
Row = Mapping[str, Any]


def load_hf_dataset(source: str | Path, *, split: str | None = None) -> datasets.IterableDataset:
    """One split of a dataset, streamed: a `save_to_disk` folder, a data file or a hub name."""
    path = Path(source).expanduser()
    if path.is_dir():
        loaded = _load_from_disk(path)
        if isinstance(loaded, datasets.DatasetDict):
            loaded = _pick_split(source, loaded, split)
        elif split not in (None, "train"):
            raise ConversionError(source, None, f"a saved Dataset has no splits (got {split!r})")
        return loaded.to_iterable_dataset()
    if path.suffix in FILE_BUILDERS or path.exists():
        if not path.is_file():
            raise ConversionError(source, None, "no such file or dataset folder")
        return _load_file(path, split)
    return _load_hub(str(source), split)


def _load_from_disk(path: Path) -> datasets.Dataset | datasets.DatasetDict:
    try:
        return datasets.load_from_disk(str(path))
    except (FileNotFoundError, ValueError) as err:
        message = f"not a dataset saved with save_to_disk: {err}"
        raise ConversionError(path, None, message) from None


def _pick_split(source: str | Path, splits: datasets.DatasetDict, split: str | None):
    if split is None and len(splits) == 1:
        split = next(iter(splits))
    if split not in splits:
        names = ", ".join(splits)
        hint = "give --split" if split is None else f"no split {split!r}"
        raise ConversionError(source, None, f"{hint}: the dataset has splits {names}")
    return splits[split]


def _load_file(path: Path, split: str | None) -> datasets.IterableDataset:
    if path.suffix not in FILE_BUILDERS:
        known = ", ".join(FILE_BUILDERS)
        raise ConversionError(path, None, f"unknown data file type {path.suffix!r} ({known})")
    if split not in (None, "train"):
        raise ConversionError(path, None, f"a single data file has no split {split!r}")
    try:
        return datasets.load_dataset(
            FILE_BUILDERS[path.suffix], data_files=str(path), split="train", streaming=True
        )
    except Exception as err:  # datasets raises many types for unreadable files
        raise ConversionError(path, None, f"cannot read with datasets: {err}") from None


def _load_hub(name: str, split: str | None) -> datasets.IterableDataset:
    try:
        return datasets.load_dataset(name, split=split or "train", streaming=True)
    except Exception as err:  # offline, unknown name or split: all reported the same way
        raise ConversionError(
            name,
            None,
            "not a local dataset folder or data file, and it could not be loaded from the "
            f"Hugging Face Hub (is the hub reachable from here?): {err}",
        ) from None


def read_hf_dataset(
    source: str | Path,
    *,
    nlp: Language,
    split: str | None = None,
    tokens_field: str = "tokens",
    tags_field: str | None = None,
    text_field: str = "text",
    label_field: str = "label",
    scheme: str = "auto",
    labels: Sequence[str] | None = None,
    label_map: Mapping[str, str] | None = None,
    counts: CorpusCounts | None = None,
) -> Iterator[Doc]:
    """Read one split of a dataset as Docs: entities when it has `tokens_field`, else classes.

    tags_field: the tag column (default: the first of ner_tags, tags, labels). Tag ids become
    names through the column's ClassLabel feature. label_map renames entity labels ("" drops)
    or maps class values, as for the other readers.
    """
    dataset = load_hf_dataset(source, split=split)
    where = f"{source}[{split}]" if split else str(source)
    columns = list(dataset.features or {}) or list(_first_row(dataset))
    if tokens_field in columns:
        tags = tags_field or next((name for name in TAG_COLUMNS if name in columns), None)
        if tags is None or tags not in columns:
            message = f"no tag column {tags_field or ' or '.join(TAG_COLUMNS)} in {columns}"
            raise ConversionError(where, None, message, field="tags")
        names = _class_names(dataset.features, tags)
        yield from _ner_docs(
            where, nlp, dataset, tokens_field, tags, names, scheme, labels, label_map, counts
        )
    elif text_field in columns and label_field in columns:
        names = _class_names(dataset.features, label_field)
        records = _textcat_records(where, dataset, text_field, label_field, names)
        label_set = labels or _mapped_names(names, label_map)
        yield from textcat_docs(where, nlp, records, label_set, label_map, label_field)
    else:
        message = f"expected {tokens_field!r} and tags, or {text_field!r} and {label_field!r}"
        raise ConversionError(where, None, f"{message}; the columns are {columns}")


def _mapped_names(names: list[str] | None, label_map: Mapping[str, str] | None) -> list[str] | None:
    """The class names after the label map (in feature order, dropped ones left out)."""
    if names is None or label_map is None:
        return names
    mapped = [label_map.get(name, name) for name in names]
    return list(dict.fromkeys(name for name in mapped if name))


def _first_row(dataset: datasets.IterableDataset) -> Row:
    return next(iter(dataset), {})


def _class_names(features: datasets.Features | None, column: str) -> list[str] | None:
    """The ClassLabel names of a column (or of the items of a sequence column), if any."""
    feature = (features or {}).get(column)
    while feature is not None and not isinstance(feature, datasets.ClassLabel):
        feature = getattr(feature, "feature", None)  # Sequence / List hold their items here
        if isinstance(feature, list) and feature:
            feature = feature[0]
    return list(feature.names) if isinstance(feature, datasets.ClassLabel) else None


def _ner_docs(
    where: str,
    nlp: Language,
    rows: Iterable[Row],
    tokens_field: str,
    tags_field: str,
    names: list[str] | None,
    scheme: str,
    labels: Collection[str] | None,
    label_map: Mapping[str, str] | None,
    counts: CorpusCounts | None,
) -> Iterator[Doc]:
    detector = SchemeDetector()
    for number, row in enumerate(rows, start=1):
        words = _strings(where, number, row.get(tokens_field), tokens_field, None)
        tags = _strings(where, number, row.get(tags_field), tags_field, names)
        if len(tags) != len(words):
            message = f"{len(tags)} tags for {len(words)} tokens"
            raise ConversionError(where, number, message, field=tags_field)
        if not words:
            continue
        try:
            spans = tags_to_spans(tags, scheme=scheme)
        except TagError as err:
            message = f"token {err.index}: {err.message}"
            raise ConversionError(where, number, message, field=tags_field) from None
        detector.update(tags)
        doc = words_doc(nlp.vocab, words)
        ents = []
        for start, end, label in map_spans(spans, label_map, counts):
            check_entity_label(where, number, label, labels, tags_field)
            ents.append(Span(doc, start, end, label=label))
        doc.set_ents(ents)
        yield doc
    if counts is not None:
        counts.scheme = detector.scheme if scheme == "auto" else scheme


def _strings(where: str, row: int, value: Any, field: str, names: list[str] | None) -> list[str]:
    """A list of strings, with ClassLabel ids turned into their names."""
    if not isinstance(value, list):
        raise ConversionError(where, row, "missing or not a list", field=field)
    return [_name(where, row, item, field, names) for item in value]


def _name(where: str, row: int, value: Any, field: str, names: list[str] | None) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and names is not None and 0 <= value < len(names):
        return names[value]
    expected = f"a class id 0-{len(names) - 1}" if names else "a string (no ClassLabel names)"
    raise ConversionError(where, row, f"{value!r} is not {expected}", field=field)


def _textcat_records(
    where: str, rows: Iterable[Row], text_field: str, label_field: str, names: list[str] | None
) -> Iterator[tuple[int, str, list[str]]]:
    for number, row in enumerate(rows, start=1):
        text = row.get(text_field)
        if not isinstance(text, str) or not text.strip():
            raise ConversionError(where, number, "missing, empty or not a string", field=text_field)
        value = row.get(label_field)
        values = value if isinstance(value, list) else [value]
        if names is None:
            names_or_ids = [str(item) if isinstance(item, int) else item for item in values]
            yield number, text, _strings(where, number, names_or_ids, label_field, None)
        else:
            yield number, text, _strings(where, number, values, label_field, names)
