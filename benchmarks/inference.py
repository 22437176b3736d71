"""Inference words/s on CoNLL-2003 test: spacy-lsllama vs spacy-transformers vs the HF path.

(a) lsllama: the `lsllama_transformer` + `lsllama_ner` pipeline (trained via --pipeline, or
    built untrained from configs/ner.cfg: speed does not depend on the weights).
(b) spacy-transformers: the same base model in its stock `transformer` component with a
    listener-based spaCy `ner` (causal, as stock transformers runs a decoder).
(c) Hugging Face: the paper's path, LlamaForTokenClassification unmasked with a 4D padding
    mask, peft LoRA, batches of 8 padded to the longest, under torch.no_grad().

All run in this process with the same torch threads; ratios compare numbers from this run.
Then for (a): useful FLOP/s against the matmul peak, padding, a time breakdown by stage, and
the inference levers (inference_mode, bfloat16, merged LoRA, int8) with their accuracy.

    python benchmarks/inference.py --base-model models/smollm2-135m [--pipeline PATH] [--quick]
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import tempfile
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any

from breakdown import Padding, breakdown, padding, padding_fraction, piece_lengths
from common import (
    CONLL_TEST,
    NER_CONFIG,
    TAGS,
    WARMUP_SENTENCES,
    FlopModel,
    Sentence,
    add_pipeline_options,
    base_model_or_tiny,
    benchmark_parser,
    chunks,
    entity_f1,
    flop_model,
    gold_docs,
    hf_token_classifier,
    hf_tokenizer,
    load_sentences,
    log,
    machine,
    markdown_table,
    ner_overrides,
    ratio,
    require_bench_extra,
    results_dir,
    save_figure,
    set_threads,
    spread,
    time_pipe,
    timed,
    word_count,
    write_results,
)
from levers import measure_levers, report_levers
from matmul_peak import matmul_gflops
from matmul_peak import measure as measure_peak

BARE_SHAPE = (32, 40)  # rows × pieces: the dense batch of the bare-forward ceiling
PROBE_SIZE, PROBE_REPEATS = 1024, 3  # the matmul peak probe between blocks

STOCK_CONFIG = """
[nlp]
lang = "en"
pipeline = ["transformer", "ner"]

[components]

[components.transformer]
factory = "transformer"
max_batch_items = 4096

[components.transformer.model]
@architectures = "spacy-transformers.TransformerModel.v3"
name = {name}
tokenizer_config = {"use_fast": true}
mixed_precision = false

[components.transformer.model.get_spans]
@span_getters = "spacy-transformers.strided_spans.v1"
window = 128
stride = 96

[components.ner]
factory = "ner"

[components.ner.model]
@architectures = "spacy.TransitionBasedParser.v2"
state_type = "ner"
extra_state_tokens = false
hidden_width = 64
maxout_pieces = 2
use_upper = false

[components.ner.model.tok2vec]
@architectures = "spacy-transformers.TransformerListener.v1"
grad_factor = 1.0

[components.ner.model.tok2vec.pooling]
@layers = "reduce_mean.v1"
"""


# Pipelines -----------------------------------------------------------------------------------


def initialize(nlp: Any, sentences: Sequence[Sentence]) -> Any:
    """Initialize a pipeline's weights and labels from gold sentences."""
    from spacy.training import Example

    golds = gold_docs(nlp, sentences)
    nlp.initialize(lambda: [Example(nlp.make_doc(doc.text), doc) for doc in golds])
    return nlp


def lsllama_pipeline(base: Path, pipeline: Path | None, sentences: Sequence[Sentence]) -> Any:
    """(a): the trained pipeline, or configs/ner.cfg initialized with the base model."""
    import spacy

    if pipeline is not None:
        # float32 like the references; the bfloat16 lever measures "auto" on a CPU with AMX.
        return spacy.load(pipeline, config={"components.llm.model.dtype": "float32"})
    config = spacy.util.load_config(NER_CONFIG, overrides=ner_overrides(base))
    return initialize(spacy.util.load_model_from_config(config, auto_fill=True), sentences)


def stock_pipeline(base: Path, sentences: Sequence[Sentence]) -> Any:
    """(b): spacy-transformers' own transformer component and a listening spaCy ner."""
    import spacy

    text = STOCK_CONFIG.replace("{name}", json.dumps(str(base)))
    config = spacy.util.load_config_from_str(text)
    return initialize(spacy.util.load_model_from_config(config, auto_fill=True), sentences)


def base_of(pipeline: Path) -> Path:
    """The base model a trained lsllama pipeline refers to."""
    import spacy

    config = spacy.util.load_config(pipeline / "config.cfg", interpolate=True)
    return Path(config["components"]["llm"]["model"]["name"])


# The Hugging Face reference path (c) ---------------------------------------------------------


class HfReference:
    """The paper's inference loop: tokenize a batch, pad to longest, forward, argmax."""

    def __init__(self, base: Path, batch_size: int = 8):
        self.tokenizer = hf_tokenizer(base)
        self.model = hf_token_classifier(base, len(TAGS)).eval()
        self.batch_size = batch_size
        self.lengths: list[int] = []
        self.computed = Padding()

    def run(self, texts: Sequence[str], record: bool = True) -> float:
        """Seconds to tag the texts in batches of `batch_size`, recording the pieces."""
        return timed(lambda: self._run(texts, record))[0]

    def _run(self, texts: Sequence[str], record: bool) -> None:
        import torch

        from spacy_lsllama.nn.unmasking import padding_mask_4d

        with torch.no_grad():
            for batch in chunks(texts, self.batch_size):
                enc = self.tokenizer(list(batch), padding="longest", return_tensors="pt")
                mask = padding_mask_4d(enc["attention_mask"], self.model.dtype)
                logits = self.model(input_ids=enc["input_ids"], attention_mask=mask).logits
                logits.argmax(-1).tolist()
                if record:
                    self.lengths.extend(enc["attention_mask"].sum(1).tolist())
                    self.computed.add(int(enc["attention_mask"].sum()), *enc["input_ids"].shape)


class BareForward:
    """The ceiling: the decoder alone on a dense batch of random pieces (no padding, no mask).

    What this reaches of the matmul peak is the most any pipeline over this model's shapes
    can; what (a) falls short of it is lost to padding, tokenization, alignment and Python.
    """

    def __init__(self, model: Any, rows: int, width: int):
        self.model = model
        self.rows, self.width = rows, width
        self.forwards = 0

    def run(self, record: bool = True) -> float:
        """Seconds of one forward pass of a rows×width batch."""
        import torch

        ids = torch.randint(self.model.config.vocab_size, (self.rows, self.width))
        with torch.no_grad():
            seconds = timed(lambda: self.model(input_ids=ids, use_cache=False))[0]
        self.forwards += record
        return seconds

    def throughput(self, seconds: float, flops: FlopModel) -> dict[str, Any]:
        pieces = self.forwards * self.rows * self.width
        return {
            "seconds": seconds,
            "shape": [self.rows, self.width],
            "forwards": self.forwards,
            "pieces_per_s": pieces / seconds,
            "useful_gflops_per_s": flops.total([self.width] * self.rows * self.forwards)
            / seconds
            / 1e9,
        }


# Putting it together -------------------------------------------------------------------------


def throughput(
    seconds: float, words: int, flops: FlopModel, lengths: Sequence[int], padded: Padding
) -> dict:
    """Words/s, useful GFLOP/s (real pieces only) and computed GFLOP/s (padding included)."""
    return {
        "seconds": seconds,
        "words_per_s": words / seconds,
        "useful_gflops_per_s": flops.total(lengths) / seconds / 1e9,
        "computed_gflops_per_s": flops.total(padded.widths) / seconds / 1e9,
        **padded.counts(),
    }


def time_interleaved(
    nlp: Any,
    hf: HfReference,
    bare: BareForward,
    texts: Sequence[str],
    batch_size: int,
    record: bool = True,
) -> tuple[float, list[Any], float, float, float]:
    """Seconds of (a), (c) and the bare forward, alternating block by block (`batch_size`),
    and the best matmul GFLOP/s of a probe after each block.

    This machine's speed drifts by tens of percent within minutes; alternating makes the
    drift hit all three alike, so their ratios hold even when the absolute figures move, and
    the probe measures the peak in the same minutes as the methods it is compared with.
    """
    list(nlp.pipe(texts[:WARMUP_SENTENCES], batch_size=batch_size))
    hf.run(texts[:WARMUP_SENTENCES], record=False)
    bare.run(record=False)
    a_seconds, c_seconds, d_seconds, peak, docs = 0.0, 0.0, 0.0, 0.0, []
    for block in chunks(texts, batch_size):
        seconds, block_docs = timed(partial(list, nlp.pipe(block, batch_size=batch_size)))
        a_seconds += seconds
        docs += block_docs
        c_seconds += hf.run(block, record)
        d_seconds += bare.run(record)
        peak = max(peak, matmul_gflops(PROBE_SIZE, PROBE_REPEATS))
    return a_seconds, docs, c_seconds, d_seconds, peak


def median_rounds(
    nlp: Any, hf: HfReference, bare: BareForward, texts: Sequence[str], args: argparse.Namespace
) -> tuple[float, list[Any], float, float, float]:
    """`time_interleaved` over `args.rounds` passes: the median of each method's seconds and
    of each pass's peak.

    Short stalls of this shared host hit one pass, not the median; pieces, padding and
    predictions are recorded in the first pass only.
    """
    passes = [
        time_interleaved(nlp, hf, bare, texts, args.batch_size, record=i == 0)
        for i in range(args.rounds)
    ]
    a, c, d, peak = (statistics.median(p[k] for p in passes) for k in (0, 2, 3, 4))
    return a, passes[0][1], c, d, peak


def measure_lsllama_and_hf(
    nlp: Any, base: Path, sentences: Sequence[Sentence], args: argparse.Namespace
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(a), (c) and the bare forward: words/s, useful FLOP/s, padding, (trained) F1 of (a)."""
    from spacy_lsllama.layers.transformer_model import get_encoder

    texts, words = [s.text for s in sentences], word_count(sentences)
    hf = HfReference(base)
    encoder = get_encoder(nlp.get_pipe("llm").model)
    bare = BareForward(encoder.model, *((4, 16) if args.quick else BARE_SHAPE))
    a_seconds, docs, c_seconds, d_seconds, peak = median_rounds(nlp, hf, bare, texts, args)
    flops = flop_model(encoder.model, lora_merged=encoder.lora_merged)
    a = {
        **throughput(
            a_seconds,
            words,
            flops,
            piece_lengths(nlp, texts),
            padding(nlp, texts, args.batch_size),
        ),
        "f1": entity_f1(docs, sentences, nlp) if args.pipeline else None,
        "flop_model": asdict(flops),
        "interleaved_peak_gflops": peak,
    }
    c = throughput(c_seconds, words, flop_model(hf.model), hf.lengths, hf.computed)
    d = bare.throughput(d_seconds, flops)
    log(f"(a) spacy-lsllama: {a['words_per_s']:.1f} words/s")
    log(f"(c) Hugging Face reference: {c['words_per_s']:.1f} words/s")
    log(f"bare forward {bare.rows}x{bare.width}: {d['pieces_per_s']:.1f} pieces/s")
    return a, c, d


def with_vocab_file(base: Path, tmp: str) -> Path:
    """The base model as stock spacy-transformers can load it.

    spacy-transformers 1.x reads `tokenizer.vocab_file`, which a Llama tokenizer built from
    `tokenizer.json` alone (as from a GGUF file) does not have: it gets a folder of links to
    the base model's files plus an empty `tokenizer.model`, which the fast tokenizer records
    but never reads.
    """
    if (base / "tokenizer.model").exists():
        return base
    linked = Path(tmp) / base.name
    linked.mkdir()
    for file in base.iterdir():
        (linked / file.name).symlink_to(file.resolve())
    (linked / "tokenizer.model").touch()
    return linked


def measure_stock(base: Path, sentences: Sequence[Sentence], batch_size: int) -> dict[str, Any]:
    """(b), or the error that stops spacy-transformers from running the base model."""
    try:
        with tempfile.TemporaryDirectory() as tmp:
            nlp = stock_pipeline(with_vocab_file(base, tmp), sentences)
        run = time_pipe(nlp, [s.text for s in sentences], batch_size)
    except Exception as err:
        error = "".join(traceback.format_exception_only(type(err), err)).strip()[:1000]
        log(f"(b) spacy-transformers failed: {error.splitlines()[-1]}")
        return {"error": error}
    result = {"seconds": run.seconds, "words_per_s": word_count(sentences) / run.seconds}
    log(f"(b) spacy-transformers: {result['words_per_s']:.1f} words/s")
    return result


def measure(args: argparse.Namespace, peak_gflops: float | None = None) -> dict[str, Any]:
    """All inference measurements of one run, in one process."""
    if peak_gflops is None:
        peak_gflops = measure_peak(args.quick)["peak_gflops"]
    sentences = load_sentences(args.data, args.limit)
    log(f"inference on {len(sentences)} sentences, {args.base_model}")
    nlp = lsllama_pipeline(args.base_model, args.pipeline, sentences)
    a, c, bare = measure_lsllama_and_hf(nlp, args.base_model, sentences, args)
    gc.collect()
    reference = a["interleaved_peak_gflops"]
    for m in (a, c, bare):
        m["peak_fraction"] = m["useful_gflops_per_s"] / reference
        m["start_peak_fraction"] = m["useful_gflops_per_s"] / peak_gflops
    a["bare_fraction"] = a["useful_gflops_per_s"] / bare["useful_gflops_per_s"]
    part = spread(sentences, args.breakdown_limit, 64)
    stages = breakdown(nlp, [s.text for s in part], args.batch_size)
    log(f"(a) time breakdown done ({len(part)} sentences)")
    b = measure_stock(args.base_model, sentences, args.batch_size)
    gc.collect()
    lever_part = spread(sentences, args.lever_limit, 64)
    levers = measure_levers(
        nlp,
        lever_part,
        args.batch_size,
        args.pipeline is not None,
        a["peak_fraction"],
    )
    return {
        "sentences": len(sentences),
        "words": word_count(sentences),
        "batch_size": args.batch_size,
        "rounds": args.rounds,
        "base_model": str(args.base_model),
        "pipeline": str(args.pipeline) if args.pipeline else None,
        "peak_gflops": peak_gflops,
        "reference_peak_gflops": reference,
        "machine": machine(),
        "lsllama": a,
        "stock": b,
        "hf": c,
        "bare_forward": bare,
        "ratios": {
            "lsllama_vs_hf": ratio(a["words_per_s"], c["words_per_s"]),
            "lsllama_vs_stock": ratio(a["words_per_s"], b.get("words_per_s")),
        },
        "breakdown": {"sentences": len(part), "seconds": stages},
        "levers": {"sentences": len(lever_part), "rows": levers},
    }


# Report --------------------------------------------------------------------------------------

METHODS = {
    "lsllama": "(a) spacy-lsllama: lsllama_transformer + lsllama_ner",
    "stock": "(b) spacy-transformers: transformer + listener ner (causal)",
    "hf": "(c) HF LlamaForTokenClassification + peft, batch 8",
}


def method_rows(result: dict[str, Any]) -> list[list[Any]]:
    a = result["lsllama"]
    return [
        [
            label,
            m.get("words_per_s"),
            ratio(m.get("words_per_s"), a["words_per_s"]),
            m.get("useful_gflops_per_s"),
            m.get("peak_fraction"),
            m.get("computed_gflops_per_s"),
            padding_fraction(m),
            m.get("f1"),
        ]
        for label, m in ((METHODS[key], result[key]) for key in METHODS)
    ]


def report(result: dict[str, Any]) -> str:
    """The Markdown report: throughput, ratios, FLOP/s, breakdown and levers."""
    a, ratios = result["lsllama"], result["ratios"]
    headers = ["method", "words/s", "× (a)", "useful GFLOP/s", "of peak", "computed GFLOP/s",
               "padding", "F1 (%)"]  # fmt: skip
    lines = [
        f"## Inference: CoNLL-2003 test, {result['sentences']} sentences, {result['words']} words",
        "",
        f"{result['machine']['torch_threads']} torch threads, nlp.pipe batch_size "
        f"{result['batch_size']}, base `{result['base_model']}`, pipeline "
        f"`{result['pipeline'] or 'untrained (configs/ner.cfg)'}`. (a), (c) and the "
        f"ceiling are timed alternately block by block, with a {PROBE_SIZE}² matmul probe "
        f"(best of {PROBE_REPEATS}) after each block; each figure is the median of "
        f"{result['rounds']} such passes. **Matmul peak: {result['reference_peak_gflops']:.1f} "
        f"GFLOP/s**, the best probe of a pass (median over passes), measured in the same "
        f"minutes as the methods; at the start of the run it was {result['peak_gflops']:.1f} "
        f"GFLOP/s, on which (a) would reach {a['start_peak_fraction']:.0%}.",
        "",
        markdown_table(headers, method_rows(result)),
        "",
        f"**(a)/(c) = {_x(ratios['lsllama_vs_hf'])}** (target ≥ 1.5×), "
        f"**(a)/(b) = {_x(ratios['lsllama_vs_stock'])}** (target ≥ 1× at equal F1), "
        f"**(a) useful FLOP/s = {a['peak_fraction']:.0%} of matmul peak** (target ≥ 70 %).",
        "",
        *report_bare(result["bare_forward"], a),
    ]
    if "error" in result["stock"]:
        lines += ["", f"(b) could not run: `{result['stock']['error'].splitlines()[-1]}`"]
    lines += ["", *report_breakdown(result["breakdown"]), "", *report_levers(result["levers"])]
    return "\n".join(lines)


def _x(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}×"


def report_bare(bare: dict[str, Any], a: dict[str, Any]) -> list[str]:
    rows, width = bare["shape"]
    return [
        f"Ceiling: the decoder alone on dense {rows}×{width} batches of random pieces (no "
        f"padding, no mask, no pipeline), timed between the same blocks: "
        f"{bare['pieces_per_s']:.1f} pieces/s, {bare['useful_gflops_per_s']:.1f} GFLOP/s = "
        f"**{bare['peak_fraction']:.0%} of matmul peak**; (a) reaches "
        f"**{a['bare_fraction']:.0%} of this ceiling**.",
    ]


def report_breakdown(part: dict[str, Any]) -> list[str]:
    total = sum(part["seconds"].values())
    rows = [[stage, s, s / total] for stage, s in part["seconds"].items()]
    return [
        f"### Where (a) spends its time ({part['sentences']} sentences)",
        "",
        markdown_table(["stage", "seconds", "share"], rows + [["total", total, 1.0]]),
    ]


def plot(result: dict[str, Any], out_dir: Path) -> list[Path]:
    """Bar charts: words/s per method and lever, seconds per stage."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.5))
    methods = {
        "(a) lsllama": result["lsllama"],
        "(b) spacy-trf": result["stock"],
        "(c) HF": result["hf"],
    }
    names = [n for n, m in methods.items() if m.get("words_per_s")]
    left.barh(
        names, [methods[n]["words_per_s"] for n in names], color=["C0", "C1", "C2"][: len(names)]
    )
    left.set_xlabel("words/s (higher is better)")
    left.set_title("Inference throughput")
    levers = [r for r in result["levers"]["rows"] if r.get("words_per_s")]
    right.barh([r["lever"] for r in levers], [r["words_per_s"] for r in levers], color="C0")
    right.set_xlabel("words/s")
    right.set_title("Levers on (a)")
    for ax in (left, right):
        ax.invert_yaxis()
    paths = [save_figure(fig, out_dir / "inference_throughput.png")]
    fig, ax = plt.subplots(figsize=(8, 4))
    part = result["breakdown"]["seconds"]
    ax.barh(list(part), list(part.values()), color="C3")
    ax.invert_yaxis()
    ax.set_xlabel("seconds")
    ax.set_title(f"(a) time by stage, {result['breakdown']['sentences']} sentences")
    paths.append(save_figure(fig, out_dir / "inference_breakdown.png"))
    return paths


def parser() -> argparse.ArgumentParser:
    p = benchmark_parser(__doc__.splitlines()[0], "a few dozen sentences (smoke test)")
    add_pipeline_options(p, batch_size=64, rounds=3)
    p.add_argument("--data", type=Path, default=CONLL_TEST)
    p.add_argument("--limit", type=int, default=640, help="sentences for (a)-(c); 0: all 3453")
    p.add_argument("--lever-limit", type=int, default=192, help="sentences for the levers")
    p.add_argument("--breakdown-limit", type=int, default=192, help="sentences for the breakdown")
    return p


def apply_quick(args: argparse.Namespace) -> None:
    """--quick: 48 sentences everywhere."""
    if args.quick:
        args.limit = min(args.limit or 48, 48)
        args.lever_limit = min(args.lever_limit, 48)
        args.breakdown_limit = min(args.breakdown_limit, 48)
        args.rounds = 1


def run(args: argparse.Namespace, peak_gflops: float | None = None) -> dict[str, Any]:
    """Measure, write inference.json/.md and plots under args.out."""
    result = measure(args, peak_gflops)
    out = results_dir(args.out, args.quick)
    write_results(out, "inference", result, report(result))
    plot(result, out)
    return result


def run_script(
    parser: argparse.ArgumentParser,
    apply_quick: Callable[[argparse.Namespace], None],
    run: Callable[[argparse.Namespace], dict[str, Any]],
    argv: list[str] | None,
) -> dict[str, Any]:
    """A pipeline script's `run` on --base-model, else the --pipeline's base, else (--quick)
    a tiny one."""
    args = parser.parse_args(argv)
    require_bench_extra()
    apply_quick(args)
    set_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        if args.base_model is None and args.pipeline is not None:
            args.base_model = base_of(args.pipeline)
        args.base_model = base_model_or_tiny(args.base_model, args.quick, tmp)
        return run(args)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return run_script(parser(), apply_quick, run, argv)


if __name__ == "__main__":
    main()
