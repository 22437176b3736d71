"""What a tagging run computed with, beyond its options: the facts that can change a score.

The same pipeline on the same input gives the same bytes only where these are the same too:
the dtype its encoders run in, the torch version, and on a CPU the CPU model and the number
of torch threads (a matrix product splits its sums by thread; in bfloat16 the roundings
then differ and a few records get other entities: docs/scaling.md), on a GPU the GPU
model. ``OUTPUT.run.json`` keeps them as segments, ``{"from line": N, ...}``, one per change,
so the file says how each line was computed. ``--resume`` with another dtype is
refused; with other threads, CPU, GPU or torch it continues with a warning.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from spacy.language import Language
from thinc.api import get_current_ops

from ..pipeline.transformer import encoder_dtypes
from .errors import CommandError

Facts = dict[str, Any]
# A resume that changes one of these is refused: a dtype changes every score, a thread count
# at most a few records (docs/scaling.md). The device is a setting too (run header).
REFUSED = ("dtype", "device")
FROM_LINE = "from line"
CPU_INFO = Path("/proc/cpuinfo")


def compute_facts(nlp: Language, threads: int | None = None) -> Facts:
    """The facts of ``nlp`` as loaded in this process; ``threads`` defaults to torch's count."""
    facts: Facts = {"dtype": ",".join(encoder_dtypes(nlp)) or None, "torch": torch.__version__}
    if get_current_ops().name == "cupy":
        facts["device"] = "gpu"
        facts["gpu"] = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    else:
        facts["device"] = "cpu"
        facts["cpu"] = cpu_model()
        facts["threads"] = torch.get_num_threads() if threads is None else threads
    return facts


def cpu_model(cpuinfo: Path = CPU_INFO) -> str | None:
    """The first ``model name`` of /proc/cpuinfo, or None where there is none."""
    try:
        lines = cpuinfo.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            return value.strip()
    return None


def merge_facts(each: Sequence[Facts]) -> Facts:
    """One set of facts for several workers: a value they disagree on becomes a sorted list."""
    merged: Facts = {}
    for key in sorted({key for facts in each for key in facts}):
        values = {_key(facts.get(key)): facts.get(key) for facts in each}
        distinct = sorted(values.values(), key=_key)
        merged[key] = distinct[0] if len(distinct) == 1 else distinct
    return merged


def _key(value: object) -> str:
    return repr(value)


def continue_segments(
    segments: list[Facts], facts: Facts, first_line: int, output: Path | None
) -> tuple[list[Facts], list[str]]:
    """The segments of a run going on at ``first_line`` with ``facts``, and the warnings.

    Raises CommandError when a refused fact (REFUSED) differs from the lines before.
    """
    kept = [segment for segment in segments if segment.get(FROM_LINE, 1) < first_line]
    if not kept:
        return [{FROM_LINE: first_line, **facts}], []
    last = {key: value for key, value in kept[-1].items() if key != FROM_LINE}
    changed = [key for key in sorted(set(last) | set(facts)) if last.get(key) != facts.get(key)]
    if not changed:
        return kept, []
    done = f"lines {last_from(kept)}-{first_line - 1:,}"
    refused = [key for key in changed if key in REFUSED]
    if refused:
        raise CommandError(
            f"cannot resume {output}: {done} were computed with "
            + ", ".join(f"{key} {last.get(key)}, now {facts.get(key)}" for key in refused)
            + "; the rest would not match them (resume where the pipeline runs as it did, "
            "or run without --resume)"
        )
    warnings = [
        f"{output}: {done} were computed with "
        + ", ".join(f"{key} {last.get(key)}" for key in changed)
        + "; this run has "
        + ", ".join(f"{key} {facts.get(key)}" for key in changed)
        + ", so a few records may differ from an uninterrupted run"
        + (_threads_hint(last["threads"]) if "threads" in changed else "")
    ]
    return [*kept, {FROM_LINE: first_line, **facts}], warnings


def last_from(segments: list[Facts]) -> str:
    return f"{segments[-1].get(FROM_LINE, 1):,}"


def _threads_hint(threads: object) -> str:
    if not isinstance(threads, int):
        return ""
    return (
        f" (OMP_NUM_THREADS={threads}, or --cpus-per-actor {threads} with --engine ray, match it)"
    )
