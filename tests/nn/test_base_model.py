"""Base-model resolution: local directories, refusal of pickles, hub names offline."""

import shutil

import pytest
import torch
from safetensors.torch import load_file

from spacy_lsllama.nn.base_model import (
    BaseModelError,
    load_base_model,
    prepare_base_model,
    resolve_dtype,
)
from spacy_lsllama.testing import build_tiny_model


def test_local_directory_loads_with_fingerprint_independent_of_dtype(tiny_model_dir):
    fp32 = load_base_model(tiny_model_dir, dtype="float32")
    bf16 = load_base_model(tiny_model_dir, dtype="bfloat16")
    assert bf16.model.dtype == torch.bfloat16
    assert fp32.sha256 == bf16.sha256 and len(fp32.sha256) == 64
    assert not any(p.requires_grad for p in fp32.model.parameters())


def test_fingerprint_tells_other_weights_apart(tiny_model_dir, tmp_path):
    other = build_tiny_model(tmp_path / "other", seed=1)
    assert load_base_model(other).sha256 != load_base_model(tiny_model_dir).sha256


def test_pickled_checkpoints_are_never_loaded(tiny_model_dir, tmp_path):
    """A valid torch.save checkpoint, which transformers would load if it were allowed to."""
    target = shutil.copytree(tiny_model_dir, tmp_path / "pickled")
    state = load_file(str(target / "model.safetensors"))
    (target / "model.safetensors").unlink()
    torch.save(state, target / "pytorch_model.bin")
    with pytest.raises(BaseModelError, match="Could not load base model weights"):
        load_base_model(target)


def test_unreachable_hub_name_gives_a_clear_error():
    with pytest.raises(BaseModelError, match="could not be fetched from the Hugging Face Hub"):
        load_base_model("no-such-org/no-such-model")


def test_missing_gguf_file_is_named(tmp_path):
    with pytest.raises(BaseModelError, match="GGUF file not found"):
        load_base_model(tmp_path / "model.gguf")


def test_unknown_dtype_is_refused():
    with pytest.raises(BaseModelError, match="Unknown dtype"):
        resolve_dtype("float8")


def test_prepared_directory_keeps_the_fingerprint(tiny_model_dir, tmp_path):
    out = prepare_base_model(tiny_model_dir, tmp_path / "prepared")
    assert load_base_model(out).sha256 == load_base_model(tiny_model_dir).sha256
    assert (out / "lsllama_base.json").exists()
