"""Compiled layers: the decoder's layers through `torch.compile`, in prediction and training.

Eager PyTorch runs each RMSNorm, rotary embedding, SiLU and residual add of every layer as
passes of its own over memory; on CPU these cost a sizeable share of a forward pass next to
the matrix products. Inductor fuses them. Compilation is regional: each decoder layer is
compiled rather than the whole unrolled model, and since the layers share one code path,
dynamo compiles it once and reuses it for all of them. That takes seconds at the first batch
instead of the minute or more the whole model takes on two cores, for nearly all of the
speed-up (`benchmarks/`). It is off by default (`compile` config value, `--compile`): it
needs a C++ compiler.

Shapes are compiled as dynamic, so the varying widths of the forward chunks do not trigger a
recompilation each; chunks are padded to at least 2 x 2 (`pad_chunk`), since a dimension of
size 1 would still compile a variant of its own. A training pass compiles the same layers
with their backward (a second variant, for the first layer's input needing no gradient):
LoRA's dropout masks then come from one opaque operator (`nn.dropout`), since inductor's own
random numbers took more time than the fused layers saved. Training with checkpointed
gradients runs eagerly. The weights stay inputs of the compiled graph (no freezing), so
LoRA merging, training and loading are seen as they happen.

On CPU the compiled graphs are called through C++ wrappers (inductor's `cpp_wrapper`): the
Python code that otherwise calls a layer graph's kernels and matrix products one by one took
about a millisecond a layer call, as much as some of its kernels. The C++ wrappers made a
compiled training step of the recipe 1.13x as fast and compiled tagging 1.05-1.10x, with the
same results, for a few more seconds of compilation (`benchmarks/`).
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache, partial
from typing import Any

import torch
from peft import PeftModel


def decoder_layers(model: torch.nn.Module) -> torch.nn.ModuleList:
    """The decoder layers of a transformers decoder (`model.layers`), under any LoRA wrapper."""
    base = model.get_base_model() if isinstance(model, PeftModel) else model
    layers = getattr(base, "layers", None)
    if not isinstance(layers, torch.nn.ModuleList):
        raise ValueError(
            f"{type(base).__name__} has no `layers` list of decoder layers, so its layers "
            "cannot be compiled; set compile = false."
        )
    return layers


@cache
def compiled_module_call(device_type: str) -> Callable[..., Any]:
    """`Module.__call__`'s implementation through torch.compile, made once for every layer.

    A torch.compile wrapper takes about a millisecond to make; made anew for 30 layers at
    every forward chunk it cost some 30 ms a chunk. Bound to a layer by `partial`, this one
    serves them all (the compiled code itself is shared either way). On CPU the graphs get a
    C++ wrapper (inductor's `cpp_wrapper`) instead of Python code around their kernels.
    """
    return torch.compile(
        torch.nn.Module._call_impl, dynamic=True, options={"cpp_wrapper": device_type == "cpu"}
    )


@contextmanager
def compiled_layers(model: torch.nn.Module, device: torch.device) -> Iterator[None]:
    """Run the decoder's layers through `torch.compile` inside the block, eagerly after it.

    The compiled calls (what `Module.compile` installs) are put on the layers for the block
    only, so training and eager prediction never meet them and the module tree (state dict,
    deep copies, saved pipelines) never holds them. Dynamo keeps the compiled code with the
    layers' shared code path: installing it again for the next chunk compiles nothing.
    `device`: where the layers run, which decides how their graphs are called.
    """
    layers = decoder_layers(model)
    previous = [layer._compiled_call_impl for layer in layers]
    call = compiled_module_call(device.type)
    for layer in layers:
        layer._compiled_call_impl = partial(call, layer)
    try:
        yield
    finally:
        for layer, restored in zip(layers, previous, strict=True):
            layer._compiled_call_impl = restored


def pad_chunk(
    hidden: torch.Tensor, position_ids: torch.Tensor, segments: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pad a forward chunk to at least 2 rows and 2 columns with masked padding (segment -1).

    torch.compile specializes sizes 0 and 1 even for dynamic shapes: a one-row chunk or a
    one-piece document would otherwise cost another compilation mid-run.
    """
    rows, width = position_ids.shape
    pad = (0, max(0, 2 - width), 0, max(0, 2 - rows))
    if not any(pad):
        return hidden, position_ids, segments
    return (
        torch.nn.functional.pad(hidden, (0, 0, *pad)),
        torch.nn.functional.pad(position_ids, pad),
        torch.nn.functional.pad(segments, pad, value=-1),
    )
