"""LoRA's input dropout at a fraction of its cost on CPU: one mask per input, cheap masks.

peft drops out each adapter's input with a mask of its own, drawn with `bernoulli_`: on a
2-core CPU those draws took 27 % of a bfloat16 training step of the shipped recipe (LoRA on
all seven projections of 30 layers), as long as all of its matrix products took. Two
changes, both kept apart from peft:

- The projections that read the same tensor (q/k/v read one, gate/up another) share one
  mask, as one dropout in front of a fused projection would: four masks a layer instead of
  seven. Each adapter still sees its input dropped with probability `p`; the masks of the
  projections that share an input are the same rather than independent.
- On CPU a mask costs one draw of the generator per four elements instead of one each: a
  64-bit random word gives four 16-bit lanes, each kept with probability 1 - p (to 1 part
  in 32,768: the top lane has 15 random bits). torch's own dropout draws one per element.

Under mixed precision (autocast) the dropped copy is made in the products' dtype: the
adapters would each cast it to bfloat16 anyway, and a bfloat16 copy is what their products
keep for the backward pass, so it lives as long as the projections that share it need it.
A float32 copy would be freed right after the first adapter's cast, and every projection
would draw a mask of its own (seven a layer, not four).

Under torch.compile (`nn.compile`) the mask is one opaque operator, `keep_mask_like`, in the
layer's graph: inductor's own random numbers were slower than the fused layer was fast, and
the weak references below would break the graph. There the sharing comes from the graph
itself: q, k and v read one node, whose mask the compiler computes once (tested).

The draws come from torch's default generator, so `spacy.util.fix_random_seed` fixes them.
"""

import weakref

import torch

LANES = 4  # 16-bit lanes in a 64-bit random word
_LANE_RANGE = (65536, 65536, 65536, 32768)  # random_() leaves the sign bit of int64 at 0


def keep_mask(shape: torch.Size, p: float) -> torch.Tensor:
    """A CPU dropout mask of `shape`: False (drop) with probability `p`, else True."""
    n = shape.numel()
    words = torch.empty((n + LANES - 1) // LANES, dtype=torch.int64).random_()
    lanes = words.view(torch.int16).view(-1, LANES)
    thresholds = torch.tensor(
        [round(p * size) - (32768 if size == 65536 else 0) for size in _LANE_RANGE],
        dtype=torch.int16,
    )
    return (lanes >= thresholds).view(-1)[:n].view(shape)


@torch.library.custom_op(
    "spacy_lsllama::keep_mask", mutates_args=(), tags=torch.Tag.nondeterministic_seeded
)
def keep_mask_like(x: torch.Tensor, p: float) -> torch.Tensor:
    """`keep_mask` for a tensor like `x`, as an operator that torch.compile calls as it is.
    A boolean mask: the scaling fuses into the product, and the backward pass keeps a byte
    per element."""
    return keep_mask(x.shape, p)


@keep_mask_like.register_fake
def _keep_mask_like_fake(x: torch.Tensor, p: float) -> torch.Tensor:
    return x.new_empty(x.shape, dtype=torch.bool)


class SharedInputDropout(torch.nn.Module):
    """Dropout that gives every module calling it with the same tensor the same mask.

    Put in the place of the `lora_dropout` of the projections of one decoder layer: q, k
    and v are called with one tensor object, so they share one dropped copy (and its
    backward); a new tensor, or the same one changed in place, draws a new mask. Only weak
    references are kept, so nothing outlives the forward pass that made it.
    """

    def __init__(self, p: float):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {p}")
        self.p = p
        self._last: tuple[weakref.ref, int, weakref.ref] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if torch.compiler.is_compiling():
            return self._drop(x)
        if self._last is not None:
            source, version, output = self._last
            dropped = output() if source() is x and version == x._version else None
            if dropped is not None:
                return dropped
        dropped = self._drop(x)
        self._last = (weakref.ref(x), x._version, weakref.ref(dropped))
        return dropped

    def _drop(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type == "cpu":
            dropped = x * keep_mask_like(x.detach(), self.p) * (1.0 / (1.0 - self.p))
        else:  # GPUs draw dropout masks fast and fused
            dropped = torch.nn.functional.dropout(x, self.p, training=True)
        if torch.is_autocast_enabled(x.device.type):  # the copy the adapters multiply
            dropped = dropped.to(torch.get_autocast_dtype(x.device.type))
        return dropped

    def extra_repr(self) -> str:
        return f"p={self.p}"
