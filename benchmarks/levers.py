"""Inference levers for the lsllama pipeline, applied from outside through public objects.

Each lever changes a deep copy of the loaded encoder (`get_encoder` / `set_encoder`), the
context inference runs in, or the batching (the llm component's `max_batch_items` and the
nlp.pipe batch size); the pipeline is restored afterwards. Speed is measured next to the
agreement with the baseline's entities and, for a trained pipeline, the entity F1.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

from breakdown import padding, padding_fraction
from common import (
    Sentence,
    agreement,
    entity_f1,
    log,
    markdown_table,
    ratio,
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
    """int8 dynamic quantization of every nn.Linear (int8 weights, activations per batch)."""
    import torch
    from torch.ao.quantization import quantize_dynamic

    return quantize_dynamic(encoder, {torch.nn.Linear}, dtype=torch.qint8)


def inference_mode() -> AbstractContextManager:
    import torch

    return torch.inference_mode()


LEVERS = [
    Lever("baseline (config defaults: merge_lora, rows_per_forward 8)"),
    Lever("(i) torch.inference_mode", context=inference_mode),
    Lever("(ii) bfloat16 weights", transform=lambda e: to_bfloat16(merged(e))),
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
    Lever(
        "(i)+(v) inference_mode, batch_size 256",
        context=inference_mode,
        batch_size=256,
    ),
]


def run_lever(
    nlp: Any, lever: Lever, sentences: Sequence[Sentence], batch_size: int
) -> dict[str, Any]:
    """Apply a lever, time nlp.pipe and count padding, then put the pipeline back."""
    from spacy_lsllama.layers.transformer_model import get_encoder, set_encoder

    llm, texts = nlp.get_pipe("llm"), [s.text for s in sentences]
    original, items = get_encoder(llm.model), llm.cfg["max_batch_items"]
    batch_size = lever.batch_size or batch_size
    try:
        llm.cfg["max_batch_items"] = lever.max_batch_items or items
        if lever.transform is not None:
            set_encoder(llm.model, lever.transform(copy.deepcopy(original)))
        run = time_pipe(nlp, texts, batch_size, lever.context)
        padded = padding_fraction(padding(nlp, texts, batch_size).counts())
    except Exception as err:  # a lever that cannot run is a result too
        error = f"{type(err).__name__}: {err}".splitlines()[0][:300]
        log(f"lever {lever.name}: {error}")
        return {"lever": lever.name, "error": error}
    finally:
        llm.cfg["max_batch_items"] = items
        set_encoder(llm.model, original)
    words_per_s = word_count(sentences) / run.seconds
    log(f"lever {lever.name}: {words_per_s:.1f} words/s")
    return {"lever": lever.name, "words_per_s": words_per_s, "padding": padded, "docs": run.docs}


def measure_levers(
    nlp: Any, sentences: Sequence[Sentence], batch_size: int, trained: bool
) -> list[dict[str, Any]]:
    """Words/s, padding, agreement with the baseline and (trained) F1 of each lever."""
    rows = [run_lever(nlp, lever, sentences, batch_size) for lever in LEVERS]
    reference = rows[0].get("docs", [])
    for row in rows:
        docs = row.pop("docs", None)
        if docs is not None:
            row["agreement"] = agreement(docs, reference)
            row["f1"] = entity_f1(docs, sentences, nlp) if trained else None
    for row in rows:
        row["speedup"] = ratio(row.get("words_per_s"), rows[0].get("words_per_s"))
        if row.get("f1") is not None and rows[0].get("f1") is not None:
            row["f1_change"] = row["f1"] - rows[0]["f1"]
    return rows


COLUMNS = {
    "lever": "lever",
    "words_per_s": "words/s",
    "speedup": "speed-up",
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
        "Padding: share of computed pieces that are padding. Agreement: entity-set F1 against "
        "the baseline's predictions (1.0 = identical). F1 and ΔF1 only for a trained pipeline.",
        "",
        markdown_table(list(COLUMNS.values()), rows),
    ]
