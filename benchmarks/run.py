"""Run every benchmark in one go and summarise the ratios against their targets.

    python benchmarks/run.py --base-model models/smollm2-135m [--pipeline training/ner/model-best]
        [--run bidirectional=/work/runs/conll-bidir --run causal=/work/runs/conll-causal]
    python benchmarks/run.py --quick        # smoke test: tiny random model, a few dozen sentences

Order: matmul peak and inference in this process (same threads, so the FLOP/s fraction is
comparable), training in one subprocess per method, accuracy from the given run directories.
Results: benchmarks/results/ (benchmarks/results/quick/ with --quick), *.json, *.md, *.png,
and summary.md with every ratio next to its target.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import accuracy
import documents
import inference
import levers
import matmul_peak
import precision
import training
from common import (
    CONLL_TEST,
    CONLL_TRAIN,
    base_model_or_tiny,
    default_threads,
    log,
    markdown_table,
    require_bench_extra,
    require_conll,
    results_dir,
    set_threads,
    write_results,
)

PARTS = ("inference", "documents", "training", "precision", "accuracy")
READS_CONLL = {"inference", "documents", "training", "precision"}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base-model", type=Path, help="prepared HF dir, e.g. models/smollm2-135m")
    p.add_argument("--pipeline", type=Path, help="trained lsllama NER pipeline (adds F1)")
    p.add_argument("--run", action="append", default=[], metavar="NAME=DIR", help="training run")
    p.add_argument("--log", action="append", default=[], metavar="NAME=FILE", help="its log")
    p.add_argument("--quick", action="store_true", help="tiny model, 48 sentences, 3 steps")
    p.add_argument("--threads", type=int, default=default_threads())
    p.add_argument("--limit", type=int, help="test sentences for (a)-(c) (640; 0: all)")
    p.add_argument("--lever-limit", type=int, help="test sentences for the levers (192)")
    p.add_argument("--breakdown-limit", type=int, help="test sentences for the breakdown (192)")
    p.add_argument("--batch-size", type=int, help="nlp.pipe batch size (64)")
    p.add_argument("--steps", type=int, help="timed training steps per method (10)")
    p.add_argument("--skip", action="append", default=[], choices=PARTS)
    p.add_argument("--out", type=Path, help="results dir (default: benchmarks/results[/quick])")
    return p


def sub_args(module: Any, args: argparse.Namespace, **values: Any) -> argparse.Namespace:
    """A module's own defaults, overridden by the shared options."""
    namespace = module.parser().parse_args([])
    shared = {"base_model": args.base_model, "threads": args.threads, "quick": args.quick}
    given = {key: value for key, value in values.items() if value is not None}
    namespace.__dict__.update(shared, out=args.out, **given)
    return namespace


def targets(results: dict[str, Any]) -> list[list[Any]]:
    """Each target with this run's ratio."""
    rows = []
    inf, tr = results.get("inference"), results.get("training")
    if inf:
        a = inf["lsllama"]
        rows += [
            ["inference words/s (a)/(c) HF reference", inf["ratios"]["lsllama_vs_hf"], "≥ 1.5"],
            ["inference words/s (a)/(b) spacy-transformers", inf["ratios"]["lsllama_vs_stock"],
             "≥ 1.0 at equal F1"],
            ["(a) useful FLOP/s / matmul peak", a["peak_fraction"], "≥ 0.70"],
        ]  # fmt: skip
        lever_rows = {row["lever"]: row for row in inf["levers"]["rows"]}
        rows += [
            [f"(a) {name}: useful FLOP/s / matmul peak",
             lever_rows[lever].get("peak_fraction"), "≥ 0.70"]
            for name, lever in (("compiled", levers.COMPILED),
                                ("compiled, rows 32, batches of 128", levers.COMPILED_LARGE))
        ]  # fmt: skip
    if tr:
        rows += [
            [
                "training s/step cached top 10 / full depth",
                tr["ratios"]["cached_vs_full"],
                "≤ 0.35",
            ],
            ["training s/step lsllama full depth / reference", tr["ratios"]["step_time"], "≤ 1.0"],
            [
                "training peak RSS lsllama full depth / reference",
                tr["ratios"]["peak_rss_process"],
                "≤ 1.0",
            ],
        ]
    if pr := results.get("precision"):
        kind = pr["machine"]["host_kind"]
        wanted = {"AMX": "≥ 3.0", "AVX-512-BF16": "≥ 1.5"}.get(kind, "≥ 1.0")
        rows += [
            [f"training s/step reference float32 / auto ({kind} host)",
             pr["ratios"]["train_auto_vs_reference"], wanted],
            [f"tagging words/s auto / reference ({kind} host)",
             pr["ratios"]["tag_auto_vs_reference"], "≥ 3.0" if kind == "AMX" else "≥ 1.0"],
        ]  # fmt: skip
    for row in rows:
        row.append(_met(row[1], row[2]))
    return rows


def _met(value: float | None, target: str) -> str:
    if value is None:
        return "n/a"
    bound = float(target.split()[1])
    return "yes" if (value >= bound if target.startswith("≥") else value <= bound) else "no"


def headline(results: dict[str, Any]) -> list[list[Any]]:
    """The absolute numbers behind the ratios."""
    rows: list[list[Any]] = [
        ["fp32 matmul peak at the start (GFLOP/s)", results["matmul_peak"]["peak_gflops"]]
    ]
    if inf := results.get("inference"):
        rows.append(
            ["fp32 matmul peak between (a)'s blocks (GFLOP/s)", inf["reference_peak_gflops"]]
        )
        for key, label in inference.METHODS.items():
            rows.append([f"{label}: words/s", inf[key].get("words_per_s", "error")])
        bare = inf["bare_forward"]
        rows.append(["decoder alone, dense batch: useful FLOP/s / matmul peak",
                     bare["peak_fraction"]])  # fmt: skip
        rows.append(["(a) useful FLOP/s / decoder alone", inf["lsllama"]["bare_fraction"]])
        ok = [r for r in inf["levers"]["rows"][1:] if r.get("speedup")]
        if ok:
            best = max(ok, key=lambda r: r["speedup"])
            rows.append([f"best lever: {best['lever']} (speed-up)", best["speedup"]])
    if docs := results.get("documents"):
        best = max(docs["rows"], key=lambda r: r["speedup_vs_default"])
        rows.append([f"documents: best rows_per_forward ({best['rows_per_forward']}), speed-up "
                     "over the default", best["speedup_vs_default"]])  # fmt: skip
    if tr := results.get("training"):
        for method in training.METHODS:
            r = tr[method]
            rows.append([f"training {method}: s/step", r.get("seconds_per_step", "error")])
            rows.append([f"training {method}: peak RSS (MB)", r.get("rss_peak_process_mb")])
    return rows


def summary(results: dict[str, Any], args: argparse.Namespace, seconds: float) -> str:
    note = (
        "\n**--quick: tiny random model; these ratios only show that the benchmarks run.**\n"
        if args.quick
        else ""
    )
    ratios = markdown_table(["measure", "ratio (same run)", "target", "met"], targets(results))
    numbers = markdown_table(["measure", "value"], headline(results))
    return (
        f"# Benchmark summary\n{note}\nBase model `{args.base_model}`, pipeline "
        f"`{args.pipeline or 'untrained'}`, {args.threads} torch threads, total runtime "
        f"{seconds:.0f} s. Every ratio compares numbers measured in this run.\n\n{ratios}\n\n"
        f"{numbers}\n\nThe (a)/(b) target is stated at equal F1; (b) is not trained here, so "
        "only its speed is compared. Details: matmul_peak.md, inference.md, "
        f"{'documents.md, ' if 'documents' in results else ''}training.md"
        f"{', accuracy.md' if 'accuracy' in results else ''}.\n"
    )


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    log(f"matmul peak, {args.threads} threads")
    peak = matmul_peak.measure(args.quick)
    write_results(args.out, "matmul_peak", peak, matmul_peak.report(peak))
    results["matmul_peak"] = peak
    if "inference" not in args.skip:
        inf_args = sub_args(
            inference,
            args,
            pipeline=args.pipeline,
            limit=args.limit,
            lever_limit=args.lever_limit,
            breakdown_limit=args.breakdown_limit,
            batch_size=args.batch_size,
        )
        inference.apply_quick(inf_args)
        results["inference"] = inference.run(inf_args, peak["peak_gflops"])
    if "documents" not in args.skip:
        doc_args = sub_args(documents, args, pipeline=args.pipeline)
        documents.apply_quick(doc_args)
        results["documents"] = documents.run(doc_args)
    if "training" not in args.skip:
        tr_args = sub_args(training, args, steps=args.steps)
        training.apply_quick(tr_args)
        results["training"] = training.run(tr_args)
    if "precision" not in args.skip:
        pr_args = sub_args(precision, args, pipeline=args.pipeline)
        precision.apply_quick(pr_args)
        results["precision"] = precision.run(pr_args)
    if args.run and "accuracy" not in args.skip:
        runs = accuracy.parse_pairs(args.run, "--run")
        results["accuracy"] = accuracy.run(runs, accuracy.parse_pairs(args.log, "--log"), args.out)
    return results


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    require_bench_extra()
    if READS_CONLL - set(args.skip):
        require_conll(CONLL_TRAIN, CONLL_TEST)
    if args.out is None and args.quick:
        shutil.rmtree(results_dir(None, True), ignore_errors=True)  # the last smoke test's
    args.out = results_dir(args.out, args.quick)
    set_threads(args.threads)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        if args.base_model is None and args.pipeline is not None:
            args.base_model = inference.base_of(args.pipeline)
        args.base_model = base_model_or_tiny(args.base_model, args.quick, tmp)
        results = run_all(args)
        seconds = time.perf_counter() - start
        write_results(
            args.out, "summary", {"targets": targets(results), "seconds": seconds},
            summary(results, args, seconds),
        )  # fmt: skip
    log(f"benchmarks done in {seconds:.0f} s; results in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
