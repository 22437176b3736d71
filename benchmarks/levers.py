"""Inference levers for the lsllama pipeline, applied from outside through public objects.

Each lever changes a deep copy of the loaded encoder (`get_encoder` / `set_encoder`), the
context inference runs in, or the batching (the llm component's `max_batch_items` and the
nlp.pipe batch size); the pipeline is restored afterwards. Speed is measured next to the
agreement with the baseline's entities and, for a trained pipeline, the entity F1.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from functools import partial
from typing import Any

from breakdown import padding, padding_fraction
from common import (
    WARMUP_SENTENCES,
    Sentence,
    agreement,
    chunks,
    entity_f1,
    log,
    markdown_table,
    time_pipe,
    word_count,
)


@dataclass
class Lever:
    """One way to run (a): an encoder change (on a copy), a context, a batching."""

    name: str
    transform: Callable[[Any], Any] | None = None
    context: Callable[[], AbstractContextManager] = nullcontext
    max_batch_items: int | None = None  # the llm component's sub-batch budget (config)
    batch_size: int | None = None  # nlp.pipe batch size


def to_bfloat16(encoder: Any) -> Any:
    import torch

    return encoder.to(torch.bfloat16)


def bfloat16_placed(encoder: Any) -> Any:
    """What `dtype = "auto"` runs on a CPU with AMX: bfloat16 base, float32 LoRA, unmerged."""
    from spacy_lsllama.nn.precision import place

    return place(encoder, "cpu", "bfloat16")


def with_settings(encoder: Any, **changes: Any) -> Any:
    """The encoder with other EncoderSettings (config values), e.g. merge_lora=False."""
    if changes.get("merge_lora") is False:
        encoder.set_lora_merged(False)
    encoder.settings = dataclasses.replace(encoder.settings, **changes)
    return encoder


def merged(encoder: Any) -> Any:
    """The encoder with its LoRA update folded into the base weights now."""
    encoder.set_lora_merged(True)
    return encoder


def int8_dynamic(encoder: Any) -> Any:
    """int8 dynamic quantization of every base nn.Linear (int8 weights, activations per batch).

    Unmerged LoRA adapters stay float32: peft reads their weights' dtype, which a quantized
    linear layer does not have.
    """
    import torch
    from torch.ao.quantization import default_dynamic_qconfig, quantize_dynamic

    from spacy_lsllama.nn.precision import ADAPTER_MARK

    base_linears = {
        name: default_dynamic_qconfig
        for name, module in encoder.named_modules()
        if isinstance(module, torch.nn.Linear) and ADAPTER_MARK not in name
    }
    return quantize_dynamic(encoder, base_linears, dtype=torch.qint8)


def inference_mode() -> AbstractContextManager:
    import torch

    return torch.inference_mode()


COMPILED = "(vii) torch.compile (compile = true, lsllama tag --compile)"
COMPILED_LARGE = "(vii)+(vi)+(v) compiled, rows_per_forward 32, batch_size 128"

LEVERS = [
    Lever("baseline (config defaults: merge_lora, rows_per_forward 8)"),
    Lever("(i) torch.inference_mode", context=inference_mode),
    Lever("(ii) bfloat16 weights", transform=lambda e: to_bfloat16(merged(e))),
    Lever("(ii) bfloat16 weights, LoRA float32 (dtype auto with AMX)", transform=bfloat16_placed),
    Lever(
        "(iii) int8 dynamic, LoRA unmerged",
        transform=lambda e: int8_dynamic(with_settings(e, merge_lora=False)),
    ),
    Lever("(iii) int8 dynamic, LoRA merged", transform=lambda e: int8_dynamic(merged(e))),
    Lever(
        "(iv) LoRA unmerged (merge_lora = false)",
        transform=lambda e: with_settings(e, merge_lora=False),
    ),
    Lever("(v) max_batch_items 1024", max_batch_items=1024),
    Lever("(v) batch_size 256", batch_size=256),
    Lever("(vi) rows_per_forward 4", transform=lambda e: with_settings(e, rows_per_forward=4)),
    Lever("(vi) rows_per_forward 16", transform=lambda e: with_settings(e, rows_per_forward=16)),
    Lever("(vi) rows_per_forward 32", transform=lambda e: with_settings(e, rows_per_forward=32)),
    Lever(COMPILED, transform=partial(with_settings, compile=True)),
    Lever(
        COMPILED_LARGE,
        transform=partial(with_settings, compile=True, rows_per_forward=32),
        batch_size=128,
    ),
    Lever(
        "(i)+(v) inference_mode, batch_size 256",
        context=inference_mode,
        batch_size=256,
    ),
]


@contextmanager
def applied(nlp: Any, lever: Lever, encoder: Any) -> Iterator[None]:
    """The pipeline with the lever's encoder and sub-batch budget, restored afterwards."""
    from spacy_lsllama.layers.transformer_model import get_encoder, set_encoder

    llm = nlp.get_pipe("llm")
    original, items = get_encoder(llm.model), llm.cfg["max_batch_items"]
    try:
        llm.cfg["max_batch_items"] = lever.max_batch_items or items
        set_encoder(llm.model, encoder)
        with lever.context():
            yield
    finally:
        llm.cfg["max_batch_items"] = items
        set_encoder(llm.model, original)


def run_lever(
    nlp: Any, lever: Lever, sentences: Sequence[Sentence], batch_size: int
) -> dict[str, Any]:
    """Time the lever and the baseline alternately, block by block; count padding.

    Pairing each lever with a baseline timed on the same blocks moments apart keeps the
    speed-up clear of this machine's drift; the baseline row, paired with itself, shows
    how large that noise is. The lever's warm-up pass is timed on its own: it holds any
    one-off cost, such as torch.compile's compilation.
    """
    from spacy_lsllama.layers.transformer_model import get_encoder

    texts = [s.text for s in sentences]
    original = get_encoder(nlp.get_pipe("llm").model)
    lever_batch = lever.batch_size or batch_size
    try:
        encoder = original if lever.transform is None else lever.transform(copy.deepcopy(original))
        time_pipe(nlp, texts[:WARMUP_SENTENCES], batch_size)
        with applied(nlp, lever, encoder):
            warmup = time_pipe(nlp, texts[:WARMUP_SENTENCES], lever_batch, warmup=False)
            time_pipe(nlp, texts[:WARMUP_SENTENCES], lever_batch, warmup=False)
        base_seconds, seconds, docs = 0.0, 0.0, []
        for block in chunks(texts, max(batch_size, lever_batch)):
            base_seconds += time_pipe(nlp, block, batch_size, warmup=False).seconds
            with applied(nlp, lever, encoder):
                run = time_pipe(nlp, block, lever_batch, warmup=False)
            seconds += run.seconds
            docs += run.docs
        with applied(nlp, lever, encoder):
            padded = padding_fraction(padding(nlp, texts, lever_batch).counts())
    except Exception as err:  # a lever that cannot run is a result too
        error = f"{type(err).__name__}: {err}".splitlines()[0][:300]
        log(f"lever {lever.name}: {error}")
        return {"lever": lever.name, "error": error}
    words = word_count(sentences)
    log(f"lever {lever.name}: {words / seconds:.1f} words/s, baseline {words / base_seconds:.1f}")
    return {
        "lever": lever.name,
        "words_per_s": words / seconds,
        "baseline_words_per_s": words / base_seconds,
        "speedup": base_seconds / seconds,
        "warmup_seconds": warmup.seconds,
        "padding": padded,
        "docs": docs,
    }


def measure_levers(
    nlp: Any,
    sentences: Sequence[Sentence],
    batch_size: int,
    trained: bool,
    peak_fraction: float,
) -> list[dict[str, Any]]:
    """Words/s, paired speed-up, padding, agreement with the baseline and (trained) F1.

    A lever's share of the matmul peak is (a)'s `peak_fraction` times its paired speed-up:
    its own words/s drift with the host between the blocks it ran in.
    """
    rows = [run_lever(nlp, lever, sentences, batch_size) for lever in LEVERS]
    for row in rows:
        if "speedup" in row:
            row["peak_fraction"] = peak_fraction * row["speedup"]
    reference = rows[0].get("docs", [])
    for row in rows:
        docs = row.pop("docs", None)
        if docs is not None:
            row["agreement"] = agreement(docs, reference)
            row["f1"] = entity_f1(docs, sentences, nlp) if trained else None
    for row in rows:
        if row.get("f1") is not None and rows[0].get("f1") is not None:
            row["f1_change"] = row["f1"] - rows[0]["f1"]
    return rows


COLUMNS = {
    "lever": "lever",
    "words_per_s": "words/s",
    "baseline_words_per_s": "baseline words/s",
    "speedup": "speed-up",
    "peak_fraction": "of peak",
    "warmup_seconds": "warm-up s",
    "padding": "padding",
    "agreement": "agreement",
    "f1": "F1 (%)",
    "f1_change": "ΔF1",
    "error": "error",
}


def report_levers(part: dict[str, Any]) -> list[str]:
    rows = [[row.get(key) for key in COLUMNS] for row in part["rows"]]
    return [
        f"### Inference levers on (a) ({part['sentences']} sentences)",
        "",
        "Each lever is timed alternately with the baseline, block by block, on the same "
        "sentences; speed-up is the baseline's time over the lever's (the baseline row, "
        "paired with itself, shows the noise). Of peak: (a)'s useful FLOP/s over the matmul "
        "peak, times the speed-up. Warm-up s: the lever's first pass over "
        f"{WARMUP_SENTENCES} sentences, with any one-off cost such as compilation. "
        "Padding: share of computed pieces that are padding. Agreement: entity-set F1 against "
        "the baseline's predictions (1.0 = identical). F1 and ΔF1 only for a trained pipeline.",
        "",
        markdown_table(list(COLUMNS.values()), rows),
    ]
