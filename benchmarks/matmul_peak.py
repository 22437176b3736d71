"""Float32 matrix-multiply peak of this CPU at the benchmark's thread count (GFLOP/s).

The peak is the reference for "useful FLOP/s": what fraction of what torch.mm reaches on
large square float32 matrices an end-to-end pipeline achieves. Measure it in the same
process and with the same threads as the pipeline it is compared with.

    python benchmarks/matmul_peak.py [--threads 2] [--quick]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from common import default_threads, machine, markdown_table, results_dir, set_threads, write_results


def matmul_gflops(size: int, repeats: int) -> float:
    """Best-of-`repeats` GFLOP/s of a size×size float32 torch.mm (one warm-up first)."""
    import torch

    a = torch.randn(size, size, dtype=torch.float32)
    b = torch.randn(size, size, dtype=torch.float32)
    out = torch.empty(size, size, dtype=torch.float32)
    torch.mm(a, b, out=out)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b, out=out)
        best = min(best, time.perf_counter() - start)
    return 2.0 * size**3 / best / 1e9


def measure(quick: bool = False) -> dict[str, Any]:
    """GFLOP/s per size and the peak over sizes."""
    sizes = (512, 1024) if quick else (1024, 1536, 2048)
    repeats = 3 if quick else 10
    per_size = {size: matmul_gflops(size, repeats) for size in sizes}
    return {
        "peak_gflops": max(per_size.values()),
        "gflops_by_size": per_size,
        "repeats": repeats,
        "machine": machine(),
    }


def report(result: dict[str, Any]) -> str:
    rows = [[f"{n}×{n}", gflops] for n, gflops in result["gflops_by_size"].items()]
    table = markdown_table(["fp32 torch.mm", "GFLOP/s (best of N)"], rows)
    threads = result["machine"]["torch_threads"]
    return (
        f"## Matrix-multiply peak ({threads} threads)\n\n{table}\n\n"
        f"Peak: **{result['peak_gflops']:.1f} GFLOP/s**\n"
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=default_threads())
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--out", type=Path, help="results dir (default: benchmarks/results[/quick])"
    )
    args = parser.parse_args(argv)
    set_threads(args.threads)
    result = measure(args.quick)
    write_results(results_dir(args.out, args.quick), "matmul_peak", result, report(result))
    return result


if __name__ == "__main__":
    main()
