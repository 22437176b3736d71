"""Registered architectures: `unmasked_layers` is the one source of truth for unmasking."""

from pathlib import Path

import numpy
import pytest
import spacy
from spacy.util import registry

from spacy_lsllama.layers.transformer_model import get_settings
from spacy_lsllama.testing import encoder_nlp

ROOT = Path(__file__).resolve().parents[1]
CAUSAL_OVERRIDE = {"components.llm.model.unmasked_layers": "none"}


def unmasked_spec(**settings: object) -> str:
    architecture = {"@architectures": "spacy-lsllama.LlamaTransformer.v2", "name": "x"}
    model = registry.resolve({"model": {**architecture, **settings}})["model"]
    return get_settings(model).unmasked_spec


@pytest.mark.parametrize(
    "settings,spec",
    [
        ({}, "all"),
        ({"bidirectional": None, "unmasked_layers": None}, "all"),
        ({"bidirectional": True}, "all"),
        ({"bidirectional": False}, "none"),
        ({"unmasked_layers": "none"}, "none"),
        ({"unmasked_layers": "top 1"}, "top 1"),
        # what saved pipelines hold: unmasked_layers decides, bidirectional = true is inert
        ({"bidirectional": True, "unmasked_layers": "all"}, "all"),
        ({"bidirectional": True, "unmasked_layers": "none"}, "none"),
        ({"bidirectional": True, "unmasked_layers": "top 1"}, "top 1"),
        ({"bidirectional": False, "unmasked_layers": "none"}, "none"),
    ],
)
def test_unmasked_layers_decides_and_bidirectional_is_its_shorthand(settings, spec):
    assert unmasked_spec(**settings) == spec


def test_bidirectional_false_beside_an_unmasked_block_is_a_config_error():
    with pytest.raises(ValueError, match="set one of them, not both"):
        unmasked_spec(bidirectional=False, unmasked_layers="all")


@pytest.mark.parametrize("config", ["ner", "ner_document", "textcat", "textcat_multilabel"])
def test_the_shipped_configs_causal_override_leaves_nothing_that_says_otherwise(config):
    path = ROOT / "configs" / f"{config}.cfg"
    nlp = spacy.util.load_model_from_config(
        spacy.util.load_config(path, overrides=CAUSAL_OVERRIDE), auto_fill=True
    )
    model_config = nlp.config["components"]["llm"]["model"]
    assert model_config["unmasked_layers"] == "none"
    assert model_config["bidirectional"] is None
    assert get_settings(nlp.get_pipe("llm").model).unmasked_spec == "none"


def test_a_pipeline_saved_with_bidirectional_true_and_all_loads_and_runs_as_before(
    tiny_model_dir, tmp_path
):
    texts = ["Barack Obama visited Paris.", "Apple opened offices in London."]
    both = encoder_nlp(tiny_model_dir, lora=None, bidirectional=True, unmasked_layers="all")
    both.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    model_config = loaded.config["components"]["llm"]["model"]
    assert (model_config["bidirectional"], model_config["unmasked_layers"]) == (True, "all")
    default = encoder_nlp(tiny_model_dir, lora=None)
    for nlp in (loaded, default):
        for a, b in zip(both.pipe(texts), nlp.pipe(texts), strict=True):
            numpy.testing.assert_array_equal(
                a._.trf_data.model_output.last_hidden_state,
                b._.trf_data.model_output.last_hidden_state,
            )
