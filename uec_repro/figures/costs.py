"""Cost per training step, sensitivity sweeps, and where UEC-RL's training samples come from."""

from __future__ import annotations

import math
from dataclasses import fields
from pathlib import Path

import pandas as pd

from ..config import METHODS, UECConfig
from ..results.loading import Runs, _unswept, paper_reference
from ..results.statistics import confidence_interval, metric_bounds
from ..results.summary import per_step_seconds
from .drawing import (
    BAR_COLUMNS,
    LINE_COLUMNS,
    PAPER_METHODS,
    FigureFile,
    _bar_row,
    _color,
    _draw_curve,
    _figure,
    _finish,
    _frame,
    _interval_name,
    _is_uec,
    _mean_by,
    _ordered_methods,
    _ours_label,
    _paper_label,
    _save,
    _trained,
)

STEP_PARTS = ("standard rollouts", "exploration", "update", "replay", "other")
_PART_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#bbbbbb")
SAMPLE_CATEGORIES = {
    "uec/hard_prompts": "hard prompts",
    "uec/exploration_kept_positive": "exploration kept, A > 0",
    "uec/exploration_kept_negative": "exploration kept, A <= 0",
    "uec/regular_kept": "regular kept",
    "uec/replay_samples": "replayed",
}
_CATEGORY_COLORS = ("#000000", "#d62728", "#fdae6b", "#1f77b4", "#2ca02c")
_UEC_DEFAULTS = {f.name: f.default for f in fields(UECConfig)}


def fig_step_cost(runs: Runs, out_dir: str | Path, *, paper: pd.DataFrame | None = None) -> FigureFile:
    """(a) Wall time per step relative to GRPO's mean over seeds (validation and probe excluded; 95% CI over
    seeds, clipped at 0), the paper's UEC-RL 0.79x dashed; (b) seconds per step by phase, stacked, mean over
    seeds. The generation and scoring timers include ``time/exploration``, so standard rollouts = generation +
    scoring - exploration; the parts add up to the step time."""
    paper = paper_reference() if paper is None else paper
    steps = _unswept(runs.steps)
    timed = (
        _step_parts(steps)
        .assign(total=per_step_seconds(steps), method=steps["method"], seed=steps["seed"])
        .dropna(subset=["total"])
    )  # the step-0 probe: no step
    per_run = timed.groupby(["method", "seed"], sort=False).mean().reset_index()
    methods = _ordered_methods(per_run["method"])
    grpo_seconds = per_run.loc[per_run["method"] == "grpo", "total"].mean()
    label = _ours_label(runs)
    relative = pd.DataFrame(
        [
            _bar_row(
                "ours",
                label,
                m,
                "time per step / GRPO",
                *confidence_interval(
                    per_run.loc[per_run["method"] == m, "total"] / grpo_seconds,
                    bounds=metric_bounds("step_seconds"),
                ),
                seeds=int((per_run["method"] == m).sum()),
                interval=_interval_name(metric_bounds("step_seconds")),
            )
            for m in methods
        ],
        columns=BAR_COLUMNS,
    ).dropna(subset=["value"])
    reference = paper[paper["metric"] == "training time per step relative to GRPO (x)"]
    reference = pd.DataFrame(
        [
            _bar_row(
                "paper",
                _paper_label(row.model),
                PAPER_METHODS.get(row.method, row.method),
                "time per step / GRPO",
                row.value,
            )
            for row in reference.itertuples()
        ],
        columns=BAR_COLUMNS,
    )
    fig, (left, right) = _figure(2, panel_size=(5.2, 3.8))
    for position, row in enumerate(relative.itertuples()):
        left.bar(
            position,
            row.value,
            color=_color(row.method),
            yerr=[[row.value - row.low], [row.high - row.value]],
            capsize=3,
        )
    for row in reference.itertuples():
        left.axhline(
            row.value,
            color=_color(row.method),
            linestyle="--",
            label=f"{row.label}: {row.method} {row.value:g}x GRPO",
        )
    left.set_xticks(range(len(relative)), list(relative["method"]), rotation=30, ha="right", fontsize=7)
    _finish(left, f"(a) time per step / GRPO -- {label}", None, "relative time per step", not relative.empty)
    parts = per_run.groupby("method", sort=False)[list(STEP_PARTS)].mean().reindex(methods)
    bottom = pd.Series(0.0, index=parts.index)
    for part, color in zip(STEP_PARTS, _PART_COLORS, strict=True) if not parts.empty else ():
        right.bar(range(len(parts)), parts[part], bottom=bottom, color=color, label=part)
        bottom += parts[part]
    right.set_xticks(range(len(parts)), list(parts.index), rotation=30, ha="right", fontsize=7)
    _finish(right, "(b) seconds per step by phase (mean over seeds)", None, "seconds", not parts.empty)
    fig.suptitle("Cost per training step (in-training validation and entropy probe excluded)", fontsize=10)
    shares = parts.reset_index().melt(id_vars="method", var_name="metric", value_name="value")
    shares = shares.assign(source="ours", label=label, metric="seconds per step: " + shares["metric"])
    return _save(fig, _frame([relative, reference, shares], BAR_COLUMNS), out_dir, "step_cost")


def fig_sensitivity(runs: Runs, out_dir: str | Path) -> FigureFile:
    """Final pass@1 (95% CI over seeds) vs the swept value, one panel per swept parameter, one line per
    swept method; the method's unswept run is drawn (star) at its default value: the run's override or
    parameter, else the method's registry override, else the ``UECConfig`` default. The paper gives no
    numbers for this."""
    pass1 = runs.passk[runs.passk["k"] == 1]
    swept = pass1[pass1["sweep_param"].notna()]
    swept = swept.assign(value=pd.to_numeric(swept["sweep_value"], errors="coerce")).dropna(subset=["value"])
    params = list(dict.fromkeys(swept["sweep_param"]))
    fig, axes = _figure(max(len(params), 1))
    records = []
    for ax, param in zip(axes, params, strict=False):
        for method in _ordered_methods(swept.loc[swept["sweep_param"] == param, "method"]):
            rows = swept[(swept["sweep_param"] == param) & (swept["method"] == method)]
            points = _mean_by(rows, "value", "pass_at_k").assign(default=False)
            default, unswept = _default_value(runs, method, param), pass1[pass1["variant"] == method]
            if not unswept.empty and not math.isnan(default):
                at_default = _mean_by(unswept.assign(value=default), "value", "pass_at_k")
                points = pd.concat([points, at_default.assign(default=True)])
                points = points.sort_values("value", kind="stable")
            _draw_curve(ax, points, "value", method, errorbars=True)
            marked = points[points["default"]]
            ax.plot(
                marked["value"],
                marked["mean"],
                "*",
                markersize=14,
                color=_color(method),
                label=f"{method} (unswept, default {param})",
            )
            records.append(
                points.assign(source="ours", label=_ours_label(runs), sweep_param=param, method=method)
            )
        _finish(ax, param, f"{param} (swept value)", "final pass@1", True)
    if not params:
        _finish(axes[0], "no sweep variants", "swept value", "final pass@1", False)
    fig.suptitle(f"Sensitivity -- {_ours_label(runs)}; paper: no numbers recovered", fontsize=10)
    columns = [
        "source",
        "label",
        "sweep_param",
        "method",
        "value",
        "default",
        "mean",
        "low",
        "high",
        "interval",
        "seeds",
    ]
    return _save(fig, _frame(records, columns), out_dir, "sensitivity")


def fig_sample_categories(runs: Runs, out_dir: str | Path) -> FigureFile:
    """For each UEC-RL variant, per training step (mean over seeds, 95% band clipped at 0): hard prompts
    found, exploration samples kept with positive / non-positive advantage, regular samples kept, replayed."""
    methods = [m for m in _trained(runs) if _is_uec(m)]
    fig, axes = _figure(max(len(methods), 1))
    steps = _unswept(runs.steps)
    records = []
    for ax, method in zip(axes, methods, strict=False):
        rows = steps[steps["method"] == method]
        drawn = False
        for (column, name), color in zip(SAMPLE_CATEGORIES.items(), _CATEGORY_COLORS, strict=True):
            curve = _mean_by(rows, "step", column) if column in rows else pd.DataFrame()
            if curve.empty:
                continue
            ax.plot(curve["step"], curve["mean"], color=color, marker=".", markersize=4, label=name)
            ax.fill_between(curve["step"], curve["low"], curve["high"], color=color, alpha=0.15, linewidth=0)
            records.append(
                curve.assign(
                    source="ours", label=_ours_label(runs), panel=method, metric=column, method=method
                )
            )
            drawn = True
        _finish(ax, method, "training step", "prompts (hard) or samples per step", drawn)
    if not methods:
        _finish(axes[0], "no UEC-RL runs", "training step", "count per step", False)
    fig.suptitle(f"Where UEC-RL's training samples come from -- {_ours_label(runs)}", fontsize=10)
    return _save(fig, _frame(records, LINE_COLUMNS), out_dir, "sample_categories")


def _step_parts(steps: pd.DataFrame) -> pd.DataFrame:
    """Seconds of each step by phase (:data:`STEP_PARTS`); a missing timer counts 0, a missing step time
    makes "other" NaN."""

    def timer(name: str) -> pd.Series:
        return steps[name].fillna(0.0) if name in steps else pd.Series(0.0, index=steps.index)

    parts = pd.DataFrame(
        {
            "standard rollouts": (
                timer("time/generation") + timer("time/scoring") - timer("time/exploration")
            ).clip(lower=0.0),
            "exploration": timer("time/exploration"),
            "update": timer("time/update"),
            "replay": timer("time/replay"),
        }
    )
    return parts.assign(other=per_step_seconds(steps) - parts.sum(axis=1))


def _default_value(runs: Runs, method: str, param: str) -> float:
    """The value of ``param`` in ``method``'s unswept runs: their ``overrides`` (which win in RunSettings) or
    parameter, else the registry's override, else the ``UECConfig`` default; NaN when none is a number."""
    parameters = list(runs.runs.loc[runs.runs["variant"] == method, "parameters"])
    candidates = [(p.get("overrides") or {}).get(param) for p in parameters]
    candidates += [p.get(param) for p in parameters]
    method_overrides = METHODS[method].overrides if method in METHODS else {}
    candidates += [method_overrides.get(param), _UEC_DEFAULTS.get(param)]
    numbers = [c for c in candidates if isinstance(c, int | float) and not isinstance(c, bool)]
    return float(numbers[0]) if numbers else math.nan
