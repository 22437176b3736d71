"""Attention unmasking: a causal decoder made bidirectional in all or some layers (LS-unLLaMA).

No modeling file is copied. The encoder runs the decoder's layers itself (`encoder`) and
gives each layer an explicit float additive 4D mask: block-diagonal, so packed windows
(`packing`) and padding see only themselves, and causal inside each block for the layers
that keep the causal mask (with the model's sliding window where it has one), or not for the
unmasked layers. sdpa and eager attention take such a mask as is (sdpa adds its own causal
mask only when none is given, so the attention modules' `is_causal` flags never apply);
flash kernels cannot take one, so they are refused for every mode. Clearing `is_causal`
alone would not be enough anyway: with padding, eager attention or `use_cache=False`
transformers' mask builders still produce a causal mask.

Which layers are unmasked is a block (`layer_selection`): all of them (the paper), none
(LS-LLaMA), the top k (BiLLM) or a middle block (Kukić et al. 2026).
"""

import torch

UNMASKED_ATTENTION = ("sdpa", "eager")


def check_attention(implementation: str) -> str:
    """Refuse attention kernels that cannot take the encoder's 4D block masks."""
    if implementation not in UNMASKED_ATTENTION:
        raise ValueError(
            f"attn_implementation must be 'sdpa' or 'eager', not '{implementation}': the "
            "encoder's packed windows need a 4D block mask, which flash kernels cannot take "
            "(in causal mode too)."
        )
    return implementation


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
