"""`dtype = "auto"`: decided by the device the encoder is placed on and, on a CPU, its features."""

import pytest
import torch

from spacy_lsllama.nn import precision
from spacy_lsllama.nn.base_model import BaseModelError, resolve_dtype
from spacy_lsllama.nn.precision import auto_dtype, cpu_flags, named_dtype, place, weights_dtype

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
    "flags,training,expected",
    [
        (SAPPHIRE_RAPIDS, False, torch.bfloat16),  # AMX: bfloat16 predicts faster
        (SAPPHIRE_RAPIDS, True, torch.float32),  # training stays float32
        (ZEN4, False, torch.float32),  # avx512_bf16 alone measured slower
        (frozenset(), False, torch.float32),
    ],
)
def test_auto_on_a_cpu_follows_its_features(flags, training, expected):
    assert auto_dtype("cpu", training=training, flags=flags) == expected


def test_auto_on_a_cpu_reads_this_hosts_flags_when_given_none(monkeypatch):
    monkeypatch.setattr(precision, "cpu_flags", lambda: SAPPHIRE_RAPIDS)
    assert auto_dtype("cpu", training=False) == torch.bfloat16
    monkeypatch.setattr(precision, "cpu_flags", lambda: ZEN4)
    assert auto_dtype("cpu", training=False) == torch.float32


@pytest.mark.parametrize("supported,expected", [(True, torch.bfloat16), (False, torch.float32)])
def test_auto_on_a_gpu_is_bfloat16_where_supported(monkeypatch, supported, expected):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: supported)
    for training in (True, False):
        assert auto_dtype("cuda:0", training=training, flags=frozenset()) == expected


def test_auto_loads_float32_whatever_the_host_has(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_dtype("auto") == torch.float32
    assert resolve_dtype("bfloat16") == torch.bfloat16
    with pytest.raises(BaseModelError, match="Unknown dtype 'int8'"):
        resolve_dtype("int8")
    with pytest.raises(ValueError, match="Unknown dtype 'float8'"):
        named_dtype("float8")


class WithAdapter(torch.nn.Module):
    """A frozen linear layer with a LoRA-named adapter beside it."""

    def __init__(self):
        super().__init__()
        self.base = torch.nn.Linear(4, 4)
        self.lora_A = torch.nn.Linear(4, 2, bias=False)
        self.register_buffer("inv_freq", torch.ones(2))


def test_place_casts_the_frozen_weights_and_keeps_the_adapters_float32():
    module = place(WithAdapter(), "cpu", "bfloat16", training=False)
    assert module.base.weight.dtype == module.base.bias.dtype == torch.bfloat16
    assert module.inv_freq.dtype == torch.bfloat16
    assert module.lora_A.weight.dtype == torch.float32
    assert weights_dtype(module) == torch.bfloat16


def test_place_with_auto_follows_the_placement_not_the_host(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert weights_dtype(place(WithAdapter(), "cpu", "auto", training=False)) == torch.float32
    monkeypatch.setattr(precision, "cpu_flags", lambda: SAPPHIRE_RAPIDS)
    assert weights_dtype(place(WithAdapter(), "cpu", "auto", training=False)) == torch.bfloat16
    assert weights_dtype(place(WithAdapter(), "cpu", "auto", training=True)) == torch.float32
