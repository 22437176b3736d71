"""A training run's smallest possible perturbation, to measure how far the same seed's dev F1
moves on float32 rounding alone.

`spacy train ... --code benchmarks/ulp_nudge.py` with `[initialize] after_init` set to
`{"@callbacks": "lsllama_bench.ulp_nudge.v1"}` moves every non-zero trainable weight of the
encoder (the LoRA A matrices at initialisation) by one float32 unit in the last place, after
`nlp.initialize` and before the first step. Float32 training with a fixed seed is otherwise
bit-for-bit repeatable here (the same losses at 1 and 2 threads), so the nudged run differs
from the plain one by a relative 1e-7 or less at the start and by nothing else.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from spacy.language import Language
from spacy.util import registry

from spacy_lsllama.layers.transformer_model import get_encoder


@registry.callbacks("lsllama_bench.ulp_nudge.v1")
def make_ulp_nudge(pipe: str = "llm") -> Callable[[Language], Language]:
    def nudge(nlp: Language) -> Language:
        encoder = get_encoder(nlp.get_pipe(pipe).model)
        moved = 0
        with torch.no_grad():
            for weight in encoder.parameters():
                if weight.requires_grad:
                    nonzero = weight != 0
                    up = torch.nextafter(weight, torch.full_like(weight, torch.inf))
                    weight.copy_(torch.where(nonzero, up, weight))
                    moved += int(nonzero.sum())
        print(f"ulp_nudge: moved {moved:,} weights of {pipe!r} by one unit in the last place")
        return nlp

    return nudge
