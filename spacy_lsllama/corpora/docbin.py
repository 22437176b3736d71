"""Writing converted docs to spaCy's `.spacy` (DocBin) format."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from spacy.tokens import Doc, DocBin

from .summary import CorpusCounts


def write_docbin(
    docs: Iterable[Doc], path: str | Path, *, counts: CorpusCounts | None = None
) -> CorpusCounts:
    """Write docs to a .spacy DocBin and count them; nothing is written if reading fails.

    Each doc goes into the DocBin's compact arrays as it is read, so the docs are never all
    held as Doc objects at once. `user_data` is kept: it carries the document a sentence
    belongs to, where the input marks documents.
    """
    counts = counts if counts is not None else CorpusCounts()
    docbin = DocBin(store_user_data=True)
    for doc in docs:
        docbin.add(doc)
        counts.add(doc)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    docbin.to_disk(path)
    return counts
