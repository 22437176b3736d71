"""Entity-level NER scores with seqeval, registered as a spaCy scorer.

seqeval's default mode reproduces conlleval, the number NER papers report. Registered as
`spacy-lsllama.seqeval_ner_scorer.v1` and set as the `lsllama_ner` component's `scorer`, it
is what `spacy train`, `spacy benchmark accuracy` and `lsllama evaluate` all report, under
spaCy's keys (`ents_p`, `ents_r`, `ents_f`, `ents_per_type`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from seqeval.metrics.sequence_labeling import get_entities, precision_recall_fscore_support
from spacy import registry
from spacy.scorer import Scorer
from spacy.tokens import Doc, Span
from spacy.training import Example

from ..corpora.schemes import spans_to_tags


def ner_scores(examples: Iterable[Example]) -> dict[str, Any]:
    """Entity-level micro P/R/F and per-type P/R/F/support with seqeval (conlleval rules).

    Predictions are aligned onto the reference tokens. As in spaCy's `get_ner_prf`, references
    without entity annotation are skipped and predictions over tokens whose gold entity
    annotation is missing are ignored.
    """
    y_true: list[list[str]] = []
    y_pred: list[list[str]] = []
    for eg in examples:
        if not eg.reference.has_annotation("ENT_IOB"):
            continue
        y_true.append(_iob2_tags(eg.reference, eg.reference.ents))
        y_pred.append(_iob2_tags(eg.reference, _predicted_ents(eg)))
    types = sorted({name for name, _, _ in get_entities(y_true + y_pred)})
    if not types:
        return {"precision": 0.0, "recall": 0.0, "f1": 0.0, "per_type": {}}
    p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, average="micro", zero_division=0)
    scores = precision_recall_fscore_support(y_true, y_pred, average=None, zero_division=0)
    per_type = {
        name: {"p": float(p_), "r": float(r_), "f": float(f_), "support": int(support)}
        for name, p_, r_, f_, support in zip(types, *scores, strict=True)
    }
    return {"precision": float(p), "recall": float(r), "f1": float(f), "per_type": per_type}


def _predicted_ents(eg: Example) -> list[Span]:
    """Predicted entities as spans of the reference, minus those over unannotated gold tokens."""
    missing = {token.i for token in eg.reference if token.ent_iob == 0}
    aligned = eg.get_aligned_spans_x2y(eg.predicted.ents)
    return [span for span in aligned if missing.isdisjoint(range(span.start, span.end))]


def _iob2_tags(doc: Doc, ents: Iterable[Span]) -> list[str]:
    spans = [(span.start, span.end, span.label_) for span in ents]
    return spans_to_tags(spans, len(doc), scheme="iob2")


def score_seqeval_ents(
    examples: Iterable[Example], *, spans_key: str | None = None, **_: Any
) -> dict[str, Any]:
    """spaCy-style entity scores computed by seqeval; `doc.spans[spans_key]` when it is set.

    Scores are None when neither gold nor predictions hold an entity, as in spaCy's
    `get_ner_prf`. Span groups may overlap, which BIO tags cannot express: they are scored by
    spaCy's `Scorer.score_spans` under `spans_<key>_*`.
    """
    if spans_key:
        return Scorer.score_spans(
            examples,
            f"spans_{spans_key}",
            getter=lambda doc, attr: doc.spans.get(spans_key, []),
            has_annotation=lambda doc: spans_key in doc.spans,
        )
    scores = ner_scores(examples)
    if not scores["per_type"]:
        return {"ents_p": None, "ents_r": None, "ents_f": None, "ents_per_type": None}
    return {
        "ents_p": scores["precision"],
        "ents_r": scores["recall"],
        "ents_f": scores["f1"],
        "ents_per_type": scores["per_type"],
    }


@registry.scorers("spacy-lsllama.seqeval_ner_scorer.v1")
def make_seqeval_ner_scorer() -> Callable[..., dict[str, Any]]:
    """The seqeval entity scorer (conlleval rules) for an entity component's `scorer`."""
    return score_seqeval_ents
