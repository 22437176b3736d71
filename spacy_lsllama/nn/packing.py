"""Window packing: short windows share the rows of a forward pass instead of padding them.

Windows are packed first-fit, longest first, into rows as wide as the longest window. Each
window keeps its own positions (restarting at 0) and attends only to itself through a
block-diagonal mask (`unmasking.segment_mask_4d`), so the decoder computes the same states as
for the windows run one by one, while the padding of a batch of mixed lengths shrinks to the
unfilled ends of the rows.
"""

from dataclasses import dataclass

import torch


@dataclass
class PackedRows:
    """Windows packed into rows; `source` maps each window position to its row position.

    input_ids, position_ids, segments: (rows, width); `segments` holds the window index of
    each position, -1 for padding. source: (windows * window width,) index into the flattened
    rows (0 for a window's padding, which the caller drops). fill: real positions per row.
    """

    input_ids: torch.Tensor
    position_ids: torch.Tensor
    segments: torch.Tensor
    source: torch.Tensor
    fill: torch.Tensor

    def chunks(self, rows_per_forward: int) -> list[tuple[torch.Tensor, int]]:
        """Row indices of each forward pass with the width it needs: fullest rows first."""
        order = torch.argsort(self.fill, descending=True, stable=True)
        return [(rows, int(self.fill[rows].max())) for rows in order.split(rows_per_forward)]


def pack_windows(input_ids: torch.Tensor, lengths: torch.Tensor) -> PackedRows:
    """Pack the first `lengths[i]` ids of each window row into as few rows as fit."""
    n_windows, window_width = input_ids.shape
    width = max(int(lengths.max()), 1)
    placements, fill = _first_fit(lengths.tolist(), width)
    n_rows = len(fill)
    packed_ids = torch.zeros((n_rows, width), dtype=input_ids.dtype, device=input_ids.device)
    positions = torch.zeros_like(packed_ids)
    segments = torch.full_like(packed_ids, -1)
    source = torch.zeros(n_windows * window_width, dtype=torch.long, device=input_ids.device)
    for window, (row, offset) in enumerate(placements):
        n = int(lengths[window])
        span = torch.arange(n, device=input_ids.device)
        packed_ids[row, offset : offset + n] = input_ids[window, :n]
        positions[row, offset : offset + n] = span
        segments[row, offset : offset + n] = window
        source[window * window_width + span] = row * width + offset + span
    fill_tensor = torch.tensor(fill, dtype=torch.long, device=input_ids.device)
    return PackedRows(packed_ids, positions, segments, source, fill_tensor)


def _first_fit(lengths: list[int], width: int) -> tuple[list[tuple[int, int]], list[int]]:
    """(row, offset) of each window, placed longest first into the first row with room."""
    placements: list[tuple[int, int]] = [(0, 0)] * len(lengths)
    fill: list[int] = []
    for window in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        n = lengths[window]
        row = next((r for r, used in enumerate(fill) if used + n <= width), len(fill))
        if row == len(fill):
            fill.append(0)
        placements[window] = (row, fill[row])
        fill[row] += n
    return placements, fill
