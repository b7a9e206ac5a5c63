"""Run the benchmarks, each in a fresh process, then write the report (``make bench``: full mode, about 25
minutes here; ``make bench-quick``: quick mode, a few minutes each).

    python -m benchmarks.run --mode quick [--only overhead,uec_cost] [--threads 1] [--out benchmarks/results]
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from .common import ROOT, BenchmarkError, parse_args
from .report import BENCHMARKS, write_report


def add_only(parser) -> None:
    parser.add_argument(
        "--only",
        default=",".join(BENCHMARKS),
        help=f"comma-separated benchmarks to run (default all: {','.join(BENCHMARKS)})",
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__.splitlines()[0], argv, add_only)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in BENCHMARKS]
    if unknown or not chosen:
        raise BenchmarkError(
            f"--only={args.only!r}: unknown benchmark(s) {unknown}; choose from {', '.join(BENCHMARKS)}"
        )
    failed = []
    for name in chosen:
        started = time.perf_counter()
        print(f"[bench] {name} ({args.mode}) ...", flush=True)
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                f"benchmarks.{name}",
                "--mode",
                args.mode,
                "--threads",
                str(args.threads),
                "--out",
                args.out,
            ],
            cwd=ROOT,
            check=False,
        )
        print(
            f"[bench] {name}: {'ok' if result.returncode == 0 else 'FAILED'} in "
            f"{time.perf_counter() - started:.0f} s",
            flush=True,
        )
        if result.returncode != 0:
            failed.append(name)
    print(f"[bench] report: {write_report(Path(args.out))}")
    if failed:
        raise SystemExit(f"[bench] failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
