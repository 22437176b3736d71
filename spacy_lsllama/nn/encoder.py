"""The PyTorch side of the encoder: a decoder's final-layer states for windows of pieces.

This module is what the thinc shim wraps. It owns the (LoRA-adapted) decoder and its
tokenizer; the thinc layer feeds it windows of piece ids and gets back per-doc piece states,
already stitched from the windows.
"""

from contextlib import nullcontext
from dataclasses import dataclass, field, replace

import torch
from peft import PeftModel
from transformers import PreTrainedModel, PreTrainedTokenizerFast

from .base_model import BaseModel, load_base_model
from .compile import compiled_layers, pad_chunk
from .lora import LoraSettings, apply_lora
from .packing import pack_windows
from .unmasking import make_bidirectional, segment_mask_4d, sliding_window


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
    compile: bool = False

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

    def use_compiled(self, compiled: bool) -> None:
        """Predict through torch.compile (`compilation`) or eagerly: the `compile` setting."""
        self.settings = replace(self.settings, compile=compiled)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        gather: torch.Tensor,
        keep: torch.Tensor,
    ) -> torch.Tensor:
        """Final-layer states (docs, pieces, hidden) in float32, stitched from windows.

        Windows are packed into rows as wide as the longest window (`packing`), and the
        rows run `rows_per_forward` at a time, fullest first, each chunk cut to its fullest
        row: a batch of mixed lengths then computes little padding.
        """
        packed = pack_windows(input_ids, attention_mask.sum(dim=1))
        rows = torch.zeros(
            (*packed.input_ids.shape, self.hidden_size),
            dtype=torch.float32,
            device=input_ids.device,
        )
        for chunk, n in packed.chunks(self.settings.rows_per_forward):
            rows[chunk, :n] = self._states(
                packed.input_ids[chunk, :n],
                packed.position_ids[chunk, :n],
                packed.segments[chunk, :n],
            )
        states = rows.reshape(-1, self.hidden_size)[packed.source]
        return states[gather] * keep.unsqueeze(-1)

    def _states(
        self, input_ids: torch.Tensor, position_ids: torch.Tensor, segments: torch.Tensor
    ) -> torch.Tensor:
        compiled = self.settings.compile and not torch.is_grad_enabled()
        rows, width = input_ids.shape
        if compiled:
            input_ids, position_ids, segments = pad_chunk(input_ids, position_ids, segments)
        mask = segment_mask_4d(
            segments,
            position_ids,
            self.model.dtype,
            causal=not self.settings.bidirectional,
            sliding_window=sliding_window(self.model.config),
        )
        with compiled_layers(self.model) if compiled else nullcontext():
            output = self.model(
                input_ids=input_ids,
                position_ids=position_ids,
                attention_mask=mask,
                use_cache=False,
            )
        return output.last_hidden_state[:rows, :width].float()


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
