"""The dtype the encoder runs in: `dtype = "auto"` decided where the encoder is placed.

"auto" depends on the device the encoder actually runs on, not on what the host has: a GPU
host that predicts on its CPU (`spacy.load` without `--gpu-id`) runs the CPU rule.

- On a GPU: bfloat16 where the GPU supports it, else float32.
- On a CPU: bfloat16 where the CPU multiplies bfloat16 matrices in hardware, with AMX
  (`amx_bf16` in /proc/cpuinfo) or AVX-512 BF16 (`avx512_bf16`); float32 on CPUs with
  neither, which would emulate bfloat16 slowly. On a 2-core AVX-512 BF16 host
  (benchmarks/precision.py, SmolLM2-135M, 2 threads) a training step of the recipe ran 1.70x
  as fast as in float32 and tagging 2.21x (F1 +0.24 on 320 test sentences); on an AMX host
  tagging ran 2.3x as fast (one thread, 96 sentences).

bfloat16 is mixed precision, the usual GPU recipe: the frozen weights are stored in
bfloat16, and the forward pass runs under `torch.autocast`, so the LoRA adapters' matrix
products run in bfloat16 too, while the adapters themselves, their gradients, the optimizer
state and the loss stay float32; inside the forward pass peft's casting of each adapter's
input to float32 is switched off. The residual stream between the layers stays float32
(`encoder.STATES_DTYPE`): each layer adds its bfloat16 products to float32 states.

Weights are loaded in float32 ("auto" at load) and cast here, once, when the encoder is placed.
Only the weights are cast: the parameters and the buffers saved with them. Buffers a model
derives and does not save stay float32, above all the rotary `inv_freq`: transformers builds
the rotary cos/sin from it in float32, and a bfloat16 `inv_freq` turns angle p * f into
p * round(f), off by up to 0.69 radians at position 499 in SmolLM2 (its 500-piece final
states then differ from float32 by 3.1 % instead of the 1.1 % of bfloat16 weights alone).
"""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import torch
from peft.helpers import disable_input_dtype_casting

M = TypeVar("M", bound=torch.nn.Module)

CPU_INFO = Path("/proc/cpuinfo")
# CPU features that make bfloat16 faster than float32 (see the module docstring).
BF16_CPU_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})
HALF_DTYPES = (torch.bfloat16, torch.float16)
ADAPTER_MARK = "lora_"


def cpu_flags(cpuinfo: Path = CPU_INFO) -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo; empty where there is no such file (not Linux)."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def auto_dtype(device: torch.device | str, flags: frozenset[str] | None = None) -> torch.dtype:
    """What `dtype = "auto"` runs in on this device (the rule in the module docstring)."""
    return _auto(device, flags)[0]


def auto_reason(device: torch.device | str) -> str:
    """Why "auto" picks what it picks here, in words: what `spacy train` prints."""
    return _auto(device, None)[1]


def _auto(device: torch.device | str, flags: frozenset[str] | None) -> tuple[torch.dtype, str]:
    device = torch.device(device)
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return torch.bfloat16, "this GPU supports bfloat16"
        return torch.float32, "this GPU has no bfloat16"
    if device.type != "cpu":
        return torch.float32, f"on {device.type}"
    found = cpu_flags() if flags is None else flags
    matched = sorted(BF16_CPU_FLAGS & found)
    if matched:
        return torch.bfloat16, f"a CPU with {', '.join(matched)}"
    return torch.float32, f"a CPU without {' or '.join(sorted(BF16_CPU_FLAGS))}"


def named_dtype(name: str) -> torch.dtype:
    """A dtype named in a config: float32, bfloat16 or float16 ("auto" is `auto_dtype`)."""
    resolved = getattr(torch, name, None)
    if not isinstance(resolved, torch.dtype) or not resolved.is_floating_point:
        raise ValueError(f"Unknown dtype '{name}': use auto, float32, bfloat16 or float16.")
    return resolved


def dtype_name(dtype: torch.dtype) -> str:
    """The name `named_dtype` reads back ("bfloat16"), as configs, meta and logs write it."""
    return str(dtype).removeprefix("torch.")


def weights_dtype(module: torch.nn.Module) -> torch.dtype:
    """The dtype the frozen (non-adapter) weights run in: what `lsllama tag` reports."""
    for name, param in module.named_parameters():
        if ADAPTER_MARK not in name and param.is_floating_point():
            return param.dtype
    return torch.float32


def weights(module: torch.nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """The module's weights: its parameters and persistent buffers (what its state dict
    holds), without the non-persistent buffers it derives itself, such as rotary `inv_freq`."""
    yield from module.named_parameters()
    for prefix, owner in module.named_modules():
        for name, buffer in owner.named_buffers(recurse=False):
            if name not in owner._non_persistent_buffers_set:
                yield (f"{prefix}.{name}" if prefix else name), buffer


def cast_weights(module: M, dtype: torch.dtype) -> M:
    """Cast the module's floating-point weights to `dtype`, in place, except the LoRA
    adapters; derived buffers (rotary `inv_freq`) stay as they are (see the docstring)."""
    for name, tensor in weights(module):
        if ADAPTER_MARK not in name and tensor.is_floating_point() and tensor.dtype != dtype:
            tensor.data = tensor.data.to(dtype)
    return module


def place(module: M, device: torch.device | str, dtype: str) -> M:
    """Move the encoder to `device` and cast its frozen weights to the dtype they run in there.

    LoRA adapters stay in their own dtype (float32): they are what trains. Derived buffers
    such as the rotary `inv_freq` stay float32.
    """
    target = auto_dtype(device) if dtype == "auto" else named_dtype(dtype)
    if weights_dtype(module) != target:  # cast before the move: a GPU never holds both
        cast_weights(module, target)
    return module.to(device)


@contextmanager
def autocast(module: torch.nn.Module, device: torch.device) -> Iterator[None]:
    """The mixed-precision context of a forward pass where the frozen weights are half
    precision: autocast to their dtype, so the float32 adapters' products follow, with
    peft's cast of each adapter's input to float32 switched off (under autocast it would
    only add a copy). Outside the block peft casts as usual. Float32 weights: no change."""
    dtype = weights_dtype(module)
    if dtype not in HALF_DTYPES:
        yield
        return
    with torch.autocast(device.type, dtype=dtype), disable_input_dtype_casting(module):
        yield
