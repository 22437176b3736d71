"""The frozen lower stack, computed once per training window and reused every epoch.

When the lowest k decoder layers carry no adapter, their output for a window is a pure
function of the window's pieces: nothing they compute changes in training. The encoder then
keeps that output per window (keyed by the piece ids themselves, so equal windows share an
entry and no hash can collide) and each later step runs only the upper layers forward and
backward. Packing, windows of long documents, shuffling and gradient accumulation change
nothing: a window is the key, wherever it lands in a batch.

Memory is bounded: once the budget is reached, no more windows are admitted (a warning says
so, once) and the windows left out are computed at every step as without the cache. With
shuffled epochs over more data than fits, keeping a fixed set beats evicting: an evicting
cache would drop each window just before it comes round again.
"""

import warnings

import torch


class PrefixCache:
    """States of the frozen lower layers per window, in the dtype they were computed in (so
    exact), within a memory budget."""

    def __init__(self, budget_mb: int):
        self.budget = budget_mb * 2**20
        self.used = 0
        self.hits = 0
        self._states: dict[bytes, torch.Tensor] = {}
        self._full = False

    def __len__(self) -> int:
        return len(self._states)

    def get(self, key: bytes) -> torch.Tensor | None:
        states = self._states.get(key)
        if states is not None:
            self.hits += 1
        return states

    def put(self, key: bytes, states: torch.Tensor) -> bool:
        """Keep a window's states if they fit the budget; whether they are kept."""
        if key in self._states:
            return True
        size = states.numel() * states.element_size()
        if self.used + size > self.budget:
            if not self._full:
                self._full = True
                warnings.warn(
                    f"The frozen-prefix cache is full ({self.budget // 2**20} MB, "
                    f"{len(self._states)} windows): further windows are computed at every "
                    "step. Raise prefix_cache_mb to cache them all.",
                    stacklevel=2,
                )
            return False
        self._states[key] = states.detach().clone()
        self.used += size
        return True


def window_key(ids: torch.Tensor) -> bytes:
    """The cache key of a window: its piece ids as bytes."""
    return ids.detach().cpu().to(torch.int64).numpy().tobytes()
