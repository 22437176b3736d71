"""Dev F1 against training steps from `spacy train` runs (the paper's Figure 5 at this scale).

Reads each run's console log (spaCy's ConsoleLogger table: E, #, losses, ENTS_F ...; ANSI
colour codes are stripped) and its `model-best/meta.json` / `model-last/meta.json`
`performance`, then writes accuracy.json, accuracy.md and accuracy_dev_f1.png.

    python benchmarks/accuracy.py --run bidirectional=/work/runs/conll-bidir \\
        --run causal=/work/runs/conll-causal

A run's log is found as DIR.log next to the directory, or DIR/*.log; --log NAME=FILE overrides.
A continuation's log (LOG.resume-STEPS.log, from `lsllama resume` via experiments.py) joins it.
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from common import (
    RESULTS_DIR,
    log,
    markdown_table,
    require_bench_extra,
    save_figure,
    write_results,
)

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
NUMBER = re.compile(r"^-?(\d+(\.\d*)?|\.\d+|nan|inf)$", re.IGNORECASE)


@dataclass
class Run:
    """What one training run reports: its eval rows and its saved pipelines' scores."""

    name: str
    directory: Path
    log: Path | None
    sessions: int = 0
    rows: list[dict[str, float]] = field(default_factory=list)
    best: dict[str, Any] | None = None
    last: dict[str, Any] | None = None

    def curve(self, column: str = "ENTS_F") -> tuple[list[float], list[float]]:
        rows = [r for r in self.rows if column in r]
        return [r["#"] for r in rows], [r[column] for r in rows]


def parse_log(text: str) -> tuple[int, list[dict[str, float]]]:
    """Eval rows of the last training session in a spaCy console log, and the session count.

    A log that `spacy train` appended to several times holds several tables; the last is the
    run the directory's pipelines come from.

    A header line starting with `E` and `#` opens a table; a row is a line of numbers as many
    as the header has columns (split on runs of 2+ spaces: `LOSS NER` is one column).
    """
    sessions: list[list[dict[str, float]]] = []
    header: list[str] | None = None
    for raw in text.splitlines():
        line = ANSI.sub("", raw).strip()
        cells = re.split(r"\s{2,}", line)
        if len(cells) > 2 and cells[:2] == ["E", "#"]:
            header = cells
            sessions.append([])
            continue
        values = line.split()
        if header and len(values) == len(header) and all(NUMBER.match(v) for v in values):
            sessions[-1].append({k: _number(k, v) for k, v in zip(header, values)})
    return len(sessions), (sessions[-1] if sessions else [])


def _number(column: str, value: str) -> float:
    """Epoch and step are counts; everything else a float."""
    return int(value) if column in ("E", "#") else float(value)


def read_rows(log_path: Path) -> tuple[int, list[dict[str, float]]]:
    """The eval rows of a run's log (`parse_log`) joined with those of its continuations.

    `lsllama resume` (through experiments.py) logs a continuation from STEPS updates on to
    LOG.resume-STEPS.log beside LOG: its steps count from STEPS, and the rows of the log
    before it from that step on belong to weights lost with the stop."""
    sessions, rows = parse_log(log_path.read_text(errors="replace"))
    stem = log_path.name.removesuffix(".log")
    continuations = sorted(
        (int(path.name.removesuffix(".log").rsplit("-", 1)[1]), path)
        for path in log_path.parent.glob(f"{stem}.resume-*.log")
    )
    for start, path in continuations:
        more, later = parse_log(path.read_text(errors="replace"))
        rows = [row for row in rows if row["#"] < start]
        rows += [{**row, "#": start + row["#"]} for row in later]
        sessions += more
    return sessions, rows


def find_log(directory: Path) -> Path | None:
    for candidate in [
        directory.with_name(directory.name + ".log"),
        *sorted(directory.glob("*.log")),
    ]:
        if candidate.is_file():
            return candidate
    return None


def read_performance(pipeline: Path) -> dict[str, Any] | None:
    meta = pipeline / "meta.json"
    if not meta.is_file():
        return None
    return json.loads(meta.read_text()).get("performance")


def read_run(name: str, directory: Path, log_path: Path | None = None) -> Run:
    log_file = log_path or find_log(directory)
    run = Run(name=name, directory=directory, log=log_file)
    if log_file is not None:
        run.sessions, run.rows = read_rows(log_file)
    run.best = read_performance(directory / "model-best")
    run.last = read_performance(directory / "model-last")
    return run


def summary(run: Run) -> dict[str, Any]:
    steps, f1 = run.curve()
    best = max(range(len(f1)), key=f1.__getitem__) if f1 else None
    return {
        "evals": len(f1),
        "last_step": steps[-1] if steps else None,
        "best_dev_f1": f1[best] if best is not None else None,
        "best_step": steps[best] if best is not None else None,
        "last_dev_f1": f1[-1] if f1 else None,
        "model_best_ents_f": _percent(run.best, "ents_f"),
        "model_best_ents_p": _percent(run.best, "ents_p"),
        "model_best_ents_r": _percent(run.best, "ents_r"),
    }


def _percent(performance: dict[str, Any] | None, key: str) -> float | None:
    if not performance or performance.get(key) is None:
        return None
    return 100.0 * float(performance[key])


def report(runs: list[Run]) -> str:
    headers = ["run", "evals", "last step", "best dev F1", "at step", "last dev F1",
               "model-best F1", "P", "R", "log"]  # fmt: skip
    rows = []
    for run in runs:
        s = summary(run)
        rows.append(
            [run.name, s["evals"], s["last_step"], s["best_dev_f1"], s["best_step"],
             s["last_dev_f1"], s["model_best_ents_f"], s["model_best_ents_p"],
             s["model_best_ents_r"], f"`{run.log}`" if run.log else "not found"]
        )  # fmt: skip
    lines = [
        "## Accuracy: dev entity F1 (%) during training",
        "",
        markdown_table(headers, rows),
        "",
        "Dev F1 is spaCy's ENTS_F on the dev set at each evaluation of `spacy train` (the",
        "console log); model-best F1/P/R come from `model-best/meta.json`.",
    ]
    types = _per_type(runs)
    if types:
        lines += ["", "### model-best F1 per entity type", "", types]
    return "\n".join(lines)


def _per_type(runs: list[Run]) -> str:
    per_run = {r.name: (r.best or {}).get("ents_per_type") or {} for r in runs}
    labels = sorted({label for scores in per_run.values() for label in scores})
    if not labels:
        return ""
    rows = [
        [name] + [100 * scores[label]["f"] if label in scores else None for label in labels]
        for name, scores in per_run.items()
    ]
    return markdown_table(["run", *labels], rows)


def plot(runs: list[Run], out_dir: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for run in runs:
        steps, f1 = run.curve()
        if steps:
            ax.plot(steps, f1, marker="o", label=run.name)
    ax.set_xlabel("training step")
    ax.set_ylabel("dev entity F1 (%)")
    ax.set_title("Dev F1 against training steps (causal vs bidirectional)")
    ax.grid(alpha=0.3)
    if any(run.rows for run in runs):
        ax.legend()
    return save_figure(fig, out_dir / "accuracy_dev_f1.png")


def parse_pairs(pairs: list[str], option: str) -> dict[str, Path]:
    result = {}
    for pair in pairs:
        name, sep, path = pair.partition("=")
        if not sep or not name or not path:
            raise SystemExit(f"{option} expects NAME=PATH, got {pair!r}")
        result[name] = Path(path)
    return result


def run(run_dirs: dict[str, Path], logs: dict[str, Path], out_dir: Path) -> dict[str, Any]:
    runs = [read_run(name, directory, logs.get(name)) for name, directory in run_dirs.items()]
    log(f"accuracy: {', '.join(f'{r.name} ({len(r.rows)} evals)' for r in runs)}")
    data = {run.name: {**asdict(run), "summary": summary(run)} for run in runs}
    write_results(out_dir, "accuracy", data, report(runs))
    plot(runs, out_dir)
    return data


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", action="append", default=[], metavar="NAME=DIR", required=True)
    p.add_argument("--log", action="append", default=[], metavar="NAME=FILE")
    p.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = p.parse_args(argv)
    require_bench_extra()
    return run(parse_pairs(args.run, "--run"), parse_pairs(args.log, "--log"), args.out)


if __name__ == "__main__":
    main()
