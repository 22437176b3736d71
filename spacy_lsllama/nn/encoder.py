"""The PyTorch side of the encoder: a decoder's final-layer states for windows of pieces.

This module is what the thinc shim wraps. It owns the (LoRA-adapted) decoder and its
tokenizer; the thinc layer feeds it windows of piece ids and gets back per-doc piece states,
already stitched from the windows.
"""

from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from typing import cast

import torch
from peft import PeftModel
from peft.tuners.lora import LoraLayer
from transformers import PretrainedConfig, PreTrainedModel
from transformers.tokenization_utils_fast import PreTrainedTokenizerFast

from .attention_kernel import attention_kernel
from .base_model import BaseModel, load_base_model
from .compile import compiled_layers, pad_chunk
from .families import Family, decoder_family
from .layer_selection import check_layers, select_layers
from .lora import LoraSettings, apply_lora
from .packing import PackedRows, pack_windows
from .precision import autocast, weights_dtype
from .prefix_cache import PrefixCache, window_key
from .unmasking import check_attention, segment_mask_4d

# The residual stream, the states between layers, in every dtype the weights run in: under
# mixed precision the matrix products run in bfloat16 while their sums stay float32 (as the
# GPU recipe keeps them). With bfloat16 sums, one epoch of the NER recipe ended 0.7 and 1.7
# dev F1 below float32 (two seeds; docs/results.md).
STATES_DTYPE = torch.float32


@dataclass
class EncoderSettings:
    """Everything the encoder is configured with; config values of LlamaTransformer.v1/v2."""

    name: str
    bidirectional: bool | None = None
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
    unmasked_layers: str | None = None
    prefix_cache_mb: int = 0
    prefix_cache_predict: bool = False

    def __post_init__(self) -> None:
        check_attention(self.attn_implementation)
        if self.rows_per_forward < 1:
            raise ValueError(f"rows_per_forward must be at least 1, got {self.rows_per_forward}")
        if not self.window // 2 <= self.stride <= self.window:
            raise ValueError(
                f"stride must lie between window/2 and window, got window={self.window}, "
                f"stride={self.stride}"
            )
        if self.unmasked_layers is not None:
            self.unmasked_layers = check_layers(self.unmasked_layers)
            if self.bidirectional is False and self.unmasked_layers != "none":
                raise ValueError(
                    f"bidirectional = false keeps every layer causal, but unmasked_layers = "
                    f"'{self.unmasked_layers}' unmasks some: set one of them, not both."
                )
        if self.prefix_cache_mb < 0:
            raise ValueError(f"prefix_cache_mb must be 0 (off) or more, got {self.prefix_cache_mb}")

    @property
    def unmasked_spec(self) -> str:
        """The unmasked block: `unmasked_layers`, the one source of truth when set (over
        `bidirectional = true` too); when null, `bidirectional`, the older shorthand for
        "all" (true or null) or "none" (false)."""
        if self.unmasked_layers is not None:
            return self.unmasked_layers
        return "none" if self.bidirectional is False else "all"


@dataclass
class DecoderParts:
    """The parts of a decoder that the encoder runs itself, layer by layer, and its family:
    what the model's own forward does around the layers (`families`)."""

    embed_tokens: torch.nn.Module
    layers: torch.nn.ModuleList
    norm: torch.nn.Module
    rotary: dict[str, torch.nn.Module]
    config: PretrainedConfig
    family: Family
    windows: list[int | None]

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        """The states going into the first layer, as the model's forward makes them (in the
        weights' dtype), then in `STATES_DTYPE`."""
        hidden = self.embed_tokens(input_ids)
        return self.family.embed(hidden, self.config, self.embed_tokens.training).to(STATES_DTYPE)


def decoder_parts(model: PreTrainedModel | PeftModel) -> DecoderParts:
    """A decoder's parts, under any LoRA wrapper; a clear error for unsupported families and
    for models without the parts (a model with a head, say)."""
    base = model.get_base_model() if isinstance(model, PeftModel) else model
    config = cast(PretrainedConfig, base.config)
    family = decoder_family(config)
    names = ("embed_tokens", "layers", "norm", *(module for _, module in family.rotary))
    parts = {name: getattr(base, name, None) for name in names}
    modules = {name: part for name, part in parts.items() if isinstance(part, torch.nn.Module)}
    layers = modules.get("layers")
    if len(modules) < len(names) or not isinstance(layers, torch.nn.ModuleList):
        raise ValueError(
            f"{type(base).__name__} is not a bare {config.model_type} decoder: the encoder "
            f"needs its {', '.join(names)}."
        )
    return DecoderParts(
        embed_tokens=modules["embed_tokens"],
        layers=layers,
        norm=modules["norm"],
        rotary={keyword: modules[module] for keyword, module in family.rotary},
        config=config,
        family=family,
        windows=family.windows(config),
    )


class LlamaEncoder(torch.nn.Module):
    """A decoder (optionally unmasked, optionally LoRA-adapted) used as a token encoder."""

    def __init__(
        self,
        model: PreTrainedModel | PeftModel,
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
        self._kept_weights: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.decoder = decoder_parts(model)
        n_layers = len(self.decoder.layers)
        self.unmasked = select_layers(settings.unmasked_spec, n_layers)
        self.frozen_layers = _frozen_layers(self.decoder, settings)
        self.prefix_cache = (
            PrefixCache(settings.prefix_cache_mb)
            if settings.prefix_cache_mb and self.frozen_layers
            else None
        )

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)

    def set_lora_merged(self, merged: bool) -> None:
        """Fold the LoRA update into the base weights for prediction, or take it back out.

        Merged, prediction skips the adapters' extra matrix products, their scaling and the
        sum: with bfloat16 weights on a CPU with AMX they cost about as much as the frozen
        products themselves. Training and saving an embedded base need the adapters apart again.
        Half-precision weights round when merged, so a copy of them is kept while merged
        and put back on unmerging: the frozen base stays exact.
        """
        if merged == self.lora_merged or not isinstance(self.model, PeftModel):
            return
        with torch.no_grad():
            if merged:
                self._kept_weights = _half_precision_base_weights(self.model)
                self.model.merge_adapter()
            else:
                self.model.unmerge_adapter()
                for weight, kept in self._kept_weights:
                    weight.copy_(kept)
                self._kept_weights = []
        self.lora_merged = merged

    def use_compiled(self, compiled: bool) -> None:
        """Run through torch.compile (`compilation`) or eagerly: the `compile` setting."""
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
        row: a batch of mixed lengths then computes little padding. With the frozen-prefix
        cache on, the rows start from the cached states of the frozen lower layers. The
        attention kernel depends on the rows' width, the dtype and whether gradients are on
        (`attention_kernel`). With `compile` on, the layers run through torch.compile, in
        training too unless gradients are checkpointed (`compile`).
        """
        compiled = self.settings.compile and not (
            torch.is_grad_enabled() and self.settings.gradient_checkpointing
        )
        lengths = attention_mask.sum(dim=1)
        packed = pack_windows(input_ids, lengths)
        kernel = attention_kernel(  # for every layer of the pass, the frozen prefix's too
            input_ids.device,
            packed.input_ids.shape[1],
            weights_dtype(self.model),
            checkpointing=self.settings.gradient_checkpointing,
        )
        with autocast(self.model, input_ids.device), kernel:  # mixed precision (`precision`)
            prefix = self._cached_prefix(input_ids, lengths, packed, compiled)
            start = 0 if prefix is None else self.frozen_layers
            layers = range(start, len(self.decoder.layers))
            rows = self._run_rows(packed, layers, compiled, prefix)
        states = rows.reshape(-1, self.hidden_size)[packed.source]
        return states[gather] * keep.unsqueeze(-1)

    def _run_rows(
        self,
        packed: PackedRows,
        layers: range,
        compiled: bool,
        prefix: torch.Tensor | None = None,
        *,
        final_norm: bool = True,
    ) -> torch.Tensor:
        """Every packed row through a block of layers, `rows_per_forward` rows at a time,
        fullest first, each chunk cut to its fullest row: from the embeddings, or from
        `prefix`, the rows' states where the block starts. `final_norm`: as in `_run`."""
        rows = torch.zeros(
            (*packed.input_ids.shape, self.hidden_size),
            dtype=STATES_DTYPE,
            device=packed.input_ids.device,
        )
        for chunk, n in packed.chunks(self.settings.rows_per_forward):
            if prefix is None:
                hidden = self.decoder.embed(packed.input_ids[chunk, :n])
            else:
                hidden = prefix[chunk, :n]
            rows[chunk, :n] = self._run(
                hidden,
                packed.position_ids[chunk, :n],
                packed.segments[chunk, :n],
                layers=layers,
                compiled=compiled,
                final_norm=final_norm,
            )
        return rows

    def _run(
        self,
        hidden: torch.Tensor,
        position_ids: torch.Tensor,
        segments: torch.Tensor,
        *,
        layers: range,
        compiled: bool,
        final_norm: bool = True,
    ) -> torch.Tensor:
        """Run a chunk's hidden states through a block of decoder layers (and the final
        norm when the block ends at the top, unless `final_norm` is false: the frozen
        prefix stops before it), each layer with its own mask: causal (through the layer's
        sliding window, if it has one) or not inside each packed window, as `unmasked` says.
        One mask per distinct kind of layer in the block, one set of rotary tables."""
        decoder = self.decoder
        rows, width = position_ids.shape
        if compiled:
            hidden, position_ids, segments = pad_chunk(hidden, position_ids, segments)
        kinds = {index: self._attention_kind(index) for index in layers}
        masks = {
            (unmasked, window): segment_mask_4d(
                segments, position_ids, hidden.dtype, causal=not unmasked, sliding_window=window
            )
            for unmasked, window in set(kinds.values())
        }
        tables = {
            keyword: rotary(hidden, position_ids) for keyword, rotary in decoder.rotary.items()
        }
        with compiled_layers(self.model, hidden.device) if compiled else nullcontext():
            for index in layers:
                output = decoder.layers[index](
                    hidden,
                    attention_mask=masks[kinds[index]],
                    position_ids=position_ids,
                    use_cache=False,
                    **tables,
                )
                hidden = output[0] if isinstance(output, tuple) else output
        if final_norm and layers.stop == len(decoder.layers):
            hidden = decoder.norm(hidden)
        return hidden[:rows, :width]

    def _attention_kind(self, index: int) -> tuple[bool, int | None]:
        """What a layer's mask depends on: unmasked (then it sees the whole window), or
        causal through its sliding window (None: none)."""
        if index in self.unmasked:
            return True, None
        return False, self.decoder.windows[index]

    def _cached_prefix(
        self, input_ids: torch.Tensor, lengths: torch.Tensor, packed: PackedRows, compiled: bool
    ) -> torch.Tensor | None:
        """The frozen lower layers' states laid out in the packed rows, from the cache
        (computing and caching the windows it lacks), or None when the cache is off."""
        cache = self.prefix_cache
        if cache is None or not (torch.is_grad_enabled() or self.settings.prefix_cache_predict):
            return None
        window_width = input_ids.shape[1]
        host_ids = input_ids.cpu()  # one transfer for every window's key
        keys = [window_key(ids[:n]) for ids, n in zip(host_ids, lengths.tolist(), strict=True)]
        states: list[torch.Tensor | None] = [cache.get(key) for key in keys]
        missing = [i for i, found in enumerate(states) if found is None]
        if missing:
            computed = self._lower_states(input_ids[missing], lengths[missing], compiled)
            for i, window_states in zip(missing, computed, strict=True):
                cache.put(keys[i], window_states)
                states[i] = window_states
        flat = torch.zeros(
            (packed.input_ids.numel(), self.hidden_size),
            dtype=STATES_DTYPE,
            device=input_ids.device,
        )
        for i, found in enumerate(states):
            assert found is not None
            start = i * window_width
            flat[packed.source[start : start + len(found)]] = found
        return flat.view(*packed.input_ids.shape, self.hidden_size)

    def _lower_states(
        self, input_ids: torch.Tensor, lengths: torch.Tensor, compiled: bool
    ) -> list[torch.Tensor]:
        """Each window's states after the frozen lower layers (no gradients: nothing there
        trains), computed packed like the full forward pass. Never normed: when the prefix
        is every layer (`lora = null`), the upper block is empty and applies the norm."""
        packed = pack_windows(input_ids, lengths)
        with torch.no_grad():
            rows = self._run_rows(packed, range(self.frozen_layers), compiled, final_norm=False)
        flat = rows.reshape(-1, self.hidden_size)
        width = input_ids.shape[1]
        return [
            flat[packed.source[i * width : i * width + n]] for i, n in enumerate(lengths.tolist())
        ]


def _half_precision_base_weights(model: PeftModel) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Each adapted base weight stored in half precision, with a copy of it."""
    weights: list[torch.Tensor] = [
        cast(torch.nn.Linear, module.get_base_layer()).weight
        for module in model.modules()
        if isinstance(module, LoraLayer)
    ]
    return [(w, w.detach().clone()) for w in weights if w.dtype != torch.float32]


def _frozen_layers(decoder: DecoderParts, settings: EncoderSettings) -> int:
    """How many of the lowest layers never change in training: those below the lowest
    adapter (all of them without LoRA), if the decoder has no dropout."""
    if decoder.family.stochastic(decoder.config):
        return 0
    n_layers = len(decoder.layers)
    if settings.lora is None:
        return n_layers
    return settings.lora.adapted_layers(n_layers).start


def build_encoder(settings: EncoderSettings, base: BaseModel | None = None) -> LlamaEncoder:
    """Load the base model named in the settings and prepare it: LoRA, checkpointing (the
    encoder unmasks layers through the masks it gives them). A base model of an unsupported
    family is refused here, before anything is adapted."""
    if base is None:
        base = load_base_model(
            settings.name, dtype=settings.dtype, attn_implementation=settings.attn_implementation
        )
    model = base.model
    family = decoder_family(model.config)
    if settings.gradient_checkpointing and settings.lora is not None:  # else nothing trains
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    adapted: PreTrainedModel | PeftModel = model
    if settings.lora is not None:
        targets = family.lora_targets(settings.lora.target_modules)
        _check_lora_targets(model, targets)
        adapted = apply_lora(model, replace(settings.lora, target_modules=targets))
    return LlamaEncoder(
        adapted, base.tokenizer, settings, base_name=base.name, base_sha256=base.sha256
    )


def _check_lora_targets(model: PreTrainedModel, targets: list[str]) -> None:
    """Refuse LoRA targets the decoder has no module for: peft refuses only when none of
    them matches, and would otherwise adapt fewer projections than configured."""
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [target for target in targets if target not in names]
    if missing:
        raise ValueError(
            f"LoRA target_modules {missing} name no module of this "
            f"{model.config.model_type} decoder."
        )
