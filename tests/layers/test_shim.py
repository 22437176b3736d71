"""The encoder's serialization: a saved encoder loads only under the settings it was saved with."""

import json
import re
import shutil

import pytest
import spacy

from spacy_lsllama.testing import encoder_nlp

LORA = {"@misc": "spacy-lsllama.LoRA.v2", "r": 4, "alpha": 8}
KEY = "components.llm.model.lora"


@pytest.fixture(scope="module")
def saved(tiny_model_dir, tmp_path_factory):
    path = tmp_path_factory.mktemp("shim") / "pipeline"
    encoder_nlp(tiny_model_dir, lora=LORA).to_disk(path)
    return path


@pytest.mark.parametrize(
    "setting,trained,configured",
    [("alpha", 8, 16), ("r", 4, 8), ("layers", "all", "top 1"), ("dropout", 0.1, 0.0)],
)
def test_lora_settings_other_than_the_adapters_are_refused(saved, setting, trained, configured):
    if setting == "dropout":  # training-only: a loaded pipeline may train on with another
        spacy.load(saved, config={f"{KEY}.{setting}": configured})
        return
    message = (
        f"trained with lora.{setting} = {trained!r}, but the config sets "
        f"lora.{setting} = {configured!r}"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        spacy.load(saved, config={f"{KEY}.{setting}": configured})


def test_another_hidden_size_than_the_saved_one_is_refused(saved, tmp_path):
    copy = shutil.copytree(saved, tmp_path / "pipeline")
    info_path = copy / "llm" / "model" / "encoder.json"
    info = json.loads(info_path.read_text())
    info["hidden_size"] = 32
    info_path.write_text(json.dumps(info))
    with pytest.raises(ValueError, match="saved with hidden_size = 32, but the base model has"):
        spacy.load(copy)
