"""``lsllama tag``: stream JSONL records through a pipeline and add its entities and categories.

The command reads its input line by line and writes one output line per input record, in
order, so it works on files of any size and inside shell pipes. Lines it cannot tag are
skipped (or stop the run) and recorded in a sidecar file; the output and the sidecar
together say exactly how far a run got, which is what ``--resume`` relies on.
"""

from __future__ import annotations

import codecs
import itertools
import json
import multiprocessing
import os
import signal
import sys
import time
import warnings
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from types import FrameType
from typing import IO, Annotated, Any, NoReturn

import spacy
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text
from spacy.language import Language
from spacy.tokens import Doc, Span

EMPTY_LINE = "empty line"
# A JSON line may spend several bytes on one character (escapes, other fields); lines longer
# than this many bytes per --max-chars character are rejected without being parsed.
BYTES_PER_CHAR = 8
# Strings that documents add to the vocabulary are freed after this many documents, so
# memory does not grow with the size of the input (see Language.memory_zone).
DOCS_PER_MEMORY_ZONE = 10_000
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141
STDIO = Path("-")


class OnError(str, Enum):
    """What to do with an input line that cannot be tagged."""

    skip = "skip"
    fail = "fail"


class LineError(ValueError):
    """An input line that cannot be tagged; the message is the reason."""


class CommandError(Exception):
    """A failure of the whole run, reported as a one-line message with exit code 1."""


@dataclass(frozen=True)
class Line:
    """One line of input, without its line break."""

    number: int
    raw: bytes
    end: int  # input bytes consumed up to the end of this line
    truncated: bool  # longer than the byte limit: raw holds only its start


@dataclass
class Stats:
    """Counts for this run; ``read == written + skipped`` when it completes."""

    read: int = 0
    written: int = 0
    skipped: int = 0
    empty: int = 0
    words: int = 0
    labels: Counter[str] = field(default_factory=Counter)
    started: float = field(default_factory=time.perf_counter)
    position: int = 0  # input bytes up to the last line written
    failure: str | None = None

    @property
    def elapsed(self) -> float:
        return max(time.perf_counter() - self.started, 1e-9)


@dataclass(frozen=True)
class ResumePoint:
    """How much of the input an earlier run accounted for, from its output and sidecar."""

    line: int  # input lines already written or skipped
    output_size: int  # bytes of complete lines in the output
    errors_size: int  # bytes of sidecar entries for lines up to ``line``
    last_text: str | None  # text of the last output record, to check the input matches


def _file_or_dash(value: str) -> str:
    if value != "-" and not Path(value).is_file():
        raise typer.BadParameter(f"no such file: {value!r}.")
    return value


def tag(
    input_path: Annotated[
        str,
        typer.Argument(
            metavar="INPUT",
            callback=_file_or_dash,
            show_default=False,
            help="JSONL file to tag, one JSON object per line, or - for standard input.",
        ),
    ],
    model: Annotated[
        str,
        typer.Option(
            "--model",
            "-m",
            envvar="LSLLAMA_MODEL",
            show_default=False,
            help="Pipeline to run: a package name or a path, anything spacy.load accepts.",
        ),
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", dir_okay=False, help="JSONL file to write, or - for standard output."
        ),
    ] = STDIO,
    errors: Annotated[
        Path | None,
        typer.Option(
            "--errors",
            dir_okay=False,
            show_default=False,
            help="Sidecar JSONL file for skipped lines, replaced unless --resume. "
            "[default: OUTPUT.errors.jsonl, or lsllama-errors.jsonl for standard output]",
        ),
    ] = None,
    text_field: Annotated[
        str, typer.Option("--text-field", "-t", help="Field of each record holding its text.")
    ] = "text",
    batch_size: Annotated[
        int, typer.Option("--batch-size", "-b", min=1, help="Documents per nlp.pipe batch.")
    ] = 64,
    n_process: Annotated[
        int, typer.Option("--n-process", "-n", min=1, help="Processes for nlp.pipe.")
    ] = 1,
    gpu_id: Annotated[int, typer.Option("--gpu-id", "-g", help="GPU to use; -1 for CPU.")] = -1,
    on_error: Annotated[
        OnError,
        typer.Option(
            "--on-error",
            help="skip: report a bad line, record it in the sidecar and go on. "
            "fail: stop at the first bad line with exit code 1.",
        ),
    ] = OnError.skip,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Continue an interrupted run: skip the input lines already in OUTPUT "
            "and its sidecar, then append.",
        ),
    ] = False,
    max_chars: Annotated[
        int,
        typer.Option(
            "--max-chars", min=1, help="Reject records with a longer text; sets nlp.max_length."
        ),
    ] = 1_000_000,
    show: Annotated[
        bool, typer.Option("--show", help="Print each document with its entities to stderr.")
    ] = False,
    compile: Annotated[
        bool,
        typer.Option(
            "--compile",
            help="Run the encoder's layers through torch.compile: faster on long inputs, "
            "after a compilation of some seconds at the first batch (needs a C++ compiler).",
        ),
    ] = False,
) -> None:
    """Add the entities and categories a pipeline predicts to every record of a JSONL file.

    Each output line is its input record with `ents` added (start and end
    character offsets into the text, label, text, and score where the pipeline gives
    one) and `cats` where the pipeline sets doc.cats. Output order is input
    order. Progress and the summary go to stderr, so stdout stays clean for pipes.

    Lines that are not a JSON object with a string text field are bad lines; empty
    lines are skipped and never fatal. Skipped lines go to the sidecar file as
    {"line": N, "reason": ..., "raw": ...}.

    Exit codes: 0 done, 1 failed (model, --on-error fail, I/O), 2 usage error,
    130 interrupted, 141 output pipe closed.

    Example:

        lsllama tag docs.jsonl --model ./training/model-best --output tagged.jsonl
        cat docs.jsonl | lsllama tag - -m en_lsllama_ner | head -n 3
        lsllama tag docs.jsonl -m en_lsllama_ner -o tagged.jsonl --resume
    """
    console = Console(stderr=True, soft_wrap=True, highlight=False)
    if resume and output == STDIO:
        raise typer.BadParameter("--resume needs --output PATH.", param_hint="--resume")
    if output != STDIO and input_path != "-" and output.resolve() == Path(input_path).resolve():
        raise typer.BadParameter("the output would overwrite the input.", param_hint="--output")
    errors_path = errors or _default_errors_path(output)
    stats = Stats()
    report = Report(console, stats, _size(input_path), show=show, errors_path=errors_path)
    try:
        nlp = _load_pipeline(model, gpu_id, max_chars, compile)
        with ExitStack() as stack:
            lines = _read_lines(stack.enter_context(_open_input(input_path)), max_chars)
            append = resume and output.exists()
            if append:
                _resume(output, errors_path, lines, text_field)
            else:
                errors_path.unlink(missing_ok=True)
            sink = stack.enter_context(_open_output(output, append))
            stack.enter_context(report)
            tagger = Tagger(nlp, sink, report, stats, ErrorLog(errors_path), text_field, max_chars)
            tagger.run(lines, batch_size=batch_size, n_process=n_process, on_error=on_error)
    except KeyboardInterrupt:
        hint = f" to {output}; run again with --resume to continue" if output != STDIO else ""
        console.print(f"Interrupted: {stats.written:,} docs written{hint}.")
        _exit(EXIT_INTERRUPTED, forked=n_process > 1)
    except BrokenPipeError:
        _silence_stdout()
        _exit(EXIT_BROKEN_PIPE, forked=n_process > 1)
    except (OSError, CommandError) as err:
        _error(console, str(err))
        _exit(EXIT_FAILED, forked=n_process > 1)
    if stats.failure is not None:
        _error(console, f"{stats.failure} (stopped after {stats.written:,} docs; --on-error fail)")
        raise typer.Exit(EXIT_FAILED)
    report.summary()


class Tagger:
    """Turn input lines into output lines: parse, run the pipeline, serialize, account."""

    def __init__(
        self,
        nlp: Language,
        sink: IO[bytes],
        report: Report,
        stats: Stats,
        errors: ErrorLog,
        text_field: str,
        max_chars: int,
    ) -> None:
        self.nlp = nlp
        self.sink = sink
        self.report = report
        self.stats = stats
        self.errors = errors
        self.text_field = text_field
        self.max_chars = max_chars
        self.writes_ents = _pipeline_assigns(nlp, "doc.ents")
        self.writes_cats = _pipeline_assigns(nlp, "doc.cats")

    def run(
        self, lines: Iterable[Line], batch_size: int, n_process: int, on_error: OnError
    ) -> None:
        """Tag every record, freeing the strings of each DOCS_PER_MEMORY_ZONE documents."""
        records = self._records(lines, on_error)
        self.stats.started = time.perf_counter()
        try:
            with _interrupt_main_process_only():
                for zone in _chunks(records, DOCS_PER_MEMORY_ZONE):
                    with self.nlp.memory_zone():
                        self._tag(zone, batch_size, n_process)
        finally:
            self.errors.close()
            self.sink.flush()
        self.report.advance()

    def _tag(self, records: Iterable[tuple[str, Any]], batch_size: int, n_process: int) -> None:
        """Write one whole line per document, flushing once per batch."""
        docs = self.nlp.pipe(records, as_tuples=True, batch_size=batch_size, n_process=n_process)
        try:
            for doc, (number, record, end) in docs:
                self.sink.write(self._serialize(doc, record))
                self._count(number, doc, end)
                if self.stats.written % batch_size == 0:
                    self.sink.flush()
                    self.report.advance()
        except BaseException:
            _stop_workers()
            raise

    def _records(self, lines: Iterable[Line], on_error: OnError) -> Iterator[tuple[str, Any]]:
        """Yield (text, (line number, record, end offset)) for good lines; account for bad ones."""
        for line in lines:
            self.stats.read += 1
            try:
                record = _parse(line, self.text_field, self.max_chars)
            except LineError as err:
                reason = str(err)
                if on_error is OnError.fail and reason != EMPTY_LINE:
                    self.stats.failure = f"line {line.number}: {reason}"
                    return
                self.errors.add(line, reason)
                self.stats.skipped += 1
                self.stats.empty += reason == EMPTY_LINE
                self.report.skipped(line.number, reason)
                continue
            yield record[self.text_field], (line.number, record, line.end)

    def _serialize(self, doc: Doc, record: dict[str, Any]) -> bytes:
        if self.writes_ents or doc.ents:
            record["ents"] = _ents(doc)
        if self.writes_cats or doc.cats:
            record["cats"] = {label: float(score) for label, score in doc.cats.items()}
        try:
            return (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate from a \ud800-style escape
            return (json.dumps(record) + "\n").encode("ascii")

    def _count(self, number: int, doc: Doc, end: int) -> None:
        self.stats.written += 1
        self.stats.position = end
        self.stats.words += len(doc)
        self.stats.labels.update(ent.label_ for ent in doc.ents)
        self.report.show(number, doc)


class ErrorLog:
    """The sidecar of skipped lines, created on first use and flushed after every entry.

    Flushing each entry at once means a skipped line is on disk before any later line
    reaches the output, which keeps ``--resume`` exact.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file: IO[str] | None = None

    def add(self, line: Line, reason: str) -> None:
        """Record a skipped line; raw bytes that are not UTF-8 survive as \\udcXX escapes."""
        entry: dict[str, Any] = {
            "line": line.number,
            "reason": reason,
            "raw": line.raw.decode("utf-8", "surrogateescape"),
        }
        if line.truncated:
            entry["truncated"] = True
        if self.file is None:
            self.file = self.path.open("a", encoding="ascii")
        self.file.write(json.dumps(entry) + "\n")
        self.file.flush()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


class Report:
    """What the user sees, all on stderr: progress, --show, skipped lines and the summary."""

    def __init__(
        self, console: Console, stats: Stats, total: int | None, show: bool, errors_path: Path
    ) -> None:
        self.console = console
        self.stats = stats
        self.total = total
        self.show_docs = show
        self.errors_path = errors_path
        self.progress: Progress | None = None

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
        """Bring the progress bar up to the last document written."""
        if self.progress is not None:
            stats = self.stats
            self.progress.update(
                self.task,
                completed=stats.position,
                docs=stats.written,
                docs_per_s=stats.written / stats.elapsed,
                words_per_s=stats.words / stats.elapsed,
            )

    def skipped(self, number: int, reason: str) -> None:
        self.console.print(Text.assemble(("skipped", "yellow"), f" line {number}: {reason}"))

    def show(self, number: int, doc: Doc) -> None:
        if self.show_docs:
            self.console.print(_highlight(number, doc))

    def summary(self) -> None:
        """Print the totals: a table on a terminal, two plain lines otherwise."""
        stats = self.stats
        skipped = f"{stats.skipped:,} skipped ({stats.empty:,} empty)"
        if stats.skipped:
            skipped += f", see {self.errors_path}"
        docs_per_s = f"{stats.written / stats.elapsed:,.0f} docs/s"
        words_per_s = f"{stats.words / stats.elapsed:,.0f} words/s"
        entities = f"{sum(stats.labels.values()):,}"
        if self.console.is_terminal:
            table = Table(title="lsllama tag", show_header=False, title_justify="left")
            table.add_row("Lines read", f"{stats.read:,}")
            table.add_row("Docs written", f"{stats.written:,}")
            table.add_row("Lines skipped", skipped)
            table.add_row("Entities", entities)
            for label, count in stats.labels.most_common():
                table.add_row(f"  {label}", f"{count:,}")
            table.add_row("Throughput", f"{docs_per_s}, {words_per_s} in {stats.elapsed:.1f}s")
            self.console.print(table)
        else:
            labels = ", ".join(f"{label} {n:,}" for label, n in stats.labels.most_common())
            self.console.print(
                f"lsllama tag: {stats.read:,} lines read = {stats.written:,} docs written + "
                f"{skipped}; {docs_per_s}, {words_per_s} in {stats.elapsed:.1f}s"
            )
            self.console.print(f"entities: {entities} ({labels or 'none'})")
        dropped = stats.read - stats.written - stats.skipped
        if dropped:
            self.console.print(f"[red]warning:[/red] {dropped:,} lines read were not written.")


def _highlight(number: int, doc: Doc) -> Text:
    """The text of ``doc`` with its entities highlighted and labelled, then its categories."""
    text = Text.assemble((f"{number}: ", "dim"))
    start = 0
    for ent in doc.ents:
        text.append(doc.text[start : ent.start_char])
        text.append(ent.text, style="bold black on cyan")
        text.append(f" {ent.label_}", style="bold cyan")
        start = ent.end_char
    text.append(doc.text[start:])
    if doc.cats:
        text.append("  " + ", ".join(f"{k} {v:.2f}" for k, v in doc.cats.items()), style="dim")
    return text


def _load_pipeline(model: str, gpu_id: int, max_chars: int, compile: bool) -> Language:
    """Load ``model``, on GPU ``gpu_id`` if it is not -1, accepting texts up to ``max_chars``.

    With ``compile``, its encoders predict through torch.compile (`spacy_lsllama.compilation`).
    """
    if gpu_id >= 0:
        try:
            spacy.require_gpu(gpu_id)
        except ValueError as err:
            raise CommandError(f"cannot use GPU {gpu_id}: {err}") from None
    try:
        nlp = spacy.load(model)
    except (OSError, ValueError, ImportError) as err:
        raise CommandError(f"cannot load model {model!r}: {err}") from None
    if compile:
        from ..pipeline.compilation import compile_pipeline

        try:
            compile_pipeline(nlp)
        except ValueError as err:
            raise CommandError(f"--compile: {err}") from None
    nlp.max_length = max_chars
    return nlp


def _pipeline_assigns(nlp: Language, attr: str) -> bool:
    return any(attr in nlp.get_pipe_meta(name).assigns for name in nlp.pipe_names)


def _read_lines(stream: IO[bytes], max_chars: int) -> Iterator[Line]:
    """Read lines lazily, holding at most BYTES_PER_CHAR * ``max_chars`` bytes of one line."""
    max_bytes = max_chars * BYTES_PER_CHAR
    end = 0
    for number in itertools.count(1):
        raw = stream.readline(max_bytes + 1)
        if not raw:
            return
        end += len(raw)
        truncated = len(raw) > max_bytes and not raw.endswith(b"\n")
        if truncated:
            end += _discard_rest_of_line(stream)
        if number == 1:
            raw = raw.removeprefix(codecs.BOM_UTF8)
        yield Line(number, raw.removesuffix(b"\n").removesuffix(b"\r"), end, truncated)


def _discard_rest_of_line(stream: IO[bytes]) -> int:
    size = 0
    while chunk := stream.readline(1 << 20):
        size += len(chunk)
        if chunk.endswith(b"\n"):
            break
    return size


def _parse(line: Line, text_field: str, max_chars: int) -> dict[str, Any]:
    """The record on ``line``, or a LineError saying why it cannot be tagged."""
    if line.truncated:
        raise LineError(f"line is longer than {max_chars * BYTES_PER_CHAR:,} bytes")
    if not line.raw.strip():
        raise LineError(EMPTY_LINE)
    try:
        text = line.raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise LineError(f"invalid UTF-8 at byte {err.start + 1}") from None
    try:
        record = json.loads(text)
    except json.JSONDecodeError as err:
        raise LineError(f"invalid JSON: {err.msg} (column {err.colno})") from None
    if not isinstance(record, dict):
        raise LineError(f"expected a JSON object, got {_json_type(record)}")
    if text_field not in record:
        raise LineError(f"field {text_field!r} is missing")
    value = record[text_field]
    if not isinstance(value, str):
        raise LineError(f"field {text_field!r} must be a string, got {_json_type(value)}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        raise LineError(
            f"field {text_field!r} has an unpaired surrogate at character {err.start}"
        ) from None
    if len(value) > max_chars:
        raise LineError(
            f"field {text_field!r} has {len(value):,} characters, "
            f"more than --max-chars {max_chars:,}"
        )
    return record


def _json_type(value: object) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


def _ents(doc: Doc) -> list[dict[str, Any]]:
    """Entities with character offsets, and a score from ``span._.score`` or ``doc.spans``."""
    span_scores = _span_scores(doc)
    has_score = Span.has_extension("score")
    ents = []
    for ent in doc.ents:
        item: dict[str, Any] = {
            "start": ent.start_char,
            "end": ent.end_char,
            "label": ent.label_,
            "text": ent.text,
        }
        score = ent._.score if has_score else None
        if score is None:
            score = span_scores.get((ent.start_char, ent.end_char, ent.label_))
        if score is not None:
            item["score"] = float(score)
        ents.append(item)
    return ents


def _span_scores(doc: Doc) -> dict[tuple[int, int, str], float]:
    """Scores of span groups that carry them in ``attrs["scores"]``, as spancat does."""
    scores = {}
    for group in doc.spans.values():
        group_scores = group.attrs.get("scores")
        if group_scores is not None:
            for span, score in zip(group, group_scores, strict=False):
                scores[(span.start_char, span.end_char, span.label_)] = float(score)
    return scores


@contextmanager
def _interrupt_main_process_only() -> Iterator[None]:
    """Let Ctrl-C stop this process but not the nlp.pipe workers forked from it.

    The workers inherit this handler and ignore the signal; the main process terminates
    them before nlp.pipe waits for them to finish.
    """
    main_process = os.getpid()

    def interrupt(signum: int, frame: FrameType | None) -> None:
        if os.getpid() == main_process:
            _stop_workers()
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _stop_workers() -> None:
    """Terminate nlp.pipe's workers, which would otherwise block sending to this process."""
    workers = multiprocessing.active_children()
    if workers:
        warnings.filterwarnings("ignore", message=r"\[W127\]")  # workers did not finish
    for worker in workers:
        worker.terminate()


def _chunks(items: Iterator[Any], size: int) -> Iterator[Iterator[Any]]:
    """Split ``items`` lazily into runs of ``size``; consume each before the next."""
    for first in items:
        yield itertools.chain([first], itertools.islice(items, size - 1))


def _resume(output: Path, errors_path: Path, lines: Iterator[Line], text_field: str) -> None:
    """Skip the input lines an earlier run accounted for and cut off what it left half done."""
    point = _resume_point(output, errors_path, text_field)
    done = deque(itertools.islice(lines, point.line), maxlen=1)
    if point.last_text is not None and (not done or _text(done[0], text_field) != point.last_text):
        raise CommandError(
            f"cannot resume: line {point.line} of the input does not match the last record "
            f"of {output}; is this the same input?"
        )
    os.truncate(output, point.output_size)
    if errors_path.exists():
        os.truncate(errors_path, point.errors_size)


def _resume_point(output: Path, errors_path: Path, text_field: str) -> ResumePoint:
    """Find the input line of the last output record, counting the skipped lines before it.

    The output holds the first K good lines; the K-th good line is line L = K + the number
    of sidecar entries for lines up to L. Entries after L are dropped and redone.
    """
    docs, output_size, last = _complete_lines(output)
    if docs == 0:
        return ResumePoint(0, 0, 0, None)
    line, errors_size = docs, 0
    for number, entry_end in _sidecar_entries(errors_path):
        if number > line:
            break
        line += 1
        errors_size = entry_end
    return ResumePoint(line, output_size, errors_size, json.loads(last).get(text_field))


def _complete_lines(path: Path) -> tuple[int, int, bytes]:
    """Number and total size of the complete lines in ``path``, and the last of them."""
    count = size = 0
    last = b""
    with path.open("rb") as file:
        for raw in file:
            if not raw.endswith(b"\n"):
                break
            count += 1
            size += len(raw)
            last = raw
    return count, size, last


def _sidecar_entries(path: Path) -> Iterator[tuple[int, int]]:
    """(line number, end offset) of each complete sidecar entry, in order."""
    if not path.exists():
        return
    end = 0
    with path.open("rb") as file:
        for raw in file:
            if not raw.endswith(b"\n"):
                return
            end += len(raw)
            yield json.loads(raw)["line"], end


def _text(line: Line, text_field: str) -> object:
    try:
        return json.loads(line.raw).get(text_field)
    except (ValueError, AttributeError):
        return None


def _default_errors_path(output: Path) -> Path:
    if output == STDIO:
        return Path("lsllama-errors.jsonl")
    return output.with_name(output.name + ".errors.jsonl")


def _size(path: str) -> int | None:
    return None if path == "-" else Path(path).stat().st_size


def _open_input(path: str) -> AbstractContextManager[IO[bytes]]:
    return nullcontext(sys.stdin.buffer) if path == "-" else Path(path).open("rb")


def _open_output(path: Path, append: bool) -> AbstractContextManager[IO[bytes]]:
    if path == STDIO:
        return nullcontext(sys.stdout.buffer)
    return path.open("ab" if append else "wb")


def _silence_stdout() -> None:
    """Point stdout at the null device so the interpreter's last flush cannot fail again."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except OSError:
        pass


def _exit(code: int, forked: bool) -> NoReturn:
    """Exit quietly with ``code``, skipping the exit handlers if nlp.pipe forked workers.

    Those handlers wait for the workers' queues to drain, which never happens once the
    workers are stopped. Everything of ours is flushed and closed by now.
    """
    if forked:
        sys.stderr.flush()
        os._exit(code)
    raise typer.Exit(code)


def _error(console: Console, message: str) -> None:
    console.print(Text.assemble(("error:", "bold red"), f" {message}"))
