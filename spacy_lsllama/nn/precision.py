"""The dtype the encoder runs in: `dtype = "auto"` decided where the encoder is placed.

"auto" depends on the device the encoder actually runs on, not on what the host has: a GPU
host that predicts on its CPU (`spacy.load` without `--gpu-id`) runs the CPU rule.

- On a GPU: bfloat16 where the GPU supports it (the LoRA adapters stay float32), else float32.
- On a CPU, for prediction: bfloat16 only where the CPU multiplies bfloat16 matrices in
  hardware, which `/proc/cpuinfo` lists as `amx_bf16` (Intel AMX). On such a host (2 cores,
  one thread, SmolLM2-135M, LoRA r=12, 96 CoNLL-2003 sentences) the pipeline ran 403 words/s
  in bfloat16 against 175 in float32. Another host measured 0.66x; `avx512_bf16`
  without AMX is not taken as enough (not measured apart), so float32 stays there.
- On a CPU, for training (`nlp.initialize`): float32. bfloat16 training on CPUs is not measured
  here, and float32 keeps LoRA merged for prediction during training.

Weights are loaded in float32 ("auto" at load) and cast here, once, when the encoder is placed.
Only the weights are cast: the parameters and the buffers saved with them. Buffers a model
derives and does not save stay float32, above all the rotary `inv_freq`: transformers builds
the rotary cos/sin from it in float32, and a bfloat16 `inv_freq` turns angle p * f into
p * round(f), off by up to 0.69 radians at position 499 in SmolLM2 (its 500-piece final
states then differ from float32 by 3.1 % instead of the 1.1 % of bfloat16 weights alone).
"""

from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import torch

M = TypeVar("M", bound=torch.nn.Module)

CPU_INFO = Path("/proc/cpuinfo")
# CPU features that make bfloat16 prediction faster than float32 (see the module docstring).
FAST_BF16_CPU_FLAGS = frozenset({"amx_bf16"})
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


def auto_dtype(
    device: torch.device | str, *, training: bool, flags: frozenset[str] | None = None
) -> torch.dtype:
    """What `dtype = "auto"` runs in on this device (the rule in the module docstring)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    if device.type == "cpu" and not training:
        if FAST_BF16_CPU_FLAGS <= (cpu_flags() if flags is None else flags):
            return torch.bfloat16
    return torch.float32


def named_dtype(name: str) -> torch.dtype:
    """A dtype named in a config: float32, bfloat16 or float16 ("auto" is `auto_dtype`)."""
    resolved = getattr(torch, name, None)
    if not isinstance(resolved, torch.dtype) or not resolved.is_floating_point:
        raise ValueError(f"Unknown dtype '{name}': use auto, float32, bfloat16 or float16.")
    return resolved


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


def place(module: M, device: torch.device | str, dtype: str, *, training: bool) -> M:
    """Move the encoder to `device` and cast its frozen weights to the dtype they run in there.

    LoRA adapters stay in their own dtype (float32): they are what trains, and peft computes
    them in float32 either way. Derived buffers such as the rotary `inv_freq` stay float32.
    """
    target = auto_dtype(device, training=training) if dtype == "auto" else named_dtype(dtype)
    if weights_dtype(module) != target:  # cast before the move: a GPU never holds both
        cast_weights(module, target)
    return module.to(device)
