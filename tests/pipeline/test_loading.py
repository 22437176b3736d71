"""`load_pipeline`: a saved pipeline loaded with the dtype its encoders run in chosen."""

import numpy
import pytest
import spacy

from spacy_lsllama.layers.transformer_model import get_settings
from spacy_lsllama.nn import precision
from spacy_lsllama.pipeline.loading import EncoderDtype, load_pipeline, pipeline_path
from spacy_lsllama.pipeline.transformer import encoder_dtypes
from spacy_lsllama.testing import encoder_nlp

AMX_CPU = frozenset({"avx512f", "avx512_bf16", "amx_tile", "amx_bf16"})
TEXT = "Barack Obama visited Paris."


@pytest.fixture
def saved(tiny_model_dir, tmp_path):
    nlp = encoder_nlp(tiny_model_dir)
    nlp.to_disk(tmp_path / "pipeline")
    return nlp, tmp_path / "pipeline"


def states(nlp) -> numpy.ndarray:
    return nlp(TEXT)._.trf_data.model_output.last_hidden_state


def test_float32_on_an_amx_cpu_gives_the_outputs_of_training(saved, monkeypatch):
    """Where auto predicts in bfloat16, float32 reproduces the in-memory (training) outputs."""
    monkeypatch.setattr(precision, "cpu_flags", lambda *args, **kwargs: AMX_CPU)
    nlp, path = saved
    auto = load_pipeline(path)
    exact = load_pipeline(path, dtype=EncoderDtype.float32)
    assert encoder_dtypes(auto) == ["bfloat16"]
    assert encoder_dtypes(exact) == ["float32"]
    numpy.testing.assert_array_equal(states(exact), states(nlp))
    assert not numpy.array_equal(states(auto), states(nlp))


def test_auto_keeps_the_pipelines_own_setting(saved):
    _, path = saved
    assert encoder_dtypes(load_pipeline(path)) == ["float32"]  # a CPU without AMX
    assert encoder_dtypes(load_pipeline(path, dtype=EncoderDtype.bfloat16)) == ["bfloat16"]
    assert load_pipeline(path).config == spacy.load(path).config


def test_config_overrides_apply_beside_the_dtype(saved):
    _, path = saved
    overrides = {"components.llm.model.window": 64, "components.llm.model.stride": 48}
    nlp = load_pipeline(path, dtype=EncoderDtype.bfloat16, overrides=overrides)
    assert encoder_dtypes(nlp) == ["bfloat16"]
    assert nlp.config["components"]["llm"]["model"]["window"] == 64
    assert get_settings(nlp.get_pipe("llm").model).window == 64


def test_an_unknown_pipeline_is_an_oserror_naming_it(tmp_path):
    with pytest.raises(OSError, match="no_such_pipeline"):
        pipeline_path("no_such_pipeline")
    assert pipeline_path(tmp_path) == tmp_path
