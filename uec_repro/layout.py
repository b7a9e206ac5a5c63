"""The run-directory layout, in one torch-free place: an experiment is ``<runs root>/<experiment>/``, each run
``<variant>/seed<k>/`` inside it (a variant is a method, or ``method--name=value`` for a swept setting), and a
run folder holds the files named here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

BASE_METHOD = "base"  # the untrained policy: evaluated, never trained
MANIFEST_FILE = "run.json"  # the runner's record of a run: settings, provenance, status, timings
SETTINGS_FILE = "settings.json"  # the run's settings, so a rerun can tell whether it continues the same run
METRICS_FILE = "metrics.jsonl"  # one row per training step, and the probe's step-0 row first
PROBE_FILE = "probe.jsonl"  # the entropy probe's per-prompt values, one row per probe
EVAL_FILE = "eval.json"  # the final evaluation on held-out test prompts
ADAPTER_DIR = "adapter"  # the trained LoRA adapter
RESULT_FILES = (MANIFEST_FILE, METRICS_FILE, PROBE_FILE, EVAL_FILE)  # what a reference export copies
EXPERIMENT_FILE = "experiment.json"  # an exported experiment's wall time


def variant_name(method: str, sweep: dict[str, Any]) -> str:
    """``method``, or ``method--name=value`` for a swept value."""
    return method + "".join(f"--{name}={value}" for name, value in sweep.items())


def run_folder(experiment_dir: str | Path, variant: str, seed: int) -> Path:
    """The folder of one run: ``<experiment_dir>/<variant>/seed<seed>``."""
    return Path(experiment_dir) / variant / f"seed{seed}"


def is_reference(experiment_dir: str | Path) -> bool:
    """Whether ``experiment_dir`` is a shipped reference (``data/reference/<name>``): read-only results."""
    parts = Path(experiment_dir).resolve().parts
    return any(parts[i : i + 2] == ("data", "reference") for i in range(len(parts) - 1))


def figures_folder(experiment_dir: str | Path, figures_dir: str, notebook: str) -> Path:
    """Where a notebook writes its figures: ``figures_dir`` when given, else ``<experiment_dir>/figures``, or,
    for a shipped reference (never written to by default), ``runs/figures/<notebook>/<reference name>``."""
    if figures_dir:
        return Path(figures_dir)
    if is_reference(experiment_dir):
        return Path("runs") / "figures" / notebook / Path(experiment_dir).resolve().name
    return Path(experiment_dir) / "figures"
