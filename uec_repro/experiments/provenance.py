"""Provenance: a new attempt's manifest and what it records besides the outcome (versions, git, hardware)."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from .cells import Cell
from .grid import REPO_ROOT

VERSIONED_PACKAGES = {  # manifest key -> distribution
    "python": None,
    "uec_repro": "uec-repro",
    "torch": "torch",
    "transformers": "transformers",
    "trl": "trl",
    "peft": "peft",
    "bitsandbytes": "bitsandbytes",
    "papermill": "papermill",
    "accelerate": "accelerate",
    "datasets": "datasets",
}


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def package_versions() -> dict[str, str | None]:
    versions = {}
    for key, distribution in VERSIONED_PACKAGES.items():
        try:
            versions[key] = (
                platform.python_version()
                if distribution is None
                else importlib.metadata.version(distribution)
            )
        except importlib.metadata.PackageNotFoundError:
            versions[key] = None
    return versions


def git_state(repo: Path = REPO_ROOT) -> dict[str, Any]:
    """``git_commit`` (None outside a git checkout) and ``git_dirty`` (uncommitted or untracked files)."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
        ).stdout

    try:
        return {
            "git_commit": git("rev-parse", "HEAD").strip(),
            "git_dirty": bool(git("status", "--porcelain")),
        }
    except (OSError, subprocess.CalledProcessError):
        return {"git_commit": None, "git_dirty": None}


def hardware() -> dict[str, Any]:
    cpu_model = None
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        cpu_model = next(
            (
                line.split(":", 1)[1].strip()
                for line in cpuinfo.read_text().splitlines()
                if line.startswith("model name")
            ),
            None,
        )
    import torch  # only here: the runner itself does not need it

    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model,
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def environment_record() -> dict[str, Any]:
    """What every manifest of one :func:`run_grid` call shares: versions, git state, hardware."""
    return {"versions": package_versions(), **git_state(), "hardware": hardware()}


HISTORY_KEYS = ("attempt", "status", "started_at", "finished_at", "wall_seconds", "error")


def new_manifest(cell: Cell, previous: dict[str, Any] | None, environment: dict[str, Any]) -> dict[str, Any]:
    """The manifest of the next attempt; earlier attempts are kept, in short, in ``previous_attempts``."""
    history = (
        []
        if previous is None
        else [*previous.get("previous_attempts", []), {key: previous.get(key) for key in HISTORY_KEYS}]
    )
    return {
        "experiment": cell.experiment,
        "variant": cell.variant,
        "method": cell.method,
        "seed": cell.seed,
        "sweep": cell.sweep,
        "notebook": cell.notebook,
        "parameters": cell.parameters,
        "status": "running",
        "attempt": int((previous or {}).get("attempt") or 0) + 1,
        "started_at": now_iso(),
        "finished_at": None,
        "wall_seconds": None,
        "peak_rss_mb": None,
        "error": None,
        "previous_attempts": history,
        **environment,
    }
