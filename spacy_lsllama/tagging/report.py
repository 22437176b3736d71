"""What the user sees, all on stderr: the progress bar, --show, skipped lines and the summary.

Input text is shown with its control characters escaped, so a record cannot move the cursor,
clear the screen or retitle the terminal (``\\x1b[2J`` is printed as those four characters).
"""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

# C0 and C1 controls, DEL, and the bidirectional overrides and isolates ("Trojan source").
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def escape_controls(text: str) -> str:
    """``text`` with every character that could drive the terminal written as an escape."""
    return _UNSAFE.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def highlight(text: str, annotations: dict[str, Any]) -> Text:
    """``text`` with its entities highlighted and labelled, then its span groups and categories."""
    shown = Text()
    start = 0
    for ent in annotations.get("ents", ()):
        shown.append(escape_controls(text[start : ent["start"]]))
        shown.append(escape_controls(ent["text"]), style="bold black on cyan")
        shown.append(f" {escape_controls(ent['label'])}", style="bold cyan")
        start = ent["end"]
    shown.append(escape_controls(text[start:]))
    for key, spans in annotations.get("spans", {}).items():
        listed = "; ".join(f"{escape_controls(s['text'])} {s['label']}" for s in spans)
        shown.append(f"  [{key}] {listed or '-'}", style="cyan")
    if annotations.get("cats"):
        cats = annotations["cats"].items()
        shown.append("  " + ", ".join(f"{k} {v:.2f}" for k, v in cats if v is not None), "dim")
    return shown


class StderrConsole(Console):
    """A console on stderr that reports a closed pipe as BrokenPipeError (Rich exits 1)."""

    def __init__(self) -> None:
        super().__init__(stderr=True, soft_wrap=True, highlight=False)

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError


@dataclass
class Stats:
    """Counts for the whole output (a resumed run starts from the counts it resumes)."""

    read: int = 0
    written: int = 0
    skipped: int = 0
    empty: int = 0
    words: int = 0
    labels: Counter[str] = field(default_factory=Counter)
    resumed_after: int = 0  # input lines accounted for before this run
    written_now: int = 0  # documents written by this run, for its throughput
    words_now: int = 0
    started: float = field(default_factory=time.perf_counter)
    position: int = 0  # input bytes up to the last line accounted for
    failure: str | None = None

    @property
    def elapsed(self) -> float:
        return max(time.perf_counter() - self.started, 1e-9)

    def counts(self) -> dict[str, object]:
        """The counts a checkpoint keeps, so a resumed run can report the whole output."""
        keys = ("read", "written", "skipped", "empty", "words")
        return {**{key: getattr(self, key) for key in keys}, "labels": dict(self.labels)}

    @classmethod
    def from_counts(cls, counts: dict) -> Stats:
        stats = cls()
        stats.read, stats.written = int(counts["read"]), int(counts["written"])
        stats.skipped, stats.empty = int(counts["skipped"]), int(counts["empty"])
        stats.words = int(counts["words"])
        stats.labels = Counter({str(k): int(v) for k, v in counts["labels"].items()})
        stats.resumed_after = stats.read
        return stats


class Report:
    """Progress, --show, skipped lines and the summary, on the console given (stderr)."""

    def __init__(
        self, console: Console, stats: Stats, total: int | None, show: bool, errors_path: Path
    ) -> None:
        self.console = console
        self.stats = stats
        self.total = total
        self.show_docs = show
        self.errors_path = errors_path
        self.progress: Progress | None = None
        self.task: TaskID | None = None
        self.noted: set[str] = set()

    def __enter__(self) -> Report:
        if self.console.is_terminal:
            self.progress = Progress(
                TextColumn("[progress.description]{task.description}"),
                BarColumn(),
                TaskProgressColumn(),
                TextColumn("{task.fields[docs]:,} docs"),
                TextColumn("{task.fields[docs_per_s]:,.0f} docs/s"),
                TextColumn("{task.fields[words_per_s]:,.0f} words/s"),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            self.task = self.progress.add_task(
                "Tagging", total=self.total, docs=0, docs_per_s=0.0, words_per_s=0.0
            )
            self.progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def advance(self) -> None:
        """Bring the progress bar up to the last line accounted for."""
        if self.progress is not None and self.task is not None:
            stats = self.stats
            self.progress.update(
                self.task,
                completed=stats.position,
                docs=stats.written,
                docs_per_s=stats.written_now / stats.elapsed,
                words_per_s=stats.words_now / stats.elapsed,
            )

    def skipped(self, number: int, reason: str) -> None:
        message = f" line {number}: {escape_controls(reason)}"
        self.console.print(Text.assemble(("skipped", "yellow"), message))

    def replaced(self, number: int, keys: tuple[str, ...]) -> None:
        """Say once per field that input records already had a field the tool writes."""
        for key in keys:
            if key not in self.noted:
                self.noted.add(key)
                self.console.print(
                    f"note: line {number} already has {key!r}; the pipeline's {key} replace "
                    "it in the output (this note is shown once)."
                )

    def show(self, number: int, text: str, annotations: dict[str, Any]) -> None:
        if self.show_docs:
            self.console.print(Text.assemble((f"{number}: ", "dim"), highlight(text, annotations)))

    def summary(self) -> None:
        """Print the totals: a table on a terminal, two plain lines otherwise."""
        stats = self.stats
        skipped = f"{stats.skipped:,} skipped ({stats.empty:,} empty)"
        if stats.skipped:
            skipped += f", see {self.errors_path}"
        speed = (
            f"{stats.written_now / stats.elapsed:,.0f} docs/s, "
            f"{stats.words_now / stats.elapsed:,.0f} words/s in {stats.elapsed:.1f}s"
        )
        if stats.resumed_after:
            speed += f" (this run, resumed after line {stats.resumed_after:,})"
        entities = f"{sum(stats.labels.values()):,}"
        if self.console.is_terminal:
            table = Table(title="lsllama tag", show_header=False, title_justify="left")
            table.add_row("Lines read", f"{stats.read:,}")
            table.add_row("Docs written", f"{stats.written:,}")
            table.add_row("Lines skipped", skipped)
            table.add_row("Entities", entities)
            for label, count in stats.labels.most_common():
                table.add_row(f"  {label}", f"{count:,}")
            table.add_row("Throughput", speed)
            self.console.print(table)
        else:
            labels = ", ".join(f"{label} {n:,}" for label, n in stats.labels.most_common())
            self.console.print(
                f"lsllama tag: {stats.read:,} lines read = {stats.written:,} docs written + "
                f"{skipped}; {speed}"
            )
            self.console.print(f"entities: {entities} ({labels or 'none'})")
        dropped = stats.read - stats.written - stats.skipped
        if dropped:
            self.console.print(f"[red]warning:[/red] {dropped:,} lines read were not written.")
