"""The files of a run: the input, the output, the sidecar and the run header.

Files are compared by identity (device and inode), not by name, so a hard link, a symbolic
link or standard input redirected from the output are all recognised as the same file:
nothing the tool writes may be a file it reads. Only regular files can collide; streams
(pipes, FIFOs, ``/dev/null``, terminals) are read or written as streams.
"""

from __future__ import annotations

import os
import stat
import sys
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from .errors import UsageError
from .resume import header_path

STDIO = "-"
STDOUT_ERRORS = Path("lsllama-errors.jsonl")


@dataclass(frozen=True)
class RunFiles:
    """Where a run reads and writes. ``output`` None is standard output; ``header`` None
    means the output is not a regular file, so it has no header and cannot be resumed."""

    output: Path | None
    errors: Path
    header: Path | None
    errors_regular: bool


def check_input(name: str) -> str:
    """``name`` if it can be opened for reading as a stream, else a usage error naming why."""
    if name == STDIO:
        return name
    path = Path(name)
    if path.is_dir():
        raise UsageError(f"{name!r} is a directory, not a file.", "INPUT")
    if not path.exists():
        raise UsageError(f"no such file: {name!r}.", "INPUT")
    return name


def open_input(name: str) -> AbstractContextManager[IO[bytes]]:
    """The input as a binary stream: a file, FIFO, ``/dev/stdin`` or ``<(process)``."""
    if name == STDIO:
        return nullcontext(sys.stdin.buffer)
    try:
        return open(name, "rb")
    except OSError as err:
        raise UsageError(f"cannot read {name!r}: {err.strerror or err}.", "INPUT") from None


def input_size(stream: IO[bytes]) -> int | None:
    """The input's size for the progress bar, when it is a regular file."""
    status = _fstat(stream)
    return status.st_size if status is not None and stat.S_ISREG(status.st_mode) else None


def describe_input(name: str, stream: IO[bytes]) -> dict[str, object]:
    """The input's name, and device and inode when it is a regular file, for the header."""
    status = _fstat(stream)
    identity = _identity(status) if status is not None else None
    if identity is None:
        return {"name": name}
    return {"name": name, "device": identity[0], "inode": identity[1]}


def _fstat(stream: IO[bytes]) -> os.stat_result | None:
    try:
        return os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):  # e.g. a test's in-memory stream
        return None


def plan_files(
    stream: IO[bytes], output: Path | None, errors: Path | None, resume: bool
) -> RunFiles:
    """Decide the sidecar and header paths and refuse any file that is also read.

    The default sidecar is ``OUTPUT.errors.jsonl`` beside a regular output file, else
    ``lsllama-errors.jsonl`` in the working directory.
    """
    regular_output = output is not None and _regular_or_new(output)
    if output is not None and output.exists() and output.is_dir():
        raise UsageError(f"{output} is a directory.", "--output")
    if errors is not None and errors.is_dir():
        raise UsageError(f"{errors} is a directory.", "--errors")
    if resume and not regular_output:
        raise UsageError("--resume needs --output naming a regular file.", "--resume")
    header = None
    if output is not None and regular_output:
        errors = errors or output.with_name(output.name + ".errors.jsonl")
        header = header_path(output)
    errors = errors or STDOUT_ERRORS
    _refuse_collisions(stream, output, errors, header)
    return RunFiles(output, errors, header, _regular_or_new(errors))


def _refuse_collisions(
    stream: IO[bytes], output: Path | None, errors: Path, header: Path | None
) -> None:
    """Refuse a run whose output, sidecar or header is the input or one another."""
    status = _fstat(stream)
    named = [("the input", _identity(status) if status is not None else None)]
    if output is None:
        named.append(("standard output", _stdout_identity()))
    else:
        named.append(("--output", _path_identity(output)))
    named.append(("--errors", _path_identity(errors)))
    if header is not None:
        named.append(("the run header", _path_identity(header)))
    seen: dict[tuple[int, int], str] = {}
    for role, identity in named:
        if identity is None:
            continue
        if identity in seen:
            option = "--errors" if role in ("--errors", "the run header") else "--output"
            raise UsageError(f"{role} is the same file as {seen[identity]}.", option)
        seen[identity] = role
    paths = [p for p in (output, errors, header) if p is not None]
    resolved = [p.resolve() for p in paths]
    if len(set(resolved)) < len(resolved):
        raise UsageError("--errors names the same file as --output.", "--errors")


def _identity(status: os.stat_result) -> tuple[int, int] | None:
    return (status.st_dev, status.st_ino) if stat.S_ISREG(status.st_mode) else None


def _path_identity(path: Path) -> tuple[int, int] | None:
    try:
        return _identity(path.stat())
    except OSError:
        return None


def _stdout_identity() -> tuple[int, int] | None:
    status = _fstat(sys.stdout)  # type: ignore[arg-type]
    return _identity(status) if status is not None else None


def _regular_or_new(path: Path) -> bool:
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except FileNotFoundError:
        return True
    except OSError:
        return False
