"""Torch's flash and math attention kernels on a CPU by row width: `nn.attention_kernel`'s choice.

One decoder layer's attention as the encoder runs it (the base model's heads, 8 packed rows,
an additive 4D block mask, keys and values repeated per head group as transformers'
`repeat_kv` does), through `torch.nn.functional.scaled_dot_product_attention` with one
kernel allowed at a time, in a training step (forward and backward) and in prediction
(forward only), float32 and bfloat16.
The kernels take turns block by block, so that a host's drift hits both alike; each figure
is the median of the blocks, and "flash / math" is the ratio of the two medians (above 1:
math is faster).

    python benchmarks/attention_kernel.py --base-model models/smollm2-135m \
        [--widths 32 64 128 256 512] [--out DIR]
    python benchmarks/attention_kernel.py --quick     # small widths, short blocks: the code runs
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

from common import (
    benchmark_parser,
    machine,
    markdown_table,
    results_dir,
    set_threads,
    write_results,
)

ROWS = 8
KERNELS = ("flash", "math")


def heads(base_model: Path | None) -> tuple[int, int, int]:
    """(attention heads, key/value heads, head size) of the base model (SmolLM2-135M's when
    none is given)."""
    if base_model is None:
        return 9, 3, 64
    config = json.loads((base_model / "config.json").read_text())
    n_heads = config["num_attention_heads"]
    head_dim = config.get("head_dim") or config["hidden_size"] // n_heads
    return n_heads, config.get("num_key_value_heads", n_heads), head_dim


def one_pass(kernel: str, inputs: dict[str, Any], train: bool) -> None:
    """Attention over the inputs through one kernel; with `train`, its backward pass too."""
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel

    backend = SDPBackend.FLASH_ATTENTION if kernel == "flash" else SDPBackend.MATH
    query, key, value = inputs["query"], inputs["key"], inputs["value"]
    groups = query.shape[1] // key.shape[1]
    with torch.set_grad_enabled(train), sdpa_kernel([backend]):
        out = torch.nn.functional.scaled_dot_product_attention(
            query,
            key.repeat_interleave(groups, dim=1),
            value.repeat_interleave(groups, dim=1),
            attn_mask=inputs["mask"],
        )
    if train:
        out.backward(inputs["grad"])


def make_inputs(shape: tuple[int, int, int], width: int, dtype: Any) -> dict[str, Any]:
    """Random queries, keys and values for 8 rows of `width` pieces, each row two packed
    windows (a block mask), and an output gradient."""
    import torch

    n_heads, n_kv, head_dim = shape
    torch.manual_seed(0)
    segments = (torch.arange(width) >= width // 3).long().expand(ROWS, width)
    allowed = segments[:, :, None] == segments[:, None, :]
    mask = torch.zeros(allowed.shape, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)

    def tensor(heads: int) -> torch.Tensor:
        return torch.randn(ROWS, heads, width, head_dim, dtype=dtype).requires_grad_()

    return {
        "query": tensor(n_heads),
        "key": tensor(n_kv),
        "value": tensor(n_kv),
        "mask": mask[:, None],
        "grad": torch.randn(ROWS, n_heads, width, head_dim, dtype=dtype),
    }


def time_kernels(
    inputs: dict[str, Any], train: bool, blocks: int, block_seconds: float
) -> dict[str, float]:
    """Median ms per pass of each kernel, the kernels taking turns in blocks of about
    `block_seconds` each."""
    times: dict[str, list[float]] = {kernel: [] for kernel in KERNELS}
    for kernel in KERNELS:
        one_pass(kernel, inputs, train)  # warm-up
    start = time.perf_counter()
    one_pass("flash", inputs, train)
    repeats = max(2, round(block_seconds / (time.perf_counter() - start)))
    for block in range(blocks):
        for kernel in KERNELS if block % 2 == 0 else KERNELS[::-1]:
            start = time.perf_counter()
            for _ in range(repeats):
                one_pass(kernel, inputs, train)
            times[kernel].append((time.perf_counter() - start) / repeats * 1e3)
    return {kernel: statistics.median(values) for kernel, values in times.items()}


def measure(
    shape: tuple[int, int, int], widths: list[int], blocks: int, block_seconds: float
) -> dict[str, Any]:
    """Both kernels for every dtype, pass and width."""
    import torch

    from spacy_lsllama.nn.precision import dtype_name

    rows = []
    for dtype in (torch.bfloat16, torch.float32):
        for train in (True, False):
            for width in widths:
                inputs = make_inputs(shape, width, dtype)
                ms = time_kernels(inputs, train, blocks, block_seconds)
                rows.append(
                    {
                        "dtype": dtype_name(dtype),
                        "pass": "training" if train else "prediction",
                        "width": width,
                        "flash_ms": ms["flash"],
                        "math_ms": ms["math"],
                        "flash_over_math": ms["flash"] / ms["math"],
                    }
                )
    return {"heads": shape, "rows": ROWS, "results": rows, "machine": machine()}


def report(result: dict[str, Any]) -> str:
    n_heads, n_kv, head_dim = result["heads"]
    table = markdown_table(
        ["dtype", "pass", "pieces a row", "flash ms", "math ms", "flash / math"],
        [
            [r["dtype"], r["pass"], r["width"], r["flash_ms"], r["math_ms"], r["flash_over_math"]]
            for r in result["results"]
        ],
    )
    threads = result["machine"]["torch_threads"]
    return (
        f"## Attention kernels on CPU: flash against math ({threads} threads)\n\n"
        f"{result['rows']} rows, {n_heads} heads ({n_kv} key/value heads) of {head_dim}; "
        "median ms per pass.\n\n"
        f"{table}\n"
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = benchmark_parser(__doc__.splitlines()[0], "small widths, 2 blocks: the code runs")
    p.add_argument("--widths", type=int, nargs="+", default=[32, 64, 128, 256, 512])
    p.add_argument("--blocks", type=int, default=6, help="timed blocks per kernel")
    args = p.parse_args(argv)
    set_threads(args.threads)
    widths, blocks, seconds = ([16, 32], 2, 0.02) if args.quick else (args.widths, args.blocks, 0.5)
    result = measure(heads(args.base_model), widths, blocks, seconds)
    write_results(results_dir(args.out, args.quick), "attention_kernel", result, report(result))
    return result


if __name__ == "__main__":
    main()
