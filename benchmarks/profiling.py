"""Measurement helpers of the benchmarks: statistics of repeated timings, peak memory,
weight memory, matmul throughput, FLOP counts and the environment a measurement ran in.

Timings on a shared machine are noisy, so the benchmarks compare variants inside one process, interleaved
(A, B, A, B, ...), and report medians and spreads of the per-repetition ratios, never absolute times across
runs.
"""

from __future__ import annotations

import math
import re
import resource
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "block_ratios",
    "count_flops",
    "cuda_memory_mb",
    "loglog_slope",
    "matmul_flops_per_second",
    "measurement_environment",
    "paired_ratios",
    "peak_rss_mb",
    "reset_peak_rss",
    "rss_high_water_mb",
    "summarize",
    "weight_bytes",
]


def summarize(values: Sequence[float]) -> dict[str, float | int]:
    """``n``, ``median``, quartiles ``q1``/``q3`` (inclusive method), ``iqr``, ``min``, ``max`` and
    ``mean``."""
    data = sorted(float(v) for v in values)
    if not data:
        raise ValueError("summarize needs at least one value")
    if len(data) == 1:
        q1 = q3 = data[0]
    else:
        q1, _, q3 = statistics.quantiles(data, n=4, method="inclusive")
    return {
        "n": len(data),
        "median": statistics.median(data),
        "q1": q1,
        "q3": q3,
        "iqr": q3 - q1,
        "min": data[0],
        "max": data[-1],
        "mean": statistics.fmean(data),
    }


def paired_ratios(numerators: Sequence[float], denominators: Sequence[float]) -> list[float]:
    """Ratio of each repetition's pair (A_i / B_i), for A and B measured interleaved."""
    if len(numerators) != len(denominators) or not numerators:
        raise ValueError(
            f"paired_ratios needs two equally long, non-empty lists, got {len(numerators)} and "
            f"{len(denominators)} values"
        )
    return [a / b for a, b in zip(numerators, denominators, strict=True)]


def block_ratios(numerators: Sequence[float], denominators: Sequence[float], block: int) -> list[float]:
    """Ratios of sums over consecutive blocks of ``block`` paired values (a trailing partial block is
    dropped): for per-step costs that vary by design (updates on some steps, replay every few) the ratio of
    block totals is the cost ratio, and the spread over blocks its uncertainty."""
    if block < 1:
        raise ValueError(f"block={block} must be >= 1")
    paired_ratios(numerators, denominators)  # same checks
    whole = len(numerators) // block * block
    return [sum(numerators[i : i + block]) / sum(denominators[i : i + block]) for i in range(0, whole, block)]


def loglog_slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares slope of log(y) on log(x): 1 is linear growth, above 1 super-linear."""
    if len(xs) != len(ys) or len(xs) < 2 or len(set(xs)) < 2:
        raise ValueError("loglog_slope needs at least two points with different x")
    lx, ly = [math.log(x) for x in xs], [math.log(y) for y in ys]
    mx, my = statistics.fmean(lx), statistics.fmean(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly, strict=True)) / sum((a - mx) ** 2 for a in lx)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux ``ru_maxrss``), MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_rss() -> bool:
    """Reset this process's peak resident memory (Linux >= 4.0: ``/proc/self/clear_refs``), so that
    :func:`rss_high_water_mb` reports the peak from here on; False where that is not supported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def rss_high_water_mb() -> float | None:
    """Peak resident memory since the start or the last :func:`reset_peak_rss` (Linux ``VmHWM``), MiB."""
    try:
        match = re.search(r"VmHWM:\s+(\d+) kB", Path("/proc/self/status").read_text())
    except OSError:
        return None
    return int(match.group(1)) / 1024 if match else None


def cuda_memory_mb() -> dict[str, float] | None:
    """``max_allocated`` and ``max_reserved`` CUDA memory of this process, MiB; None without CUDA."""
    import torch

    if not torch.cuda.is_available():
        return None
    return {
        "max_allocated": torch.cuda.max_memory_allocated() / 2**20,
        "max_reserved": torch.cuda.max_memory_reserved() / 2**20,
    }


def weight_bytes(model: Any) -> dict[str, int]:
    """Bytes held by a model's weights as stored: ``base`` (frozen parameters and buffers, 4-bit weights at
    their packed size plus their quantisation state) and ``trainable`` (the adapter)."""
    import torch

    def state_bytes(
        state: Any,
    ) -> int:  # bitsandbytes QuantState: absmax, code, and nested state if double-quantised
        total = 0
        for value in vars(state).values():
            if isinstance(value, torch.Tensor):
                total += value.numel() * value.element_size()
            elif type(value).__name__ == "QuantState":
                total += state_bytes(value)
        return total

    base = trainable = 0
    for param in model.parameters():
        size = param.numel() * param.element_size()
        quant_state = getattr(param, "quant_state", None)
        if quant_state is not None:
            size += state_bytes(quant_state)
        if param.requires_grad:
            trainable += size
        else:
            base += size
    base += sum(b.numel() * b.element_size() for b in model.buffers())
    return {"base": base, "trainable": trainable}


def matmul_flops_per_second(
    m: int, k: int, n: int, *, seconds: float = 0.3, dtype: str = "float32", device: str = "cpu"
) -> float:
    """Throughput of ``torch.mm`` on an (m x k) @ (k x n) product, FLOP/s (2 m k n per product), measured for
    about ``seconds`` after one warm-up product, with torch's current thread setting."""
    import torch

    a = torch.randn(m, k, dtype=getattr(torch, dtype), device=device)
    b = torch.randn(k, n, dtype=getattr(torch, dtype), device=device)
    torch.mm(a, b)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    sync()
    products, started = 0, time.perf_counter()
    while True:
        torch.mm(a, b)
        products += 1
        if products % 4 == 0:
            sync()
            elapsed = time.perf_counter() - started
            if elapsed >= seconds:
                return 2.0 * m * k * n * products / elapsed


def count_flops(function: Callable[[], Any]) -> tuple[Any, int]:
    """Run ``function`` under torch's FLOP counter; returns its result and the FLOPs of the matrix products
    and attention it ran (forward and backward)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        result = function()
    return result, int(counter.get_total_flops())


def measurement_environment() -> dict[str, Any]:
    """The batch runner's environment record (versions, git state, hardware) plus torch's thread settings and
    the CUDA device, or the string "no CUDA"."""
    import torch

    from uec_repro.experiments import environment_record

    record = environment_record()
    record["torch_threads"] = torch.get_num_threads()
    record["torch_interop_threads"] = torch.get_num_interop_threads()
    record["cuda"] = (
        f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})"
        if torch.cuda.is_available()
        else "no CUDA"
    )
    return record
