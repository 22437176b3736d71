"""Loading a trained pipeline with the dtype its encoders run in chosen by the caller.

`dtype = "auto"` follows the device and CPU (`nn/precision.py`): a model trained in float32 and
reloaded where `auto` picks bfloat16 (a GPU, a CPU with AMX or AVX-512 BF16), or the reverse,
scores slightly differently from the dev scores `spacy train` logged for it. Loading with the
dtype of training (e.g. `dtype="float32"`) reproduces them.
"""

from enum import Enum
from pathlib import Path
from typing import Any

from spacy import util
from spacy.language import Language

from .transformer import FACTORY


class EncoderDtype(str, Enum):
    """What a loaded pipeline's encoders run in; `auto` keeps each one's saved setting."""

    auto = "auto"
    float32 = "float32"
    bfloat16 = "bfloat16"
    float16 = "float16"


def load_pipeline(
    name: str | Path,
    *,
    dtype: EncoderDtype = EncoderDtype.auto,
    overrides: dict[str, Any] | None = None,
) -> Language:
    """`spacy.load`, with every `lsllama_transformer`'s `dtype` set to `dtype` unless auto,
    and the config's dotted `overrides` (`{"components.ner.decoding": "greedy"}`) applied."""
    overrides = dict(overrides or {})
    if dtype != EncoderDtype.auto:
        config = util.load_config(pipeline_path(name) / "config.cfg")
        for component, settings in config["components"].items():
            if settings.get("factory") == FACTORY:
                overrides[f"components.{component}.model.dtype"] = dtype.value
    return util.load_model(name, config=overrides)


def pipeline_path(name: str | Path) -> Path:
    """The directory holding a pipeline's config.cfg: the path given, or the data directory
    of an installed pipeline package (as spaCy's `load_model_from_init_py` finds it)."""
    path = Path(name)
    if path.is_dir():
        return path
    if not util.is_package(str(name)):
        raise OSError(f"Can't find pipeline '{name}': neither a directory nor a package.")
    package = util.get_package_path(str(name))
    meta = util.get_model_meta(package)
    return package / f"{meta['lang']}_{meta['name']}-{meta['version']}"
