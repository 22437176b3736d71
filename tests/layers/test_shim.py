"""The encoder's shim: a saved encoder loads only under the settings it was saved with, and
updates train the adapters in place."""

import gc
import json
import re
import shutil
import warnings

import pytest
import spacy
import torch
from spacy.training import Example

from spacy_lsllama.layers.transformer_model import get_encoder
from spacy_lsllama.testing import encoder_nlp, lsllama_ner_nlp

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


def _live_tensors() -> int:
    gc.collect()
    with warnings.catch_warnings():  # torch.distributed's deprecated aliases warn on isinstance
        warnings.simplefilter("ignore", FutureWarning)
        return sum(1 for obj in gc.get_objects() if torch.is_tensor(obj))


def test_updates_train_the_adapters_without_keeping_a_tensor_per_step(tiny_model_dir):
    nlp = lsllama_ner_nlp(tiny_model_dir)
    doc = nlp.make_doc("Merkel visited Tokyo")
    examples = [Example.from_dict(doc, {"entities": [(0, 6, "PER"), (15, 20, "LOC")]})]
    optimizer = nlp.initialize(lambda: examples)
    encoder = get_encoder(nlp.get_pipe("llm").model)
    lora = {name: param for name, param in encoder.named_parameters() if "lora_" in name}
    nlp.update(examples, sgd=optimizer)
    before = {name: param.detach().clone() for name, param in lora.items()}
    live = _live_tensors()
    for _ in range(5):
        nlp.update(examples, sgd=optimizer)
    assert _live_tensors() == live
    assert lora and all(not torch.equal(param, before[name]) for name, param in lora.items())
