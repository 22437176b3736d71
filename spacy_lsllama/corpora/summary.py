"""What a conversion read and wrote: documents, tokens, labels, and the lines it skipped."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from spacy.tokens import Doc


@dataclass
class CorpusCounts:
    """What a conversion wrote: docs, tokens and label instances, and what it left out.

    `labels` counts entity spans per type for NER and docs per gold category for textcat;
    `entities` is the number of entity spans.
    Readers add what they skipped: `comments` (comment lines), `documents` (-DOCSTART- lines),
    `dropped` (entities per label removed by a label map) and the detected tag `scheme`.
    """

    docs: int = 0
    tokens: int = 0
    labels: dict[str, int] = field(default_factory=dict)
    entities: int = 0
    comments: int = 0
    documents: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    scheme: str | None = None

    def add(self, doc: Doc) -> None:
        """Count one doc: its tokens, entities per type and gold categories (score >= 0.5)."""
        self.docs += 1
        self.tokens += len(doc)
        self.entities += len(doc.ents)
        gold = [ent.label_ for ent in doc.ents]
        gold += [label for label, score in doc.cats.items() if score >= 0.5]
        for label in gold:
            self.labels[label] = self.labels.get(label, 0) + 1

    def drop(self, label: str) -> None:
        """Count an entity that a label map removed."""
        self.dropped[label] = self.dropped.get(label, 0) + 1

    def describe(self) -> list[str]:
        """Human-readable lines for the command line."""
        kind = "entities" if self.entities else "classes"
        lines = [f"{self.docs} docs, {self.tokens} tokens"]
        per_label = ", ".join(f"{label} {n}" for label, n in sorted(self.labels.items()))
        lines.append(f"{kind}: {per_label or 'none'}")
        if self.scheme is not None:
            lines.append(f"tag scheme: {self.scheme}")
        if self.documents:
            lines.append(f"-DOCSTART- lines: {self.documents}")
        if self.comments:
            lines.append(f"comment lines skipped: {self.comments}")
        if self.dropped:
            dropped = ", ".join(f"{label} {n}" for label, n in sorted(self.dropped.items()))
            lines.append(f"entities dropped by the label map: {dropped}")
        return lines


def count_docs(docs: Iterable[Doc]) -> CorpusCounts:
    """Count docs, tokens and entity spans per type or gold categories (score >= 0.5) per label."""
    counts = CorpusCounts()
    for doc in docs:
        counts.add(doc)
    return counts
