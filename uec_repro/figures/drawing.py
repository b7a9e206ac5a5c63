"""Shared by every figure: styles, the columns of the csv files, labels, and drawing and saving helpers."""

from __future__ import annotations

import math
import re
import textwrap
from itertools import cycle
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from ..layout import BASE_METHOD
from ..results.loading import METHOD_ORDER, Runs, _concat, _unswept, method_rank
from ..results.statistics import confidence_interval, metric_bounds

_BASELINE_PALETTE = ("#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")
_UEC_PALETTE = ("#d62728", "#ff7f0e", "#a50f15", "#fb6a4a", "#e6550d", "#fdae6b")
PAPER_HATCH = "///"
DPI = 110
TITLE_WIDTH = 60  # characters per line of a panel title
#: Most methods drawn in one panel; more are split into small multiples.
MAX_LINES = 6
REFERENCE = "grpo"  # every difference is to GRPO
PERCENT = (0.0, 100.0)  # the range of a pass@k in %
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


class FigureFile(type(Path())):
    """The path of a figure's PNG; as the last value of a notebook cell it shows the image."""

    def _repr_png_(self) -> bytes:
        return self.read_bytes()


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


def _frame(records: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    """The non-empty ``records`` concatenated, with exactly ``columns``."""
    return _concat([r for r in records if not r.empty], columns).reindex(columns=columns)


def _ours_label(runs: Runs) -> str:
    """``ours (<policy>, <task>)`` for the policies and tasks the runs used."""
    combos = runs.runs[["policy", "task"]].drop_duplicates()
    return "ours (" + "; ".join(f"{policy}, {task}" for policy, task in combos.itertuples(index=False)) + ")"


def _paper_label(model: str) -> str:
    """``paper (Qwen2.5-VL-7B)`` from the csv's model column (``-Instruct`` dropped, "likely" kept)."""
    match = re.search(r"Qwen[\w.]*-(?:[\w.]+-)*?7B", str(model))
    name = match.group() if match else str(model)
    return f"paper ({'likely ' if 'likely' in str(model) else ''}{name})"


def _color(method: str) -> str:
    return METHOD_COLORS.get(method, "black")


def _join(title: str, group: str) -> str:
    return f"{title} -- {group}" if group else title


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
