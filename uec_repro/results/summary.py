"""Final metrics per variant over seeds (:func:`summary_table`) and their csv / markdown files."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from .loading import ID_COLUMNS, Runs
from .statistics import confidence_interval, metric_bounds

PROBE_MEASURES = {"probe/entropy": "probe_entropy", "probe/sampled_nll": "probe_sampled_nll"}
UPDATE_BATCH_MEASURES = {
    "entropy/update_batch": "update_batch_entropy",
    "entropy/update_batch_sampled_nll": "update_batch_sampled_nll",
}
EDGE_STEPS = 3  # update-batch entropy "at start" / "at end" = mean of the first / last 3 logged values
SUMMARY_INTERVAL = "95% Student-t over seeds, clipped to the metric's range"


def per_step_seconds(steps: pd.DataFrame) -> pd.Series:
    """Wall time of each step without in-training validation and entropy probe (``time/step -
    time/validation - time/probe``); NaN for rows without a step time (the step-0 probe)."""
    if "time/step" not in steps:
        return pd.Series(math.nan, index=steps.index)
    seconds = steps["time/step"]
    for timer in ("time/validation", "time/probe"):
        if timer in steps:
            seconds = seconds - steps[timer].fillna(0.0)
    return seconds


def summary_table(runs: Runs) -> pd.DataFrame:
    """Final metrics per variant, as mean over seeds with a 95% interval (``<metric>``, ``_low``, ``_high``).

    Metrics: pass@1 and pass@k for the largest k every run has (recomputed from the correct counts); each
    mean@n and maj@n and ``token_entropy`` of the final evaluation; the probe's entropy and -log p of the
    sampled tokens of the initial policy (step 0) and at the last probe (``probe_entropy_start``/``_end``,
    ``probe_sampled_nll_start``/``_end``); the same measures on the samples each method trained on
    (``update_batch_entropy_start``/``_end``, ``update_batch_sampled_nll_start``/``_end``: mean of the first /
    last 3 logged values); ``step_seconds``, the mean wall time per step without validation and probe.
    ``seeds`` counts the loaded runs.

    The interval is the Student-t one over seeds, clipped to the metric's range (:func:`metric_bounds`):
    clipping keeps its coverage, whereas a percentile bootstrap over 3 seeds is just their range.
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
        for column, short in PROBE_MEASURES.items():
            if column in runs.steps:
                start = runs.steps[runs.steps["step"] == 0].groupby(keys)[column].last()
                per_run = per_run.join(start.rename(f"{short}_start"), on=keys)
                per_run = per_run.join(grouped[column].last().rename(f"{short}_end"), on=keys)
        for column, short in UPDATE_BATCH_MEASURES.items():
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
        row = {
            **group.iloc[0][[c for c in ID_COLUMNS if c != "seed"]].to_dict(),
            "seeds": len(group),
            "interval": SUMMARY_INTERVAL,
        }
        for metric in metrics:
            row[metric], row[f"{metric}_low"], row[f"{metric}_high"] = confidence_interval(
                group[metric], bounds=metric_bounds(metric)
            )
        rows.append(row)
    return pd.DataFrame(rows)


def probe_change(steps: pd.DataFrame, column: str = "probe/entropy") -> pd.DataFrame:
    """Per variant, ``column`` at the first and at the last step each run logged it, as means over seeds.

    ``steps``: :attr:`Runs.steps`, or any frame with ``variant``, ``step`` and ``column`` (without ``seed``:
    one run per variant). One row per variant that logged ``column``, in the frame's order: ``seeds`` (runs),
    ``first_step`` and ``last_step`` (the earliest and latest over its runs), ``start`` and ``end`` (means
    over seeds) and ``change`` = end - start. For the probe, ``start`` is the initial policy's value (step 0).
    No rows when ``steps`` lacks ``column``.
    """
    if column not in steps:
        return pd.DataFrame(columns=["variant", "seeds", "first_step", "start", "last_step", "end", "change"])
    order = list(dict.fromkeys(steps["variant"]))
    logged = steps.dropna(subset=[column]).sort_values("step", kind="stable")
    keys = ["variant", "seed"] if "seed" in logged else ["variant"]
    per_run = logged.groupby(keys, sort=False).agg(
        first_step=("step", "first"),
        start=(column, "first"),
        last_step=("step", "last"),
        end=(column, "last"),
    )
    table = per_run.groupby("variant", sort=False).agg(
        seeds=("start", "size"),
        first_step=("first_step", "min"),
        start=("start", "mean"),
        last_step=("last_step", "max"),
        end=("end", "mean"),
    )
    table["change"] = table["end"] - table["start"]
    return table.reindex([v for v in order if v in table.index]).rename_axis("variant").reset_index()


def _edge_mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else math.nan


def write_summary(
    table: pd.DataFrame, out_dir: str | Path, *, paired: pd.DataFrame | None = None
) -> list[Path]:
    """Write ``summary.csv`` (every column) and ``summary.md`` (``mean [low, high]`` per metric), and with
    ``paired`` (from :func:`paired_differences`) ``paired.csv`` and ``paired.md`` (``diff [low, high]``);
    returns the paths written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = out / "summary.csv", out / "summary.md"
    table.to_csv(csv_path, index=False)
    metrics = [c for c in table.columns if f"{c}_low" in table.columns]
    cells = [
        [
            str(row["variant"]),
            str(row["seeds"]),
            *(_interval_text(row[m], row[f"{m}_low"], row[f"{m}_high"]) for m in metrics),
        ]
        for _, row in table.iterrows()
    ]
    md_path.write_text(
        f"Mean over seeds with {SUMMARY_INTERVAL} [low, high]; one seed gives no interval.\n\n"
        + _markdown(["variant", "seeds", *metrics], cells)
    )
    if paired is None:
        return [csv_path, md_path]
    paired_csv, paired_md = out / "paired.csv", out / "paired.md"
    paired.to_csv(paired_csv, index=False)
    cells = [
        [
            row.variant,
            row.reference,
            row.metric,
            _interval_text(row.diff, row.low, row.high, always=True),
            row.verdict,
            str(row.seeds),
            str(row.prompts),
        ]
        for row in paired.itertuples()
    ]
    intervals = "; ".join(paired["interval"].unique())
    paired_md.write_text(
        f"Difference variant - reference ({intervals or 'no comparisons'}).\n\n"
        + _markdown(
            ["variant", "reference", "metric", "diff [low, high]", "verdict", "seeds", "prompts"], cells
        )
    )
    return [csv_path, md_path, paired_csv, paired_md]


def _markdown(header: list[str], rows: list[list[str]]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(cells) + " |" for cells in rows]) + "\n"


def _interval_text(mean: float, low: float, high: float, *, spec: str = ".4g", always: bool = False) -> str:
    """``mean [low, high]`` formatted with ``spec``; the mean alone when low == high unless ``always``; "n/a"
    for a NaN mean."""
    if pd.isna(mean):
        return "n/a"
    if low == high and not always:
        return f"{mean:{spec}}"
    return f"{mean:{spec}} [{low:{spec}}, {high:{spec}}]"
