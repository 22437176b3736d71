"""One ``lsllama tag`` job from start to end, whatever the engine: the files, the resume
check, the run header, the driver, and the sidecar's clean-up."""

from __future__ import annotations

import stat
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from rich.console import Console

from .. import __version__
from .compute import continue_segments
from .engine import Engine
from .errors import CommandError
from .files import RunFiles, describe_input, input_size, open_input, plan_files
from .lines import LineReader
from .report import Report, Stats
from .resume import Checkpoint, RunHeader, model_fingerprint, resume_point
from .run import ErrorLog, TagOptions, TagRun, skip_to_resume


@dataclass(frozen=True)
class JobSpec:
    """Everything the user asked for. ``engine_settings`` are the engine's options that
    change the output (device, compilation), recorded in the run header."""

    input: str
    model: str
    output: Path | None
    errors: Path | None = None
    options: TagOptions = TagOptions()
    resume: bool = False
    show: bool = False
    engine_settings: dict[str, Any] = field(default_factory=dict)


class TagJob:
    """Run a JobSpec with the engine ``load_engine`` returns (called once the files are
    checked, so a usage error never waits for a model to load)."""

    def __init__(self, spec: JobSpec, console: Console) -> None:
        self.spec = spec
        self.console = console
        self.stats = Stats()
        self.files: RunFiles | None = None
        self.report: Report | None = None

    def run(self, load_engine: Callable[[], Engine]) -> None:
        spec = self.spec
        with ExitStack() as stack:
            stream = stack.enter_context(open_input(spec.input))
            files = self.files = plan_files(stream, spec.output, spec.errors, spec.resume)
            header = self._header(files, describe_input(spec.input, stream))
            start = None
            if spec.resume and header is not None and spec.output is not None:
                start = resume_point(spec.output, files.errors, header, files.errors_regular)
            engine = load_engine()
            if header is not None:
                self._record_compute(header, engine, start)
            reader = LineReader(stream, spec.options.max_chars)
            if start is not None:
                skip_to_resume(reader, start)
                if start.counts:
                    self.stats = Stats.from_counts(start.counts)
            start = start or Checkpoint()
            if header is not None:
                header.write(start)
            sink = stack.enter_context(_open_at(spec.output, start.output_bytes, "--output"))
            errors = stack.enter_context(_open_at(files.errors, start.errors_bytes, "--errors"))
            self.report = Report(
                self.console, self.stats, input_size(stream), spec.show, files.errors
            )
            stack.enter_context(self.report)
            log = ErrorLog(errors, start.errors_bytes)
            TagRun(engine, spec.options, sink, log, self.report, header, start).run(reader)
        if self.stats.skipped == 0:
            _remove_if_empty(files.errors)

    def _record_compute(self, header: RunHeader, engine: Engine, start: Checkpoint | None) -> None:
        """Add the engine's compute facts to the header; warn if they changed since the
        lines before a resume (or stop: `continue_segments`)."""
        first_line = (start.line if start is not None else 0) + 1
        segments, warnings = continue_segments(
            header.compute, engine.compute_facts(), first_line, self.spec.output
        )
        header.compute = segments
        for warning in warnings:
            self.console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)

    def _header(self, files: RunFiles, source: dict[str, Any]) -> RunHeader | None:
        if files.header is None:
            return None
        spec = self.spec
        options = spec.options
        settings = {
            "lsllama": __version__,
            "model": spec.model,
            "model fingerprint": model_fingerprint(spec.model),
            "--text-field": options.text_field,
            "--max-chars": options.max_chars,
            "--batch-size": options.batch_size,
            "--errors": str(files.errors.resolve()),
            **spec.engine_settings,
        }
        return RunHeader(files.header, settings, source)


def _open_at(path: Path | None, size: int, option: str) -> AbstractContextManager[IO[bytes]]:
    """``path`` opened for writing from byte ``size`` (cut back to it), or standard output."""
    if path is None:
        return nullcontext(sys.stdout.buffer)
    try:
        if size == 0:
            return path.open("wb")
        file = path.open("r+b")
        file.truncate(size)
        file.seek(size)
        return file
    except OSError as err:
        raise CommandError(f"cannot write {option} {path}: {err.strerror or err}") from None


def _remove_if_empty(path: Path) -> None:
    try:
        status = path.stat()
    except OSError:
        return
    if stat.S_ISREG(status.st_mode) and status.st_size == 0:
        path.unlink()
