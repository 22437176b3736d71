"""Shared helpers for the benchmarks: data, threads, timing, FLOP counts and result files."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"


def results_dir(out: Path | None, quick: bool) -> Path:
    """--out, else benchmarks/results, or benchmarks/results/quick for a --quick smoke test
    (so a smoke test never overwrites the results of a real run)."""
    return out or (RESULTS_DIR / "quick" if quick else RESULTS_DIR)


def conll_dir() -> Path:
    """CoNLL-2003: $LSLLAMA_CONLL_DIR, else the project's assets, else the shared datasets
    beside the checkout or at /work/shared (where the tests look too, so that a clone made
    anywhere on this kind of machine finds them)."""
    if os.environ.get("LSLLAMA_CONLL_DIR"):
        return Path(os.environ["LSLLAMA_CONLL_DIR"])
    candidates = [
        REPO_DIR / "assets" / "conll2003",
        REPO_DIR.parent / "shared" / "datasets" / "conll2003",
        Path("/work/shared/datasets/conll2003"),
    ]
    found = [path for path in candidates if (path / "eng.testb").is_file()]
    return found[0] if found else candidates[0]


CONLL_DIR = conll_dir()
CONLL_TEST = CONLL_DIR / "eng.testb"
CONLL_TRAIN = CONLL_DIR / "eng.train"
NER_CONFIG = REPO_DIR / "configs" / "ner.cfg"
TAGS = ["O"] + [f"{p}-{label}" for label in ("LOC", "MISC", "ORG", "PER") for p in "BI"]
LORA = {"r": 12, "alpha": 32, "dropout": 0.1, "targets": ["q_proj", "k_proj", "v_proj", "o_proj"]}


def ner_overrides(base: Path) -> dict[str, Any]:
    """configs/ner.cfg's overrides for a base model: its path, float32, and for the 2-layer
    tiny model of --quick, its top layer in place of the recipe's top 10 (unmasked and
    adapted)."""
    # float32 unless a benchmark says otherwise: `dtype = "auto"` would follow the host's
    # CPU, and the comparisons with float32 references would change with it (precision.py
    # measures bfloat16 against float32 itself)
    overrides: dict[str, Any] = {
        "paths.base_model": str(base),
        "components.llm.model.dtype": "float32",
    }
    config = json.loads((Path(base) / "config.json").read_text())
    if config["num_hidden_layers"] < 10:
        overrides["components.llm.model.unmasked_layers"] = "top 1"
        overrides["components.llm.model.lora.layers"] = "top 1"
    return overrides


STARTED = time.perf_counter()


def log(message: str) -> None:
    """A progress line with the seconds since the benchmarks started."""
    print(f"[{time.perf_counter() - STARTED:6.0f} s] {message}", flush=True)


def benchmark_parser(description: str, quick_help: str) -> argparse.ArgumentParser:
    """A benchmark script's parser with the options every script shares."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--base-model", type=Path, help="prepared HF dir (default: tiny in --quick)")
    p.add_argument("--threads", type=int, default=default_threads())
    p.add_argument("--quick", action="store_true", help=quick_help)
    p.add_argument("--out", type=Path, help="results dir (default: benchmarks/results[/quick])")
    return p


def add_pipeline_options(p: argparse.ArgumentParser, batch_size: int, rounds: int) -> None:
    """Options of the scripts that time an lsllama pipeline: which one, batches, passes."""
    p.add_argument("--pipeline", type=Path, help="trained lsllama NER pipeline (F1 is reported)")
    p.add_argument("--batch-size", type=int, default=batch_size, help="nlp.pipe batch size")
    p.add_argument("--rounds", type=int, default=rounds, help="timed passes; median taken")


def default_threads() -> int:
    """Threads for every method: OMP_NUM_THREADS when set, else 2."""
    return int(os.environ.get("OMP_NUM_THREADS") or 2)


def set_threads(threads: int) -> None:
    """Use the same number of torch threads everywhere, and keep library warnings quiet."""
    import torch

    torch.set_num_threads(threads)
    warnings.filterwarnings("ignore")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()


# Data ----------------------------------------------------------------------------------------


@dataclass
class Sentence:
    """One CoNLL sentence: its words and their IOB2 entity tags."""

    words: list[str]
    tags: list[str]

    @property
    def text(self) -> str:
        return " ".join(self.words)


def load_sentences(path: Path, limit: int | None = None, block: int | None = 64) -> list[Sentence]:
    """CoNLL-2003 sentences with IOB2 tags; `limit` takes evenly spread blocks of them.

    Blocks of consecutive sentences keep the file's local mix of lengths (which sets the
    padding of a batch) while covering the whole file; block=None takes the first `limit`
    sentences (and reads no further). No limit (or 0) takes every sentence.
    """
    import spacy

    from spacy_lsllama.corpora import read_conll

    require_conll(path)
    vocab = spacy.blank("en").vocab
    sentences = []
    for doc in read_conll(path, vocab=vocab, scheme="iob1", comment=None):
        tags = [f"{t.ent_iob_}-{t.ent_type_}" if t.ent_type_ else "O" for t in doc]
        sentences.append(Sentence([t.text for t in doc], tags))
        if block is None and limit and len(sentences) >= limit:
            break
    return sentences if block is None else spread(sentences, limit, block)


def spread(items: list[Any], limit: int | None, block: int) -> list[Any]:
    """`limit` items as blocks of `block` consecutive items, evenly spaced over `items`."""
    if not limit or limit >= len(items):
        return items
    n_blocks = -(-limit // block)
    gap = (len(items) - block) / max(n_blocks - 1, 1)
    starts = [round(k * gap) for k in range(n_blocks)]
    return [item for start in starts for item in items[start : start + block]][:limit]


def gold_docs(nlp: Any, sentences: Sequence[Sentence]) -> list[Any]:
    """Gold spaCy docs (entities set) for the sentences, on nlp's vocab."""
    from spacy.tokens import Doc
    from spacy.training import biluo_tags_to_spans, iob_to_biluo

    docs = []
    for sentence in sentences:
        spaces = [True] * (len(sentence.words) - 1) + [False]
        doc = Doc(nlp.vocab, words=sentence.words, spaces=spaces)
        doc.ents = biluo_tags_to_spans(doc, iob_to_biluo(sentence.tags))
        docs.append(doc)
    return docs


def word_count(sentences: Sequence[Sentence]) -> int:
    return sum(len(s.words) for s in sentences)


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# Models --------------------------------------------------------------------------------------


def tiny_base_model(path: Path) -> Path:
    """A tiny random Llama prepared like a real base dir (tokenizer saved with a pad token)."""
    from spacy_lsllama.nn.tokenization import load_tokenizer
    from spacy_lsllama.testing import build_tiny_model

    build_tiny_model(path, "llama")
    load_tokenizer(path).save_pretrained(path)
    return path


def base_model_or_tiny(base_model: Path | None, quick: bool, tmp: str) -> Path:
    """--base-model, or with --quick a tiny random Llama built in the scratch folder `tmp`."""
    if base_model is not None:
        return base_model
    if not quick:
        raise SystemExit("--base-model is required without --quick")
    return tiny_base_model(Path(tmp) / "tiny-llama")


def hf_tokenizer(base: Path) -> Any:
    """The base model's fast tokenizer with a pad token and right padding."""
    from spacy_lsllama.nn.tokenization import load_tokenizer

    return load_tokenizer(base)


def hf_token_classifier(base: Path, num_labels: int, *, bidirectional: bool = True) -> Any:
    """The paper's model: LlamaForTokenClassification, unmasked, with peft LoRA (q/k/v/o)."""
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import AutoModelForTokenClassification

    model = AutoModelForTokenClassification.from_pretrained(
        str(base), num_labels=num_labels, attn_implementation="sdpa", torch_dtype="float32"
    )
    if bidirectional:
        for module in model.modules():
            if hasattr(module, "is_causal"):
                module.is_causal = False
    config = LoraConfig(
        task_type=TaskType.TOKEN_CLS,
        r=LORA["r"],
        lora_alpha=LORA["alpha"],
        lora_dropout=LORA["dropout"],
        target_modules=LORA["targets"],
    )
    return get_peft_model(model, config)


# FLOPs ---------------------------------------------------------------------------------------


@dataclass
class FlopModel:
    """FLOPs of a decoder forward: 2 per weight per token plus the attention products."""

    linear_params: int
    layers: int
    attention_width: int

    def sequence(self, length: int) -> float:
        """FLOPs for one sequence of `length` pieces attending to all of its pieces."""
        return length * (
            2.0 * self.linear_params + 4.0 * self.layers * length * self.attention_width
        )

    def total(self, lengths: Sequence[int]) -> float:
        return sum(self.sequence(n) for n in lengths)


def flop_model(model: Any, lora_merged: bool = False) -> FlopModel:
    """Count matrix weights (embeddings and norms excluded).

    LoRA adapters count only while they run apart from the base weights: merged, their
    product is already inside the base matrices and costs nothing extra.
    """
    config = model.config
    linear = sum(
        p.numel()
        for name, p in model.named_parameters()
        if p.dim() == 2 and "embed" not in name and not (lora_merged and "lora_" in name)
    )
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return FlopModel(linear, config.num_hidden_layers, config.num_attention_heads * head_dim)


# Timing and memory ---------------------------------------------------------------------------


@contextmanager
def timer(into: dict[str, float], key: str) -> Iterator[None]:
    """Add the elapsed wall time of the block to into[key]."""
    start = time.perf_counter()
    try:
        yield
    finally:
        into[key] = into.get(key, 0.0) + time.perf_counter() - start


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def peak_rss_mb() -> float:
    """This process's peak resident set size so far.

    Linux's VmHWM starts afresh at exec; ru_maxrss would carry over the RSS of the parent
    that forked a worker, so it is only the fallback.
    """
    import resource

    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    import platform

    import torch

    return {
        "cpu": platform.processor() or platform.machine(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "logical_cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


# Results -------------------------------------------------------------------------------------


def fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(fmt(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def write_results(out_dir: Path, name: str, data: dict[str, Any], markdown: str) -> None:
    """Write name.json and name.md under out_dir and echo the Markdown."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{name}.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
    (out_dir / f"{name}.md").write_text(markdown.rstrip() + "\n")
    print(markdown.rstrip() + "\n", flush=True)


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if not numerator or not denominator:
        return None
    return numerator / denominator


# Running pipelines ---------------------------------------------------------------------------

WARMUP_SENTENCES = 16


@dataclass
class PipeRun:
    """One timed nlp.pipe pass."""

    seconds: float
    docs: list[Any]


def time_pipe(
    nlp: Any,
    texts: Sequence[str],
    batch_size: int,
    context: Callable[[], AbstractContextManager] = nullcontext,
    *,
    warmup: bool = True,
) -> PipeRun:
    """Time nlp.pipe over the texts, after a warm-up on a few of them unless told not to."""
    with context():
        if warmup:
            list(nlp.pipe(texts[:WARMUP_SENTENCES], batch_size=batch_size))
        seconds, docs = timed(lambda: list(nlp.pipe(texts, batch_size=batch_size)))
    return PipeRun(seconds, docs)


def entity_f1(docs: Sequence[Any], sentences: Sequence[Sentence], nlp: Any) -> float:
    """Entity F1 in % (seqeval, conlleval rules) of predicted docs against the gold sentences."""
    from spacy.training import Example

    from spacy_lsllama.pipeline.scorers import ner_scores

    examples = [Example(doc, gold) for doc, gold in zip(docs, gold_docs(nlp, sentences))]
    return 100 * ner_scores(examples)["f1"]


def agreement(docs: Sequence[Any], reference: Sequence[Any]) -> float:
    """F1 between two runs' entity sets: 1.0 means identical predictions."""

    def entities(batch: Sequence[Any]) -> set[tuple[int, int, int, str]]:
        return {
            (i, e.start_char, e.end_char, e.label_) for i, d in enumerate(batch) for e in d.ents
        }

    ours, theirs = entities(docs), entities(reference)
    if not ours and not theirs:
        return 1.0
    return 2 * len(ours & theirs) / (len(ours) + len(theirs))


BENCH_EXTRA = ("matplotlib", "psutil")  # pyproject's `bench` extra: plots, memory


def require_bench_extra() -> None:
    """Stop at once, in one line, when the `bench` extra is missing: not after minutes of
    measuring, at the first plot, with the summary lost."""
    missing = [name for name in BENCH_EXTRA if importlib.util.find_spec(name) is None]
    if missing:
        raise SystemExit(
            f"error: the benchmarks need {', '.join(missing)} (the bench extra): "
            'pip install -e ".[bench]"'
        )


def require_conll(*paths: Path) -> None:
    """Stop at once, in one line, when a CoNLL-2003 file a benchmark reads is missing: not
    once per method, each recording the error as its result."""
    for path in paths:
        if not path.is_file():
            raise SystemExit(
                f"error: no CoNLL-2003 file at {path}: set LSLLAMA_CONLL_DIR to a folder "
                "with eng.train and eng.testb (benchmarks/README.md)"
            )


def save_figure(fig: Any, path: Path) -> Path:
    """Lay out, write (PNG, 120 dpi) and close a matplotlib figure."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# Worker processes ----------------------------------------------------------------------------


def ask(process: Any, line: str | None = None) -> dict[str, Any]:
    """Send a worker process a line (if any) and read its JSON reply; a dead worker's last
    error as a RuntimeError. Lines that are not JSON (spaCy's own messages) are skipped."""
    if line is not None:
        process.stdin.write(line + "\n")
        process.stdin.flush()
    for answer in iter(process.stdout.readline, ""):
        if answer.startswith("{"):
            return json.loads(answer)
    process.wait()
    error = process.stderr.read().strip().splitlines() if process.stderr else []
    raise RuntimeError((error or ["no output"])[-1])


def reply(data: dict[str, Any]) -> None:
    """A worker's answer to the driver: one JSON line on stdout."""
    print(json.dumps(data), flush=True)
