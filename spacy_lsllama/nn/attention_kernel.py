"""Which of torch's attention kernels the encoder's "sdpa" layers run in a CPU training step.

transformers' "sdpa" leaves the choice to torch, which on a CPU takes its flash kernel
whenever the inputs allow. In bfloat16 that kernel's backward pass is slow for short rows: on
a 2-core AVX-512 BF16 host (SmolLM2's 9 heads of 64, 8 rows, one thread;
benchmarks/attention_kernel.py) a forward and backward pass took 2.0x as long as the math
kernel's at 32 pieces a row and 1.4-1.5x at 64 and 128; from 256 pieces on flash was faster,
and without a backward pass, or in float32, it was faster at every width. Sentence-level
training packs rows of a few dozen pieces, so a half-precision training step on a CPU
(gradients on when the pass starts) runs rows up to `MATH_MAX_WIDTH` pieces wide through the
math kernel, which computes bfloat16 inputs in float32, the frozen prefix included, so that
cached and uncached steps compute alike. Prediction, float32, wider rows and GPUs keep torch's
choice, and so do steps with gradient checkpointing, whose recomputation in the backward pass
would.
"""

from contextlib import AbstractContextManager, nullcontext

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from .precision import HALF_DTYPES

MATH_MAX_WIDTH = 128


def attention_kernel(
    device: torch.device, width: int, dtype: torch.dtype, *, checkpointing: bool
) -> AbstractContextManager:
    """The context a pass over rows `width` pieces wide, whose products run in `dtype`, runs
    its layers in (see above)."""
    if (
        device.type == "cpu"
        and dtype in HALF_DTYPES
        and torch.is_grad_enabled()
        and not checkpointing
        and width <= MATH_MAX_WIDTH
    ):
        return sdpa_kernel([SDPBackend.MATH])
    return nullcontext()
