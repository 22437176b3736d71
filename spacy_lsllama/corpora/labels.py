"""Label sets and label maps: renaming or dropping entity labels, mapping raw class values.

An entity label map renames the labels it names (`OLD=NEW`) and drops those mapped to the
empty string; labels it does not name are kept. A class-value map (text classification) must
name every raw value, so a typo in the data is an error instead of a new class.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from pathlib import Path

from spacy.language import Language
from spacy.tokens import Doc

from .errors import ConversionError
from .lines import one_hot
from .schemes import SpanTuple
from .summary import CorpusCounts


def parse_label_map(values: Sequence[str]) -> dict[str, str]:
    """A label map from `OLD=NEW` pairs or one JSON file holding an object of strings.

    An empty NEW (`MISC=`) drops the label. Raises ValueError naming the bad item.
    """
    if len(values) == 1 and "=" not in values[0]:
        return _read_label_map(Path(values[0]))
    mapping: dict[str, str] = {}
    for value in values:
        old, sep, new = value.partition("=")
        if not sep or not old:
            raise ValueError(f"label map item {value!r}: expected OLD=NEW (or a JSON file)")
        mapping[old] = new
    return mapping


def _read_label_map(path: Path) -> dict[str, str]:
    try:
        mapping = json.loads(path.read_text(encoding="utf-8-sig"))
    except OSError as err:
        raise ConversionError(path, None, f"cannot read label map: {err.strerror or err}") from err
    except json.JSONDecodeError as err:
        message = f"invalid JSON: {err.msg} (column {err.colno})"
        raise ConversionError(path, err.lineno, message) from None
    if not isinstance(mapping, dict) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in mapping.items()
    ):
        raise ConversionError(path, None, 'expected a JSON object of strings {"OLD": "NEW"}')
    return mapping


def map_spans(
    spans: Iterable[SpanTuple], label_map: Mapping[str, str] | None, counts: CorpusCounts | None
) -> list[SpanTuple]:
    """Rename span labels by the map; labels mapped to "" are dropped (and counted)."""
    if not label_map:
        return list(spans)
    mapped = []
    for start, end, label in spans:
        new = label_map.get(label, label)
        if new:
            mapped.append((start, end, new))
        elif counts is not None:
            counts.drop(label)
    return mapped


def check_entity_label(
    path: Path | str, line: int, label: str, labels: Collection[str] | None, field: str
) -> None:
    """Refuse an entity label outside `labels` (when given)."""
    if labels is not None and label not in labels:
        message = f"unknown entity label {label!r} (expected one of {', '.join(labels)})"
        raise ConversionError(path, line, message, field=field)


def textcat_docs(
    path: Path | str,
    nlp: Language,
    records: Iterable[tuple[int, str, list[str]]],
    labels: Sequence[str] | None,
    label_map: Mapping[str, str] | None,
    label_field: str,
) -> Iterator[Doc]:
    """Map raw labels, check them against the label set and build one-hot docs.

    With `labels` given the records stream through; otherwise they are read first, since the
    label set (every label seen, sorted) is only known at the end.
    """
    mapped: Iterator[tuple[int, str, set[str]]] = (
        (number, text, _map_values(path, number, values, label_map, label_field))
        for number, text, values in records
    )
    if labels is None:
        pending = list(mapped)
        labels = sorted({label for _, _, gold in pending for label in gold})
        mapped = iter(pending)
    for number, text, gold in mapped:
        check_labels(path, number, gold, labels, label_field)
        yield one_hot(nlp.make_doc(text), labels, gold)


def _map_values(
    path: Path | str,
    line: int,
    values: list[str],
    label_map: Mapping[str, str] | None,
    label_field: str,
) -> set[str]:
    gold = set(values)
    if label_map is None:
        return gold
    check_labels(path, line, gold, label_map, label_field)
    return {label_map[value] for value in gold} - {""}


def check_labels(
    path: Path | str, line: int, gold: Collection[str], known: Collection[str], label_field: str
) -> None:
    """Refuse gold categories outside `known`."""
    unknown = sorted(set(gold).difference(known))
    if unknown:
        message = f"unknown label {unknown[0]!r} (expected one of {', '.join(known)})"
        raise ConversionError(path, line, message, field=label_field)
