"""Attention unmasking: turn a causal decoder into a bidirectional encoder (LS-unLLaMA).

No modeling file is copied. transformers' mask builders (`masking_utils`, used by Llama,
Mistral, Qwen2 and their relatives) pass a 4D `attention_mask` through untouched to the
sdpa and eager attention functions, and sdpa only adds its own causal mask when no mask is
given. So a float additive 4D mask that blocks padded keys and nothing else makes every
real token attend to every other real token, with padding still masked. The attention
modules' `is_causal` flags are cleared too, so kernels that read them (flash, flex) do not
re-impose causality. `is_causal=False` alone is not enough: with padding, eager attention
or `use_cache=False` the mask builders still produce a causal mask.
"""

import torch
from transformers import PreTrainedModel

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
