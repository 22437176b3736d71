"""The decoder families the encoder runs, and what each one does differently around its layers.

The encoder runs a decoder's own layers itself (`encoder`), so whatever a family's model
forward does outside those layers has to be done again here, or the states come out silently
wrong. Each supported `config.model_type` has one `Family` entry saying what differs from
Llama, mirroring its modeling file in transformers 4.53.2: how the embeddings are scaled,
which layers attend through a sliding window, which rotary tables a layer takes under which
keywords, and the names of the projections that LoRA adapts. Any other model type is refused
(`decoder_family`), never half-run.
"""

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import torch
from transformers import PretrainedConfig

EmbeddingStep = Callable[[torch.Tensor, PretrainedConfig, bool], torch.Tensor]
WindowRule = Callable[[PretrainedConfig], list[int | None]]


def _as_is(hidden: torch.Tensor, config: PretrainedConfig, training: bool) -> torch.Tensor:
    """Llama: the embedding rows go into the first layer as they are."""
    return hidden


def _times_sqrt_hidden(
    hidden: torch.Tensor, config: PretrainedConfig, training: bool
) -> torch.Tensor:
    """GemmaModel / Gemma2Model.forward: times sqrt(hidden_size), the factor first cast to
    the states' dtype (in bfloat16 sqrt(3072) is 55.5, and the checkpoints expect that)."""
    return hidden * torch.tensor(config.hidden_size**0.5, dtype=hidden.dtype)


def _times_embedding_multiplier(
    hidden: torch.Tensor, config: PretrainedConfig, training: bool
) -> torch.Tensor:
    """GraniteModel.forward: times the config's `embedding_multiplier`."""
    return hidden * config.embedding_multiplier


def _embedding_dropout(
    hidden: torch.Tensor, config: PretrainedConfig, training: bool
) -> torch.Tensor:
    """Starcoder2Model.forward: dropout on the embeddings in training (`embedding_dropout`)."""
    return torch.nn.functional.dropout(hidden, p=config.embedding_dropout, training=training)


def _no_window(config: PretrainedConfig) -> list[int | None]:
    """Full causal attention in every layer (the model builds only `create_causal_mask`)."""
    return [None] * config.num_hidden_layers


def _window_everywhere(config: PretrainedConfig) -> list[int | None]:
    """Mistral, Starcoder2, Phi-3: `sliding_window` (None: none) in every layer."""
    return [config.sliding_window] * config.num_hidden_layers


def _window_by_layer_type(config: PretrainedConfig) -> list[int | None]:
    """Qwen2/3, Gemma 2/3: the window only in the layers whose `layer_types` entry is
    "sliding_attention". The configs derive `layer_types` when a checkpoint has none: Qwen
    slides from `max_window_layers` up and only with `use_sliding_window` (else
    `sliding_window` is None), Gemma 2 alternates, Gemma 3 makes every sixth layer full."""
    window = config.sliding_window
    return [window if kind == "sliding_attention" else None for kind in config.layer_types]


LLAMA_ROTARY = (("position_embeddings", "rotary_emb"),)


@dataclass(frozen=True)
class Family:
    """What one decoder family's model forward does around its layers, beyond Llama's.

    embed: applied to the embedding rows before the first layer.
    windows: each layer's causal sliding window (None: full causal attention).
    rotary: (keyword, module) pairs: each layer gets every table the model's `module`
        computes, under `keyword`.
    lora_modules: where the family names a projection otherwise (Llama's name: its own);
        a fused projection is adapted when any of its parts is named.
    dropouts: config values whose dropout makes a training pass stochastic.
    """

    embed: EmbeddingStep = _as_is
    windows: WindowRule = _no_window
    rotary: tuple[tuple[str, str], ...] = LLAMA_ROTARY
    lora_modules: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    dropouts: tuple[str, ...] = ("attention_dropout",)

    def lora_targets(self, names: Iterable[str]) -> list[str]:
        """The family's module names for LoRA target names given in Llama's terms (or in
        the family's own), in order, each once."""
        targets: dict[str, None] = {}
        for name in names:
            targets.update(dict.fromkeys(self.lora_modules.get(name, (name,))))
        return list(targets)

    def stochastic(self, config: PretrainedConfig) -> bool:
        """Whether a training pass has dropout, so that no layer's output can be cached."""
        return any(getattr(config, name, 0.0) or 0.0 for name in self.dropouts)


GEMMA3_ROTARY = (
    ("position_embeddings_global", "rotary_emb"),
    ("position_embeddings_local", "rotary_emb_local"),
)
PHI3_FUSED = {
    "q_proj": ("qkv_proj",),
    "k_proj": ("qkv_proj",),
    "v_proj": ("qkv_proj",),
    "gate_proj": ("gate_up_proj",),
    "up_proj": ("gate_up_proj",),
}
STARCODER2_MLP = {"gate_proj": ("c_fc",), "up_proj": ("c_fc",), "down_proj": ("c_proj",)}

FAMILIES: dict[str, Family] = {
    "llama": Family(),
    "mistral": Family(windows=_window_everywhere),
    "qwen2": Family(windows=_window_by_layer_type),
    "qwen3": Family(windows=_window_by_layer_type),
    "olmo2": Family(),
    "cohere": Family(),
    "stablelm": Family(dropouts=("attention_dropout", "hidden_dropout")),
    "starcoder2": Family(
        embed=_embedding_dropout,
        windows=_window_everywhere,
        lora_modules=STARCODER2_MLP,
        dropouts=("attention_dropout", "residual_dropout", "embedding_dropout"),
    ),
    "phi3": Family(
        windows=_window_everywhere,
        lora_modules=PHI3_FUSED,
        dropouts=("attention_dropout", "resid_pdrop"),
    ),
    "gemma": Family(embed=_times_sqrt_hidden),
    "gemma2": Family(embed=_times_sqrt_hidden, windows=_window_by_layer_type),
    # Gemma3TextModel scales the embeddings inside `embed_tokens` itself.
    "gemma3_text": Family(windows=_window_by_layer_type, rotary=GEMMA3_ROTARY),
    "granite": Family(embed=_times_embedding_multiplier),
}


def decoder_family(config: PretrainedConfig) -> Family:
    """The family entry for a decoder's config; a ValueError naming the supported model
    types for any other."""
    model_type = getattr(config, "model_type", None)
    if model_type not in FAMILIES:
        raise ValueError(
            f"Base models of type '{model_type}' are not supported: the encoder runs a "
            "decoder's layers itself and knows what the model does around them only for "
            f"these model types: {', '.join(sorted(FAMILIES))}."
        )
    return FAMILIES[model_type]
