"""The attention kernel a chunk runs: math for short rows in a CPU training step, else torch's."""

from contextlib import nullcontext

import torch
from torch.profiler import ProfilerActivity, profile

from spacy_lsllama.layers.transformer_model import get_encoder
from spacy_lsllama.nn import encoder as encoder_module
from spacy_lsllama.nn.attention_kernel import MATH_MAX_WIDTH, attention_kernel
from spacy_lsllama.testing import trained_adapter_nlp

FLASH = "aten::_scaled_dot_product_flash_attention_for_cpu"
CPU = torch.device("cpu")


def flash_allowed(width: int, *, grad: bool = True, checkpointing: bool = False) -> bool:
    with torch.set_grad_enabled(grad), attention_kernel(CPU, width, checkpointing=checkpointing):
        return torch.backends.cuda.flash_sdp_enabled()


def test_only_short_rows_of_a_training_step_leave_flash():
    assert not flash_allowed(MATH_MAX_WIDTH)
    assert flash_allowed(MATH_MAX_WIDTH + 1)
    assert flash_allowed(16, grad=False)
    assert flash_allowed(16, checkpointing=True)
    assert torch.backends.cuda.flash_sdp_enabled()  # the choice ends with the block


def run(encoder, ids, mask, params) -> tuple[set[str], list[torch.Tensor]]:
    """A training step's forward and backward pass: the attention ops run, the gradients."""
    gather = torch.arange(ids.numel()).reshape(ids.shape)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        out = encoder(ids, mask, gather, mask.float())
        weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
        grads = torch.autograd.grad((out * weights).sum(), params)
    return {event.name for event in prof.events() if "attention" in event.name}, list(grads)


def test_the_math_kernel_trains_as_flash_does(tiny_model_dir, monkeypatch):
    nlp = trained_adapter_nlp(tiny_model_dir, dtype="float32")
    encoder = get_encoder(nlp.get_pipe("llm").model)
    encoder.model.eval()  # no dropout: both runs see one function
    torch.manual_seed(0)
    ids = torch.randint(3, encoder.model.config.vocab_size, (3, 12))
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0
    params = [p for name, p in encoder.named_parameters() if "lora_" in name]
    ops, math_grads = run(encoder, ids, mask, params)
    assert FLASH not in ops
    monkeypatch.setattr(encoder_module, "attention_kernel", lambda *_, **__: nullcontext())
    ops, flash_grads = run(encoder, ids, mask, params)
    assert FLASH in ops
    for a, b in zip(math_grads, flash_grads, strict=True):
        assert float((a - b).norm() / b.norm()) < 1e-4
