"""Pipeline wall time. ``make reproduce`` (the ``default`` preset) is not rerun here (about 22 minutes): its
wall time is read from the manifests of its last run, ``runs/default`` (every run's and notebook's
``run.json``), or, without that folder, from the shipped ``data/reference/default``; the record names the
source. The ``smoke`` preset (``python -m uec_repro.experiments run smoke``) is run and timed in full mode
only, into a temporary runs folder. Goal for ``default``: <= 30 minutes.

    python -m benchmarks.pipeline --mode full
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from .common import ROOT, parse_args, write_results

NAME = "pipeline"
GOAL_SECONDS = 30 * 60
SOURCES = (ROOT / "runs" / "default", ROOT / "data" / "reference" / "default")


def manifests_wall_time(folder: Path) -> dict[str, Any] | None:
    """From the first start to the last finish over every ``run.json`` of the runs and every notebook manifest
    (``notebooks/*.json``) in an experiment folder; None when it holds no manifests."""
    runs = [json.loads(p.read_text()) for p in sorted(folder.glob("*/seed*/run.json"))]
    notebooks = [json.loads(p.read_text()) for p in sorted(folder.glob("notebooks/*.json"))]
    manifests = [m for m in runs + notebooks if m.get("started_at") and m.get("finished_at")]
    if not manifests:
        return None
    start = min(datetime.fromisoformat(m["started_at"]) for m in manifests)
    end = max(datetime.fromisoformat(m["finished_at"]) for m in manifests)
    statuses = sorted({m.get("status") for m in runs})
    return {
        "source": str(folder.relative_to(ROOT)) if folder.is_relative_to(ROOT) else str(folder),
        "runs": len(runs),
        "notebooks": len(notebooks),
        "run_statuses": statuses,
        "wall_seconds": (end - start).total_seconds(),
        "sum_of_run_seconds": sum(m.get("wall_seconds") or 0.0 for m in runs),
        "started_at": start.isoformat(),
        "finished_at": end.isoformat(),
        "git_commit": runs[0].get("git_commit") if runs else None,
        "hardware": runs[0].get("hardware") if runs else None,
    }


def time_smoke() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "uec_repro.experiments", "run", "smoke", "--runs-root", tmp, "--restart"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.perf_counter() - started
    return {
        "wall_seconds": seconds,
        "exit_code": result.returncode,
        "output_tail": (result.stdout + result.stderr)[-1500:],
    }


def measure(mode: str, threads: int, out: str | Path) -> dict[str, Any]:
    default = next((record for record in map(manifests_wall_time, SOURCES) if record), None)
    smoke = time_smoke() if mode == "full" else "not run in quick mode"
    record = {
        "settings": {"threads": "as the presets set them (threads_per_run)"},
        "goal": f"make reproduce (default preset) <= {GOAL_SECONDS // 60} minutes",
        "default": default or "no manifests found in runs/default or data/reference/default",
        "meets_goal": bool(default) and default["wall_seconds"] <= GOAL_SECONDS,
        "smoke": smoke,
    }
    rows = []
    if default:
        rows.append(
            {"pipeline": "default", "source": default["source"], "wall_seconds": default["wall_seconds"]}
        )
    if isinstance(smoke, dict):
        rows.append({"pipeline": "smoke", "source": "timed now", "wall_seconds": smoke["wall_seconds"]})
    write_results(out, NAME, mode, record, rows)
    return record


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__.splitlines()[0], argv)
    record = measure(args.mode, args.threads, args.out)
    default = record["default"]
    if isinstance(default, dict):
        print(f"pipeline: default {default['wall_seconds'] / 60:.1f} min (from {default['source']})")
    if isinstance(record["smoke"], dict):
        print(f"pipeline: smoke {record['smoke']['wall_seconds'] / 60:.1f} min")


if __name__ == "__main__":
    main()
