"""The run header beside an output file, and what ``--resume`` may continue.

``OUTPUT.run.json`` records what a run was started with (tool version, model fingerprint,
the options that change the output, the sidecar) and a checkpoint: how many input lines are
accounted for, the size and SHA-256 of the input bytes read up to there, and the sizes of
the output and the sidecar at that point, and how the lines were computed (dtype, threads:
see `compute.py`). A checkpoint is written only after both files are
flushed, so the output and sidecar always hold at least what it says; ``--resume`` cuts them
back to it and carries on. A resume with other settings, another input, or files shorter
than the checkpoint is refused with a message saying what differs.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .errors import CommandError

FORMAT = "lsllama-tag-run/1"
HEADER_SUFFIX = ".run.json"
# Model files up to this size are fingerprinted by content, larger ones by size and mtime.
CONTENT_HASH_LIMIT = 64 << 20


@dataclass(frozen=True)
class Checkpoint:
    """A consistent point of a run: input lines 1..line are in the output or the sidecar."""

    line: int = 0
    input_bytes: int = 0
    input_sha256: str = hashlib.sha256().hexdigest()
    output_bytes: int = 0
    errors_bytes: int = 0
    counts: dict[str, Any] | None = None
    complete: bool = False


def header_path(output: Path) -> Path:
    return output.with_name(output.name + HEADER_SUFFIX)


class RunHeader:
    """The header file of one output: written at the start and at each checkpoint."""

    def __init__(self, path: Path, settings: dict[str, Any], source: dict[str, Any]) -> None:
        self.path = path
        self.settings = settings
        self.source = source
        # How the lines were computed (`compute.py`): read by `resume_point`, then extended.
        self.compute: list[dict[str, Any]] = []

    def write(self, checkpoint: Checkpoint) -> None:
        """Replace the header atomically, so a kill leaves the old one or the new one."""
        content = {
            "format": FORMAT,
            "settings": self.settings,
            "input": self.source,
            "compute": self.compute,
            "checkpoint": asdict(checkpoint),
        }
        temporary = self.path.with_name(self.path.name + ".tmp")
        try:
            temporary.write_text(json.dumps(content, indent=1, ensure_ascii=False) + "\n")
            os.replace(temporary, self.path)
        except OSError as err:
            raise CommandError(
                f"cannot write the run header {self.path}: {err.strerror or err}"
            ) from None


def resume_point(
    output: Path, errors: Path, header: RunHeader, errors_regular: bool
) -> Checkpoint | None:
    """Where to continue ``output``, or None to start afresh (no output yet, or empty).

    Raises CommandError with a one-line reason when the run cannot be continued.
    """
    if not output.exists() or (output.stat().st_size == 0 and not header.path.exists()):
        return None
    if not header.path.exists():
        raise CommandError(
            f"cannot resume: {output} has no run header {header.path.name}, so it was not "
            "written by this version of lsllama tag (or the header was removed); "
            "run without --resume to start afresh"
        )
    recorded, checkpoint = _read_header(header.path)
    compute = recorded.get("compute")
    if isinstance(compute, list):
        header.compute = [dict(segment) for segment in compute if isinstance(segment, dict)]
    differences = compare_settings(recorded.get("settings", {}), header.settings)
    if differences:
        raise CommandError(
            f"cannot resume {output}: the run was started with other settings: "
            + "; ".join(differences)
        )
    _check_size(output, "the output", checkpoint.output_bytes, last_newline=True)
    if errors_regular and checkpoint.errors_bytes:
        if not errors.exists():
            raise CommandError(
                f"cannot resume: the sidecar {errors} is missing; it held the skipped lines up "
                f"to line {checkpoint.line:,}"
            )
        _check_size(errors, "the sidecar", checkpoint.errors_bytes, last_newline=True)
    return checkpoint


def _read_header(path: Path) -> tuple[dict[str, Any], Checkpoint]:
    try:
        content = json.loads(path.read_bytes())
        if content.get("format") != FORMAT:
            raise ValueError(f"format is {content.get('format')!r}, expected {FORMAT!r}")
        checkpoint = Checkpoint(**content["checkpoint"])
        if checkpoint.line and not isinstance(checkpoint.counts, dict):
            raise ValueError("its checkpoint has no counts")
    except (OSError, ValueError, TypeError, KeyError, AttributeError, RecursionError) as err:
        raise CommandError(f"cannot resume: the run header {path} is unreadable ({err})") from None
    return content, checkpoint


def compare_settings(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """What differs between two settings dicts, as 'name: recorded -> current' lines."""
    differences = []
    for key in sorted(set(recorded) | set(current)):
        old, new = recorded.get(key), current.get(key)
        if old != new:
            differences.append(f"{key} was {_short(old)}, now {_short(new)}")
    return differences


def _short(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."


def _check_size(path: Path, role: str, size: int, last_newline: bool) -> None:
    actual = path.stat().st_size
    if actual < size:
        raise CommandError(
            f"cannot resume: {role} {path} has {actual:,} bytes, fewer than the {size:,} the "
            "run had written; was it changed?"
        )
    if last_newline and size:
        with path.open("rb") as file:
            file.seek(size - 1)
            if file.read(1) != b"\n":
                raise CommandError(
                    f"cannot resume: {role} {path} was changed since the run wrote it"
                )


def model_fingerprint(model: str) -> str:
    """A SHA-256 of the pipeline's files: content up to CONTENT_HASH_LIMIT, else size and mtime.

    ``model`` is a path or an installed package name; anything else fingerprints as its name.
    """
    directory = _model_directory(model)
    digest = hashlib.sha256()
    if directory is None:
        digest.update(model.encode())
        return digest.hexdigest()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        if "__pycache__" in path.parts:
            continue
        stat = path.stat()
        digest.update(f"{path.relative_to(directory).as_posix()}\0{stat.st_size}\0".encode())
        if stat.st_size <= CONTENT_HASH_LIMIT:
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        else:
            digest.update(str(stat.st_mtime_ns).encode())
    return digest.hexdigest()


def _model_directory(model: str) -> Path | None:
    path = Path(model).expanduser()
    if path.is_dir():
        return path
    try:
        spec = importlib.util.find_spec(model)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))
