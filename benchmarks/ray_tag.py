"""What `lsllama tag --engine ray` costs against the local engine: words/s, start-up, memory.

    python benchmarks/ray_tag.py --base-model /work/models/smollm2-135m --limit 256
    python benchmarks/ray_tag.py --quick        # tiny random model, 64 sentences

The pipeline is configs/ner.cfg initialized over the base model (speed does not depend on
training). CoNLL-2003 test sentences are written as JSONL and tagged by one `lsllama tag`
process per setting: local (one torch thread), Ray with 1 actor and with 2 actors (one CPU
each, so one thread each). Each run starts its own local Ray cluster, as a user's would.

Per setting: wall seconds; start-up seconds (launch to the first output line: Python, the
cluster, the actors, the pipeline, the first batch); steady words/s (the words after the
first batch / the time after the first line);
end-to-end words/s; the peak memory of the whole process tree (the command, Ray's own
processes and the actors), as the sum of PSS (shared pages counted once) sampled every
0.2 s. All runs must write the same bytes; the ratios are against local in the same run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import (
    CONLL_TEST,
    NER_CONFIG,
    base_model_or_tiny,
    benchmark_parser,
    load_sentences,
    log,
    markdown_table,
    ner_overrides,
    ratio,
    results_dir,
    word_count,
    write_results,
)

SETTINGS = {
    "local": [],
    "ray, 1 actor": ["--engine", "ray", "--actors", "1"],
    "ray, 2 actors": ["--engine", "ray", "--actors", "2"],
}


def build_pipeline(base: Path, sentences: list[Any], path: Path) -> Path:
    """configs/ner.cfg over ``base``, initialized on the sentences, saved to ``path``."""
    import spacy
    from inference import initialize

    config = spacy.util.load_config(NER_CONFIG, overrides=ner_overrides(base))
    nlp = initialize(spacy.util.load_model_from_config(config, auto_fill=True), sentences)
    nlp.to_disk(path)
    return path


def tree_memory_mb(pid: int) -> float:
    """PSS (or RSS where PSS is unknown) of a process and all its descendants."""
    import psutil

    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0
    for process in processes:
        try:
            info = process.memory_full_info()
            total += getattr(info, "pss", info.rss)
        except psutil.Error:
            pass
    return total / 2**20


def run_tag(args: list[str], output: Path) -> dict[str, float]:
    """One `lsllama tag` process: wall and start-up seconds, peak memory of its tree."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0"}
    command = [sys.executable, "-m", "spacy_lsllama.cli", "tag", *args, "-o", str(output)]
    started = time.perf_counter()
    process = subprocess.Popen(command, stderr=subprocess.PIPE, env=env)
    first_line = None
    peak = 0.0
    while process.poll() is None:
        peak = max(peak, tree_memory_mb(process.pid))
        if first_line is None and output.exists() and output.stat().st_size > 0:
            first_line = time.perf_counter() - started
        time.sleep(0.2)
    wall = time.perf_counter() - started
    stderr = process.stderr.read().decode() if process.stderr else ""
    if process.returncode != 0:
        raise SystemExit(f"lsllama tag {' '.join(args)} failed:\n{stderr}")
    return {"wall_s": wall, "startup_s": first_line or wall, "peak_mb": peak}


def run(args: Any) -> dict[str, Any]:
    limit = args.limit or (64 if args.quick else 256)
    with tempfile.TemporaryDirectory() as tmp:
        base = base_model_or_tiny(args.base_model, args.quick, tmp)
        sentences = load_sentences(CONLL_TEST, limit)
        words = word_count(sentences)
        log(f"{len(sentences)} sentences, {words} words; building the pipeline over {base}")
        pipeline = build_pipeline(base, sentences, Path(tmp) / "pipeline")
        source = Path(tmp) / "in.jsonl"
        source.write_text("".join(json.dumps({"text": s.text}) + "\n" for s in sentences))
        rows: dict[str, dict[str, float]] = {}
        outputs = {}
        for name, extra in SETTINGS.items():
            output = Path(tmp) / f"{name.replace(' ', '_').replace(',', '')}.jsonl"
            flags = ["-m", str(pipeline), "-b", str(args.batch_size), *extra]
            row = run_tag([str(source), *flags], output)
            after_first_batch = words - word_count(sentences[: args.batch_size])
            row["words_per_s"] = after_first_batch / max(row["wall_s"] - row["startup_s"], 1e-9)
            row["end_to_end_words_per_s"] = words / row["wall_s"]
            rows[name] = row
            outputs[name] = output.read_bytes()
            log(f"{name}: {row}")
    same = all(data == outputs["local"] for data in outputs.values())
    if not same:
        raise SystemExit("the engines wrote different outputs")
    return {"base_model": str(base), "sentences": len(sentences), "words": words, "rows": rows}


def report(results: dict[str, Any]) -> str:
    local = results["rows"]["local"]
    table = []
    for name, row in results["rows"].items():
        table.append(
            [
                name,
                row["wall_s"],
                row["startup_s"],
                row["words_per_s"],
                ratio(row["words_per_s"], local["words_per_s"]),
                row["end_to_end_words_per_s"],
                row["peak_mb"],
            ]
        )
    headers = [
        "setting",
        "wall s",
        "start-up s",
        "words/s after start-up",
        "vs local",
        "words/s end to end",
        "peak MB (all processes)",
    ]
    return (
        f"# lsllama tag: local vs Ray\n\n{results['sentences']} sentences, "
        f"{results['words']} words, base model {results['base_model']}; identical outputs.\n\n"
        + markdown_table(headers, table)
    )


def main(argv: list[str] | None = None) -> int:
    p = benchmark_parser(__doc__.splitlines()[0], "tiny random model, 64 sentences")
    p.add_argument("--limit", type=int, help="CoNLL test sentences (256; 64 with --quick)")
    p.add_argument("--batch-size", type=int, default=32, help="lsllama tag --batch-size")
    args = p.parse_args(argv)
    results = run(args)
    write_results(results_dir(args.out, args.quick), "ray_tag", results, report(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
