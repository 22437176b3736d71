"""The attention kernel a pass runs: math for short rows of a half-precision CPU training
step, else torch's choice (flash on a CPU)."""

from contextlib import nullcontext

import torch
from torch.profiler import ProfilerActivity, profile

from spacy_lsllama.layers.transformer_model import get_encoder
from spacy_lsllama.nn import encoder as encoder_module
from spacy_lsllama.nn.attention_kernel import MATH_MAX_WIDTH, attention_kernel
from spacy_lsllama.testing import trained_adapter_nlp

FLASH = "aten::_scaled_dot_product_flash_attention_for_cpu"
MATH = "aten::_scaled_dot_product_attention_math"
CPU = torch.device("cpu")


def flash_allowed(
    width: int,
    dtype: torch.dtype = torch.bfloat16,
    *,
    grad: bool = True,
    checkpointing: bool = False,
) -> bool:
    with torch.set_grad_enabled(grad):
        with attention_kernel(CPU, width, dtype, checkpointing=checkpointing):
            return torch.backends.cuda.flash_sdp_enabled()


def test_only_short_rows_of_a_half_precision_training_step_leave_flash():
    assert not flash_allowed(MATH_MAX_WIDTH)
    assert not flash_allowed(16, torch.float16)
    assert flash_allowed(MATH_MAX_WIDTH + 1)
    assert flash_allowed(16, torch.float32)
    assert flash_allowed(16, grad=False)
    assert flash_allowed(16, checkpointing=True)
    assert torch.backends.cuda.flash_sdp_enabled()  # the choice ends with the block


def training_pass(encoder) -> tuple[set[str], list[torch.Tensor]]:
    """A training step's forward and backward pass over short rows: the attention operators
    that ran, and the adapters' gradients."""
    encoder.model.eval()  # no dropout: every run sees one function
    torch.manual_seed(0)
    ids = torch.randint(3, encoder.model.config.vocab_size, (3, 12))
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0
    gather = torch.arange(ids.numel()).reshape(ids.shape)
    params = [p for name, p in encoder.named_parameters() if "lora_" in name]
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        out = encoder(ids, mask, gather, mask.float())
        weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
        grads = torch.autograd.grad((out * weights).sum(), params)
    ops = {event.name for event in prof.events() if "attention" in event.name}
    return ops, list(grads)


def encoder(tiny_model_dir, dtype: str):
    return get_encoder(trained_adapter_nlp(tiny_model_dir, dtype=dtype).get_pipe("llm").model)


def test_float32_training_keeps_flash(tiny_model_dir):
    ops, _ = training_pass(encoder(tiny_model_dir, "float32"))
    assert FLASH in ops and MATH not in ops


def test_bfloat16_training_runs_the_math_kernel_and_trains_as_flash_does(
    tiny_model_dir, monkeypatch
):
    half = encoder(tiny_model_dir, "bfloat16")
    ops, math_grads = training_pass(half)
    assert MATH in ops and FLASH not in ops
    monkeypatch.setattr(encoder_module, "attention_kernel", lambda *_, **__: nullcontext())
    ops, flash_grads = training_pass(half)
    assert FLASH in ops
    for a, b in zip(math_grads, flash_grads, strict=True):
        assert float((a - b).norm() / b.norm()) < 0.1  # rounding apart, not another function
