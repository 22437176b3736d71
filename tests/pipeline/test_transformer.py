"""The `lsllama_transformer` component: save/load round trips, base-model checks, listeners."""

import json
import pickle
import shutil
import zipfile
from pathlib import Path

import numpy
import pytest
import spacy
import torch
from safetensors import safe_open
from spacy.training import Example

from spacy_lsllama.layers.transformer_model import get_encoder
from spacy_lsllama.nn import precision
from spacy_lsllama.nn.base_model import BaseModelError
from spacy_lsllama.pipeline.transformer import encoder_dtypes
from spacy_lsllama.testing import (
    NER_CONFIG,
    base_weights,
    build_tiny_model,
    encoder_nlp,
    encoder_of,
    trained_adapter_nlp,
)

TEXTS = ["Barack Obama visited Paris.", "  Apple opened offices in London and 北京 🙂 "]


def states(nlp, texts=TEXTS):
    return [doc._.trf_data.model_output.last_hidden_state for doc in nlp.pipe(texts)]


def files_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def test_round_trip_gives_identical_outputs(tiny_model_dir, tmp_path):
    nlp = encoder_nlp(tiny_model_dir)
    nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    for before, after in zip(states(nlp), states(loaded)):
        numpy.testing.assert_array_equal(before, after)


def test_saved_pipeline_holds_the_adapter_not_the_base_model(tiny_model_dir, tmp_path):
    nlp = encoder_nlp(tiny_model_dir)
    nlp.to_disk(tmp_path / "pipeline")
    encoder_dir = tmp_path / "pipeline" / "llm" / "model"
    assert sorted(f.name for f in encoder_dir.iterdir()) == ["adapter.safetensors", "encoder.json"]
    base_size = (tiny_model_dir / "model.safetensors").stat().st_size
    assert files_size(encoder_dir) < base_size / 4


def is_safetensors(path: Path) -> bool:
    try:
        with safe_open(str(path), framework="numpy") as file:
            return bool(list(file.keys()))
    except Exception:
        return False


def is_json(path: Path) -> bool:
    try:
        json.loads(path.read_text(encoding="utf-8"))
        return True
    except (UnicodeDecodeError, ValueError):
        return False


def test_the_package_saves_only_json_and_safetensors(tiny_model_dir, tmp_path):
    """No pickle and no torch.save zip: what the encoder and the NER head write is JSON or
    safetensors (spaCy's own vocab and tokenizer files are msgpack and numpy, not ours)."""
    nlp = encoder_nlp(tiny_model_dir)
    nlp.add_pipe("lsllama_ner")
    example = Example.from_dict(nlp.make_doc("Maria visited Oslo"), {"entities": [(0, 5, "PER")]})
    nlp.initialize(lambda: [example])
    nlp.to_disk(tmp_path / "pipeline")
    ours = [f for name in ("llm", "lsllama_ner") for f in (tmp_path / "pipeline" / name).rglob("*")]
    files = {f.relative_to(tmp_path / "pipeline").as_posix(): f for f in ours if f.is_file()}
    assert set(files) == {
        "llm/cfg",
        "llm/model/encoder.json",
        "llm/model/adapter.safetensors",
        "lsllama_ner/cfg",
        "lsllama_ner/model.safetensors",
    }
    for name, file in files.items():
        assert not zipfile.is_zipfile(file), f"{name} is a zip (torch.save)"
        expected = is_safetensors if name.endswith(".safetensors") else is_json
        assert expected(file), f"{name} is not {expected.__name__.removeprefix('is_')}"


def test_trained_adapter_survives_the_round_trip(tiny_model_dir, tmp_path):
    """Training changes the adapter; the reload must give the trained outputs, not random ones."""
    nlp = spacy.util.load_model_from_config(
        spacy.util.load_config_from_str(NER_CONFIG.replace("{name}", str(tiny_model_dir))),
        auto_fill=True,
    )
    examples = [
        Example.from_dict(nlp.make_doc("Obama visited Paris"), {"entities": [(0, 5, "PER")]})
    ]
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(3):
        nlp.update(examples, sgd=optimizer)
    nlp.to_disk(tmp_path / "trained")
    loaded = spacy.load(tmp_path / "trained")
    for before, after in zip(states(nlp), states(loaded)):
        numpy.testing.assert_array_equal(before, after)


def test_pickling_uses_the_same_safetensors_format(tiny_model_dir):
    nlp = encoder_nlp(tiny_model_dir)
    restored = pickle.loads(pickle.dumps(nlp))
    for before, after in zip(states(nlp), states(restored)):
        numpy.testing.assert_array_equal(before, after)


def test_pickling_after_prediction_keeps_the_adapter_apart_from_the_base(tiny_model_dir):
    """A pipeline pickled while LoRA is merged into its bfloat16 weights (as after any
    prediction, e.g. before `nlp.pipe(n_process=...)` sends it to workers) predicts the same
    states after unpickling, and both copies can take the merge back out exactly."""
    nlp = trained_adapter_nlp(tiny_model_dir, dtype="bfloat16")
    unmerged_base = base_weights(nlp)
    before = states(nlp)
    assert encoder_of(nlp).lora_merged
    restored = pickle.loads(pickle.dumps(nlp))
    for a, b in zip(before, states(restored), strict=True):
        numpy.testing.assert_array_equal(a, b)
    for pipeline in (nlp, restored):
        encoder = encoder_of(pipeline)
        assert encoder.lora_merged
        encoder.set_lora_merged(False)  # as the first training step does
        base = base_weights(pipeline)
        for key, value in unmerged_base.items():
            assert torch.equal(base[key], value), key


def test_mismatched_base_model_is_refused(tiny_model_dir, tmp_path):
    nlp = encoder_nlp(tiny_model_dir)
    nlp.to_disk(tmp_path / "pipeline")
    other = build_tiny_model(tmp_path / "other", seed=1)
    with pytest.raises(BaseModelError, match="does not match this pipeline"):
        spacy.load(tmp_path / "pipeline", config={"components.llm.model.name": str(other)})


def test_missing_base_model_error_says_how_to_point_at_it(tiny_model_dir, tmp_path):
    base = shutil.copytree(tiny_model_dir, tmp_path / "base")
    nlp = encoder_nlp(base)
    nlp.to_disk(tmp_path / "pipeline")
    shutil.rmtree(base)
    with pytest.raises(BaseModelError, match="components.llm.model.name"):
        spacy.load(tmp_path / "pipeline")
    moved = shutil.copytree(tiny_model_dir, tmp_path / "moved")
    loaded = spacy.load(tmp_path / "pipeline", config={"components.llm.model.name": str(moved)})
    for before, after in zip(states(nlp), states(loaded), strict=True):
        numpy.testing.assert_array_equal(before, after)


def test_relative_base_path_resolves_from_any_working_directory(
    tiny_model_dir, tmp_path, monkeypatch
):
    shutil.copytree(tiny_model_dir, tmp_path / "base")
    monkeypatch.chdir(tmp_path)
    nlp = encoder_nlp("base")
    nlp.to_disk(tmp_path / "pipeline")
    monkeypatch.chdir(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    assert get_encoder(loaded.get_pipe("llm").model).base_name == str(tmp_path / "base")
    for before, after in zip(states(nlp), states(loaded), strict=True):
        numpy.testing.assert_array_equal(before, after)


def test_embedded_base_model_makes_the_pipeline_self_contained(tiny_model_dir, tmp_path):
    base = shutil.copytree(tiny_model_dir, tmp_path / "base")
    nlp = encoder_nlp(base, embed_base_model=True, dtype="bfloat16")
    nlp.to_disk(tmp_path / "pipeline")
    shutil.rmtree(base)
    loaded = spacy.load(tmp_path / "pipeline")
    for before, after in zip(states(nlp), states(loaded)):
        numpy.testing.assert_array_equal(before, after)


def test_builtin_ner_learns_through_the_listener(tiny_model_dir):
    spacy.util.fix_random_seed(0)
    nlp = spacy.util.load_model_from_config(
        spacy.util.load_config_from_str(NER_CONFIG.replace("{name}", str(tiny_model_dir))),
        auto_fill=True,
    )
    examples = [
        Example.from_dict(nlp.make_doc("Obama visited Paris"), {"entities": [(0, 5, "PER")]}),
        Example.from_dict(
            nlp.make_doc("Merkel met Obama"), {"entities": [(0, 6, "PER"), (11, 16, "PER")]}
        ),
    ]
    optimizer = nlp.initialize(lambda: examples)
    optimizer.learn_rate = 0.01
    losses = []
    for _ in range(40):
        step = {}
        nlp.update(examples, sgd=optimizer, losses=step)
        losses.append(step["ner"])
    assert losses[-1] < losses[0] / 4
    assert [e.text for e in nlp("Obama visited Paris").ents] == ["Obama"]


def test_auto_dtype_follows_the_placement_not_a_cuda_flag(tiny_model_dir, tmp_path, monkeypatch):
    """On a GPU host that runs the pipeline on its CPU, "auto" must not pick bfloat16."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    nlp = encoder_nlp(tiny_model_dir)
    nlp.to_disk(tmp_path / "pipeline")
    for pipeline in (nlp, spacy.load(tmp_path / "pipeline"), pickle.loads(pickle.dumps(nlp))):
        assert encoder_dtypes(pipeline) == ["float32"]
        assert get_encoder(pipeline.get_pipe("llm").model).lora_merged is False
        pipeline("Obama visited Paris.")  # predicting merges LoRA into float32 weights
        assert get_encoder(pipeline.get_pipe("llm").model).lora_merged is True


@pytest.mark.parametrize(
    "setting,flags,dtype,reason",
    [
        ("auto", {"amx_bf16"}, "bfloat16", "dtype = auto: a CPU with amx_bf16"),
        ("auto", set(), "float32", "dtype = auto: a CPU without amx_bf16 or avx512_bf16"),
        ("float32", {"amx_bf16"}, "float32", 'dtype = "float32" in the config'),
    ],
)
def test_initialize_records_the_training_dtype_and_why(
    tiny_model_dir, monkeypatch, setting, flags, dtype, reason
):
    """`spacy train` saves this meta; packaging reads the dtype to predict as it was trained."""
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset(flags))
    nlp = encoder_nlp(tiny_model_dir, dtype=setting)
    assert encoder_dtypes(nlp) == [dtype]
    assert nlp.meta["lsllama"] == {
        "llm.training_dtype": dtype,
        "llm.training_dtype_reason": reason,
    }


def test_auto_dtype_predicts_in_bfloat16_on_a_cpu_with_amx(tiny_model_dir, tmp_path, monkeypatch):
    nlp = trained_adapter_nlp(tiny_model_dir)
    assert encoder_dtypes(nlp) == ["float32"]  # initialize means training: float32
    nlp.to_disk(tmp_path / "pipeline")
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"amx_bf16", "avx512_bf16"}))
    loaded = spacy.load(tmp_path / "pipeline")
    assert encoder_dtypes(loaded) == ["bfloat16"]
    encoder = get_encoder(loaded.get_pipe("llm").model)
    adapters = {p.dtype for name, p in encoder.named_parameters() if "lora_" in name}
    assert adapters == {torch.float32}
    before, after = states(nlp), states(loaded)
    assert encoder.lora_merged is True  # merged into the bfloat16 weights to predict
    for exact, approximate in zip(before, after):
        numpy.testing.assert_allclose(approximate, exact, atol=0.15 * numpy.abs(exact).max())
        assert not numpy.array_equal(approximate, exact)  # bfloat16 did run
