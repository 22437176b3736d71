"""Attention unmasking: turn a causal decoder into a bidirectional encoder (LS-unLLaMA).

No modeling file is copied. transformers' mask builders (`masking_utils`, used by Llama,
Mistral, Qwen2 and their relatives) pass a 4D `attention_mask` through untouched to the
sdpa and eager attention functions, and sdpa only adds its own causal mask when no mask is
given. So a float additive 4D mask that blocks padded keys and nothing else makes every
real token attend to every other real token, with padding still masked. The attention
modules' `is_causal` flags are cleared too, so kernels that read them (flash, flex) do not
re-impose causality. `is_causal=False` alone is not enough: with padding, eager attention
or `use_cache=False` the mask builders still produce a causal mask.

The encoder passes a block-diagonal mask (`segment_mask_4d`) so that packed windows
(`packing`) see only themselves; in causal mode the mask is causal inside each block,
with the model's sliding window where it has one.
"""

import torch
from transformers import PretrainedConfig, PreTrainedModel

UNMASKED_ATTENTION = ("sdpa", "eager")


def make_bidirectional(model: PreTrainedModel) -> PreTrainedModel:
    """Clear the causal flag of every attention module and check the attention kernel."""
    implementation = model.config._attn_implementation
    if implementation not in UNMASKED_ATTENTION:
        raise ValueError(
            f"Bidirectional attention needs attn_implementation 'sdpa' or 'eager', "
            f"not '{implementation}' (flash attention cannot take a 4D mask)."
        )
    for module in model.modules():
        if hasattr(module, "is_causal"):
            module.is_causal = False
    return model


def padding_mask_4d(attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Additive (batch, 1, query, key) mask: 0 for real keys, dtype-min for padded keys.

    A float mask is required: eager attention adds the mask to the scores, so a boolean mask
    would be added as 0/1 and silently attend to padding.
    """
    batch, length = attention_mask.shape
    blocked = (attention_mask == 0)[:, None, None, :].expand(batch, 1, length, length)
    mask = torch.zeros(blocked.shape, dtype=dtype, device=attention_mask.device)
    return mask.masked_fill(blocked, torch.finfo(dtype).min)


def segment_mask_4d(
    segments: torch.Tensor,
    positions: torch.Tensor,
    dtype: torch.dtype,
    *,
    causal: bool,
    sliding_window: int | None = None,
) -> torch.Tensor:
    """Additive (batch, 1, query, key) mask: each position sees only its own segment.

    `segments` (batch, length) names the packed window of each position (-1 for padding,
    which then sees only padding, so no row is fully masked). Causal, a query also sees no
    key at a later position, nor one `sliding_window` or more positions back.
    """
    allowed = segments[:, :, None] == segments[:, None, :]
    if causal:
        distance = positions[:, :, None] - positions[:, None, :]
        allowed &= distance >= 0
        if sliding_window is not None:
            allowed &= distance < sliding_window
    mask = torch.zeros(allowed.shape, dtype=dtype, device=segments.device)
    return mask.masked_fill(~allowed, torch.finfo(dtype).min)[:, None]


def sliding_window(config: PretrainedConfig) -> int | None:
    """The causal sliding window the model's own mask would apply, or None (Llama)."""
    if not getattr(config, "use_sliding_window", True):
        return None
    return getattr(config, "sliding_window", None)
