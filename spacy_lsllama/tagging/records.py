"""Turning a tagged Doc into its output line: the input record plus ``ents``, ``spans``, ``cats``.

The fields the tool adds are the same as in spaCy's ``Doc.to_json``: ``ents`` (character
offsets, label, text, and a score where the pipeline gives one), ``spans`` (one list per span
group key) and ``cats``. Every other field is written back as the exact JSON text it had; an
input field named like an added one is replaced in place (later duplicates of it are dropped).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from spacy.language import Language
from spacy.tokens import Doc, Span

from .lines import Line, Record

ADDED_FIELDS = ("ents", "spans", "cats")


@dataclass(frozen=True)
class OutputPlan:
    """What a pipeline annotates, read once from its components.

    ents: some component writes ``doc.ents``. span_keys: the ``doc.spans`` groups components
    write (``spans_key`` of lsllama_ner, ``key`` of spancat and friends). score_extensions:
    Span extensions that hold entity scores (lsllama_ner's ``score_extension``).
    """

    ents: bool
    cats: bool
    span_keys: tuple[str, ...]
    score_extensions: tuple[str, ...]

    @classmethod
    def for_pipeline(cls, nlp: Language) -> OutputPlan:
        ents = cats = False
        keys: list[str] = []
        extensions: list[str] = []
        for name, pipe in nlp.pipeline:
            assigns = nlp.get_pipe_meta(name).assigns
            key = _spans_key(pipe, assigns)
            if key is not None and key not in keys:
                keys.append(key)
            ents |= "doc.ents" in assigns and not getattr(pipe, "spans_key", None)
            cats |= "doc.cats" in assigns
            cfg = getattr(pipe, "cfg", None)
            extension = cfg.get("score_extension") if isinstance(cfg, dict) else None
            if isinstance(extension, str) and extension and Span.has_extension(extension):
                extensions.append(extension)
        return cls(ents, cats, tuple(keys), tuple(extensions))


def _spans_key(pipe: object, assigns: Iterable[str]) -> str | None:
    if "doc.spans" not in assigns:
        return None
    key = pipe.spans_key if hasattr(pipe, "spans_key") else getattr(pipe, "key", None)
    return key if isinstance(key, str) else None


@dataclass(frozen=True)
class Tagged:
    """One output line and what the summary counts from it."""

    number: int
    line: bytes
    text: str
    annotations: dict[str, Any]  # the fields added, for --show
    words: int
    labels: Counter[str]
    replaced: tuple[str, ...]  # input fields the added ones replaced


@dataclass(frozen=True)
class Skipped:
    """A line that was not tagged, and why."""

    line: Line
    reason: str


class RecordBuilder:
    """Build output lines for the documents of one pipeline."""

    def __init__(self, plan: OutputPlan) -> None:
        self.plan = plan

    def build(self, number: int, doc: Doc, record: Record) -> Tagged:
        added = self.annotations(doc)
        parts: list[str] = []
        replaced: list[str] = []
        for field in record.fields:
            if field.key not in added:
                parts.append(f"{field.raw_key}: {field.raw_value}")
            elif field.key not in replaced:
                replaced.append(field.key)
                parts.append(f"{field.raw_key}: {_dumps(added[field.key])}")
        for key, value in added.items():
            if key not in replaced:
                parts.append(f"{_dumps(key)}: {_dumps(value)}")
        line = ("{" + ", ".join(parts) + "}\n").encode("utf-8")
        labels = Counter(span["label"] for span in added.get("ents", ()))
        for spans in added.get("spans", {}).values():
            labels.update(span["label"] for span in spans)
        return Tagged(number, line, record.text, added, len(doc), labels, tuple(replaced))

    def annotations(self, doc: Doc) -> dict[str, Any]:
        """The fields this document adds, in the order ``ents``, ``spans``, ``cats``."""
        added: dict[str, Any] = {}
        if self.plan.ents or doc.ents:
            group_scores = _group_scores(doc)
            added["ents"] = [self._entity(ent, group_scores) for ent in doc.ents]
        if self.plan.span_keys:
            added["spans"] = {key: _group(doc, key) for key in self.plan.span_keys}
        if self.plan.cats or doc.cats:
            added["cats"] = {label: _finite(score) for label, score in doc.cats.items()}
        return added

    def _entity(self, ent: Span, group_scores: dict[tuple[int, int, str], float]) -> dict:
        item = _span(ent)
        score = None
        for extension in self.plan.score_extensions:
            score = ent._.get(extension)
            if score is not None:
                break
        if score is None:
            score = group_scores.get((ent.start_char, ent.end_char, ent.label_))
        if score is not None:
            item["score"] = _finite(score)
        return item


def _span(span: Span) -> dict[str, Any]:
    return {"start": span.start_char, "end": span.end_char, "label": span.label_, "text": span.text}


def _group(doc: Doc, key: str) -> list[dict[str, Any]]:
    """The spans of ``doc.spans[key]`` with the scores spancat keeps in ``attrs["scores"]``."""
    if key not in doc.spans:
        return []
    group = doc.spans[key]
    scores = group.attrs.get("scores")
    items = [_span(span) for span in group]
    if scores is not None and len(scores) == len(items):
        for item, score in zip(items, scores):
            item["score"] = _finite(score)
    return items


def _group_scores(doc: Doc) -> dict[tuple[int, int, str], float]:
    """Scores of span groups that carry them in ``attrs["scores"]``, as spancat does."""
    scores = {}
    for group in doc.spans.values():
        group_scores = group.attrs.get("scores")
        if group_scores is not None:
            for span, score in zip(group, group_scores, strict=False):
                scores[(span.start_char, span.end_char, span.label_)] = float(score)
    return scores


def _finite(score: object) -> float | None:
    """A score as a JSON number; NaN and infinities, which JSON cannot hold, become null."""
    value = float(score)  # type: ignore[arg-type]
    return value if math.isfinite(value) else None


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False)
