"""`dtype = "auto"`: decided by the device the encoder is placed on and, on a CPU, its features."""

from pathlib import Path

import pytest
import spacy
import torch
from transformers import AutoModel, LlamaConfig

from spacy_lsllama.layers.transformer_model import get_encoder
from spacy_lsllama.nn import precision
from spacy_lsllama.nn.base_model import BaseModelError, resolve_dtype
from spacy_lsllama.nn.encoder import EncoderSettings, build_encoder
from spacy_lsllama.nn.lora import LLAMA_ATTENTION, LLAMA_MLP, LoraSettings
from spacy_lsllama.nn.precision import (
    auto_dtype,
    auto_reason,
    cpu_flags,
    dtype_name,
    named_dtype,
    place,
    weights_dtype,
)
from spacy_lsllama.testing import encoder_nlp, tiny_tokenizer

SAPPHIRE_RAPIDS = frozenset({"avx512f", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8"})
ZEN4 = frozenset({"avx2", "avx512f", "avx512_bf16"})  # bfloat16 dot products, no AMX
CPUINFO = """processor\t: 0
model name\t: Some CPU
flags\t\t: fpu sse2 avx2 amx_bf16 avx512_bf16
bugs\t\t: spectre_v1
"""


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    (tmp_path / "cpuinfo").write_text(CPUINFO)
    assert cpu_flags(tmp_path / "cpuinfo") == {"fpu", "sse2", "avx2", "amx_bf16", "avx512_bf16"}
    assert cpu_flags(tmp_path / "missing") == frozenset()


@pytest.mark.parametrize(
    "flags,expected",
    [
        (SAPPHIRE_RAPIDS, torch.bfloat16),  # AMX: about 7x float32's matrix products
        (ZEN4, torch.bfloat16),  # AVX-512 BF16: training 1.70x, tagging 2.21x measured
        (frozenset({"avx2"}), torch.float32),  # no bfloat16 units: emulated, slow
        (frozenset(), torch.float32),
    ],
)
def test_auto_on_a_cpu_follows_its_features(flags, expected):
    assert auto_dtype("cpu", flags) == expected


def test_auto_on_a_cpu_reads_this_hosts_flags_when_given_none(monkeypatch):
    monkeypatch.setattr(precision, "cpu_flags", lambda: ZEN4)
    assert auto_dtype("cpu") == torch.bfloat16
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx2"}))
    assert auto_dtype("cpu") == torch.float32


@pytest.mark.parametrize("supported,expected", [(True, torch.bfloat16), (False, torch.float32)])
def test_auto_on_a_gpu_is_bfloat16_where_supported(monkeypatch, supported, expected):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: supported)
    assert auto_dtype("cuda:0", frozenset()) == expected


def test_auto_loads_float32_whatever_the_host_has(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_dtype("auto") == torch.float32
    assert resolve_dtype("bfloat16") == torch.bfloat16
    with pytest.raises(BaseModelError, match="Unknown dtype 'int8'"):
        resolve_dtype("int8")
    with pytest.raises(ValueError, match="Unknown dtype 'float8'"):
        named_dtype("float8")


@pytest.mark.parametrize("name", ["float32", "bfloat16", "float16"])
def test_a_dtypes_name_is_the_one_configs_use(name):
    """Meta, logs and `lsllama tag` write the name a config reads back."""
    assert dtype_name(named_dtype(name)) == name


class WithAdapter(torch.nn.Module):
    """A frozen linear layer with a LoRA-named adapter beside it."""

    def __init__(self):
        super().__init__()
        self.base = torch.nn.Linear(4, 4)
        self.lora_A = torch.nn.Linear(4, 2, bias=False)
        self.register_buffer("scale", torch.ones(4))  # saved with the weights: one of them
        self.register_buffer("inv_freq", torch.ones(2), persistent=False)  # derived


def test_place_casts_the_frozen_weights_and_keeps_the_adapters_float32():
    module = place(WithAdapter(), "cpu", "bfloat16")
    assert module.base.weight.dtype == module.base.bias.dtype == torch.bfloat16
    assert module.scale.dtype == torch.bfloat16
    assert module.inv_freq.dtype == torch.float32
    assert module.lora_A.weight.dtype == torch.float32
    assert weights_dtype(module) == torch.bfloat16


def test_place_with_auto_follows_the_placement_not_the_host(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert weights_dtype(place(WithAdapter(), "cpu", "auto")) == torch.float32
    monkeypatch.setattr(precision, "cpu_flags", lambda: SAPPHIRE_RAPIDS)
    assert weights_dtype(place(WithAdapter(), "cpu", "auto")) == torch.bfloat16


def test_the_reason_for_auto_names_the_cpu_features(monkeypatch):
    monkeypatch.setattr(precision, "cpu_flags", lambda: ZEN4)
    assert auto_reason("cpu") == "a CPU with avx512_bf16"
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx2"}))
    assert auto_reason("cpu") == "a CPU without amx_bf16 or avx512_bf16"


def lora_encoder(name: Path, dtype: str):
    """A tiny LoRA encoder (adapters on q/k/v/o and the MLP) placed for training in `dtype`,
    its B matrices non-zero as after training."""
    torch.manual_seed(0)
    lora = LoraSettings(r=4, dropout=0.0, target_modules=LLAMA_ATTENTION + LLAMA_MLP)
    settings = EncoderSettings(name=str(name), lora=lora, dtype=dtype)
    encoder = build_encoder(settings)
    with torch.no_grad():
        for param_name, param in encoder.named_parameters():
            if "lora_B" in param_name:
                param.normal_(0, 0.1)
    return place(encoder, "cpu", dtype).train()


def adapter_gradients(encoder) -> dict[str, torch.Tensor]:
    ids = torch.randint(3, 200, (2, 24), generator=torch.Generator().manual_seed(1))
    states = encoder(ids, torch.ones_like(ids), torch.arange(24).repeat(2, 1), torch.ones(2, 24))
    assert states.dtype == torch.float32  # the loss is computed in float32
    # a fixed random read-out: the normed states' own size would carry no gradient
    target = torch.randn(states.shape, generator=torch.Generator().manual_seed(2))
    (states * target).sum().backward()
    return {name: p.grad for name, p in encoder.named_parameters() if p.requires_grad}


def test_mixed_precision_trains_float32_adapters_through_bfloat16_products(tiny_model_dir):
    """bfloat16 frozen weights, float32 adapters whose products run in bfloat16 (autocast):
    every adapter gets a float32 gradient close to the float32 model's."""
    expected = adapter_gradients(lora_encoder(tiny_model_dir, "float32"))
    encoder = lora_encoder(tiny_model_dir, "bfloat16")
    seen: list[torch.dtype] = []
    adapter = encoder.decoder.layers[0].self_attn.q_proj.lora_A["default"]
    adapter.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    gradients = adapter_gradients(encoder)
    assert seen == [torch.bfloat16]
    assert weights_dtype(encoder) == torch.bfloat16
    assert gradients.keys() == expected.keys() and len(gradients) > 0
    for name, gradient in gradients.items():
        assert gradient.dtype == torch.float32
        cosine = torch.nn.functional.cosine_similarity(
            gradient.flatten(), expected[name].flatten(), dim=0
        )
        assert cosine > 0.98, name


def states_dtypes(encoder) -> list[torch.dtype]:
    """The dtype of the states each decoder layer and the final norm receive in a forward
    pass of two windows."""
    seen: list[torch.dtype] = []
    hooks = [
        module.register_forward_pre_hook(lambda module, args: seen.append(args[0].dtype))
        for module in (*encoder.decoder.layers, encoder.decoder.norm)
    ]
    ids = torch.randint(3, 200, (2, 12), generator=torch.Generator().manual_seed(1))
    try:
        encoder(ids, torch.ones_like(ids), torch.arange(12).repeat(2, 1), torch.ones(2, 12))
    finally:
        for hook in hooks:
            hook.remove()
    return seen


@pytest.mark.parametrize("prefix_cache_mb", [0, 16])
def test_mixed_precision_keeps_the_residual_stream_float32(deep_arch_dirs, prefix_cache_mb):
    """bfloat16 weights multiply in bfloat16, but the states between the layers (the sums of
    their products) stay float32, also where they come from the frozen-prefix cache."""
    lora = LoraSettings(r=4, layers="top 2")
    settings = EncoderSettings(
        name=str(deep_arch_dirs["llama"]), lora=lora, prefix_cache_mb=prefix_cache_mb
    )
    encoder = place(build_encoder(settings), "cpu", "bfloat16").train()
    assert weights_dtype(encoder) == torch.bfloat16
    assert (encoder.prefix_cache is not None) == bool(prefix_cache_mb)
    n_layers = len(encoder.decoder.layers)
    computed = states_dtypes(encoder)  # the cache is empty: every layer runs
    assert computed == [torch.float32] * (n_layers + 1)
    if prefix_cache_mb:  # the same windows again start from the cache, above the frozen layers
        assert states_dtypes(encoder) == [torch.float32] * (2 + 1)


N_PIECES = 500


@pytest.fixture(scope="module")
def rotary_model_dir(tmp_path_factory: pytest.TempPathFactory):
    """A one-layer random decoder with SmolLM2's rotary settings (head_dim 64, theta 1e5).

    Random weights attend almost uniformly, whatever the positions; query and key weights
    10x larger make attention sharp, as in trained models, so the states depend on the
    rotary angles at all.
    """
    torch.manual_seed(0)
    tokenizer = tiny_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=1,
        num_attention_heads=1,
        num_key_value_heads=1,
        head_dim=64,
        rope_theta=100000.0,
        max_position_embeddings=1024,
    )
    model = AutoModel.from_config(config)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "q_proj" in name or "k_proj" in name:
                param.mul_(10)
    path = tmp_path_factory.mktemp("rotary") / "llama"
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return path


def bfloat16_rounding(states: torch.Tensor, expected: torch.Tensor) -> torch.Tensor:
    """Each piece's distance from the float32 states, relative to their size."""
    return (states - expected).norm(dim=-1) / expected.norm(dim=-1)


def encoder_states(name: Path, dtype: str, ids: torch.Tensor) -> torch.Tensor:
    """An encoder without LoRA placed on the CPU in `dtype`: its final states for `ids`."""
    settings = EncoderSettings(name=str(name), lora=None, dtype=dtype)
    encoder = place(build_encoder(settings), "cpu", dtype).eval()
    assert weights_dtype(encoder) == getattr(torch, dtype)
    n = ids.shape[1]
    with torch.no_grad():
        return encoder(ids, torch.ones_like(ids), torch.arange(n)[None], torch.ones(1, n))[0]


def test_bfloat16_states_match_float32_at_late_positions(rotary_model_dir):
    """bfloat16 weights keep the rotary frequencies exact: the last 100 of 500 pieces differ
    from float32 by bfloat16's rounding (at most 1 % here), not by rounded angles (16 % with
    a bfloat16 `inv_freq`)."""
    torch.manual_seed(1)
    ids = torch.randint(3, len(tiny_tokenizer()), (1, N_PIECES))
    expected = encoder_states(rotary_model_dir, "float32", ids)
    states = encoder_states(rotary_model_dir, "bfloat16", ids)
    assert bfloat16_rounding(states[-100:], expected[-100:]).max() < 0.04


def rotary_buffers(nlp: spacy.language.Language) -> list[torch.Tensor]:
    rotary = get_encoder(nlp.get_pipe("llm").model).decoder.rotary["position_embeddings"]
    return [rotary.inv_freq, rotary.original_inv_freq]


@pytest.mark.parametrize("embed_base_model", [False, True])
def test_rotary_buffers_stay_float32_in_bfloat16_pipelines(
    rotary_model_dir, tmp_path, embed_base_model
):
    """After `nlp.initialize` and after a save and load: the weights run in bfloat16, the
    rotary frequencies stay float32."""
    nlp = encoder_nlp(rotary_model_dir, dtype="bfloat16", embed_base_model=embed_base_model)
    nlp.to_disk(tmp_path / "pipeline")
    for pipeline in (nlp, spacy.load(tmp_path / "pipeline")):
        assert weights_dtype(get_encoder(pipeline.get_pipe("llm").model)) == torch.bfloat16
        assert [buffer.dtype for buffer in rotary_buffers(pipeline)] == [torch.float32] * 2


def test_the_bfloat16_model_still_runs_outside_the_encoder(tiny_model_dir):
    """peft's input casting is off only inside the encoder's forward pass: the model itself
    (as a benchmark or a user calls it) still runs with bfloat16 weights and float32 adapters."""
    encoder = lora_encoder(tiny_model_dir, "bfloat16").eval()
    ids = torch.randint(3, 200, (2, 8))
    with torch.no_grad():
        encoder(ids, torch.ones_like(ids), torch.arange(8).repeat(2, 1), torch.ones(2, 8))
        states = encoder.model(input_ids=ids).last_hidden_state
    assert states.dtype == torch.bfloat16 and torch.isfinite(states.float()).all()
