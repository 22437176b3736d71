"""Training step time and peak memory: spacy-lsllama's nlp.update vs the paper's HF loop.

Both train a bidirectional (unmasked) encoder with LoRA r=12 on the same batches of 8
CoNLL-2003 training sentences with the same torch threads:

  lsllama:   configs/ner.cfg (lsllama_transformer + lsllama_ner), nlp.update, spaCy's Adam.
  reference: LlamaForTokenClassification + peft LoRA, 4D padding mask, AdamW, gradient
             clipping 1.0 (what transformers' Trainer does), labels on each word's first piece.

Each method runs in its own subprocess, so its peak RSS is its own.

    python benchmarks/training.py --base-model models/smollm2-135m [--steps 20] [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from common import (
    CONLL_TRAIN,
    NER_CONFIG,
    TAGS,
    Sentence,
    base_model_or_tiny,
    benchmark_parser,
    chunks,
    gold_docs,
    hf_token_classifier,
    hf_tokenizer,
    load_sentences,
    log,
    machine,
    markdown_table,
    peak_rss_mb,
    ratio,
    require_bench_extra,
    results_dir,
    rss_mb,
    save_figure,
    set_threads,
    write_results,
)

METHODS = ("lsllama", "reference")
LEARN_RATE = 8e-5
DROPOUT = 0.1


class RssSampler:
    """Highest RSS seen by a background thread sampling every `interval` seconds."""

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mb())
            time.sleep(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())


# The two training steps ----------------------------------------------------------------------


def lsllama_stepper(base: Path, batches: Sequence[Sequence[Sentence]]) -> Callable[[int], float]:
    """nlp.update on configs/ner.cfg, as `spacy train` runs it."""
    import spacy
    from spacy.training import Example

    config = spacy.util.load_config(
        NER_CONFIG,
        overrides={"paths.base_model": str(base), "training.optimizer.learn_rate": LEARN_RATE},
    )
    nlp = spacy.util.load_model_from_config(config, auto_fill=True)
    examples = [
        [Example(nlp.make_doc(doc.text), doc) for doc in gold_docs(nlp, batch)] for batch in batches
    ]
    optimizer = nlp.initialize(lambda: [eg for batch in examples for eg in batch])

    def step(i: int) -> float:
        losses: dict[str, float] = {}
        nlp.update(examples[i], sgd=optimizer, drop=DROPOUT, losses=losses)
        return losses["ner"]

    return step


def word_labels(offsets: Sequence[tuple[int, int]], sentence: Sentence) -> list[int]:
    """Tag ids for the first piece of each word and -100 elsewhere (the paper's labelling)."""
    starts, position = [], 0
    for word in sentence.words:
        starts.append(position)
        position += len(word) + 1
    first_piece: dict[int, int] = {}
    labels = []
    for start, end in offsets:
        word = _word_at(starts, start, end)
        if end <= start or word is None or word in first_piece:
            labels.append(-100)
            continue
        first_piece[word] = len(labels)
        labels.append(TAGS.index(sentence.tags[word]))
    return labels


def _word_at(starts: Sequence[int], start: int, end: int) -> int | None:
    """The word whose text overlaps the piece [start, end) (byte-level pieces lead with a space)."""
    import bisect

    index = bisect.bisect_right(starts, max(start, end - 1)) - 1
    return index if index >= 0 else None


def reference_stepper(base: Path, batches: Sequence[Sequence[Sentence]]) -> Callable[[int], float]:
    """A plain loop as transformers' Trainer runs it: forward with labels, backward, clip, AdamW."""
    import torch

    from spacy_lsllama.nn.unmasking import padding_mask_4d

    tokenizer = hf_tokenizer(base)
    model = hf_token_classifier(base, len(TAGS)).train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=LEARN_RATE, weight_decay=0.0)
    inputs = []
    for batch in batches:
        enc = tokenizer(
            [s.text for s in batch],
            padding="longest",
            return_offsets_mapping=True,
            return_tensors="pt",
        )
        labels = torch.full_like(enc["input_ids"], -100)
        for row, (offsets, sentence) in enumerate(zip(enc.pop("offset_mapping").tolist(), batch)):
            real = int(enc["attention_mask"][row].sum())
            labels[row, :real] = torch.tensor(word_labels(offsets[:real], sentence))
        inputs.append((enc["input_ids"], enc["attention_mask"], labels))

    def step(i: int) -> float:
        input_ids, attention_mask, labels = inputs[i]
        mask = padding_mask_4d(attention_mask, model.dtype)
        loss = model(input_ids=input_ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss)

    return step


STEPPERS = {"lsllama": lsllama_stepper, "reference": reference_stepper}


# Worker (one method, one process) ------------------------------------------------------------


def worker(method: str, base: Path, steps: int, warmup: int, threads: int) -> dict[str, Any]:
    """Set up one method, run warm-up steps, then time `steps` steps and sample RSS."""
    set_threads(threads)
    sentences = load_sentences(CONLL_TRAIN, (warmup + steps) * 8, block=None)
    batches = list(chunks(sentences, 8))
    step = STEPPERS[method](base, batches)
    setup_rss = rss_mb()
    losses = [step(i) for i in range(warmup)]
    seconds = []
    with RssSampler() as sampler:
        for i in range(warmup, warmup + steps):
            start = time.perf_counter()
            losses.append(step(i))
            seconds.append(time.perf_counter() - start)
    return {
        "method": method,
        "steps": steps,
        "warmup": warmup,
        "seconds_per_step": statistics.median(seconds),
        "seconds_mean": statistics.fmean(seconds),
        "seconds": seconds,
        "rss_after_setup_mb": setup_rss,
        "rss_peak_training_mb": sampler.peak,
        "rss_peak_process_mb": peak_rss_mb(),
        "losses": losses,
        "threads": threads,
    }


def run_worker(method: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run one method in a fresh interpreter and read its JSON result."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--worker", method,
            "--base-model", str(args.base_model),
            "--steps", str(args.steps),
            "--warmup", str(args.warmup),
            "--threads", str(args.threads),
            "--worker-out", out.name,
        ]  # fmt: skip
        log(f"training: {method}, {args.warmup} warm-up + {args.steps} timed steps")
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            error = (done.stderr.strip().splitlines() or ["no output"])[-1]
            log(f"training: {method} failed: {error}")
            return {"method": method, "error": error}
        result = json.loads(Path(out.name).read_text())
        log(f"training: {method} {result['seconds_per_step']:.2f} s/step")
        return result


# Report --------------------------------------------------------------------------------------


def report(result: dict[str, Any]) -> str:
    rows = []
    for method in METHODS:
        r = result[method]
        rows.append(
            [method, r.get("seconds_per_step"), r.get("rss_peak_training_mb"),
             r.get("rss_peak_process_mb"), r.get("rss_after_setup_mb"), r.get("error")]
        )  # fmt: skip
    table = markdown_table(
        ["method", "s/step (median)", "peak RSS in steps (MB)", "peak RSS process (MB)",
         "RSS after setup (MB)", "error"],
        rows,
    )  # fmt: skip
    r = result["ratios"]
    return (
        f"## Training step: batch 8 CoNLL-2003 train sentences, LoRA r=12, bidirectional\n\n"
        f"{result['machine']['torch_threads']} torch threads, base `{result['base_model']}`, "
        f"{result['steps']} timed steps after {result['warmup']} warm-up; each method in its "
        f"own process.\n\n{table}\n\n"
        f"**lsllama/reference step time = {_x(r['step_time'])}** (target ≤ 1×), "
        f"**peak RSS in steps = {_x(r['peak_rss_training'])}**, "
        f"**process peak RSS = {_x(r['peak_rss_process'])}** (target ≤ 1×).\n"
    )


def _x(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}×"


def plot(result: dict[str, Any], out_dir: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for method in METHODS:
        seconds = result[method].get("seconds")
        if seconds:
            ax.plot(range(1, len(seconds) + 1), seconds, marker="o", label=method)
    ax.set_xlabel("timed step")
    ax.set_ylabel("seconds")
    ax.set_title("Training step time (batch 8)")
    ax.legend()
    return save_figure(fig, out_dir / "training_steps.png")


def measure(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {
        "base_model": str(args.base_model),
        "steps": args.steps,
        "warmup": args.warmup,
        "machine": {**machine(), "torch_threads": args.threads},
    }
    for method in METHODS:
        result[method] = run_worker(method, args)
    a, b = result["lsllama"], result["reference"]
    result["ratios"] = {
        "step_time": ratio(a.get("seconds_per_step"), b.get("seconds_per_step")),
        "peak_rss_training": ratio(a.get("rss_peak_training_mb"), b.get("rss_peak_training_mb")),
        "peak_rss_process": ratio(a.get("rss_peak_process_mb"), b.get("rss_peak_process_mb")),
    }
    return result


def run(args: argparse.Namespace) -> dict[str, Any]:
    result = measure(args)
    out = results_dir(args.out, args.quick)
    write_results(out, "training", result, report(result))
    plot(result, out)
    return result


def parser() -> argparse.ArgumentParser:
    p = benchmark_parser(__doc__.splitlines()[0], "3 timed steps")
    p.add_argument("--steps", type=int, default=10, help="timed steps per method")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    p.add_argument("--worker", choices=METHODS, help=argparse.SUPPRESS)
    p.add_argument("--worker-out", type=Path, help=argparse.SUPPRESS)
    return p


def apply_quick(args: argparse.Namespace) -> None:
    """--quick: 1 warm-up and 3 timed steps."""
    if args.quick:
        args.steps, args.warmup = min(args.steps, 3), min(args.warmup, 1)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parser().parse_args(argv)
    if args.worker:
        result = worker(args.worker, args.base_model, args.steps, args.warmup, args.threads)
        args.worker_out.write_text(json.dumps(result))
        return result
    require_bench_extra()
    apply_quick(args)
    with tempfile.TemporaryDirectory() as tmp:
        args.base_model = base_model_or_tiny(args.base_model, args.quick, tmp)
        return run(args)


if __name__ == "__main__":
    main()
