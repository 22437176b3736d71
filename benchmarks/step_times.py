"""Every update of a `spacy train` run, timed: `spacy train CONFIG --code benchmarks/step_times.py`.

Writes a tab-separated row per update to `$LSLLAMA_STEP_TIMES` (default `step_times.tsv`):
when it started (seconds since the hook loaded), how long `nlp.update` took, the batch's
documents, words and longest document, the process's resident memory (MiB) and minor page
faults so far. Before every 20th update it also times one fixed matrix product in bfloat16
and in float32 (rows `probe-bfloat16`, `probe-float32`, GFLOP/s in `seconds`), so that a
stretch of slower steps can be set beside the machine's own pace at that moment.

`python benchmarks/step_times.py FILE... [--window N]` summarizes such files: per window of N
updates, seconds a step, milliseconds a word and the probes' mean.

A diagnostic for timing runs: it wraps `Language.update` for the whole process. Words, not
pieces: a step's cost follows its words (about 1.4 pieces each on CoNLL-2003).
"""

import argparse
import csv
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from spacy.language import Language
from spacy.training import Example

PROBE_EVERY = 20
PROBE_SHAPE = (1024, 576, 1536)  # rows x SmolLM2's hidden size x its MLP width
PROBE_REPEATS = 20
COLUMNS = ["start_s", "kind", "seconds", "docs", "words", "longest", "rss_mib", "minor_faults"]


def _memory() -> tuple[int, int]:
    """Resident MiB and minor page faults of this process (Linux; zeros elsewhere)."""
    try:
        rss_pages = int(Path("/proc/self/statm").read_text().split()[1])
        stat = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0, 0
    return rss_pages * os.sysconf("SC_PAGE_SIZE") // 2**20, int(stat[7])


class StepTimes:
    """Wraps `Language.update` and writes one row per call."""

    def __init__(self, path: Path) -> None:
        self.file = path.open("w", buffering=1)
        self.file.write("\t".join(COLUMNS) + "\n")
        self.start = time.perf_counter()
        self.updates = 0
        rows, hidden, width = PROBE_SHAPE
        self.operands = (torch.randn(rows, hidden), torch.randn(hidden, width))

    def row(self, start: float, kind: str, value: float, docs: list[int] | None = None) -> None:
        words = [str(len(docs)), str(sum(docs)), str(max(docs))] if docs else ["", "", ""]
        rss, faults = _memory()
        fields = [f"{start - self.start:.3f}", kind, f"{value:.4f}", *words, str(rss), str(faults)]
        self.file.write("\t".join(fields) + "\n")

    def probe(self) -> None:
        """The pace of one matrix product right now, in each dtype."""
        rows, hidden, width = PROBE_SHAPE
        for dtype in (torch.bfloat16, torch.float32):
            a, b = (x.to(dtype) for x in self.operands)
            a @ b  # its kernel chosen and its output allocated once, untimed
            start = time.perf_counter()
            for _ in range(PROBE_REPEATS):
                a @ b
            seconds = time.perf_counter() - start
            flops = 2 * rows * hidden * width * PROBE_REPEATS
            self.row(start, f"probe-{str(dtype).split('.')[-1]}", flops / seconds / 1e9)

    def wrap(self, update: Any) -> Any:
        def timed(nlp: Language, examples: Iterable[Example], *args: Any, **kwargs: Any) -> Any:
            examples = list(examples)
            if self.updates % PROBE_EVERY == 0:
                self.probe()
            self.updates += 1
            start = time.perf_counter()
            result = update(nlp, examples, *args, **kwargs)
            seconds = time.perf_counter() - start
            self.row(start, "update", seconds, [len(eg.reference) for eg in examples])
            return result

        return timed


def summarize(path: Path, window: int) -> list[str]:
    """Per window of updates: s/step, ms/word, and the mean bfloat16 / float32 probe."""
    with path.open() as file:
        rows = list(csv.DictReader(file, delimiter="\t"))
    lines = [f"{path}: updates, s/step, ms/word, probe bfloat16 / float32 (GFLOP/s)"]
    updates = [i for i, row in enumerate(rows) if row["kind"] == "update"]
    for first in range(0, len(updates), window):
        chosen = updates[first : first + window]
        # from the row after the window before: the probes taken before its first update too
        span = rows[updates[first - 1] + 1 if first else 0 : chosen[-1] + 1]
        steps = [row for row in span if row["kind"] == "update"]
        seconds = sum(float(row["seconds"]) for row in steps)
        words = sum(int(row["words"]) for row in steps)
        probes = [
            _mean([float(row["seconds"]) for row in span if row["kind"] == f"probe-{dtype}"])
            for dtype in ("bfloat16", "float32")
        ]
        lines.append(
            f"{first + 1}-{first + len(steps)}\t{seconds / len(steps):.3f}\t"
            f"{1000 * seconds / words:.2f}\t{probes[0]} / {probes[1]}"
        )
    return lines


def _mean(values: list[float]) -> str:
    return f"{sum(values) / len(values):.0f}" if values else "-"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Summarize step_times.py's files.")
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--window", type=int, default=40, help="updates per line")
    args = parser.parse_args(argv)
    for path in args.files:
        print("\n".join(summarize(path, args.window)))


if __name__ == "__main__":
    main()
else:  # loaded by `spacy train --code`
    Language.update = StepTimes(  # type: ignore[method-assign]
        Path(os.environ.get("LSLLAMA_STEP_TIMES", "step_times.tsv"))
    ).wrap(Language.update)
