"""The driver of ``lsllama tag``, shared by every engine: lines in, output lines out, in order.

It reads and checks each line, hands all of them to the engine, and accounts for each
outcome in input order: a tagged record goes to the output, a bad line to the sidecar.
Checkpoints are taken at batch boundaries only and written (after both files are flushed)
at most every CHECKPOINT_SECONDS and when the run stops for any reason. A resumed run
starts at such a boundary, so every batch, including the one that was cut short, is tagged
as in an uninterrupted run: the output is byte-identical.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import IO, Any

from .engine import Engine, Item, Outcome
from .errors import CommandError
from .lines import EMPTY_LINE, Line, LineError, LineReader, parse_line
from .records import Skipped, Tagged
from .report import Report, Stats
from .resume import Checkpoint, RunHeader

CHECKPOINT_SECONDS = 1.0


@dataclass(frozen=True)
class TagOptions:
    """The options that decide what a run writes (all of them are in the run header)."""

    text_field: str = "text"
    batch_size: int = 64
    max_chars: int = 1_000_000
    fail_on_error: bool = False


class ErrorLog:
    """The sidecar of skipped lines: ``{"line": N, "reason": ..., "raw": ...}`` per line."""

    def __init__(self, file: IO[bytes], size: int) -> None:
        self.file = file
        self.size = size

    def add(self, line: Line, reason: str) -> None:
        """Record a skipped line; raw bytes that are not UTF-8 survive as \\udcXX escapes."""
        entry: dict[str, Any] = {
            "line": line.number,
            "reason": reason,
            "raw": line.raw.decode("utf-8", "surrogateescape"),
        }
        if line.truncated:
            entry["truncated"] = True
        data = (json.dumps(entry) + "\n").encode("ascii")
        _write(self.file, data, "--errors")
        self.size += len(data)


class TagRun:
    """One run over one input: the driver loop, its accounting and its checkpoints."""

    def __init__(
        self,
        engine: Engine,
        options: TagOptions,
        sink: IO[bytes],
        errors: ErrorLog,
        report: Report,
        header: RunHeader | None,
        start: Checkpoint | None = None,
    ) -> None:
        self.engine = engine
        self.options = options
        self.sink = sink
        self.errors = errors
        self.report = report
        self.stats: Stats = report.stats
        self.header = header
        self.start = start or Checkpoint()
        self.output_bytes = self.start.output_bytes
        self.boundary = self.start
        self.reader: LineReader | None = None
        self.last_checkpoint = time.perf_counter()

    def run(self, reader: LineReader) -> None:
        """Tag everything after the start; on any exit, flush and checkpoint what is done."""
        self.reader = reader
        lines = iter(reader)
        self.stats.started = time.perf_counter()
        complete = False
        try:
            for outcome in self.engine.run(self._items(lines), self.options.batch_size):
                self._account(outcome)
            complete = self.stats.failure is None
        finally:
            self._checkpoint(complete=complete, force=True)
        self.report.advance()

    def _items(self, lines: Iterator[Line]) -> Iterator[Item]:
        """Parse each line; with --on-error fail, stop before the first bad one."""
        options = self.options
        for line in lines:
            try:
                yield line, parse_line(line, options.text_field, options.max_chars)
            except LineError as err:
                if options.fail_on_error and str(err) != EMPTY_LINE:
                    self.stats.failure = f"line {line.number}: {err}"
                    return
                yield line, err

    def _account(self, outcome: Outcome) -> None:
        number = outcome.number if isinstance(outcome, Tagged) else outcome.line.number
        stats = self.stats
        stats.read += 1
        if isinstance(outcome, Tagged):
            _write(self.sink, outcome.line, "--output")
            self.output_bytes += len(outcome.line)
            stats.written += 1
            stats.written_now += 1
            stats.words += outcome.words
            stats.words_now += outcome.words
            stats.labels.update(outcome.labels)
            if outcome.replaced:
                self.report.replaced(number, outcome.replaced)
            self.report.show(number, outcome.text, outcome.annotations)
        else:
            self._skip(outcome)
        if number % self.options.batch_size == 0 and self.reader is not None:
            input_bytes, input_sha256 = self.reader.mark(number)
            self.boundary = Checkpoint(
                number,
                input_bytes,
                input_sha256,
                self.output_bytes,
                self.errors.size,
                stats.counts(),
            )
            self._checkpoint(complete=False, force=False)
            stats.position = self.reader.consumed
            self.report.advance()

    def _skip(self, skipped: Skipped) -> None:
        self.errors.add(skipped.line, skipped.reason)
        self.stats.skipped += 1
        self.stats.empty += skipped.reason == EMPTY_LINE
        self.report.skipped(skipped.line.number, skipped.reason)

    def _checkpoint(self, complete: bool, force: bool) -> None:
        """Flush both files, then record how far they go (only if the flushes succeeded)."""
        now = time.perf_counter()
        if not force and now - self.last_checkpoint < CHECKPOINT_SECONDS:
            self.sink.flush()
            return
        for file, option in ((self.sink, "--output"), (self.errors.file, "--errors")):
            try:
                file.flush()
            except BrokenPipeError:
                raise
            except OSError as err:
                raise CommandError(f"cannot write {option}: {err.strerror or err}") from None
        self.last_checkpoint = now
        if self.header is not None:
            self.header.write(replace(self.boundary, complete=complete))


def _write(file: IO[bytes], data: bytes, option: str) -> None:
    """Write ``data``; a failure (disk full...) names the file, a closed pipe stays itself."""
    try:
        file.write(data)
    except BrokenPipeError:
        raise
    except OSError as err:
        name = getattr(file, "name", option)
        raise CommandError(f"cannot write {option} {name}: {err.strerror or err}") from None


def skip_to_resume(reader: LineReader, start: Checkpoint) -> None:
    """Read past the lines a run accounted for, checking they are the bytes it read."""
    if start.line == 0:
        return
    for line in reader:
        if line.number == start.line:
            break
    else:
        raise CommandError(
            f"cannot resume: the input has fewer lines than the {start.line:,} the run "
            "had accounted for; is this the same input?"
        )
    if reader.mark(start.line) != (start.input_bytes, start.input_sha256):
        raise CommandError(
            f"cannot resume: the first {start.line:,} lines of the input differ from those the "
            "run read (their size or SHA-256 does not match); is this the same input?"
        )
