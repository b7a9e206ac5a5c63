"""A cell, one notebook execution of a grid: its files on disk and its state there (from its manifest)."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..layout import MANIFEST_FILE, variant_name

SUMMARY_FOLDER = "notebooks"
PATH_PARAMETERS = ("output_dir", "experiment_dir")  # left out when deciding whether a run is stale


@dataclass(frozen=True)
class Cell:
    """One notebook execution: a training run of the grid (``method`` set) or a summary notebook."""

    experiment: str
    notebook: str
    parameters: dict[str, Any]
    folder: Path
    method: str | None = None
    seed: int | None = None
    sweep: dict[str, Any] = field(default_factory=dict)

    @property
    def is_run(self) -> bool:
        return self.method is not None

    @property
    def variant(self) -> str | None:
        return variant_name(self.method, self.sweep) if self.is_run else None

    @property
    def label(self) -> str:
        return f"{self.variant} seed{self.seed}" if self.is_run else f"{SUMMARY_FOLDER}/{self.notebook}"

    @property
    def executed_path(self) -> Path:
        return self.folder / f"{self.notebook}.ipynb"

    @property
    def manifest_path(self) -> Path:
        return self.folder / (MANIFEST_FILE if self.is_run else f"{self.notebook}.json")

    @property
    def parameters_path(self) -> Path:
        return self.folder / ("parameters.yaml" if self.is_run else f"{self.notebook}.parameters.yaml")

    @property
    def log_path(self) -> Path:
        return self.folder / ("papermill.log" if self.is_run else f"{self.notebook}.log")

    @property
    def lock_path(self) -> Path:
        """Held while the cell executes: beside a run folder (which may be cleared), in a summary's folder."""
        if self.is_run:
            return self.folder.with_name(f"{self.folder.name}.lock")
        return self.folder / f".{self.notebook}.lock"

    def clear_outputs(self, resume: bool = False) -> None:
        """Before a new attempt: remove the whole run folder, or (``resume``, and for summary notebooks) only
        the files the attempt rewrites, so that a resumed run keeps its checkpoints."""
        if self.is_run and not resume:
            shutil.rmtree(self.folder, ignore_errors=True)
        else:
            for path in (self.executed_path, self.parameters_path, self.log_path):
                path.unlink(missing_ok=True)


def read_manifest(cell: Cell) -> dict[str, Any] | None:
    """The cell's manifest, or None if there is none (or it cannot be read)."""
    try:
        return json.loads(cell.manifest_path.read_text())
    except (OSError, ValueError):
        return None


def _comparable(parameters: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in parameters.items() if k not in PATH_PARAMETERS}, sort_keys=True)


def run_state(cell: Cell) -> str:
    """``pending``, ``complete``, ``stale`` (complete, other parameters), ``interrupted`` or ``failed``."""
    manifest = read_manifest(cell)
    if manifest is None:
        return "failed" if cell.manifest_path.exists() else "pending"
    if manifest.get("status") == "complete":
        same = manifest.get("notebook") == cell.notebook and _comparable(
            manifest.get("parameters", {})
        ) == _comparable(cell.parameters)
        return "complete" if same else "stale"
    return "interrupted" if manifest.get("status") == "running" else "failed"


def resumable(cell: Cell, previous: dict[str, Any] | None) -> bool:
    """An unfinished attempt of this very run (same notebook and parameters) whose files a rerun may keep."""
    return (
        cell.is_run
        and previous is not None
        and previous.get("status") in ("running", "failed")
        and previous.get("notebook") == cell.notebook
        and _comparable(previous.get("parameters", {})) == _comparable(cell.parameters)
    )
