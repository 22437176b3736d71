"""LoRA adaptation of the base decoder through peft: only adapter (and head) weights train."""

from dataclasses import asdict, dataclass, field

import torch
from peft import LoraConfig, PeftModel, get_peft_model, set_peft_model_state_dict
from peft.utils import get_peft_model_state_dict
from transformers import PreTrainedModel

from .dropout import SharedInputDropout
from .layer_selection import check_layers, select_layers

LLAMA_ATTENTION = ["q_proj", "k_proj", "v_proj", "o_proj"]
LLAMA_MLP = ["gate_proj", "up_proj", "down_proj"]


@dataclass
class LoraSettings:
    """LoRA hyperparameters; the defaults are the paper's (r=12, alpha=32, dropout=0.1)."""

    r: int = 12
    alpha: int = 32
    dropout: float = 0.1
    target_modules: list[str] = field(default_factory=lambda: list(LLAMA_ATTENTION))
    layers: str = "all"
    shared_dropout: bool = True

    def __post_init__(self) -> None:
        self.layers = check_layers(self.layers)
        if self.layers == "none":
            raise ValueError("LoRA on no layers adapts nothing: set `lora = null` instead.")

    def to_dict(self) -> dict:
        return asdict(self)

    def adapted_layers(self, n_layers: int) -> range:
        """The decoder layers that carry adapters; the layers below them stay frozen."""
        return select_layers(self.layers, n_layers)


def apply_lora(model: PreTrainedModel, settings: LoraSettings) -> PeftModel:
    """Wrap the decoder with LoRA adapters; the base weights stay frozen.

    Target modules are listed explicitly: `all-linear` would also put adapters on heads.
    Adapters stay in float32 when the base runs in bfloat16 (peft's autocast_adapter_dtype).
    Adapters on some layers only go through peft's `layers_to_transform` (the decoder's
    layer list is `layers`, at the top of its module names: peft's default pattern
    wants a prefix before it).
    """
    n_layers = int(model.config.num_hidden_layers)
    layers = settings.adapted_layers(n_layers)
    config = LoraConfig(
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=list(settings.target_modules),
        layers_to_transform=None if len(layers) == n_layers else list(layers),
        layers_pattern=None if len(layers) == n_layers else "layers",
        bias="none",
    )
    adapted = get_peft_model(model, config)
    if settings.shared_dropout and settings.dropout > 0:
        share_input_dropout(adapted, settings.dropout)
    return adapted


def share_input_dropout(model: PeftModel, p: float) -> None:
    """Give every adapter one `SharedInputDropout`: projections that read the same tensor
    (q/k/v, gate/up) then draw one mask for it instead of one each (`nn.dropout`)."""
    shared = SharedInputDropout(p)
    for module in model.modules():
        dropouts = getattr(module, "lora_dropout", None)
        if isinstance(dropouts, torch.nn.ModuleDict):
            for name in dropouts:
                dropouts[name] = shared


def adapter_state(model: PeftModel) -> dict[str, torch.Tensor]:
    """The trainable adapter weights, detached and contiguous, ready for safetensors."""
    state = get_peft_model_state_dict(model)
    return {key: value.detach().cpu().contiguous() for key, value in state.items()}


def load_adapter_state(model: PeftModel, state: dict[str, torch.Tensor]) -> None:
    """Load adapter weights, refusing any key or shape mismatch.

    peft loads with strict=False and only warns, which silently leaves random adapters in
    place when names drift; a pipeline must fail to load instead.
    """
    expected = adapter_state(model)
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"The saved LoRA adapter does not fit this encoder: {len(missing)} missing keys "
            f"(e.g. {missing[:2]}), {len(unexpected)} unexpected keys (e.g. {unexpected[:2]}). "
            "Were the lora settings or the base model changed since training?"
        )
    for key, value in state.items():
        if value.shape != expected[key].shape:
            raise ValueError(
                f"LoRA weight {key} has shape {tuple(value.shape)} in the saved adapter but "
                f"{tuple(expected[key].shape)} in this encoder."
            )
    set_peft_model_state_dict(model, state)
