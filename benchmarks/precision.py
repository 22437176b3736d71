"""Mixed precision on CPU: training steps and tagging against a reference checkout's float32.

Every method runs in its own process, with the same torch threads, on the same batches, and
the methods take turns block by block so that a host's drift hits all of them alike:

  training (configs/ner.cfg, the recipe at full depth, batches of 8 CoNLL-2003 sentences):
    reference float32   the reference checkout (--reference, e.g. a worktree at 040c679)
    float32             this checkout, dtype float32
    bfloat16 (peft dropout)  this checkout, bfloat16, peft's dropout (a mask per adapter)
    auto                this checkout, dtype auto (what `spacy train` picks on this host)
    auto compiled       the same with `compile = true`: the decoder layers through
                        torch.compile (`nn.compile`), dropout masks and all
    auto, LoRA dropout 0 (and compiled): without LoRA's input dropout, what its masks cost
  tagging (`nlp.pipe`, batch 64, as `lsllama tag`; CoNLL-2003 test sentences; --pipeline):
    reference auto, float32, bfloat16, auto, each with its entity F1;
    bfloat16 compiled (`compile = true`) and bfloat16 with 32 rows a forward instead of 8
    (`rows_per_forward`): the pipeline's two ways to compute more per pass, and both; the
    same compiled with 64 rows in batches of 128, beside the reference in batches of 128;
    bfloat16 with the adapters unmerged (`merge_lora = false`), what merging saves;
    hf float32 / hf bfloat16: Hugging Face's own forward of the base model (no LoRA, no
    spaCy) on the same texts, batches of 64.

The host's float32 and bfloat16 matrix-product peaks (1024x576 by 576x1536, best of 20) are
measured in the same run; "share of peak" divides useful FLOP/s (2 per weight per piece
forward, 4 in a training step whose frozen weights need input gradients only) by them.

    python benchmarks/precision.py --base-model models/smollm2-135m \
        --reference ../ref-040c679 --pipeline "$PIPELINE"   # e.g. en_lsllama_ner's package dir
    python benchmarks/precision.py --quick     # tiny model, this checkout only: the code runs

`--as-host neither` stands in for a host without bfloat16 matrix units on one that has them:
every process runs with its kernels limited to AVX2 (ATen, oneDNN, MKL), `auto` is what
`auto_dtype` picks without the bfloat16 CPU flags (float32), and only the reference, `auto`
and Hugging Face's float32 forward run. The bfloat16 peak it prints is what bfloat16 products
cost there.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from common import (
    CONLL_TEST,
    CONLL_TRAIN,
    REPO_DIR,
    ask,
    base_model_or_tiny,
    benchmark_parser,
    chunks,
    gold_docs,
    hf_tokenizer,
    load_sentences,
    log,
    machine,
    markdown_table,
    ner_overrides,
    ratio,
    reply,
    require_bench_extra,
    require_conll,
    results_dir,
    set_threads,
    word_count,
    write_results,
)

LEARN_RATE = 3e-4
DROPOUT = 0.1
TAG_BATCH = 64
PEAK_SHAPE = (1024, 576, 1536)
PEAK_WARM_UP_S = 1.0
# Kernels limited to AVX2, as on a host with neither AMX nor AVX-512 (`--as-host neither`).
AVX2_ONLY = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
}


# Workers: one method each, in their own process ----------------------------------------------


def train_stepper(args: argparse.Namespace, spec: dict[str, Any]) -> tuple[Any, Any, int]:
    """nlp.update on the checkout's configs/ner.cfg over --steps batches of 8 sentences,
    after an untimed first pass: (step function, nlp, batches)."""
    import spacy
    from spacy.training import Example

    config_path = Path(spec["checkout"]) / "configs" / "ner.cfg"
    overrides = {
        **ner_overrides(args.base_model),
        "training.optimizer.learn_rate.initial_rate": LEARN_RATE,
        "components.llm.model.dtype": spec["dtype"],
        **spec.get("overrides", {}),
    }
    config = spacy.util.load_config(config_path, overrides=overrides)
    nlp = spacy.util.load_model_from_config(config, auto_fill=True)
    sentences = load_sentences(CONLL_TRAIN, args.steps * 8, block=None)
    examples = [
        [Example(nlp.make_doc(doc.text), doc) for doc in gold_docs(nlp, batch)]
        for batch in chunks(sentences, 8)
    ]
    optimizer = nlp.initialize(lambda: [eg for batch in examples for eg in batch])
    spacy.util.fix_random_seed(0)

    def step(i: int) -> None:
        nlp.update(examples[i % len(examples)], sgd=optimizer, drop=DROPOUT, losses={})

    for i in range(len(examples)):
        step(i)
    return step, nlp, len(examples)


def train_worker(args: argparse.Namespace, spec: dict[str, Any]) -> None:
    step, nlp, _ = train_stepper(args, spec)
    serve_blocks(step, args.block, dtype=_encoder_dtype(nlp))


def profile(args: argparse.Namespace) -> Path:
    """torch.profiler over one block of `auto` training steps of this checkout: where a
    step's time goes, by operator (own time), written to precision_profile.txt."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    set_threads(args.threads)
    spec = {"checkout": str(REPO_DIR), "dtype": "auto"}
    step, nlp, n_batches = train_stepper(args, spec)
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        for i in range(n_batches):
            step(i)
        seconds = (time.perf_counter() - start) / n_batches
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25)
    out = results_dir(args.out, args.quick) / "precision_profile.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        f"configs/ner.cfg, dtype auto ({_encoder_dtype(nlp)}), {args.threads} threads, host "
        f"{host_kind(args)}: {seconds:.3f} s/step under the profiler over {n_batches} steps\n\n"
        f"{table}\n"
    )
    return out


def tag_worker(args: argparse.Namespace, spec: dict[str, Any]) -> None:
    """nlp.pipe over the test sentences in timed passes; the last pass's entities."""
    import spacy

    sentences = load_sentences(CONLL_TEST, args.limit)
    texts = [s.text for s in sentences]
    config = {"components.llm.model.dtype": spec["dtype"], **spec.get("overrides", {})}
    if not args.quick:
        config["components.llm.model.name"] = str(args.base_model)
    nlp = spacy.load(args.pipeline, config=config)
    batch_size = spec.get("batch_size", TAG_BATCH)
    list(nlp.pipe(texts[:16], batch_size=batch_size))
    last: list[Any] = []

    def tag(_: int) -> None:
        last[:] = list(nlp.pipe(texts, batch_size=batch_size))

    def entities() -> dict[str, Any]:
        return {"entities": [[(e.start_char, e.end_char, e.label_) for e in d.ents] for d in last]}

    serve_blocks(tag, 1, dtype=_encoder_dtype(nlp), final=entities)


def hf_worker(args: argparse.Namespace, spec: dict[str, Any]) -> None:
    """The base model's own forward (transformers, no LoRA) on the test texts, batches of 64."""
    import torch
    from transformers import AutoModel

    dtype = getattr(torch, spec["dtype"])
    model = AutoModel.from_pretrained(args.base_model, torch_dtype=dtype).eval()
    tokenizer = hf_tokenizer(args.base_model)
    texts = [s.text for s in load_sentences(CONLL_TEST, args.limit)]
    batches = [
        tokenizer(list(batch), padding="longest", return_tensors="pt")
        for batch in chunks(texts, TAG_BATCH)
    ]

    def forward(_: int) -> None:
        with torch.no_grad():
            for batch in batches:
                model(**batch)

    forward(0)
    serve_blocks(forward, 1, dtype=spec["dtype"])


def _encoder_dtype(nlp: Any) -> str:
    """The encoder's dtype by name, spelled out: this runs in the reference checkout too."""
    from spacy_lsllama.nn.precision import weights_dtype

    encoder = nlp.get_pipe("llm").model.shims[0]._model
    return str(weights_dtype(encoder)).removeprefix("torch.")


def serve_blocks(
    run: Callable[[int], None],
    block: int,
    *,
    dtype: str,
    final: Callable[[], dict[str, Any]] = dict,
) -> None:
    """Answer the driver: each line asks for `block` timed runs; an empty line ends, with
    `final()` as the last reply."""
    import torch

    reply(
        {"ready": True, "dtype": dtype, "cpu_capability": torch.backends.cpu.get_cpu_capability()}
    )
    done = 0
    while sys.stdin.readline().strip():
        seconds = []
        for _ in range(block):
            start = time.perf_counter()
            run(done)
            seconds.append(time.perf_counter() - start)
            done += 1
        reply({"seconds": seconds})
    reply({"done": True, **final()})


# Driver --------------------------------------------------------------------------------------


def method_specs(args: argparse.Namespace) -> dict[str, list[dict[str, Any]]]:
    here = str(REPO_DIR)
    reference = [str(args.reference)] if args.reference else []
    no_dropout = {"components.llm.model.lora.dropout": 0.0}
    compiled = {"components.llm.model.compile": True}
    train = [
        *({"name": "reference float32", "checkout": ref, "dtype": "float32"} for ref in reference),
        {"name": "float32", "checkout": here, "dtype": "float32"},
        {
            "name": "bfloat16 (peft dropout)",
            "checkout": here,
            "dtype": "bfloat16",
            "overrides": {"components.llm.model.lora.shared_dropout": False},
        },
        {"name": "auto", "checkout": here, "dtype": "auto"},
        {"name": "auto compiled", "checkout": here, "dtype": "auto", "overrides": compiled},
        {
            "name": "auto, LoRA dropout 0",
            "checkout": here,
            "dtype": "auto",
            "overrides": no_dropout,
        },
        {
            "name": "auto, LoRA dropout 0, compiled",
            "checkout": here,
            "dtype": "auto",
            "overrides": {**no_dropout, **compiled},
        },
    ]
    tag = [
        *({"name": "reference auto", "checkout": ref, "dtype": "auto"} for ref in reference),
        {"name": "float32", "checkout": here, "dtype": "float32"},
        {"name": "bfloat16", "checkout": here, "dtype": "bfloat16"},
        {"name": "auto", "checkout": here, "dtype": "auto"},
        {
            "name": "bfloat16 compiled",
            "checkout": here,
            "dtype": "bfloat16",
            "overrides": {"components.llm.model.compile": True},
        },
        {
            "name": "bfloat16, 32 rows a forward",
            "checkout": here,
            "dtype": "bfloat16",
            "overrides": {"components.llm.model.rows_per_forward": 32},
        },
        {
            "name": "bfloat16 compiled, 32 rows a forward",
            "checkout": here,
            "dtype": "bfloat16",
            "overrides": {
                "components.llm.model.compile": True,
                "components.llm.model.rows_per_forward": 32,
            },
        },
        *(
            {
                "name": "reference auto, batches of 128",
                "checkout": ref,
                "dtype": "auto",
                "batch_size": 128,
            }
            for ref in reference
        ),
        {
            "name": "bfloat16 compiled, 64 rows a forward, batches of 128",
            "checkout": here,
            "dtype": "bfloat16",
            "batch_size": 128,
            "overrides": {
                "components.llm.model.compile": True,
                "components.llm.model.rows_per_forward": 64,
            },
        },
        {
            "name": "bfloat16, LoRA unmerged",
            "checkout": here,
            "dtype": "bfloat16",
            "overrides": {"components.llm.model.merge_lora": False},
        },
        {"name": "hf float32", "checkout": here, "dtype": "float32", "kind": "hf"},
        {"name": "hf bfloat16", "checkout": here, "dtype": "bfloat16", "kind": "hf"},
    ]
    if args.as_host == "neither":
        train, tag = _as_host_without_bf16(train), _as_host_without_bf16(tag)
    skip = set(args.skip or ())
    return {
        "train": [] if "train" in skip else train,
        "tag": tag if args.pipeline and "tag" not in skip else [],
    }


def _as_host_without_bf16(specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The methods that differ on a host without bfloat16 units: both checkouts' `auto`, as
    the float32 that `auto_dtype` picks there, and Hugging Face's float32 forward."""
    from spacy_lsllama.nn.precision import auto_dtype, dtype_name

    auto = dtype_name(auto_dtype("cpu", flags=frozenset()))
    kept = [
        s
        for s in specs
        if s["name"] in ("reference float32", "reference auto", "auto", "hf float32")
    ]
    return [{**spec, "dtype": auto if spec["dtype"] == "auto" else spec["dtype"]} for spec in kept]


def start(args: argparse.Namespace, kind: str, spec: dict[str, Any]) -> subprocess.Popen:
    command = [
        sys.executable, str(Path(__file__).resolve()), "--worker", kind, "--spec", json.dumps(spec),
        "--base-model", str(args.base_model), "--steps", str(args.steps),
        "--block", str(args.block), "--threads", str(args.threads), "--limit", str(args.limit),
        *(["--pipeline", str(args.pipeline)] if args.pipeline else []),
        *(["--quick"] if args.quick else []),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": spec["checkout"], "OMP_NUM_THREADS": str(args.threads)}
    return subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=env,
    )  # fmt: skip


def run_methods(args: argparse.Namespace, part: str, specs: Sequence[dict[str, Any]]) -> dict:
    """Start the methods one after another (setup is not timed), then time them in turns.

    Workers wait while the others run, so only one computes at a time."""
    results: dict[str, dict[str, Any]] = {}
    processes: dict[str, subprocess.Popen] = {}
    for spec in specs:
        kind = spec.get("kind", part)
        log(f"{part}: {spec['name']}: setting up")
        processes[spec["name"]] = process = start(args, kind, spec)
        try:
            results[spec["name"]] = {**ask(process), "seconds": []}
        except RuntimeError as err:
            log(f"{part}: {spec['name']} failed: {err}")
            results[spec["name"]] = {"error": str(err)}
            del processes[spec["name"]]
    for round_ in range(args.rounds):
        for name, process in processes.items():
            results[name]["seconds"] += ask(process, "block")["seconds"]
        log(f"{part}: round {round_ + 1}/{args.rounds} timed")
    for name, process in processes.items():
        stdin: IO[str] = process.stdin  # type: ignore[assignment]
        stdin.write("\n")
        stdin.flush()
        results[name].update(ask(process))
        process.wait()
        results[name]["median_s"] = statistics.median(results[name]["seconds"])
    return results


def matmul_peaks(threads: int) -> dict[str, float]:
    """Best-of-20 GFLOP/s of a 1024x576 by 576x1536 product in float32 and bfloat16, each
    after a second of the same products: timed straight away, a cold process once measured
    half the float32 peak."""
    import torch

    set_threads(threads)
    m, k, n = PEAK_SHAPE
    peaks = {}
    for dtype in (torch.float32, torch.bfloat16):
        a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
        warm_until = time.perf_counter() + PEAK_WARM_UP_S
        while time.perf_counter() < warm_until:
            torch.mm(a, b)
        best = min(_timed_mm(a, b) for _ in range(20))
        peaks[str(dtype).removeprefix("torch.")] = 2 * m * k * n / best / 1e9
    return peaks


def _timed_mm(a: Any, b: Any) -> float:
    import torch

    start = time.perf_counter()
    torch.mm(a, b)
    return time.perf_counter() - start


def host_kind(args: argparse.Namespace) -> str:
    from spacy_lsllama.nn.precision import cpu_flags

    flags = cpu_flags()
    kind = "AMX" if "amx_bf16" in flags else "AVX-512-BF16" if "avx512_bf16" in flags else "neither"
    if args.as_host == "neither" and kind != "neither":
        return f"neither, emulated (kernels limited to AVX2 on an {kind} host)"
    return kind


def weights_per_piece(base: Path) -> int:
    """Matrix weights of the decoder outside the embeddings: FLOPs per piece = 2x this."""
    from transformers import AutoModel

    model = AutoModel.from_pretrained(base)
    return sum(p.numel() for n, p in model.named_parameters() if p.dim() == 2 and "embed" not in n)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    specs = method_specs(args)
    result: dict[str, Any] = {
        "machine": {**machine(), "torch_threads": args.threads, "host_kind": host_kind(args)},
        "reference": str(args.reference) if args.reference else None,
        "peaks_gflops": matmul_peaks(args.threads),
    }
    weights = weights_per_piece(args.base_model)
    tokenizer = hf_tokenizer(args.base_model)
    train_sentences = load_sentences(CONLL_TRAIN, args.steps * 8, block=None)
    train_pieces = sum(len(tokenizer(s.text)["input_ids"]) for s in train_sentences) / args.steps
    result["train"] = run_methods(args, "train", specs["train"]) if specs["train"] else {}
    result["train_pieces_per_step"] = train_pieces
    for row in result["train"].values():
        if "median_s" in row:
            row["useful_gflops"] = 4 * weights * train_pieces / row["median_s"] / 1e9
    if specs["tag"]:
        sentences = load_sentences(CONLL_TEST, args.limit)
        words = word_count(sentences)
        pieces = sum(len(tokenizer(s.text)["input_ids"]) for s in sentences)
        result["tag"] = run_methods(args, "tag", specs["tag"])
        result["tag_words"], result["tag_pieces"] = words, pieces
        raw = results_dir(args.out, args.quick) / "precision.raw.json"
        raw.parent.mkdir(parents=True, exist_ok=True)
        raw.write_text(json.dumps(result))  # kept should scoring fail
        add_tag_scores(result["tag"], sentences, words, pieces, weights)
    result["ratios"] = ratios(result)
    return result


def add_tag_scores(
    rows: dict[str, dict[str, Any]], sentences: Sequence[Any], words: int, pieces: int, weights: int
) -> None:
    import spacy
    from spacy.training import Example
    from spacy.util import filter_spans

    from spacy_lsllama.pipeline.scorers import ner_scores

    nlp = spacy.blank("en")
    gold = gold_docs(nlp, sentences)
    for row in rows.values():
        if "median_s" not in row:
            continue
        row["words_per_s"] = words / row["median_s"]
        row["pieces_per_s"] = pieces / row["median_s"]
        row["useful_gflops"] = 2 * weights * pieces / row["median_s"] / 1e9
        if "entities" in row:
            # the pipelines' tokenizer is spaCy's English one, as `nlp` here; Example
            # aligns its tokens with the gold words
            predicted = [nlp.make_doc(g.text) for g in gold]
            for doc, ents in zip(predicted, row.pop("entities"), strict=True):
                spans = (doc.char_span(s, e, label) for s, e, label in ents)
                doc.ents = filter_spans([span for span in spans if span is not None])
            examples = [Example(p, g) for p, g in zip(predicted, gold, strict=True)]
            row["f1"] = 100 * ner_scores(examples)["f1"]


def ratios(result: dict[str, Any]) -> dict[str, float | None]:
    train, tag = result["train"], result.get("tag", {})

    def speedup(rows: dict, fast: str, slow: str, key: str = "median_s") -> float | None:
        return ratio(rows.get(slow, {}).get(key), rows.get(fast, {}).get(key))

    return {
        "train_auto_vs_reference": speedup(train, "auto", "reference float32"),
        "train_auto_vs_float32": speedup(train, "auto", "float32"),
        "train_float32_vs_reference": speedup(train, "float32", "reference float32"),
        "train_shared_dropout_gain": speedup(train, "auto", "bfloat16 (peft dropout)"),
        "train_compiled_vs_eager_auto": speedup(train, "auto compiled", "auto"),
        "train_auto_compiled_vs_reference": speedup(train, "auto compiled", "reference float32"),
        "train_no_lora_dropout_gain": speedup(train, "auto, LoRA dropout 0", "auto"),
        "train_compiled_vs_eager_no_lora_dropout": speedup(
            train, "auto, LoRA dropout 0, compiled", "auto, LoRA dropout 0"
        ),
        "tag_auto_vs_reference": speedup(tag, "auto", "reference auto"),
        "tag_bfloat16_vs_float32": speedup(tag, "bfloat16", "float32"),
        "tag_bfloat16_vs_hf_bfloat16": speedup(tag, "bfloat16", "hf bfloat16"),
        "tag_compiled_vs_eager_bfloat16": speedup(tag, "bfloat16 compiled", "bfloat16"),
        "tag_32_rows_vs_8_bfloat16": speedup(tag, "bfloat16, 32 rows a forward", "bfloat16"),
        "tag_merged_vs_unmerged_bfloat16": speedup(tag, "bfloat16", "bfloat16, LoRA unmerged"),
        "tag_compiled_32_rows_vs_reference": speedup(
            tag, "bfloat16 compiled, 32 rows a forward", "reference auto"
        ),
        "tag_compiled_64_rows_vs_reference_batches_of_128": speedup(
            tag,
            "bfloat16 compiled, 64 rows a forward, batches of 128",
            "reference auto, batches of 128",
        ),
    }


def report(result: dict[str, Any]) -> str:
    peaks = result["peaks_gflops"]
    m = result["machine"]
    lines = [
        "## Mixed precision on CPU: training step and tagging\n",
        f"Host: {m['cpu']}, {m['host_kind']} ({m['cpu_capability']}), {m['torch_threads']} "
        f"torch threads; matrix-product peak float32 {peaks['float32']:.0f} GFLOP/s, bfloat16 "
        f"{peaks['bfloat16']:.0f} GFLOP/s. Reference checkout: {result['reference'] or '–'}.\n",
    ]
    rows = [
        [name, r.get("dtype"), r.get("median_s"), r.get("useful_gflops"),
         _share(r.get("useful_gflops"), peaks, r.get("dtype")), r.get("error")]
        for name, r in result["train"].items()
    ]  # fmt: skip
    lines.append(
        f"### Training: configs/ner.cfg, batches of 8 CoNLL-2003 sentences "
        f"({result['train_pieces_per_step']:.0f} pieces a step)\n\n"
        + markdown_table(
            ["method", "weights", "s/step (median)", "useful GFLOP/s", "share of peak", "error"],
            rows,
        )
    )
    if "tag" in result:
        rows = [
            [name, r.get("dtype"), r.get("words_per_s"), r.get("pieces_per_s"), r.get("f1"),
             r.get("useful_gflops"), _share(r.get("useful_gflops"), peaks, r.get("dtype")),
             r.get("error")]
            for name, r in result["tag"].items()
        ]  # fmt: skip
        lines.append(
            f"\n### Tagging: {result['tag_words']} words of CoNLL-2003 test, batch {TAG_BATCH} "
            "unless the method says otherwise\n\n"
            + markdown_table(
                [
                    "method",
                    "weights",
                    "words/s",
                    "pieces/s",
                    "F1",
                    "useful GFLOP/s",
                    "share of peak",
                    "error",
                ],
                rows,
            )  # fmt: skip
        )
    ratio_text = ", ".join(
        f"{key} = {value:.2f}x" for key, value in result["ratios"].items() if value is not None
    )
    lines.append(f"\nRatios (same run): {ratio_text}.\n")
    return "\n".join(lines)


def _share(gflops: float | None, peaks: dict[str, float], dtype: str | None) -> str:
    if gflops is None or dtype not in peaks:
        return "–"
    return f"{100 * gflops / peaks[dtype]:.0f} %"


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        args.base_model = base_model_or_tiny(args.base_model, args.quick, tmp)
        result = measure(args)
    write_results(results_dir(args.out, args.quick), "precision", result, report(result))
    return result


def parser() -> argparse.ArgumentParser:
    p = benchmark_parser(__doc__.splitlines()[0], "tiny random model, this checkout only")
    p.add_argument("--reference", type=Path, help="a checkout of the reference commit")
    p.add_argument("--pipeline", type=Path, help="a trained lsllama_ner pipeline to tag with")
    p.add_argument("--steps", type=int, default=8, help="training batches (cycled)")
    p.add_argument("--block", type=int, default=4, help="timed steps per turn")
    p.add_argument("--rounds", type=int, default=3, help="turns per method")
    p.add_argument("--limit", type=int, default=320, help="CoNLL test sentences to tag")
    p.add_argument("--skip", action="append", choices=["train", "tag"], help="leave a part out")
    p.add_argument(
        "--as-host", choices=["neither"], help="emulate a host without bfloat16 matrix units"
    )
    p.add_argument("--profile", action="store_true", help="profile `auto` training steps only")
    p.add_argument("--worker", choices=["train", "tag", "hf"], help=argparse.SUPPRESS)
    p.add_argument("--spec", help=argparse.SUPPRESS)
    return p


def apply_quick(args: argparse.Namespace) -> None:
    """--quick: 2 batches, one turn of one step, 16 sentences to tag."""
    if args.quick:
        args.steps, args.block, args.rounds, args.limit = 2, 1, 1, 16


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parser().parse_args(argv)
    apply_quick(args)
    if args.as_host == "neither":
        os.environ.update(AVX2_ONLY)  # before torch computes anything; workers inherit it
    if args.worker:
        set_threads(args.threads)
        worker = {"train": train_worker, "tag": tag_worker, "hf": hf_worker}[args.worker]
        worker(args, json.loads(args.spec))
        return {}
    require_bench_extra()
    require_conll(CONLL_TRAIN, CONLL_TEST)
    if args.profile:
        with tempfile.TemporaryDirectory() as tmp:
            args.base_model = base_model_or_tiny(args.base_model, args.quick, tmp)
            log(f"profile written to {profile(args)}")
        return {}
    return run(args)


if __name__ == "__main__":
    main()
