"""What an engine does for ``lsllama tag``, and the batching rule every engine follows.

The driver (`spacy_lsllama.tagging.run`) reads and checks lines, writes the output and the
sidecar in input order, checkpoints and reports; an engine only turns records into output
lines. It receives every input line, good or bad, and must yield exactly one outcome per line
in input order: a `Tagged` for a record, a `Skipped` for a line that could not be parsed.

Batches are fixed by line number: lines ``k * batch_size + 1 .. (k + 1) * batch_size`` form
batch k, a bad line holding its place as an empty document. A pipeline whose output depends
on its batch (LS-LLaMA packs a batch's windows into shared rows) then gives the same bytes
whether a run starts at line 1 or resumes at a batch boundary.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Protocol

from .lines import Line, LineError, Record
from .records import Skipped, Tagged

Item = tuple[Line, Record | LineError]
Outcome = Tagged | Skipped


class Engine(Protocol):
    """Tags records; `LocalEngine` runs spaCy in this process (and nlp.pipe's workers)."""

    def run(self, items: Iterable[Item], batch_size: int) -> Iterator[Outcome]:
        """One outcome per item, in order, batched by line number as described above."""
        ...

    def compute_facts(self) -> dict[str, Any]:
        """How the pipeline computes (dtype, threads, ...: `compute.py`), for the run header."""
        ...


def text_of(item: Item) -> str:
    """The text an item gives the pipeline: its record's, or an empty placeholder."""
    record = item[1]
    return record.text if isinstance(record, Record) else ""
