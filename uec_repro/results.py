"""An experiment's run folders as tidy pandas frames, summaries over seeds, and the paper's numbers.

An experiment directory (``runs/<experiment>/``) holds one folder per run, ``<variant>/seed<k>/``, written by
the training notebook and the batch runner:

* ``run.json``: the runner's manifest (experiment, variant, method, seed, sweep, status, parameters, wall
  time, peak memory, versions); the variant is the method name, or ``<method>--<param>=<value>`` for a
  sensitivity sweep, whose ``sweep`` is then ``{param: value}``;
* ``metrics.jsonl``: one row per training step (training runs only; ``base`` trains nothing);
* ``eval.json``: the final evaluation: ``summary`` (pass@k, mean@n, maj@n, token entropy, ...), ``n`` samples
  per prompt and the ``correct`` count of each prompt, from which pass@k is recomputed for every k <= n.

>>> runs = load_runs("runs/default")
>>> runs.evals.groupby("variant")["pass@1"].mean()
>>> write_summary(summary_table(runs), "figures")
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

import uec_repro

from .config import METHODS
from .evaluation import pass_at_k
from .training import BASE_METHOD, EVAL_FILE
from .validation import ParameterError

__all__ = [
    "METHOD_ORDER",
    "Runs",
    "confidence_interval",
    "load_runs",
    "paper_reference",
    "per_step_seconds",
    "summary_table",
    "write_summary",
]

MANIFEST_FILE = "run.json"
METRICS_FILE = "metrics.jsonl"  # uec_repro.trainer.METRICS_FILE, not imported: that module loads torch
PAPER_RESULTS_FILE = Path(uec_repro.__file__).parents[1] / "data" / "paper_results.csv"

#: Every ordering of methods (frames, tables, figures): the untrained policy, then the registry's order.
METHOD_ORDER: tuple[str, ...] = (BASE_METHOD, *METHODS)

ID_COLUMNS = ["variant", "method", "seed", "sweep_param", "sweep_value"]
ENTROPY_MEASURES = {"entropy": "entropy", "entropy/sampled_nll": "sampled_nll"}
EDGE_STEPS = 3  # entropy "at start" / "at end" = mean of the first / last 3 logged values


@dataclass
class Runs:
    """One experiment's runs as tidy frames (see :func:`load_runs` for the columns)."""

    runs: pd.DataFrame
    steps: pd.DataFrame
    evals: pd.DataFrame
    passk: pd.DataFrame


def load_runs(experiment_dir: str | Path, include_incomplete: bool = False) -> Runs:
    """The runs under ``experiment_dir`` (``<variant>/seed<k>/run.json``) as four frames, ordered by method.

    * ``runs``: one row per run: experiment, variant, method, seed, sweep_param, sweep_value (None/NaN when
      the variant is no sweep), status, policy, task, steps, wall_seconds, peak_rss_mb, path, parameters;
    * ``steps``: one row per run and training step: the id columns, ``step`` and every logged metric (NaN
      where a step did not log it);
    * ``evals``: one row per evaluated run: the id columns, ``n``, and every key of the eval summary;
    * ``passk``: the id columns, ``k`` and ``pass_at_k`` for k = 1..n, recomputed from the per-prompt
      correct counts with the unbiased estimator.

    Only runs with status ``"complete"`` are loaded unless ``include_incomplete``.
    """
    root = Path(experiment_dir)
    if not root.is_dir():
        raise ParameterError(f"experiment_dir={str(experiment_dir)!r} is not a directory")
    manifests = sorted(root.glob(f"*/*/{MANIFEST_FILE}"))
    run_rows, step_frames, eval_rows, passk_frames = [], [], [], []
    skipped = 0
    for manifest_path in manifests:
        manifest = _read_json(manifest_path)
        if manifest.get("status") != "complete" and not include_incomplete:
            skipped += 1
            continue
        folder = manifest_path.parent
        run = _run_row(manifest, folder)
        run_rows.append(run)
        ids = {column: run[column] for column in ID_COLUMNS}
        if (folder / METRICS_FILE).exists():
            step_frames.append(_read_steps(folder / METRICS_FILE).assign(**ids))
        if (folder / EVAL_FILE).exists():
            evaluation = _read_json(folder / EVAL_FILE)
            eval_rows.append({**ids, "n": evaluation["n"], **evaluation["summary"]})
            passk_frames.append(_passk_frame(evaluation["n"], evaluation["correct"]).assign(**ids))
    if not run_rows:
        hint = f" ({skipped} incomplete skipped; include_incomplete=True loads them)" if skipped else ""
        raise ParameterError(
            f"no runs in {str(experiment_dir)!r}: expected <variant>/seed<k>/{MANIFEST_FILE}{hint}"
        )
    runs = _ordered(pd.DataFrame(run_rows))
    steps = _ordered(_concat(step_frames, [*ID_COLUMNS, "step"]), "step")
    evals = _ordered(pd.DataFrame(eval_rows) if eval_rows else pd.DataFrame(columns=[*ID_COLUMNS, "n"]))
    passk = _ordered(_concat(passk_frames, [*ID_COLUMNS, "k", "pass_at_k"]), "k")
    steps = steps[[*ID_COLUMNS, "step", *(c for c in steps.columns if c not in {*ID_COLUMNS, "step"})]]
    passk = passk[[*ID_COLUMNS, "k", "pass_at_k"]]
    return Runs(runs=runs, steps=steps, evals=evals, passk=passk)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ParameterError(f"{path} is not valid JSON: {error}") from error


def _run_row(manifest: dict, folder: Path) -> dict:
    sweep = manifest.get("sweep") or {}
    if len(sweep) == 1:
        (sweep_param, sweep_value), = sweep.items()
    else:  # no sweep, or several parameters swept together: their names and values joined
        sweep_param = ",".join(sweep) or None
        sweep_value = ",".join(map(str, sweep.values())) or math.nan
    parameters = manifest.get("parameters") or {}
    return {
        "experiment": manifest.get("experiment"),
        "variant": manifest["variant"],
        "method": manifest["method"],
        "seed": int(manifest["seed"]),
        "sweep_param": sweep_param,
        "sweep_value": sweep_value,
        "status": manifest.get("status"),
        "policy": parameters.get("policy"),
        "task": parameters.get("task"),
        "steps": parameters.get("steps"),
        "wall_seconds": manifest.get("wall_seconds", math.nan),
        "peak_rss_mb": manifest.get("peak_rss_mb", math.nan),
        "path": str(folder),
        "parameters": parameters,
    }


def _read_steps(path: Path) -> pd.DataFrame:
    """Rows of ``metrics.jsonl``; a line that is not JSON (a running run's half-written row) is skipped."""
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return pd.DataFrame(rows)


def _passk_frame(n: int, correct: Iterable[int]) -> pd.DataFrame:
    """Mean unbiased pass@k over prompts for k = 1..n (each distinct correct count is computed once)."""
    counts = Counter(correct)
    prompts = sum(counts.values())
    values = [sum(m * pass_at_k(n, c, k) for c, m in counts.items()) / prompts for k in range(1, n + 1)]
    return pd.DataFrame({"k": range(1, n + 1), "pass_at_k": values})


def _concat(frames: list[pd.DataFrame], empty_columns: list[str]) -> pd.DataFrame:
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=empty_columns)


def method_rank(methods: pd.Series) -> pd.Series:
    """Position of each method in :data:`METHOD_ORDER` (unknown methods last), for sorting."""
    return methods.map({m: i for i, m in enumerate(METHOD_ORDER)}).fillna(len(METHOD_ORDER))


def _ordered(frame: pd.DataFrame, *then: str) -> pd.DataFrame:
    """Sorted by method order, variant, seed and ``then``; a method's own variant before its sweeps."""
    if frame.empty:
        return frame.reset_index(drop=True)
    return (
        frame.assign(_rank=method_rank(frame["method"]), _swept=frame["sweep_param"].notna())
        .sort_values(["_rank", "_swept", "sweep_param", "variant", "seed", *then], kind="stable")
        .drop(columns=["_rank", "_swept"])
        .reset_index(drop=True)
    )


def paper_reference() -> pd.DataFrame:
    """Every number the paper (and its earlier EFRame versions) reports, as recovered in the notes.

    Columns: source, table_or_figure, model, dataset, method, metric, k, value, confidence.
    """
    return pd.read_csv(PAPER_RESULTS_FILE)


def confidence_interval(values: Iterable[float], level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): Student-t interval of the mean over seeds; NaNs are ignored.

    One value gives (v, v, v); no values give NaNs.
    """
    data = np.asarray([v for v in values if not pd.isna(v)], dtype=float)
    if data.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(data.mean())
    if data.size == 1:
        return mean, mean, mean
    half = float(stats.t.ppf((1 + level) / 2, data.size - 1) * data.std(ddof=1) / math.sqrt(data.size))
    return mean, mean - half, mean + half


def per_step_seconds(steps: pd.DataFrame) -> pd.Series:
    """Wall time of each step without in-training validation (``time/step - time/validation``)."""
    validation = steps["time/validation"].fillna(0.0) if "time/validation" in steps else 0.0
    return steps["time/step"] - validation if "time/step" in steps else pd.Series(math.nan, index=steps.index)


def summary_table(runs: Runs) -> pd.DataFrame:
    """Final metrics per variant, as mean over seeds with a 95% interval (``<metric>``, ``_low``, ``_high``).

    Metrics: pass@1 and pass@k for the largest k every run has (recomputed from the correct counts); each
    mean@n and maj@n and ``token_entropy`` of the final evaluation; both entropy measures at the start and
    end of training (mean of the first / last 3 logged values of ``entropy`` and ``entropy/sampled_nll``);
    ``step_seconds``, the mean wall time per step without validation. ``seeds`` counts the loaded runs.
    """
    per_run = runs.runs[ID_COLUMNS].copy()
    keys = ["variant", "seed"]
    if not runs.passk.empty:
        k_max = int(runs.passk.groupby(keys)["k"].max().min())
        for k in sorted({1, k_max}):
            chosen = runs.passk[runs.passk["k"] == k].set_index(keys)["pass_at_k"].rename(f"pass@{k}")
            per_run = per_run.join(chosen, on=keys)
    final = [c for c in runs.evals.columns if re.fullmatch(r"(mean|maj)@\d+", c)] + ["token_entropy"]
    if not runs.evals.empty:
        per_run = per_run.join(runs.evals.set_index(keys)[[c for c in final if c in runs.evals]], on=keys)
    if not runs.steps.empty:
        grouped = runs.steps.groupby(keys)
        for column, short in ENTROPY_MEASURES.items():
            if column in runs.steps:
                logged = grouped[column].apply(lambda s: s.dropna().to_numpy())
                start = logged.map(lambda v: _edge_mean(v[:EDGE_STEPS])).rename(f"{short}_start")
                end = logged.map(lambda v: _edge_mean(v[-EDGE_STEPS:])).rename(f"{short}_end")
                per_run = per_run.join(start, on=keys).join(end, on=keys)
        seconds = per_step_seconds(runs.steps).groupby([runs.steps[k] for k in keys]).mean()
        per_run = per_run.join(seconds.rename("step_seconds"), on=keys)
    metrics = [c for c in per_run.columns if c not in ID_COLUMNS]
    rows = []
    for _, group in per_run.groupby("variant", sort=False):
        row = {**group.iloc[0][[c for c in ID_COLUMNS if c != "seed"]].to_dict(), "seeds": len(group)}
        for metric in metrics:
            row[metric], row[f"{metric}_low"], row[f"{metric}_high"] = confidence_interval(group[metric])
        rows.append(row)
    return pd.DataFrame(rows)


def _edge_mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else math.nan


def write_summary(table: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    """Write ``summary.csv`` (every column) and ``summary.md`` (``mean [low, high]`` per metric); returns
    both paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = out / "summary.csv", out / "summary.md"
    table.to_csv(csv_path, index=False)
    metrics = [c for c in table.columns if f"{c}_low" in table.columns]
    header = ["variant", "seeds", *metrics]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, row in table.iterrows():
        cells = [str(row["variant"]), str(row["seeds"])]
        cells += [_interval_text(row[m], row[f"{m}_low"], row[f"{m}_high"]) for m in metrics]
        lines.append("| " + " | ".join(cells) + " |")
    md_path.write_text(
        "Mean over seeds with 95% Student-t interval [low, high]; one seed gives no interval.\n\n"
        + "\n".join(lines) + "\n"
    )
    return [csv_path, md_path]


def _interval_text(mean: float, low: float, high: float) -> str:
    if pd.isna(mean):
        return "n/a"
    return f"{mean:.4g}" if low == high else f"{mean:.4g} [{low:.4g}, {high:.4g}]"
