"""Figures of the entropy-mechanics notebook: each takes the frames of the other modules and returns a
matplotlib Figure."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..validation import check_choice
from .identity import STEP_KINDS, softmax, tempered_expected_step
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


def plot_step_forms(table: pd.DataFrame) -> Figure:
    """From :func:`~uec_repro.bandit.step_forms_table`: one panel per step kind, the measured entropy change
    against the prediction of the right form and of the wrong one (all divided by eta). Points in the shaded
    quadrants have the wrong sign."""
    kinds = [kind for kind in STEP_KINDS if (table["step"] == kind).any()]
    figure, axes = plt.subplots(1, len(kinds), figsize=(5.5 * len(kinds), 4.5), squeeze=False)
    for axis, kind in zip(axes[0], kinds, strict=True):
        rows = table[table["step"] == kind]
        eta = rows["eta"].iloc[0]
        other = next(k for k in STEP_KINDS if k != kind)
        for form, colour in ((other, "tab:orange"), (kind, "tab:blue")):
            label = f"{form} form" + (" (right)" if form == kind else " (wrong)")
            axis.scatter(
                rows[f"{form}_form"] / eta, rows["actual"] / eta, s=8, alpha=0.5, c=colour, label=label
            )
        values = rows[["actual", "vanilla_form", "natural_form"]].to_numpy() / eta
        low, high = values.min(), values.max()
        axis.plot([low, high], [low, high], color="grey", linestyle="--", linewidth=1)
        axis.fill_between([low, 0], 0, high, color="tab:red", alpha=0.08, linewidth=0)
        axis.fill_between([0, high], low, 0, color="tab:red", alpha=0.08, linewidth=0)
        axis.axhline(0.0, color="grey", linewidth=0.5)
        axis.axvline(0.0, color="grey", linewidth=0.5)
        axis.set(
            xlabel="predicted ΔH / η",
            ylabel="measured ΔH / η",
            title=f"{kind} step ({len(rows)} bandits, η = {eta:g})",
        )
        axis.legend(loc="upper left")
    figure.tight_layout()
    return figure


def plot_tempered_sampling(
    logits: np.ndarray,
    correct_arm: int,
    table: pd.DataFrame,
    *,
    eta: float,
    temperatures: tuple[float, ...] = (1.0, 1.2),
) -> Figure:
    """Left: the expected logit step of every arm against its log-probability, for samples drawn at each of
    ``temperatures`` (the correct arm circled). Right: the entropy change of the expected step against the
    sampling temperature (:func:`~uec_repro.bandit.tempered_sampling_table`), ``temperatures`` marked."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    log_policy = np.log(softmax(logits))
    rewards = np.zeros(len(logits))
    rewards[correct_arm] = 1.0
    for temperature in temperatures:
        step = tempered_expected_step(logits, rewards, eta, temperature)
        (line,) = left.plot(log_policy, step, "o", label=f"samples at t = {temperature:g}")
        left.plot(log_policy[correct_arm], step[correct_arm], "o", ms=13, mfc="none", color=line.get_color())
    left.axhline(0.0, color="grey", linewidth=1)
    left.set(
        xlabel="log π(a)",
        ylabel="expected logit step Δz_a",
        title="Expected step per arm (circled: the correct arm)",
    )
    left.legend()
    right.plot(table["temperature"], table["actual"], marker=".", label="exact ΔH")
    right.plot(table["temperature"], table["predicted"], linestyle="--", label="−Cov(log π, Δz)")
    for temperature in temperatures:
        right.axvline(temperature, color="grey", linestyle=":", linewidth=1)
    right.axhline(0.0, color="grey", linewidth=1)
    right.set(
        xlabel="sampling temperature",
        ylabel="entropy change of the expected step",
        title=f"ΔH of one expected update (η = {eta:g})",
    )
    right.legend()
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
    """Top row: mean entropy over training steps; bottom row: accuracy (mean probability of the correct arm).
    One line per strategy, one column per prompt group."""
    groups = [
        name
        for name in ("all", "easy", "hard")
        if simulation.loc[simulation["prompts"] == name, "entropy"].notna().any()
    ]
    figure, axes = plt.subplots(2, len(groups), figsize=(4.5 * len(groups), 7), squeeze=False, sharex=True)
    for column, name in enumerate(groups):
        for strategy, rows in simulation[simulation["prompts"] == name].groupby("strategy", sort=False):
            axes[0, column].plot(rows["step"], rows["entropy"], label=strategy)
            axes[1, column].plot(rows["step"], rows["accuracy"], label=strategy)
        axes[0, column].set(title=f"{name} prompts")
        axes[1, column].set(xlabel="training step")
    axes[0, 0].set_ylabel("mean entropy (nats)")
    axes[1, 0].set_ylabel("accuracy: mean π(correct arm)")
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
