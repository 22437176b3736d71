"""The PyTorch side of the encoder: a decoder's final-layer states for windows of pieces.

This module is what the thinc shim wraps. It owns the (LoRA-adapted) decoder and its
tokenizer; the thinc layer feeds it windows of piece ids and gets back per-doc piece states,
already stitched from the windows.
"""

from dataclasses import dataclass, field

import torch
from peft import PeftModel
from transformers import PreTrainedModel, PreTrainedTokenizerFast

from ..base_model import BaseModel, load_base_model
from ..lora import LoraSettings, apply_lora
from ..unmasking import make_bidirectional, padding_mask_4d


@dataclass
class EncoderSettings:
    """Everything the encoder is configured with; config values of LlamaTransformer.v1."""

    name: str
    bidirectional: bool = True
    lora: LoraSettings | None = field(default_factory=LoraSettings)
    dtype: str = "auto"
    attn_implementation: str = "sdpa"
    gradient_checkpointing: bool = False
    window: int = 512
    stride: int = 384
    rows_per_forward: int = 8
    merge_lora: bool = True
    embed_base_model: bool = False

    def __post_init__(self) -> None:
        if self.rows_per_forward < 1:
            raise ValueError(f"rows_per_forward must be at least 1, got {self.rows_per_forward}")
        if not self.window // 2 <= self.stride <= self.window:
            raise ValueError(
                f"stride must lie between window/2 and window, got window={self.window}, "
                f"stride={self.stride}"
            )


class LlamaEncoder(torch.nn.Module):
    """A decoder (optionally unmasked, optionally LoRA-adapted) used as a token encoder."""

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerFast,
        settings: EncoderSettings,
        *,
        base_name: str,
        base_sha256: str,
    ):
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.settings = settings
        self.base_name = base_name
        self.base_sha256 = base_sha256
        self.lora_merged = False

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)

    def set_lora_merged(self, merged: bool) -> None:
        """Fold the LoRA update into the base weights for prediction, or take it back out.

        Merged, prediction skips the adapters' extra matrix products; training and saving
        an embedded base need the adapters apart again. Only float32 weights are merged: in
        half precision unmerging would not restore the frozen base weights exactly.
        """
        if merged == self.lora_merged or not isinstance(self.model, PeftModel):
            return
        if merged and self.model.get_base_model().dtype != torch.float32:
            return
        with torch.no_grad():
            if merged:
                self.model.merge_adapter()
            else:
                self.model.unmerge_adapter()
        self.lora_merged = merged

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        gather: torch.Tensor,
        keep: torch.Tensor,
    ) -> torch.Tensor:
        """Final-layer states (docs, pieces, hidden) in float32, stitched from windows.

        Windows run longest first, `rows_per_forward` at a time, each chunk cut to its own
        longest row: a batch of mixed lengths then computes little padding.
        """
        lengths = attention_mask.sum(dim=1)
        n_windows, width = input_ids.shape
        states = torch.zeros(
            (n_windows, width, self.hidden_size), dtype=torch.float32, device=input_ids.device
        )
        for rows in forward_chunks(lengths, self.settings.rows_per_forward):
            n = int(lengths[rows].max())
            states[rows, :n] = self._states(input_ids[rows, :n], attention_mask[rows, :n])
        return states.reshape(-1, self.hidden_size)[gather] * keep.unsqueeze(-1)

    def _states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        mask = attention_mask
        if self.settings.bidirectional:
            mask = padding_mask_4d(attention_mask, self.model.dtype)
        output = self.model(input_ids=input_ids, attention_mask=mask, use_cache=False)
        return output.last_hidden_state.float()


def forward_chunks(lengths: torch.Tensor, rows_per_forward: int) -> tuple[torch.Tensor, ...]:
    """Row indices of each forward pass: longest windows first, `rows_per_forward` a chunk."""
    order = torch.argsort(lengths, descending=True, stable=True)
    return order.split(rows_per_forward)


def build_encoder(settings: EncoderSettings, base: BaseModel | None = None) -> LlamaEncoder:
    """Load the base model named in the settings and prepare it: unmask, LoRA, checkpointing."""
    if base is None:
        base = load_base_model(
            settings.name, dtype=settings.dtype, attn_implementation=settings.attn_implementation
        )
    model = base.model
    if settings.bidirectional:
        make_bidirectional(model)
    if settings.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    if settings.lora is not None:
        model = apply_lora(model, settings.lora)
    return LlamaEncoder(
        model, base.tokenizer, settings, base_name=base.name, base_sha256=base.sha256
    )
