"""Curves over training steps and over k: entropy, reward, validation accuracy, pass@k."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..results.loading import Runs, _unswept
from .drawing import (
    LINE_COLUMNS,
    FigureFile,
    _draw_curve,
    _figure,
    _finish,
    _frame,
    _join,
    _mean_by,
    _method_groups,
    _ordered_methods,
    _ours_label,
    _save,
    _trained,
)

UPDATE_BATCH = "update batch (samples each method trains on)"


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
