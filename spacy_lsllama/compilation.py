"""Compiled prediction: the decoder through `torch.compile` for passes without gradients.

Eager PyTorch runs each RMSNorm, rotary embedding, SiLU and residual add of every layer as
passes of its own over memory; on CPU these cost a sizeable share of a forward pass next to
the matrix products. Inductor fuses them. Compiling takes a minute or two on two cores, once
per process (inductor also caches generated code on disk), so it pays on long runs such as
`lsllama tag` over a corpus and is off by default (`compile` config value, `--compile`).

Shapes are compiled as dynamic, so the varying widths of the forward chunks do not trigger a
recompilation each; chunks are padded to at least 2 x 2 (`pad_chunk`), since a dimension of
size 1 would still compile a variant of its own. Training never runs compiled, and the
weights stay inputs of the compiled graph (no freezing), so LoRA merging, training and
loading are seen as they happen.
"""

import copy
from typing import Any

import torch
from spacy.language import Language
from thinc.api import Model


class CompiledDecoder:
    """A decoder's forward compiled at its first call; a copy starts uncompiled.

    Kept out of the encoder's module tree (a plain object, not an nn.Module), so the compiled
    wrapper never enters a state dict, a deep copy or a saved pipeline.
    """

    def __init__(self, model: torch.nn.Module):
        self.model = model
        self._compiled: Any = None

    def __call__(self, **inputs: Any) -> Any:
        if self._compiled is None:
            self._compiled = torch.compile(self.model, dynamic=True)
        return self._compiled(**inputs)

    def __deepcopy__(self, memo: dict) -> "CompiledDecoder":
        return CompiledDecoder(copy.deepcopy(self.model, memo))


def pad_chunk(
    input_ids: torch.Tensor, position_ids: torch.Tensor, segments: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pad a forward chunk to at least 2 rows and 2 columns with masked padding (segment -1).

    torch.compile specializes sizes 0 and 1 even for dynamic shapes: a one-row chunk or a
    one-piece document would otherwise cost another compilation mid-run.
    """
    rows, width = input_ids.shape
    pad = (0, max(0, 2 - width), 0, max(0, 2 - rows))
    if not any(pad):
        return input_ids, position_ids, segments
    return (
        torch.nn.functional.pad(input_ids, pad),
        torch.nn.functional.pad(position_ids, pad),
        torch.nn.functional.pad(segments, pad, value=-1),
    )


def encoder_layers(nlp: Language) -> list[Model]:
    """Every lsllama_transformer layer in the pipeline's components, each once."""
    from .layers.transformer_model import LAYER_NAME

    layers: dict[int, Model] = {}
    for _, component in nlp.pipeline:
        model = getattr(component, "model", None)
        if isinstance(model, Model):
            layers.update((id(node), node) for node in model.walk() if node.name == LAYER_NAME)
    return list(layers.values())


def compile_pipeline(nlp: Language) -> int:
    """Switch every encoder of a loaded pipeline to compiled prediction; how many there were."""
    from .layers.transformer_model import LAYER_NAME, get_encoder

    layers = encoder_layers(nlp)
    if not layers:
        raise ValueError(
            f"The pipeline has no {LAYER_NAME} layer, so there is nothing to compile "
            f"(components: {', '.join(nlp.pipe_names) or 'none'})."
        )
    for layer in layers:
        get_encoder(layer).use_compiled(True)
    return len(layers)
