"""Which decoder layers a setting applies to: a contiguous block named in a config string.

Used for the layers that attend both ways (`unmasked_layers`) and the layers that carry LoRA
adapters (`lora.layers`). The forms, for a decoder of n layers (0 is the lowest):
- "all" and "none";
- "top K", "bottom K": the highest or lowest K layers (BiLLM unmasks from a start index up);
- "middle K": K layers centred in the stack (Kukić et al. unmask a middle third);
- "A:B": layers A to B-1, either end may be left out ("20:" is 20 up to the top).
A string is checked when the config is read; its layers are resolved once the decoder's depth
is known, and a block that does not fit the decoder is an error then.
"""

import re

_FORM = re.compile(r"^(?:(all|none)|(top|bottom|middle)\s+(\d+)|(\d*)\s*:\s*(\d*))$")


class LayerSelectionError(ValueError):
    """A layer selection string that is malformed or does not fit the decoder."""


def check_layers(spec: str) -> str:
    """Normalise and validate the form of a selection; the depth is checked later."""
    normalised = " ".join(str(spec).strip().lower().split())
    if not _FORM.match(normalised):
        raise LayerSelectionError(
            f"Layer selection '{spec}' is not one of: 'all', 'none', 'top K', 'bottom K', "
            "'middle K', or 'A:B' (layers A to B-1, 0 is the lowest)."
        )
    return normalised


def select_layers(spec: str, n_layers: int) -> range:
    """The layers (a contiguous range) that `spec` names in a decoder of `n_layers` layers."""
    match = _FORM.match(check_layers(spec))
    assert match is not None
    whole, where, count, start, stop = match.groups()
    if whole:
        return range(n_layers) if whole == "all" else range(0)
    if where:
        k = int(count)
        if k > n_layers:
            raise LayerSelectionError(
                f"Layer selection '{spec}' asks for {k} layers; the decoder has {n_layers}."
            )
        first = {"top": n_layers - k, "bottom": 0, "middle": (n_layers - k) // 2}[where]
        return range(first, first + k)
    first = int(start) if start else 0
    last = int(stop) if stop else n_layers
    if not first < last <= n_layers:
        raise LayerSelectionError(
            f"Layer selection '{spec}' does not fit a decoder of {n_layers} layers "
            f"(0 to {n_layers - 1}): it needs A < B <= {n_layers}."
        )
    return range(first, last)
