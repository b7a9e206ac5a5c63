"""One training configuration in a fresh process, for memory peaks (RSS is per process): loads the policy,
trains a few steps and prints one JSON line with the memory it used. Called by the benchmarks; by hand:

    python -m benchmarks.probe --trainer uec --method grpo --policy toy --quantization nf4 --steps 2
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .common import ROOT, BenchmarkError, check_common
from .profiling import cuda_memory_mb, peak_rss_mb, reset_peak_rss, rss_high_water_mb, weight_bytes

TRAINERS = ("uec", "stock")
QUANTIZATIONS = ("none", "nf4")


def parse(argv: list[str] | None = None):
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trainer", default="uec", help=f"one of {', '.join(TRAINERS)}")
    parser.add_argument("--method", default="grpo", help="a method of uec_repro.config.METHODS (uec trainer)")
    parser.add_argument("--policy", default="toy", help="'toy', 'smollm2-135m' or a folder")
    parser.add_argument("--quantization", default="none", help=f"one of {', '.join(QUANTIZATIONS)}")
    for name, default in (("steps", 2), ("prompts", 8), ("generations", 8), ("length", 48)):
        parser.add_argument(f"--{name}", default=str(default), help=f"an integer >= 1 (default {default})")
    parser.add_argument("--threads", default="1", help="torch CPU threads, an integer >= 1")
    args = parser.parse_args(argv)
    args.mode, args.out = "quick", ""
    for name, allowed in (("trainer", TRAINERS), ("quantization", QUANTIZATIONS)):
        if getattr(args, name) not in allowed:
            raise BenchmarkError(
                f"--{name}={getattr(args, name)!r} is not allowed; choose one of {', '.join(allowed)}"
            )
    for name in ("steps", "prompts", "generations", "length"):
        value = getattr(args, name)
        if not value.isdigit() or int(value) < 1 or (name == "generations" and int(value) < 2):
            raise BenchmarkError(
                f"--{name}={value!r} must be an integer >= {2 if name == 'generations' else 1}"
            )
        setattr(args, name, int(value))
    if args.trainer == "stock" and args.quantization != "none":
        raise BenchmarkError("--trainer=stock runs only with --quantization=none")
    from uec_repro.config import METHODS

    if args.method not in METHODS:
        raise BenchmarkError(f"--method={args.method!r} is not allowed; choose one of {', '.join(METHODS)}")
    check_common(args)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    import psutil
    import torch

    from .common import run_settings, stock_trainer, uec_trainer

    process = psutil.Process()
    before_load = process.memory_info().rss / 2**20
    with tempfile.TemporaryDirectory() as tmp:
        settings = run_settings(
            args.method,
            args.steps,
            Path(tmp) / "run",
            policy=args.policy,
            quantization=args.quantization,
            prompts_per_step=args.prompts,
            num_generations=args.generations,
            max_completion_length=args.length,
        )
        trainer = (
            uec_trainer(settings) if args.trainer == "uec" else stock_trainer(settings, Path(tmp) / "stock")
        )
        weights = weight_bytes(trainer.model)
        after_load = process.memory_info().rss / 2**20
        # not ru_maxrss where VmHWM exists: Linux carries ru_maxrss over from the parent process across exec
        load_peak = rss_high_water_mb() or peak_rss_mb()
        reset = reset_peak_rss()
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - started
        train_peak = rss_high_water_mb() if reset else None
    print(
        json.dumps(
            {
                "weight_bytes_base": weights["base"],
                "weight_bytes_trainable": weights["trainable"],
                "rss_before_load_mb": before_load,
                "rss_after_load_mb": after_load,
                "load_peak_rss_mb": load_peak,
                "train_peak_rss_mb": train_peak,
                "peak_rss_mb": max(load_peak, train_peak or 0.0),
                "train_seconds": seconds,
                "cuda": cuda_memory_mb(),
            }
        )
    )


def probe(**options: object) -> dict:
    """Run this script in a fresh Python process with ``--name value`` options; returns its JSON record."""
    command = [sys.executable, "-m", "benchmarks.probe"]
    for name, value in options.items():
        command += [f"--{name}", str(value)]
    result = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
    if result.returncode != 0:
        raise RuntimeError(f"probe {options} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
