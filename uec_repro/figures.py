"""The replication's figures, one function per figure, from :func:`uec_repro.results.load_runs` frames.

Each ``fig_<name>(runs, out_dir)`` writes ``<out_dir>/<name>.png``, ``.pdf`` and ``.csv`` (the exact data
drawn, one row per drawn value with its ``source``, ``label``, value or mean, interval, ``interval`` type and
number of seeds) and returns the ``.png`` path as a :class:`FigureFile`, which a notebook shows as the image.
Conventions shared by every figure:

* methods in :data:`METHOD_ORDER` with the colours of :data:`METHOD_COLORS` (UEC-RL and its variants in
  reds and thicker lines, the baselines in cool colours, the untrained ``base`` grey); at most
  :data:`MAX_LINES` methods per panel: with more, small multiples, each panel GRPO plus a group ("baselines",
  "UEC-RL and ablations");
* our values are means over seeds with a 95% Student-t interval clipped to the quantity's range (bands or
  error bars; no entropy band below 0, no accuracy band outside [0, 1]), labelled ``ours (<policy>,
  <task>)``; sweep variants appear only in the sensitivity figure;
* methods are compared by their paired difference to GRPO (:func:`uec_repro.results.paired_differences`:
  same seeds, same prompts, bootstrap interval), drawn as a point with its interval beside a zero line;
* the policy's entropy is the probe's (``probe/...``: fixed prompts and sampling seeds, the same for every
  method); the entropy of the samples each method trains on is shown only in panels titled "update batch";
* the paper's values (``data/paper_results.csv``) are drawn hatched / dashed / hollow and labelled
  ``paper (<model>)``, never in the same series as ours; approximate ones (confidence "low") carry "~";
* a panel without data says "no data" and every figure is still written, so the set of files is fixed.

Figures use matplotlib's object API (``matplotlib.figure.Figure``): no pyplot state, no display needed, no
global settings changed, nothing to close.

>>> make_all(load_runs("runs/default"), "figures")
"""

from __future__ import annotations

import math
import re
import textwrap
from dataclasses import fields, replace
from itertools import cycle
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from .claims import write_claims
from .config import METHODS, UECConfig
from .evaluation import pass_at_k
from .layout import BASE_METHOD
from .results import (
    METHOD_ORDER,
    PAIRED_COLUMNS,
    Runs,
    confidence_interval,
    method_rank,
    metric_bounds,
    paired_differences,
    paper_reference,
    per_step_seconds,
    run_tasks,
    summary_table,
    task_block,
    write_summary,
)

__all__ = [
    "FigureFile",
    "METHOD_COLORS",
    "METHOD_ORDER",
    "MAX_LINES",
    "fig_ablation_bars",
    "fig_baseline_differences",
    "fig_entropy_dynamics",
    "fig_geometry3k_bars",
    "fig_grpo_failure_modes",
    "fig_math_table",
    "fig_passk_curves",
    "fig_reward_and_validation",
    "fig_sample_categories",
    "fig_sensitivity",
    "fig_step_cost",
    "figure_blocks",
    "make_all",
]


class FigureFile(type(Path())):
    """The path of a figure's PNG; as the last value of a notebook cell it shows the image."""

    def _repr_png_(self) -> bytes:
        return self.read_bytes()


_BASELINE_PALETTE = ("#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")
_UEC_PALETTE = ("#d62728", "#ff7f0e", "#a50f15", "#fb6a4a", "#e6550d", "#fdae6b")


def _is_uec(method: str) -> bool:
    return method.startswith("uec_rl")


def _method_colors() -> dict[str, str]:
    baselines, uec = cycle(_BASELINE_PALETTE), cycle(_UEC_PALETTE)
    return {
        m: "#7f7f7f" if m == BASE_METHOD else next(uec) if _is_uec(m) else next(baselines)
        for m in METHOD_ORDER
    }


#: One colour per method, fixed by registry order: base grey, baselines cool, UEC-RL variants red/orange.
METHOD_COLORS: dict[str, str] = _method_colors()

PAPER_HATCH = "///"
DPI = 110
TITLE_WIDTH = 60  # characters per line of a panel title
LINE_COLUMNS = [
    "source",
    "label",
    "panel",
    "metric",
    "method",
    "step",
    "mean",
    "low",
    "high",
    "interval",
    "seeds",
]
BAR_COLUMNS = [
    "source",
    "label",
    "panel",
    "method",
    "metric",
    "value",
    "low",
    "high",
    "interval",
    "seeds",
    "prompts",
    "approximate",
]
TABLE_COLUMNS = [
    "source",
    "label",
    "method",
    "dataset",
    "metric",
    "value",
    "low",
    "high",
    "interval",
    "seeds",
]
#: Most methods drawn in one panel; more are split into small multiples.
MAX_LINES = 6
REFERENCE = "grpo"  # every difference is to GRPO
UPDATE_BATCH = "update batch (samples each method trains on)"
#: The paired differences drawn: metric (``pass@k`` = the largest k), its unit and scale from fractions.
DIFFERENCES = (("pass@1", "pp", 100.0), ("pass@k", "pp", 100.0), ("probe_entropy", "nats", 1.0))

#: The paper's method names (csv column ``method``) as registry methods.
PAPER_METHODS = {
    "base model (no RL)": BASE_METHOD,
    "GRPO": "grpo",
    "DAPO": "dapo",
    "UEC-RL": "uec_rl",
    "UEC-RL (=EFRame)": "uec_rl",
    "UEC-RL full": "uec_rl",
    "UEC-RL w/o targeted exploration": "uec_rl_no_explore",
    "UEC-RL w/o replay stabilizer": "uec_rl_no_replay",
    "UEC-RL w/o selective retention": "uec_rl_no_retention",
}
GEOMETRY3K_METHODS = (BASE_METHOD, "grpo", "uec_rl")
ABLATION_METHODS = ("uec_rl", "uec_rl_no_explore", "uec_rl_no_replay", "uec_rl_no_retention", "grpo")
SAMPLE_CATEGORIES = {
    "uec/hard_prompts": "hard prompts",
    "uec/exploration_kept_positive": "exploration kept, A > 0",
    "uec/exploration_kept_negative": "exploration kept, A <= 0",
    "uec/regular_kept": "regular kept",
    "uec/replay_samples": "replayed",
}
STEP_PARTS = ("standard rollouts", "exploration", "update", "replay", "other")
_PART_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#bbbbbb")
_CATEGORY_COLORS = ("#000000", "#d62728", "#fdae6b", "#1f77b4", "#2ca02c")
_UEC_DEFAULTS = {f.name: f.default for f in fields(UECConfig)}
PERCENT = (0.0, 100.0)  # the range of a pass@k in %


# ---------------------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------------------
def fig_grpo_failure_modes(runs: Runs, out_dir: str | Path) -> FigureFile:
    """UEC-RL Fig. 1 view: GRPO's policy entropy on the probe set (full distribution, and the authors'
    measure, mean -log p of the sampled tokens) and validation accuracy vs training step, UEC-RL overlaid
    when present. The paper's curves were not recovered."""
    methods = [m for m in ("grpo", "uec_rl") if m in _trained(runs)]
    panels = [
        ("probe/entropy", "(a) policy entropy (probe): collapse?"),
        ("probe/sampled_nll", "(b) -log p of sampled tokens (probe; authors' measure)"),
        ("validation/accuracy", "(c) validation accuracy: stable?"),
    ]
    return _line_figure(
        runs,
        methods,
        panels,
        out_dir,
        "grpo_failure_modes",
        f"GRPO's failure modes -- {_ours_label(runs)}; paper's curves not recovered",
    )


def fig_entropy_dynamics(runs: Runs, out_dir: str | Path) -> FigureFile:
    """Entropy vs step for every trained method: the policy's, measured by the probe (full-distribution token
    entropy and mean -log p of the sampled tokens, the authors' measure), the same two measures on the update
    batch (the samples each method chose to train on: not a property of the policy), and the mean response
    length of the training rollouts."""
    panels = [
        ("probe/entropy", "(a) policy entropy (probe), full distribution"),
        ("probe/sampled_nll", "(b) -log p of sampled tokens (probe)"),
        ("entropy/update_batch", f"(c) {UPDATE_BATCH}: token entropy"),
        ("entropy/update_batch_sampled_nll", f"(d) {UPDATE_BATCH}: -log p of sampled tokens"),
        ("completions/mean_length", "(e) mean length of the training rollouts (tokens)"),
    ]
    return _line_figure(
        runs,
        _trained(runs),
        panels,
        out_dir,
        "entropy_dynamics",
        f"Entropy and response length during training -- {_ours_label(runs)}",
    )


def fig_reward_and_validation(runs: Runs, out_dir: str | Path) -> FigureFile:
    """EFRame Fig. 5 view: mean training reward and validation accuracy vs step for every trained method."""
    panels = [
        ("reward", "(a) training reward (mean over rollouts)"),
        ("validation/accuracy", "(b) validation accuracy"),
    ]
    return _line_figure(
        runs,
        _trained(runs),
        panels,
        out_dir,
        "reward_and_validation",
        f"Training reward vs held-out accuracy -- {_ours_label(runs)}",
    )


def fig_passk_curves(runs: Runs, out_dir: str | Path) -> FigureFile:
    """Pass@k vs k (log2 axis) of the final evaluation for every method, the untrained base included."""
    passk = _unswept(runs.passk)
    groups = _method_groups(_ordered_methods(passk["method"]))
    fig, axes = _figure(len(groups), panel_size=(5.5, 3.8))
    records = []
    for ax, (group, methods) in zip(axes, groups, strict=True):
        title = _join("pass@k of the final evaluation", group)
        for method in methods:
            curve = _mean_by(passk[passk["method"] == method], "k", "pass_at_k")
            _draw_curve(ax, curve, "k", method)
            records.append(curve.assign(source="ours", label=_ours_label(runs), panel=title, method=method))
        if methods:
            ax.set_xscale("log", base=2)
        _finish(ax, title, "k (samples per problem)", "pass@k", bool(methods))
    fig.suptitle(f"Pass@k -- {_ours_label(runs)}; paper's curves not recovered", fontsize=10)
    columns = ["source", "label", "panel", "method", "k", "mean", "low", "high", "interval", "seeds"]
    return _save(fig, _frame(records, columns), out_dir, "passk_curves")


def fig_geometry3k_bars(runs: Runs, out_dir: str | Path, *, paper: pd.DataFrame | None = None) -> FigureFile:
    """Base / GRPO / UEC-RL pass@1 (%): the paper's Geometry3K numbers (hatched) beside ours (solid, 95% CI),
    with the relative improvement as a ratio of gains over base, (U - B) / (G - B) - 1 (%), computed for both
    and, for the paper, also the value its abstract states."""
    paper = paper_reference() if paper is None else paper
    geometry3k = paper["dataset"] == "Geometry3K test"
    paper_bars = _paper_bars(
        paper[
            geometry3k
            & paper["table_or_figure"].str.startswith("Geometry3K table")
            & (paper["metric"] == "accuracy (Pass@1)")
        ],
        GEOMETRY3K_METHODS,
    )
    ours = _our_pass1_bars(runs, GEOMETRY3K_METHODS)
    fig, (ax,) = _figure(1, panel_size=(6.5, 4.0))
    _grouped_bars(ax, GEOMETRY3K_METHODS, paper_bars, ours)
    improvements = [
        _bar_row(
            bars["source"].iloc[0],
            bars["label"].iloc[0],
            "uec_rl",
            "relative improvement (%)",
            _relative_improvement(bars),
        )
        for bars in (paper_bars, ours)
        if not bars.empty
    ]
    improvements += [
        _bar_row("paper", _paper_label(row.model), "uec_rl", "relative improvement, stated (%)", row.value)
        for row in paper[geometry3k & paper["metric"].str.startswith("relative improvement")].itertuples()
    ]
    if improvements:
        lines = [
            f"{r['label']}{', stated' if 'stated' in r['metric'] else ''}: {_percent_text(r['value'])}"
            for r in improvements
        ]
        ax.text(
            0.02,
            0.98,
            "(U-B)/(G-B) - 1\n" + "\n".join(lines),
            transform=ax.transAxes,
            va="top",
            fontsize=7,
            bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "none"},
        )
    fig.suptitle("Geometry3K view: base, GRPO and UEC-RL pass@1", fontsize=10)
    data = _frame([paper_bars, ours, pd.DataFrame(improvements)], BAR_COLUMNS)
    return _save(fig, data, out_dir, "geometry3k_bars")


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


def fig_ablation_bars(
    runs: Runs, out_dir: str | Path, *, paper: pd.DataFrame | None = None, paired: pd.DataFrame | None = None
) -> FigureFile:
    """Full UEC-RL, its three ablations and GRPO: (a) the paper's Geometry3K accuracies (hatched; "~" marks
    the approximate, low-confidence ablation values; GRPO from the Geometry3K table) beside our pass@1 (solid,
    95% CI); (b-d) each one's paired difference to GRPO in pass@1, pass@k (largest k) and final probe
    entropy, with the paper's pass@1 differences (hollow diamonds). ``paired``: a
    :func:`~uec_repro.results.paired_differences` table (default: computed)."""
    paper = paper_reference() if paper is None else paper
    ablation = paper["table_or_figure"].str.startswith("ablation")
    grpo = (
        (paper["dataset"] == "Geometry3K test")
        & paper["table_or_figure"].str.startswith("Geometry3K table")
        & (paper["metric"] == "accuracy (Pass@1)")
        & (paper["method"] == "GRPO")
    )
    paper_bars = _paper_bars(paper[ablation | grpo], ABLATION_METHODS)
    ours = _our_pass1_bars(runs, ABLATION_METHODS)
    fig, axes = _figure(1 + len(DIFFERENCES), max_columns=2, panel_size=(6.0, 3.8))
    _grouped_bars(axes[0], ABLATION_METHODS, paper_bars, ours)
    axes[0].set_title("(a) pass@1 (%)", fontsize=9)
    paper_bars, ours = paper_bars.assign(panel="(a) pass@1 (%)"), ours.assign(panel="(a) pass@1 (%)")
    compared = [m for m in ABLATION_METHODS if m != REFERENCE]
    differences = _difference_rows(runs, _paired(runs) if paired is None else paired, compared)
    paper_differences = _paper_differences(paper_bars)
    records = [paper_bars, ours]
    for ax, (metric, rows), letter in zip(axes[1:], differences, "bcd", strict=True):
        shown = paper_differences if metric.startswith("pass@1 ") else paper_differences.iloc[:0]
        title = f"({letter}) {metric}"
        _difference_panel(ax, compared, rows, shown, title)
        records += [rows.assign(panel=title), shown.assign(panel=title)]
    fig.suptitle("Ablation: UEC-RL without each component (paper: Geometry3K)", fontsize=10)
    return _save(fig, _frame(records, BAR_COLUMNS), out_dir, "ablation_bars")


def fig_baseline_differences(
    runs: Runs, out_dir: str | Path, *, paired: pd.DataFrame | None = None
) -> FigureFile:
    """Every method against GRPO, the untrained base included: paired difference in pass@1, pass@k (largest
    k) and final probe entropy, point and 95% paired bootstrap interval over seeds and prompts, zero line.
    One row of panels per group of methods. ``paired``: a :func:`~uec_repro.results.paired_differences`
    table (default: computed). The paper reports no such differences with intervals."""
    paired = _paired(runs) if paired is None else paired
    methods = [m for m in _ordered_methods(_unswept(runs.runs)["method"]) if m != REFERENCE]
    groups = _method_groups(methods, anchor=None)
    differences = _difference_rows(runs, paired, methods)
    fig, axes = _figure(len(groups) * len(differences), max_columns=len(differences), panel_size=(4.4, 3.4))
    records = []
    panels = iter(axes)
    for group, members in groups:
        for metric, rows in differences:
            title = _join(metric, group)
            shown = rows[rows["method"].isin(members)]
            _difference_panel(next(panels), members, shown, rows.iloc[:0], title)
            records.append(shown.assign(panel=title))
    fig.suptitle(f"Difference to GRPO, paired over seeds and prompts -- {_ours_label(runs)}", fontsize=10)
    return _save(fig, _frame(records, BAR_COLUMNS), out_dir, "baseline_differences")


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


def fig_step_cost(runs: Runs, out_dir: str | Path, *, paper: pd.DataFrame | None = None) -> FigureFile:
    """(a) Wall time per training step of each method relative to GRPO's mean over seeds (in-training
    validation and entropy probe excluded; 95% CI over the method's seeds, clipped at 0), with the paper's UEC-RL 0.79x as a dashed line labelled as the paper's;
    (b) where a step's time goes, stacked, mean over seeds: standard rollouts, exploration, update, replay,
    other.

    The trainer's generation and scoring timers also count the exploration rollouts, which
    ``time/exploration`` contains, so standard rollouts = generation + scoring - exploration; the parts add
    up to the step time."""
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


def fig_sample_categories(runs: Runs, out_dir: str | Path) -> FigureFile:
    """For each UEC-RL variant, per training step (mean over seeds, 95% band clipped at 0): hard prompts found, exploration
    samples kept with positive / non-positive advantage, regular samples kept, replayed samples."""
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


def figure_blocks(runs: Runs) -> tuple[Runs, Runs]:
    """(main block, geometry view): the experiment's first task block, and its geometry block if it has one
    besides (else the main block again); see :func:`~uec_repro.results.task_block`."""
    blocks = {task: task_block(runs, task) for task in run_tasks(runs)}
    main = next(iter(blocks.values()), runs)
    return main, blocks.get("geometry", main)


def make_all(runs: Runs, out_dir: str | Path, *, paper: pd.DataFrame | None = None) -> list[Path]:
    """Every figure (png, pdf, csv), the summary table (``summary.csv``, ``summary.md``), the paired
    differences to GRPO (``paired.csv``, ``paired.md``) and the claims table (``claims.csv``, ``claims.md``)
    into ``out_dir``; returns the paths written (the same set whatever data there is).

    An experiment with several task blocks (the ``paper`` preset) draws its Geometry3K view and ablation from
    its geometry block and everything else from its main block (:func:`~uec_repro.results.task_block`); the
    claims table covers every block."""
    paper = paper_reference() if paper is None else paper
    main, geometry = figure_blocks(runs)
    paired = _paired(main)
    drawn = [
        fig_grpo_failure_modes(main, out_dir),
        fig_entropy_dynamics(main, out_dir),
        fig_reward_and_validation(main, out_dir),
        fig_passk_curves(main, out_dir),
        fig_geometry3k_bars(geometry, out_dir, paper=paper),
        fig_math_table(main, out_dir, paper=paper),
        fig_ablation_bars(geometry, out_dir, paper=paper, paired=None if geometry is not main else paired),
        fig_baseline_differences(main, out_dir, paired=paired),
        fig_sensitivity(main, out_dir),
        fig_step_cost(main, out_dir, paper=paper),
        fig_sample_categories(main, out_dir),
    ]
    figures = [Path(png).with_suffix(suffix) for png in drawn for suffix in (".png", ".pdf", ".csv")]
    return figures + write_summary(summary_table(main), out_dir, paired=paired) + write_claims(runs, out_dir)


# ---------------------------------------------------------------------------------------------------------
# Data helpers
# ---------------------------------------------------------------------------------------------------------
def _unswept(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of the methods' own variants (sweep variants appear only in the sensitivity figure)."""
    return frame[frame["sweep_param"].isna()]


def _ordered_methods(methods: pd.Series) -> list[str]:
    unique = pd.Series(methods.unique(), dtype=object)
    return list(unique.iloc[method_rank(unique).argsort(kind="stable")])


def _trained(runs: Runs) -> list[str]:
    return _ordered_methods(_unswept(runs.steps)["method"])


def _mean_by(rows: pd.DataFrame, by: str, column: str) -> pd.DataFrame:
    """Mean and 95% interval (Student-t, clipped to the metric's range) of ``column`` over the rows (seeds)
    sharing each value of ``by``."""
    values = rows[[by, column]].dropna()
    bounds = metric_bounds(column)
    stats = [
        (key, *confidence_interval(group[column], bounds=bounds), len(group))
        for key, group in values.groupby(by)
    ]
    frame = pd.DataFrame(stats, columns=[by, "mean", "low", "high", "seeds"])
    return frame.assign(interval=_interval_name(bounds))


def _interval_name(bounds: tuple[float, float]) -> str:
    clipped = f", clipped to [{bounds[0]:g}, {bounds[1]:g}]" if any(map(math.isfinite, bounds)) else ""
    return f"95% Student-t over seeds{clipped}"


def _method_groups(methods: list[str], anchor: str | None = REFERENCE) -> list[tuple[str, list[str]]]:
    """(group name, methods) per panel: every method in one panel if at most :data:`MAX_LINES`, else the
    ``anchor`` (when present) plus the baselines, or UEC-RL and its variants, split evenly so that no panel
    draws more than :data:`MAX_LINES`."""
    if len(methods) <= MAX_LINES:
        return [("", list(methods))]
    anchors = [anchor] if anchor in methods else []
    room = MAX_LINES - len(anchors)
    groups = []
    for name, members in (
        ("baselines", [m for m in methods if not _is_uec(m) and m not in anchors]),
        ("UEC-RL and ablations", [m for m in methods if _is_uec(m)]),
    ):
        parts = math.ceil(len(members) / room)
        for part in range(parts):
            chunk = members[len(members) * part // parts : len(members) * (part + 1) // parts]
            title = f"{name} ({part + 1}/{parts})" if parts > 1 else name
            groups.append((title, _ordered_methods(pd.Series([*anchors, *chunk]))))
    return groups


def _paired(runs: Runs) -> pd.DataFrame:
    """The paired differences to GRPO of every unswept method (:data:`DIFFERENCES`); empty without GRPO."""
    if REFERENCE not in set(runs.runs["variant"]):
        return pd.DataFrame(columns=PAIRED_COLUMNS)
    return paired_differences(runs, REFERENCE, [metric for metric, _, _ in DIFFERENCES])


def _difference_rows(runs: Runs, paired: pd.DataFrame, methods: list[str]) -> list[tuple[str, pd.DataFrame]]:
    """(title, bar rows of ``methods``' differences) for each of :data:`DIFFERENCES`, scaled to its unit;
    ``pass@k`` is the largest k in ``paired``; methods without data are left out."""
    ks = [int(m.removeprefix("pass@")) for m in paired["metric"] if m.startswith("pass@")]
    panels = []
    for metric, unit, scale in DIFFERENCES:
        name = f"pass@{max(ks)}" if metric == "pass@k" and ks else metric
        title = f"{name} - {REFERENCE} ({unit})"
        chosen = paired[(paired["metric"] == name) & paired["variant"].isin(methods)].dropna(subset=["diff"])
        rows = pd.DataFrame(
            {
                "source": "ours",
                "label": _ours_label(runs),
                "method": chosen["variant"],
                "metric": title,
                "value": scale * chosen["diff"],
                "low": scale * chosen["low"],
                "high": scale * chosen["high"],
                "interval": chosen["interval"],
                "seeds": chosen["seeds"],
                "prompts": chosen["prompts"],
                "approximate": False,
            },
            columns=BAR_COLUMNS,
        )
        panels.append((title, rows))
    return panels


def _paper_differences(paper_bars: pd.DataFrame) -> pd.DataFrame:
    """The paper's pass@1 of each method minus its GRPO's (percentage points), from its bars."""
    grpo = paper_bars[paper_bars["method"] == REFERENCE]
    others = paper_bars[paper_bars["method"] != REFERENCE]
    if grpo.empty:
        return others.iloc[:0]
    return others.assign(value=others["value"] - grpo["value"].iloc[0], metric=f"pass@1 - {REFERENCE} (pp)")


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


def _our_pass1_bars(runs: Runs, methods: tuple[str, ...]) -> pd.DataFrame:
    pass1 = _unswept(runs.passk)
    pass1 = pass1[pass1["k"] == 1]
    rows = []
    for method in methods:
        values = 100 * pass1.loc[pass1["method"] == method, "pass_at_k"]
        if not values.empty:
            rows.append(
                _bar_row(
                    "ours",
                    _ours_label(runs),
                    method,
                    "pass@1 (%)",
                    *confidence_interval(values, bounds=PERCENT),
                    seeds=len(values),
                    interval=_interval_name(PERCENT),
                )
            )
    return pd.DataFrame(rows, columns=BAR_COLUMNS)


def _our_tier_table(runs: Runs) -> pd.DataFrame:
    """Per method: pass@1 (%) on each difficulty tier of the test prompts and on all of them, pass@k (largest k)
    on all (mean and 95% CI over seeds), and the paired difference of each to GRPO's (percentage points,
    paired bootstrap over seeds and prompts). The paper's columns run from easy to hard benchmarks; ours are
    the tiers of one task."""
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
    """Method x dataset cells ``value (difference*)`` of the tier table's pass@1 (%) and its paired difference."""
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


def _paper_bars(rows: pd.DataFrame, methods: tuple[str, ...]) -> pd.DataFrame:
    """The paper's values of ``methods`` (registry names) as bar rows; confidence "low" = approximate."""
    rows = rows.assign(method=rows["method"].map(PAPER_METHODS))
    rows = rows[rows["method"].isin(methods)]
    return pd.DataFrame(
        {
            "source": "paper",
            "label": rows["model"].map(_paper_label),
            "method": rows["method"],
            "metric": "pass@1 (%)",
            "value": rows["value"],
            "low": math.nan,
            "high": math.nan,
            "seeds": math.nan,
            "approximate": rows["confidence"] == "low",
        },
        columns=BAR_COLUMNS,
    )


def _bar_row(
    source: str,
    label: str,
    method: str,
    metric: str,
    value: float,
    low: float = math.nan,
    high: float = math.nan,
    *,
    seeds: float = math.nan,
    interval: str | None = None,
    approximate: bool = False,
) -> dict:
    return {
        "source": source,
        "label": label,
        "method": method,
        "metric": metric,
        "value": value,
        "low": low,
        "high": high,
        "interval": interval,
        "seeds": seeds,
        "approximate": approximate,
    }


def _relative_improvement(bars: pd.DataFrame) -> float:
    """(U - B) / (G - B) - 1 in %, from the bars of base, GRPO and UEC-RL; NaN if one is missing or G = B."""
    value = bars.set_index("method")["value"]
    if not set(GEOMETRY3K_METHODS) <= set(value.index):
        return math.nan
    base, grpo, uec = (float(value[m]) for m in GEOMETRY3K_METHODS)
    return 100 * ((uec - base) / (grpo - base) - 1) if grpo != base else math.nan


def _frame(records: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    parts = [r for r in records if not r.empty]
    if not parts:
        return pd.DataFrame(columns=columns)
    return pd.concat(parts, ignore_index=True).reindex(columns=columns)


# ---------------------------------------------------------------------------------------------------------
# Labels and drawing helpers
# ---------------------------------------------------------------------------------------------------------
def _ours_label(runs: Runs) -> str:
    """``ours (<policy>, <task>)`` for the policies and tasks the runs used."""
    combos = runs.runs[["policy", "task"]].drop_duplicates()
    return "ours (" + "; ".join(f"{policy}, {task}" for policy, task in combos.itertuples(index=False)) + ")"


def _paper_label(model: str) -> str:
    """``paper (Qwen2.5-VL-7B)`` from the csv's model column (``-Instruct`` dropped, "likely" kept)."""
    match = re.search(r"Qwen[\w.]*-(?:[\w.]+-)*?7B", str(model))
    name = match.group() if match else str(model)
    return f"paper ({'likely ' if 'likely' in str(model) else ''}{name})"


def _short_dataset(name: str) -> str:
    return "Avg (7 benchmarks)" if name.startswith("Average over 7") else name.split(" (")[0]


def _color(method: str) -> str:
    return METHOD_COLORS.get(method, "black")


def _percent_text(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:+.1f}%"


def _interval_text(mean: float, low: float, high: float) -> str:
    if math.isnan(mean):
        return "n/a"
    return f"{mean:.1f}" if low == high else f"{mean:.1f} [{low:.1f}, {high:.1f}]"


def _figure(panels: int, *, max_columns: int = 3, panel_size: tuple[float, float] = (4.6, 3.4)):
    """A figure with ``panels`` axes, at most ``max_columns`` per row; returns (figure, list of axes)."""
    columns = min(panels, max_columns)
    rows = math.ceil(panels / columns)
    fig = Figure(figsize=(panel_size[0] * columns, panel_size[1] * rows + 0.4), layout="constrained")
    axes = list(fig.subplots(rows, columns, squeeze=False).flat)
    for unused in axes[panels:]:
        unused.set_axis_off()
    return fig, axes[:panels]


def _draw_curve(ax, curve: pd.DataFrame, x: str, method: str, *, errorbars: bool = False) -> None:
    """Our mean over seeds with its 95% interval (band, or error bars); UEC-RL variants thicker, on top."""
    style = {
        "color": _color(method),
        "linewidth": 2.4 if _is_uec(method) else 1.4,
        "label": method,
        "zorder": 3 if _is_uec(method) else 2,
    }
    if errorbars:
        errors = [curve["mean"] - curve["low"], curve["high"] - curve["mean"]]
        ax.errorbar(curve[x], curve["mean"], yerr=errors, marker="o", markersize=4, capsize=3, **style)
    else:
        ax.plot(curve[x], curve["mean"], marker=".", markersize=4, **style)
        ax.fill_between(curve[x], curve["low"], curve["high"], color=style["color"], alpha=0.2, linewidth=0)


def _line_figure(
    runs: Runs, methods: list[str], panels: list[tuple[str, str]], out_dir: str | Path, name: str, title: str
) -> FigureFile:
    """One row of line panels per (column, title) of ``panels``, one column per group of methods."""
    groups = _method_groups(methods)
    fig, axes = _figure(len(panels) * len(groups), max_columns=len(groups) if len(groups) > 1 else 3)
    records: list[pd.DataFrame] = []
    drawn = iter(axes)
    for column, panel_title in panels:
        for group, members in groups:
            _line_panel(next(drawn), runs, members, column, _join(panel_title, group), records)
    fig.suptitle(title, fontsize=10)
    return _save(fig, _frame(records, LINE_COLUMNS), out_dir, name)


def _join(title: str, group: str) -> str:
    return f"{title} -- {group}" if group else title


def _difference_panel(ax, methods: list[str], ours: pd.DataFrame, paper: pd.DataFrame, title: str) -> None:
    """Per method (one row each, top down), our paired difference (point, 95% interval) and the paper's
    (hollow diamond, "~" when approximate); a zero line."""
    for row in ours.itertuples():
        ax.errorbar(
            row.value,
            methods.index(row.method),
            xerr=[[row.value - row.low], [row.high - row.value]],
            marker="o",
            markersize=5,
            capsize=3,
            color=_color(row.method),
        )
    for row in paper.itertuples():
        position = methods.index(row.method) + 0.25
        ax.plot(row.value, position, "D", markerfacecolor="white", markeredgecolor=_color(row.method))
        ax.text(
            row.value, position, f" {'~' if row.approximate else ''}{row.value:+.1f}", va="center", fontsize=7
        )
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_yticks(range(len(methods)), methods, fontsize=8)
    ax.set_ylim(max(len(methods), 1) - 0.5, -0.5)
    legend = [Line2D([], [], marker="o", color="#7f7f7f", label=label) for label in ours["label"].unique()]
    legend += [
        Line2D(
            [], [], marker="D", linestyle="", markerfacecolor="white", markeredgecolor="black", label=label
        )
        for label in paper["label"].unique()
    ]
    if legend:
        ax.legend(handles=legend, fontsize=6)
    _finish(ax, title, "difference to GRPO (95% paired bootstrap)", None, not (ours.empty and paper.empty))


def _line_panel(
    ax, runs: Runs, methods: list[str], column: str, title: str, records: list[pd.DataFrame]
) -> None:
    """``column`` vs training step per method (mean over seeds, 95% band); drawn data go to ``records``."""
    steps = _unswept(runs.steps)
    drawn = False
    for method in methods if column in steps else []:
        curve = _mean_by(steps[steps["method"] == method], "step", column)
        if curve.empty:
            continue
        _draw_curve(ax, curve, "step", method)
        records.append(
            curve.assign(source="ours", label=_ours_label(runs), panel=title, metric=column, method=method)
        )
        drawn = True
    _finish(ax, title, "training step", column, drawn)


def _grouped_bars(ax, methods: tuple[str, ...], paper_bars: pd.DataFrame, ours: pd.DataFrame) -> None:
    """Per method, the paper's bar (hatched, hollow; "~" when approximate) left of ours (solid, 95% CI)."""
    width = 0.38
    for row in paper_bars.itertuples():
        position = methods.index(row.method) - width / 2
        ax.bar(position, row.value, width, facecolor="white", edgecolor=_color(row.method), hatch=PAPER_HATCH)
        ax.text(
            position,
            row.value,
            f"{'~' if row.approximate else ''}{row.value:.1f}",
            ha="center",
            va="bottom",
            fontsize=7,
        )
    for row in ours.itertuples():
        position = methods.index(row.method) + width / 2
        ax.bar(
            position,
            row.value,
            width,
            color=_color(row.method),
            yerr=[[row.value - row.low], [row.high - row.value]],
            capsize=3,
        )
        ax.text(position, row.high, f"{row.value:.1f}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(methods)), methods, rotation=15, fontsize=8)
    ax.margins(y=0.3)  # room for the legend and notes above the bars
    legend = [
        Patch(facecolor="white", edgecolor="black", hatch=PAPER_HATCH, label=label)
        for label in paper_bars["label"].unique()
    ]
    legend += [Patch(facecolor="#7f7f7f", label=label) for label in ours["label"].unique()]
    if legend:
        ax.legend(handles=legend, fontsize=7, loc="upper right")
    _finish(ax, "", None, "pass@1 (%)", not (paper_bars.empty and ours.empty))


def _draw_table(ax, table: pd.DataFrame, title: str) -> None:
    ax.set_axis_off()
    drawn = ax.table(
        cellText=table.to_numpy(), rowLabels=list(table.index), colLabels=list(table.columns), loc="center"
    )
    drawn.auto_set_font_size(False)
    drawn.set_fontsize(8)
    ax.set_title(title, fontsize=9)


def _finish(ax, title: str, xlabel: str | None, ylabel: str | None, drawn: bool) -> None:
    """Title (wrapped) and labels; "no data" across the axes if nothing was drawn; a legend if something has a
    label."""
    ax.set_title(textwrap.fill(title, TITLE_WIDTH), fontsize=9)
    if xlabel:
        ax.set_xlabel(xlabel, fontsize=8)
    if ylabel:
        ax.set_ylabel(ylabel, fontsize=8)
    if not drawn:
        ax.text(
            0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", fontsize=12, color="grey"
        )
    if ax.get_legend() is None and ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=6)


def _save(fig: Figure, data: pd.DataFrame, out_dir: str | Path, name: str) -> FigureFile:
    """``<name>.png``, ``.pdf`` and ``.csv`` (the data drawn) into ``out_dir``; returns the png path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / f"{name}.png", dpi=DPI)
    fig.savefig(out / f"{name}.pdf", metadata={"CreationDate": None})  # same data, same bytes
    data.to_csv(out / f"{name}.csv", index=False)
    return FigureFile(out / f"{name}.png")
