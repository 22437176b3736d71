"""Entity-level NER scores with seqeval and text-classification metrics for spaCy Examples.

seqeval's default mode reproduces conlleval, the number NER papers report; the NER tags come
from spaCy's own BILUO conversion, so the scores agree with spaCy's entity scorer.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from seqeval.metrics.sequence_labeling import get_entities, precision_recall_fscore_support
from spacy.tokens import Doc, Span
from spacy.training import Example
from spacy.training.iob_utils import biluo_to_iob, doc_to_biluo_tags, offsets_to_biluo_tags


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
        y_true.append(biluo_to_iob(doc_to_biluo_tags(eg.reference, missing="O")))
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
    offsets = [(span.start_char, span.end_char, span.label_) for span in ents]
    return biluo_to_iob(offsets_to_biluo_tags(doc, offsets, missing="O"))


def textcat_scores(
    examples: Iterable[Example],
    *,
    multilabel: bool = False,
    threshold: float = 0.5,
    labels: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Accuracy, macro P/R/F1 and per-label P/R/F/support for `doc.cats` predictions.

    Gold labels are those scored >= 0.5. Single-label: the prediction is the highest-scoring
    label and `threshold` is unused. Multi-label: a label is predicted when its score is
    >= threshold and accuracy is the exact-match ratio. Examples whose reference has no cats
    are skipped; `labels` defaults to every gold label seen, sorted.
    """
    pairs = [(eg.reference.cats, eg.predicted.cats) for eg in examples if eg.reference.cats]
    names = list(labels) if labels is not None else sorted({k for gold, _ in pairs for k in gold})
    counts = {name: [0, 0, 0] for name in names}  # true positives, false positives, false negs
    correct = 0
    for gold_cats, pred_cats in pairs:
        gold = {name for name in names if gold_cats.get(name, 0.0) >= 0.5}
        pred = _predicted(pred_cats, names, multilabel, threshold)
        correct += gold == pred
        for name in names:
            counts[name][0] += name in gold and name in pred
            counts[name][1] += name in pred and name not in gold
            counts[name][2] += name in gold and name not in pred
    per_label = {name: _prf(*counts[name]) for name in names}
    n_labels = max(len(names), 1)
    return {
        "accuracy": correct / len(pairs) if pairs else 0.0,
        "macro_precision": sum(s["p"] for s in per_label.values()) / n_labels,
        "macro_recall": sum(s["r"] for s in per_label.values()) / n_labels,
        "macro_f1": sum(s["f"] for s in per_label.values()) / n_labels,
        "per_label": per_label,
    }


def _predicted(
    cats: dict[str, float], names: Sequence[str], multilabel: bool, threshold: float
) -> set[str]:
    scores = {name: cats[name] for name in names if name in cats}
    if multilabel:
        return {name for name, score in scores.items() if score >= threshold}
    return {max(scores, key=scores.__getitem__)} if scores else set()


def _prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"p": p, "r": r, "f": f, "support": tp + fn}
