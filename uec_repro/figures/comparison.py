"""The paper's bars beside ours (Geometry3K view, ablation) and paired differences to GRPO."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from ..layout import BASE_METHOD
from ..results.loading import Runs, _unswept, paper_reference
from ..results.statistics import PAIRED_COLUMNS, confidence_interval, paired_differences
from .drawing import (
    BAR_COLUMNS,
    PAPER_HATCH,
    PAPER_METHODS,
    PERCENT,
    REFERENCE,
    FigureFile,
    _bar_row,
    _color,
    _figure,
    _finish,
    _frame,
    _interval_name,
    _join,
    _method_groups,
    _ordered_methods,
    _ours_label,
    _paper_label,
    _save,
)

#: The paired differences drawn: metric (``pass@k`` = the largest k), its unit and scale from fractions.
DIFFERENCES = (("pass@1", "pp", 100.0), ("pass@k", "pp", 100.0), ("probe_entropy", "nats", 1.0))
GEOMETRY3K_METHODS = (BASE_METHOD, "grpo", "uec_rl")
ABLATION_METHODS = ("uec_rl", "uec_rl_no_explore", "uec_rl_no_replay", "uec_rl_no_retention", "grpo")


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


def _relative_improvement(bars: pd.DataFrame) -> float:
    """(U - B) / (G - B) - 1 in %, from the bars of base, GRPO and UEC-RL; NaN if one is missing or G = B."""
    value = bars.set_index("method")["value"]
    if not set(GEOMETRY3K_METHODS) <= set(value.index):
        return math.nan
    base, grpo, uec = (float(value[m]) for m in GEOMETRY3K_METHODS)
    return 100 * ((uec - base) / (grpo - base) - 1) if grpo != base else math.nan


def _percent_text(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:+.1f}%"


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
