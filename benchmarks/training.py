"""Training step time and peak memory: the recipe's cached top layers vs full depth vs HF.

Five ways to train LS-unLLaMA NER with LoRA r=12 on the same batches of 8 CoNLL-2003
training sentences, with the same torch threads, each in its own process (its peak RSS is
its own), timed alternately block by block so that a host's drift hits all of them alike:

  cached:    configs/ner.cfg as shipped: the top 10 layers unmasked with LoRA on all seven
             projections, the lower 20 frozen and served by the frozen-prefix cache.
  cached-qkvo: the same with LoRA on q/k/v/o only, full depth's targets: what the cache and
             the split of layers save, without the MLP adapters' extra work.
  cached-nodrop: the recipe with LoRA's input dropout off: what that dropout costs.
  full:      the same config at full depth (every layer unmasked with LoRA on q/k/v/o, no
             cache): what every earlier release trained.
  reference: LlamaForTokenClassification + peft LoRA at full depth, 4D padding mask, AdamW,
             gradient clipping 1.0 (what transformers' Trainer does), first-piece labels.

Every method first runs one untimed pass over all its batches (the first epoch, which fills
the cache); the timed steps cycle over the same batches again, as every later epoch does.
The first pass's time per step is reported too. --profile METHOD instead runs cProfile over
one method's later-epoch steps and writes where they go, by own time
(training_profile_METHOD.txt).

    python benchmarks/training.py --base-model models/smollm2-135m [--steps 16] [--quick]
    python benchmarks/training.py --base-model models/smollm2-135m --profile cached
"""

from __future__ import annotations

import argparse
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
    ask,
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
    ner_overrides,
    peak_rss_mb,
    ratio,
    reply,
    require_bench_extra,
    require_conll,
    results_dir,
    rss_mb,
    save_figure,
    set_threads,
    write_results,
)

METHODS = ("cached", "cached-qkvo", "cached-nodrop", "full", "reference")
LEARN_RATE = 3e-4
DROPOUT = 0.1
ATTENTION_ONLY = {
    "components.llm.model.lora.target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]
}
# configs/ner.cfg overrides per method; full depth: every layer unmasked and adapted
# (q/k/v/o), no cache.
OVERRIDES: dict[str, dict[str, Any]] = {
    "cached": {},
    "cached-qkvo": ATTENTION_ONLY,
    "cached-nodrop": {"components.llm.model.lora.dropout": 0.0},
    "full": {
        "components.llm.model.unmasked_layers": "all",
        "components.llm.model.prefix_cache_mb": 0,
        "components.llm.model.lora.layers": "all",
        **ATTENTION_ONLY,
    },
}


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


def lsllama_stepper(
    base: Path, batches: Sequence[Sequence[Sentence]], overrides: dict[str, Any]
) -> Callable[[int], float]:
    """nlp.update on configs/ner.cfg (with overrides), as `spacy train` runs it."""
    import spacy
    from spacy.training import Example

    config = spacy.util.load_config(
        NER_CONFIG,
        overrides={
            **ner_overrides(base),
            "training.optimizer.learn_rate.initial_rate": LEARN_RATE,
            **overrides,
        },
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


def stepper(method: str, base: Path, batches: Sequence[Sequence[Sentence]]):
    if method == "reference":
        return reference_stepper(base, batches)
    return lsllama_stepper(base, batches, OVERRIDES[method])


# Worker (one method, one process) ------------------------------------------------------------


def method_steps(args: argparse.Namespace, method: str) -> tuple[Callable[[int], float], int]:
    """A method's training step over --steps batches of 8 sentences, and the batch count."""
    set_threads(args.threads)
    sentences = load_sentences(CONLL_TRAIN, args.steps * 8, block=None)
    batches = list(chunks(sentences, 8))
    return stepper(method, args.base_model, batches), len(batches)


def worker(args: argparse.Namespace) -> None:
    """One method in its own process: set up, run the first pass, then answer the driver.

    Each line the driver sends asks for a block of `block` timed steps (cycling over the
    batches); the reply is one JSON line. An empty line ends the worker with its peak RSS.
    """
    step, n_batches = method_steps(args, args.worker)
    setup_rss = rss_mb()
    start = time.perf_counter()
    losses = [step(i) for i in range(n_batches)]
    first_pass = (time.perf_counter() - start) / n_batches
    reply({"rss_after_setup_mb": setup_rss, "first_pass_s_per_step": first_pass})
    done = 0
    while sys.stdin.readline().strip():
        seconds = []
        with RssSampler() as sampler:
            for _ in range(args.block):
                start = time.perf_counter()
                losses.append(step(done % n_batches))
                seconds.append(time.perf_counter() - start)
                done += 1
        reply({"seconds": seconds, "rss_peak_mb": sampler.peak})
    reply({"rss_peak_process_mb": peak_rss_mb(), "losses": losses})


def start_worker(method: str, args: argparse.Namespace) -> subprocess.Popen:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker", method,
        "--base-model", str(args.base_model),
        "--steps", str(args.steps),
        "--block", str(args.block),
        "--threads", str(args.threads),
        *(["--quick"] if args.quick else []),
    ]  # fmt: skip
    return subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def run_workers(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Start every method, then time them block by block in turn."""
    results: dict[str, dict[str, Any]] = {}
    processes = {}
    for method in METHODS:
        log(f"training: {method}, setting up and running the first pass ({args.steps} steps)")
        processes[method] = start_worker(method, args)
        try:
            results[method] = {"method": method, **ask(processes[method]), "seconds": []}
        except RuntimeError as err:
            log(f"training: {method} failed: {err}")
            results[method] = {"method": method, "error": str(err)}
            del processes[method]
    peaks: dict[str, float] = {}
    for round_ in range(args.rounds):
        for method, process in processes.items():
            block = ask(process, "block")
            results[method]["seconds"] += block["seconds"]
            peaks[method] = max(peaks.get(method, 0.0), block["rss_peak_mb"])
        log(f"training: round {round_ + 1}/{args.rounds} timed")
    for method, process in processes.items():
        final = ask(process, "")
        process.wait()
        seconds = results[method]["seconds"]
        results[method].update(
            seconds_per_step=statistics.median(seconds),
            seconds_mean=statistics.fmean(seconds),
            rss_peak_training_mb=peaks[method],
            **final,
        )
        log(f"training: {method} {results[method]['seconds_per_step']:.2f} s/step")
    return results


# Report --------------------------------------------------------------------------------------


def report(result: dict[str, Any]) -> str:
    rows = []
    for method in METHODS:
        r = result[method]
        rows.append(
            [method, r.get("seconds_per_step"), r.get("first_pass_s_per_step"),
             r.get("rss_peak_training_mb"), r.get("rss_peak_process_mb"), r.get("error")]
        )  # fmt: skip
    table = markdown_table(
        ["method", "s/step (median, later epochs)", "s/step (first pass)",
         "peak RSS in timed steps (MB)", "peak RSS process (MB)", "error"],
        rows,
    )  # fmt: skip
    r = result["ratios"]
    return (
        "## Training step: batch 8 CoNLL-2003 train sentences, LoRA r=12\n\n"
        f"{result['machine']['torch_threads']} torch threads, base `{result['base_model']}`, "
        f"{result['steps']} batches, {result['rounds']} rounds of {result['block']} timed steps "
        "per method, methods alternating block by block, each in its own process.\n\n"
        f"{table}\n\n"
        f"**cached/full step time = {_x(r['cached_vs_full'])}** (target ≤ 0.35×; "
        f"first pass {_x(r['cached_first_pass_vs_full'])}; with LoRA on q/k/v/o only "
        f"{_x(r['cached-qkvo_vs_full'])}, "
        f"without LoRA's dropout {_x(r['cached-nodrop_vs_full'])}), "
        f"**full/reference step time = {_x(r['step_time'])}** (target ≤ 1×), "
        f"**process peak RSS full/reference = {_x(r['peak_rss_process'])}**, "
        f"cached/full = {_x(r['cached_peak_rss_vs_full'])}.\n"
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
        "block": args.block,
        "rounds": args.rounds,
        "machine": {**machine(), "torch_threads": args.threads},
        **run_workers(args),
    }
    cached, full, ref = result["cached"], result["full"], result["reference"]
    result["ratios"] = {
        **{
            f"{method}_vs_full": ratio(
                result[method].get("seconds_per_step"), full.get("seconds_per_step")
            )
            for method in ("cached", "cached-qkvo", "cached-nodrop")
        },
        "cached_first_pass_vs_full": ratio(
            cached.get("first_pass_s_per_step"), full.get("seconds_per_step")
        ),
        "step_time": ratio(full.get("seconds_per_step"), ref.get("seconds_per_step")),
        "peak_rss_process": ratio(full.get("rss_peak_process_mb"), ref.get("rss_peak_process_mb")),
        "cached_peak_rss_vs_full": ratio(
            cached.get("rss_peak_process_mb"), full.get("rss_peak_process_mb")
        ),
    }
    return result


def profile(args: argparse.Namespace) -> Path:
    """cProfile of one method's steps after its first pass, the top functions by own time."""
    import cProfile
    import io
    import pstats

    step, n_batches = method_steps(args, args.profile)
    for i in range(n_batches):
        step(i)
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.runcall(lambda: [step(i) for i in range(n_batches)])
    seconds = (time.perf_counter() - start) / n_batches
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(30)
    out = results_dir(args.out, args.quick) / f"training_profile_{args.profile}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        f"{args.profile}: {seconds:.3f} s/step under cProfile over {n_batches} later-epoch "
        f"steps, {args.threads} torch thread(s), base {args.base_model}\n{text.getvalue()}"
    )
    log(f"training: {args.profile} profiled at {seconds:.2f} s/step: {out}")
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    result = measure(args)
    out = results_dir(args.out, args.quick)
    write_results(out, "training", result, report(result))
    plot(result, out)
    return result


def parser() -> argparse.ArgumentParser:
    p = benchmark_parser(__doc__.splitlines()[0], "4 batches, 2 rounds of 2 steps")
    p.add_argument("--steps", type=int, default=16, help="batches of 8 sentences per method")
    p.add_argument("--block", type=int, default=4, help="timed steps per block")
    p.add_argument("--rounds", type=int, default=4, help="timed blocks per method")
    p.add_argument("--profile", choices=METHODS, help="profile one method's steps instead")
    p.add_argument("--worker", choices=METHODS, help=argparse.SUPPRESS)
    return p


def apply_quick(args: argparse.Namespace) -> None:
    """--quick: 4 batches, 2 rounds of 2 timed steps."""
    if args.quick:
        args.steps, args.block, args.rounds = min(args.steps, 4), 2, 2


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    args = parser().parse_args(argv)
    apply_quick(args)
    if args.worker:
        worker(args)
        return None
    require_bench_extra()
    require_conll(CONLL_TRAIN)
    with tempfile.TemporaryDirectory() as tmp:
        args.base_model = base_model_or_tiny(args.base_model, args.quick, tmp)
        if args.profile:
            profile(args)
            return None
        return run(args)


if __name__ == "__main__":
    main()
