"""The paper's main table beside our pass@1 by difficulty tier."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from ..evaluation import pass_at_k
from ..results.loading import Runs, _unswept, paper_reference
from ..results.statistics import confidence_interval, paired_differences
from .drawing import (
    PAPER_METHODS,
    PERCENT,
    REFERENCE,
    TABLE_COLUMNS,
    FigureFile,
    _finish,
    _frame,
    _interval_name,
    _ordered_methods,
    _ours_label,
    _paper_label,
    _save,
)


def fig_math_table(runs: Runs, out_dir: str | Path, *, paper: pd.DataFrame | None = None) -> FigureFile:
    """Two tables: the paper's Qwen2.5-Math-7B accuracies (AIME24, MATH, GSM8K, MMLU, 7-benchmark average)
    for GRPO, DAPO and UEC-RL, and our pass@1 and pass@k (%, mean [95% CI] over seeds) for every method we
    ran. The CSV holds both, told apart by ``source`` ("paper" / "ours")."""
    paper = paper_reference() if paper is None else paper
    rows = paper[
        (paper["model"] == "Qwen2.5-Math-7B")
        & (paper["table_or_figure"] == "text main table (number unknown)")
        & paper["metric"].str.contains("(Pass@1)", regex=False)
    ]
    paper_table = pd.DataFrame(
        {
            "source": "paper",
            "label": rows["model"].map(_paper_label),
            "method": rows["method"].map(PAPER_METHODS),
            "dataset": rows["dataset"].map(_short_dataset),
            "metric": "pass@1 (%)",
            "value": rows["value"],
        }
    )
    ours = _our_tier_table(runs)
    fig = Figure(
        figsize=(9, 2.4 + 0.3 * (paper_table["method"].nunique() + ours["method"].nunique())),
        layout="constrained",
    )
    top, bottom = fig.subplots(2, 1)
    if paper_table.empty:
        _finish(top, "paper: no rows", None, None, False)
    else:
        table = paper_table.pivot_table(index="method", columns="dataset", values="value", sort=False)
        _draw_table(top, table.map(lambda v: f"{v:g}"), f"{paper_table['label'].iloc[0]}: accuracy (%)")
    if ours.empty:
        _finish(bottom, f"{_ours_label(runs)}: no evaluations", None, None, False)
    else:
        _draw_table(
            bottom,
            _tier_cells(ours),
            f"{_ours_label(runs)}: pass@1 (%) by difficulty tier, mean over "
            f"seeds (paired difference to {REFERENCE} in pp; * its 95% interval excludes 0)",
        )
    return _save(fig, _frame([paper_table, ours], TABLE_COLUMNS), out_dir, "math_table")


def _our_tier_table(runs: Runs) -> pd.DataFrame:
    """Per method: pass@1 (%) on each difficulty tier and on all prompts, pass@k (largest k) on all (mean and
    95% CI over seeds), and each one's paired difference to GRPO (pp). The paper's columns run from easy to
    hard benchmarks; ours are the tiers of one task."""
    prompts = _unswept(runs.prompts)
    if prompts.empty:
        return pd.DataFrame(columns=TABLE_COLUMNS)
    k_max = int(prompts["n"].min())
    tiers = sorted(prompts["difficulty"].dropna().unique())
    subsets = [(f"tier {int(t)}", runs.prompts["difficulty"] == t, (1,)) for t in tiers]
    subsets.append(("all", pd.Series(True, index=runs.prompts.index), tuple(sorted({1, k_max}))))
    label, rows = _ours_label(runs), []
    for dataset, chosen, ks in subsets:
        subset = replace(runs, prompts=runs.prompts[chosen].reset_index(drop=True))
        per_run = _unswept(subset.prompts)
        for k in ks:
            for method in _ordered_methods(per_run["method"]):
                mine = per_run[per_run["method"] == method]
                values = [
                    100 * sum(map(pass_at_k, group["n"], group["correct"], [k] * len(group))) / len(group)
                    for _, group in mine.groupby("seed")
                ]
                mean, low, high = confidence_interval(values, bounds=PERCENT)
                rows.append(
                    dict(
                        method=method,
                        dataset=dataset,
                        metric=f"pass@{k} (%)",
                        value=mean,
                        low=low,
                        high=high,
                        interval=_interval_name(PERCENT),
                        seeds=len(values),
                    )
                )
        if REFERENCE in set(subset.runs["variant"]):
            for row in paired_differences(subset, REFERENCE, [f"pass@{k}" for k in ks]).itertuples():
                if row.seeds:
                    rows.append(
                        dict(
                            method=row.method,
                            dataset=dataset,
                            metric=f"{row.metric} - {REFERENCE} (pp)",
                            value=100 * row.diff,
                            low=100 * row.low,
                            high=100 * row.high,
                            interval=row.interval,
                            seeds=row.seeds,
                        )
                    )
    return pd.DataFrame([{"source": "ours", "label": label, **row} for row in rows], columns=TABLE_COLUMNS)


def _tier_cells(ours: pd.DataFrame) -> pd.DataFrame:
    """Method x dataset cells ``value (difference*)``: the tier table's pass@1 (%) and paired difference."""
    pass1 = ours[ours["metric"] == "pass@1 (%)"].set_index(["method", "dataset"])
    diff = ours[ours["metric"] == f"pass@1 - {REFERENCE} (pp)"].set_index(["method", "dataset"])
    cells = {}
    for key, row in pass1.iterrows():
        text = f"{row['value']:.1f}"
        if key in diff.index:
            d = diff.loc[key]
            text += f" ({d['value']:+.1f}{'*' if d['low'] > 0 or d['high'] < 0 else ''})"
        cells[key] = text
    table = pd.Series(cells).unstack()
    return table.reindex(
        index=list(dict.fromkeys(pass1.index.get_level_values(0))),
        columns=list(dict.fromkeys(pass1.index.get_level_values(1))),
    )


def _short_dataset(name: str) -> str:
    return "Avg (7 benchmarks)" if name.startswith("Average over 7") else name.split(" (")[0]


def _draw_table(ax, table: pd.DataFrame, title: str) -> None:
    ax.set_axis_off()
    drawn = ax.table(
        cellText=table.to_numpy(), rowLabels=list(table.index), colLabels=list(table.columns), loc="center"
    )
    drawn.auto_set_font_size(False)
    drawn.set_fontsize(8)
    ax.set_title(title, fontsize=9)
