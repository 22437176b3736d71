"""``lsllama tag``: the command line of `spacy_lsllama.tagging`, and its exit codes.

Nothing heavy is imported until the command runs, so ``lsllama --help`` stays fast.
"""

from __future__ import annotations

import os
import sys
from contextlib import ExitStack
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from ..tagging.errors import CommandError, UsageError
from .defaults import DEFAULT_PIPELINE, MODEL_ENV, chosen_pipeline
from .interrupt import EXIT_INTERRUPTED, START_UP_MESSAGE, start_up_done

if TYPE_CHECKING:
    from rich.console import Console

    from ..tagging.job import TagJob
    from ..tagging.local import LocalEngine
    from ..tagging.ray_engine import RaySettings

EXIT_FAILED = 1
EXIT_BROKEN_PIPE = 141


class EngineName(str, Enum):
    """Where the pipeline runs."""

    local = "local"
    ray = "ray"


class OnError(str, Enum):
    """What to do with an input line that cannot be tagged."""

    skip = "skip"
    fail = "fail"


def tag(
    input_path: Annotated[
        str,
        typer.Argument(
            metavar="INPUT",
            show_default=False,
            help="JSONL file to tag, one JSON object per line (a FIFO or <(command) too), "
            "or - for standard input.",
        ),
    ],
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            envvar=MODEL_ENV,
            show_default=False,
            help="Pipeline to run: a package name or a path, anything spacy.load accepts. "
            f"Default: the shipped pipeline {DEFAULT_PIPELINE}.",
        ),
    ] = None,
    output: Annotated[
        str,
        typer.Option("--output", "-o", help="JSONL file to write, or - for standard output."),
    ] = "-",
    errors: Annotated[
        Path | None,
        typer.Option(
            "--errors",
            show_default=False,
            help="Sidecar JSONL file for skipped lines, replaced unless --resume. "
            "[default: OUTPUT.errors.jsonl, or lsllama-errors.jsonl when OUTPUT is not a file]",
        ),
    ] = None,
    text_field: Annotated[
        str, typer.Option("--text-field", "-t", help="Field of each record holding its text.")
    ] = "text",
    batch_size: Annotated[
        int,
        typer.Option(
            "--batch-size",
            "-b",
            min=1,
            help="Lines per nlp.pipe batch; batches start at fixed line numbers.",
        ),
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
            is_flag=True,
            metavar="",
            help="Continue an interrupted run of the same input, model and options "
            "(checked against OUTPUT.run.json), appending to OUTPUT and its sidecar.",
        ),
    ] = False,
    max_chars: Annotated[
        int,
        typer.Option(
            "--max-chars", min=1, help="Reject records with a longer text; sets nlp.max_length."
        ),
    ] = 1_000_000,
    show: Annotated[
        bool,
        typer.Option(
            "--show",
            is_flag=True,
            metavar="",
            help="Print each document with its entities to stderr.",
        ),
    ] = False,
    compile: Annotated[
        bool,
        typer.Option(
            "--compile",
            is_flag=True,
            metavar="",
            help="Run the encoder's layers through torch.compile: faster on long inputs, "
            "after a compilation of some seconds at the first batch (needs a C++ compiler).",
        ),
    ] = False,
    engine: Annotated[
        EngineName,
        typer.Option(
            "--engine",
            help="local: spaCy in this process (--n-process, --gpu-id). ray: a pool of Ray "
            'actors (pip install "spacy-lsllama[ray]"); same output. See docs/scaling.md.',
        ),
    ] = EngineName.local,
    address: Annotated[
        str | None,
        typer.Option(
            "--address",
            show_default=False,
            help="Ray cluster to join (e.g. ray://head:10001 or auto) [default: start a "
            "local cluster and stop it at the end].",
        ),
    ] = None,
    actors: Annotated[
        int | None,
        typer.Option("--actors", min=1, show_default=False, help="Ray actors [default: 1]."),
    ] = None,
    gpus_per_actor: Annotated[
        float | None,
        typer.Option(
            "--gpus-per-actor",
            min=0,
            show_default=False,
            help="GPUs per Ray actor; each actor runs on its GPU as device 0 [default: 0].",
        ),
    ] = None,
    cpus_per_actor: Annotated[
        float | None,
        typer.Option(
            "--cpus-per-actor", min=0, show_default=False, help="CPUs per Ray actor [default: 1]."
        ),
    ] = None,
) -> None:
    """Add the entities and categories a pipeline predicts to every record of a JSONL file.

    Each output line is its input record, every field kept exactly as written, with `ents`
    added (start and end character offsets into the text, label, text, and score where
    the pipeline gives one), `spans` for span groups and `cats` where the pipeline sets
    doc.cats. Output order is input order. Progress and the summary go to stderr, so
    stdout stays clean for pipes.

    Lines that are not a standard JSON object with a string text field are bad lines;
    empty lines are skipped and never fatal. Skipped lines go to the sidecar file as
    {"line": N, "reason": ..., "raw": ...}. See docs/tagging.md for every rule.

    Exit codes: 0 done, 1 failed (model, --on-error fail, I/O, resume refused), 2 usage
    error, 130 interrupted, 141 output or error pipe closed.

    Without --model (or $LSLLAMA_MODEL) the shipped pipeline en_lsllama_ner runs.

    Example:

        lsllama tag docs.jsonl --output tagged.jsonl
        lsllama tag docs.jsonl --model ./training/model-best --output tagged.jsonl
        cat docs.jsonl | lsllama tag - | head -n 3
        lsllama tag docs.jsonl -m en_lsllama_ner -o tagged.jsonl --resume
        lsllama tag docs.jsonl -m ./model -o tagged.jsonl --engine ray --actors 2
    """
    from ..tagging.report import StderrConsole

    model = chosen_pipeline(model)
    console = StderrConsole()
    job: TagJob | None = None
    try:
        from ..tagging.files import check_input
        from ..tagging.job import JobSpec, TagJob
        from ..tagging.run import TagOptions

        ray_options = {
            "--address": address,
            "--actors": actors,
            "--gpus-per-actor": gpus_per_actor,
            "--cpus-per-actor": cpus_per_actor,
        }
        ray = _ray_settings(engine, ray_options, n_process, gpu_id)
        device = f"gpu {gpu_id}" if gpu_id >= 0 else "cpu"
        if ray is not None and ray.gpus_per_actor > 0:
            device = "gpu 0"  # each actor's own GPU
        spec = JobSpec(
            input=check_input(input_path),
            model=model,
            output=None if output == "-" else Path(output),
            errors=errors,
            options=TagOptions(text_field, batch_size, max_chars, on_error is OnError.fail),
            resume=resume,
            show=show,
            engine_settings={"--compile": compile, "device": device},
        )
        job = TagJob(spec, console)
        if ray is None:
            job.run(lambda: _local_engine(model, gpu_id, max_chars, compile, n_process))
        else:
            _run_on_ray(job, ray, model, max_chars, compile)
    except KeyboardInterrupt:
        _interrupted(console, job, n_process > 1)
    except BrokenPipeError:
        _exit(EXIT_BROKEN_PIPE, forked=n_process > 1)
    except UsageError as err:
        raise typer.BadParameter(str(err), param_hint=err.option) from None
    except (OSError, CommandError) as err:
        _error(console, str(err))
        _exit(EXIT_FAILED, forked=n_process > 1)
    stats = job.stats
    if stats.failure is not None:
        _error(console, f"{stats.failure} (stopped after {stats.written:,} docs; --on-error fail)")
        raise typer.Exit(EXIT_FAILED)
    if job.report is not None:
        try:
            job.report.summary()
        except BrokenPipeError:
            _exit(EXIT_BROKEN_PIPE, forked=False)


def _local_engine(
    model: str, gpu_id: int, max_chars: int, compile: bool, n_process: int
) -> LocalEngine:
    """The local engine with its pipeline loaded; from here on Ctrl-C stops the run cleanly."""
    from ..tagging.local import LocalEngine, fork_safe_threads, load_pipeline

    if n_process == 1:
        engine = LocalEngine(load_pipeline(model, gpu_id, max_chars, compile))
    else:
        threads = fork_safe_threads(n_process)  # before loading: loading runs torch
        nlp = load_pipeline(model, gpu_id, max_chars, compile)
        engine = LocalEngine(nlp, n_process, worker_threads=threads)
    start_up_done()
    return engine


def _ray_settings(
    engine: EngineName, options: dict[str, float | str | None], n_process: int, gpu_id: int
) -> RaySettings | None:
    """The Ray engine's settings, or None for the local engine; refuse options of the other."""
    if engine is EngineName.local:
        for name, value in options.items():
            if value is not None:
                raise UsageError(f"{name} is an option of --engine ray", name)
        return None
    if n_process != 1:
        raise UsageError("--engine ray runs --actors, not processes", "--n-process")
    if gpu_id != -1:
        raise UsageError("--engine ray gives GPUs with --gpus-per-actor", "--gpu-id")
    from ..tagging.ray_engine import RaySettings, import_ray

    import_ray()
    given = {key: value for key, value in options.items() if value is not None}
    return RaySettings(
        address=given.get("--address"),  # type: ignore[arg-type]
        actors=int(given.get("--actors", 1)),
        gpus_per_actor=float(given.get("--gpus-per-actor", 0.0)),
        cpus_per_actor=float(given.get("--cpus-per-actor", 1.0)),
    )


def _run_on_ray(
    job: TagJob, settings: RaySettings, model: str, max_chars: int, compile: bool
) -> None:
    """Run the job with a Ray engine that lives (with its actors) as long as the job.

    Start-up ends before Ray starts: Ray's processes are stopped by its exit handlers.
    """
    from ..tagging.ray_engine import RayEngine

    start_up_done()
    with ExitStack() as stack:
        job.run(lambda: stack.enter_context(RayEngine(settings, model, max_chars, compile)))


def _interrupted(console: Console, job: TagJob | None, forked: bool) -> NoReturn:
    """One line saying how far the run got, then exit 130."""
    if job is None or job.report is None:
        message = START_UP_MESSAGE
    else:
        output = job.spec.output
        hint = f" to {output}; run again with --resume to continue" if output else ""
        message = f"Interrupted: {job.stats.written:,} docs written{hint}."
    _say(console, message)
    _exit(EXIT_INTERRUPTED, forked=forked)


def _error(console: Console, message: str) -> None:
    from rich.text import Text

    _say(console, Text.assemble(("error:", "bold red"), f" {message}"))


def _say(console: Console, message: object) -> None:
    """Print to stderr; if stderr is a closed pipe, exit 141 as for stdout."""
    try:
        console.print(message)
    except BrokenPipeError:
        _exit(EXIT_BROKEN_PIPE, forked=False)


def _exit(code: int, forked: bool) -> NoReturn:
    """Exit quietly with ``code``, skipping the exit handlers if nlp.pipe forked workers.

    Those handlers wait for the workers' queues to drain, which never happens once the
    workers are stopped. Everything of ours is flushed and closed by now. After a closed
    pipe, stdout and stderr point at the null device so the last flush cannot fail again.
    """
    if code == EXIT_BROKEN_PIPE:
        _silence(sys.stdout)
        _silence(sys.stderr)
    if forked:
        try:
            sys.stderr.flush()
        except OSError:
            pass
        os._exit(code)
    raise typer.Exit(code)


def _silence(stream: object) -> None:
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())  # type: ignore[attr-defined]
    except (OSError, ValueError, AttributeError):
        pass
