"""Figures of the entropy-mechanics notebook: each takes the frames of the other modules and returns a
matplotlib Figure."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from ..validation import check_choice
from .simulation import PHASES, STRATEGIES


def plot_first_order(first_order: pd.DataFrame, random_bandits: pd.DataFrame) -> Figure:
    """Left: actual / predicted entropy change vs eta. Right: predicted vs actual over random bandits."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.semilogx(first_order["eta"], first_order["ratio"], "o-")
    left.axhline(1.0, color="grey", linestyle="--", linewidth=1)
    left.set(xlabel="step size η", ylabel="actual ΔH / (−η Cov(log π, A))", title="One bandit, shrinking η")
    right.scatter(random_bandits["predicted"], random_bandits["actual"], s=10, alpha=0.6)
    limits = [
        min(random_bandits[["predicted", "actual"]].min()),
        max(random_bandits[["predicted", "actual"]].max()),
    ]
    right.plot(limits, limits, color="grey", linestyle="--", linewidth=1)
    right.set(
        xlabel="predicted ΔH = −η Cov(log π, A)",
        ylabel="actual ΔH",
        title=f"{len(random_bandits)} random bandits, one NPG step of η = {random_bandits['eta'].iloc[0]:g}",
    )
    figure.tight_layout()
    return figure


def plot_discovery(discovery: pd.DataFrame, baselines: Mapping[str, float]) -> Figure:
    """Probability that a group contains the rare arm vs temperature (one line per group size), with
    ``baselines`` (label -> probability) as horizontal lines."""
    figure, axis = plt.subplots(figsize=(6, 4))
    for group_size, rows in discovery.groupby("group_size"):
        axis.plot(rows["temperature"], rows["prob_found"], marker=".", label=f"{group_size} samples at t'")
    for label, probability in baselines.items():
        axis.axhline(probability, linestyle="--", color="grey", linewidth=1)
        axis.annotate(
            label,
            (discovery["temperature"].min(), probability),
            textcoords="offset points",
            xytext=(2, 3),
            fontsize=8,
            color="grey",
        )
    axis.set(
        xlabel="sampling temperature t'",
        ylabel="P(group contains the rare correct arm)",
        ylim=(0, 1.02),
        title="Finding a rare correct arm",
    )
    axis.legend()
    figure.tight_layout()
    return figure


def plot_repeated_reinforcement(reinforcement: pd.DataFrame) -> Figure:
    """Top: the arm's probability and the threshold exp(-H). Bottom: predicted and actual entropy change."""
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    top.plot(reinforcement["repeat"], reinforcement["probability"], marker=".", label="π(arm)")
    top.plot(reinforcement["repeat"], reinforcement["threshold"], linestyle="--", label="exp(−H)")
    top.set(ylabel="probability", title="Reinforcing the same arm again and again")
    top.legend()
    bottom.plot(reinforcement["repeat"], reinforcement["actual"], marker=".", label="actual ΔH")
    bottom.plot(reinforcement["repeat"], reinforcement["predicted"], linestyle="--", label="−Cov(log π, Δz)")
    bottom.axhline(0.0, color="grey", linewidth=1)
    bottom.set(xlabel="times the update has been applied", ylabel="entropy change per step")
    bottom.legend()
    figure.tight_layout()
    return figure


def plot_simulation(simulation: pd.DataFrame) -> Figure:
    """Mean entropy over training steps, one line per strategy, one panel per prompt group."""
    groups = [
        name
        for name in ("all", "easy", "hard")
        if simulation.loc[simulation["prompts"] == name, "entropy"].notna().any()
    ]
    figure, axes = plt.subplots(1, len(groups), figsize=(4.5 * len(groups), 3.8), squeeze=False)
    for axis, name in zip(axes[0], groups, strict=True):
        for strategy, rows in simulation[simulation["prompts"] == name].groupby("strategy", sort=False):
            axis.plot(rows["step"], rows["entropy"], label=strategy)
        axis.set(xlabel="training step", title=f"{name} prompts")
    axes[0, 0].set_ylabel("mean entropy (nats)")
    axes[0, 0].legend()
    figure.tight_layout()
    return figure


def plot_phase_effects(simulation: pd.DataFrame, strategy: str = "exploration_replay") -> Figure:
    """The first-order entropy change each phase's step made, over training steps, for easy and hard prompts
    (above zero: the update pushed up unlikely arms; below: likely ones)."""
    check_choice("strategy", strategy, STRATEGIES)
    rows = simulation[simulation["strategy"] == strategy]
    groups = [name for name in ("easy", "hard") if (rows["prompts"] == name).any()]
    figure, axes = plt.subplots(1, len(groups), figsize=(5 * len(groups), 3.8), squeeze=False)
    for axis, name in zip(axes[0], groups, strict=True):
        group = rows[rows["prompts"] == name]
        for phase in PHASES:
            ran = group[group[f"{phase}_effect"].notna()]
            if len(ran):
                axis.plot(
                    ran["step"],
                    ran[f"{phase}_effect"],
                    marker="." if phase == "replay" else None,
                    label=f"{phase} update",
                )
        axis.axhline(0.0, color="grey", linewidth=1)
        axis.set(xlabel="training step", title=f"{name} prompts ({strategy})")
    axes[0, 0].set_ylabel("−Cov(log π, Δz): first-order ΔH")
    axes[0, 0].legend()
    figure.tight_layout()
    return figure


def plot_replay_sweep(sweep: pd.DataFrame) -> Figure:
    """Mean entropy over training steps with exploration and replay, one line per replay frequency."""
    figure, axis = plt.subplots(figsize=(6, 4))
    for every, rows in sweep.groupby("replay_every"):
        axis.plot(rows["step"], rows["entropy"], label=f"replay every {every} step{'s' if every > 1 else ''}")
    axis.set(xlabel="training step", ylabel="mean entropy (nats)", title="The replay budget sets the level")
    axis.legend()
    figure.tight_layout()
    return figure


def save_figures(figures: Mapping[str, Figure], directory: str | Path) -> list[Path]:
    """Write every figure as ``directory/<name>.png`` (150 dpi); returns the paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, figure in figures.items():
        path = directory / f"{name}.png"
        figure.savefig(path, dpi=150, bbox_inches="tight")
        paths.append(path)
    return paths
