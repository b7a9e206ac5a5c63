"""Exploration at t' > 1 (finding a rare correct arm) and replay (reinforcing the same arm again)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ..selection import group_advantages, keep_exploration
from ..validation import check_float, check_int
from .identity import (
    entropy,
    entropy_change,
    log_policy_covariance,
    npg_step,
    predicted_entropy_change,
    softmax,
    tempered,
    tempered_expected_step,
)

DISCOVERY_TEMPERATURES = tuple(np.round(np.linspace(0.8, 2.0, 25), 2))  # t' grid of the discovery plot


# ---------------------------------------------------------------------------------------------
# 2. Exploration at t' > 1
# ---------------------------------------------------------------------------------------------
def bandit_with_rare_arm(
    arms: int, rare_probability: float, *, logit_scale: float = 1.0, seed: int = 0
) -> np.ndarray:
    """Logits of a ``arms``-armed policy whose last arm (the rare correct one) has ``rare_probability``;
    the other arms share the rest with random logits ~ N(0, logit_scale^2)."""
    check_int("arms", arms, minimum=2)
    check_float("rare_probability", rare_probability, minimum=0.0, min_exclusive=True, maximum=0.999)
    check_float("logit_scale", logit_scale, minimum=0.0)
    others = np.random.default_rng(seed).normal(0.0, logit_scale, arms - 1)
    others -= np.log(np.exp(others).sum() / (1.0 - rare_probability))  # the others now sum to 1 - p
    return np.append(others, np.log(rare_probability))


def prob_rare_arm_found(policy: np.ndarray, arm: int, temperature: float, group_size: int) -> float:
    """Probability that ``group_size`` samples at ``temperature`` contain ``arm`` at least once:
    ``1 - (1 - q) ** group_size`` with ``q`` the arm's tempered probability."""
    check_int("arm", arm, minimum=0, maximum=len(policy) - 1)
    check_float("temperature", temperature, minimum=0.0, min_exclusive=True)
    check_int("group_size", group_size, minimum=1)
    return float(1.0 - (1.0 - tempered(policy, temperature)[arm]) ** group_size)


def discovery_table(
    policy: np.ndarray,
    arm: int,
    group_sizes: Iterable[int],
    temperatures: Iterable[float] = DISCOVERY_TEMPERATURES,
) -> pd.DataFrame:
    """:func:`prob_rare_arm_found` over a grid: columns temperature, group_size, tempered_probability,
    prob_found."""
    rows = [
        {
            "temperature": float(t),
            "group_size": int(g),
            "tempered_probability": float(tempered(policy, t)[arm]),
            "prob_found": prob_rare_arm_found(policy, arm, float(t), int(g)),
        }
        for g in group_sizes
        for t in temperatures
    ]
    return pd.DataFrame(rows)


def tempered_sampling_table(
    logits: np.ndarray, correct_arm: int, temperatures: Iterable[float], *, eta: float
) -> pd.DataFrame:
    """The expected update on a bandit whose only correct arm (reward 1, every other arm 0) is
    ``correct_arm``, with the samples drawn at each of ``temperatures`` (:func:`tempered_expected_step`).

    Columns: temperature, sampling_probability (of the correct arm, i.e. the expected share of correct
    samples), correct_arm_step (its logit step), predicted (``-Cov_pi(log pi, step)``) and actual (exact)
    entropy change.
    """
    check_int("correct_arm", correct_arm, minimum=0, maximum=len(logits) - 1)
    check_float("eta", eta, minimum=0.0, min_exclusive=True)
    rewards = np.zeros(len(logits))
    rewards[correct_arm] = 1.0
    rows = []
    for temperature in temperatures:
        step = tempered_expected_step(logits, rewards, eta, float(temperature))
        rows.append(
            {
                "temperature": float(temperature),
                "sampling_probability": float(softmax(logits, float(temperature))[correct_arm]),
                "correct_arm_step": float(step[correct_arm]),
                "predicted": float(predicted_entropy_change(logits, step)),
                "actual": float(entropy_change(logits, step)),
            }
        )
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class ExplorationUpdate:
    """One exploration group on a hard prompt and the NPG step built from its retained samples."""

    samples: np.ndarray  # arm of each exploration sample
    advantages: np.ndarray  # GRPO advantage of each sample within the group
    kept: np.ndarray  # selective retention (|A| > 1, the released code's rule)
    logit_step: np.ndarray  # eta x the mean retained advantage of each arm (0 where none)
    groups_drawn: int  # groups drawn until one contained the correct arm
    covariance: float  # Cov_pi(log pi, logit_step / eta)
    predicted: float  # -Cov_pi(log pi, logit_step)
    actual: float  # exact entropy change

    def summary(self) -> pd.Series:
        """The scalars of the update, for display."""
        return pd.Series(
            {
                "groups drawn until the arm was found": self.groups_drawn,
                "correct samples in the group": int((self.advantages > 0).sum()),
                "samples kept (|A| > 1)": int(self.kept.sum()),
                "advantage of a correct sample": float(self.advantages.max()),
                "Cov(log pi, A_kept)": self.covariance,
                "predicted entropy change": self.predicted,
                "actual entropy change": self.actual,
            }
        )


def exploration_update(
    logits: np.ndarray,
    correct_arm: int,
    *,
    temperature: float,
    group_size: int,
    eta: float,
    seed: int = 0,
    max_groups: int = 10_000,
) -> ExplorationUpdate:
    """Draw groups of ``group_size`` samples at ``temperature`` until one finds ``correct_arm`` (reward 1,
    every other arm 0), keep its samples with |A| > 1 and move each kept arm's logit by ``eta`` times its
    mean kept advantage (the NPG form ``z + eta * A``)."""
    check_float("temperature", temperature, minimum=0.0, min_exclusive=True)
    check_int("group_size", group_size, minimum=2)
    check_float("eta", eta, minimum=0.0, min_exclusive=True)
    rng = np.random.default_rng(seed)
    policy = softmax(logits)
    sampling = tempered(policy, temperature)
    for groups_drawn in range(1, max_groups + 1):
        samples = rng.choice(len(policy), size=group_size, p=sampling)
        if (samples == correct_arm).any():
            break
        if groups_drawn == max_groups:
            raise RuntimeError(f"none of {max_groups} groups contained arm {correct_arm}")
    group_advantage = group_advantages(
        torch.from_numpy((samples == correct_arm).astype(np.float32)), group_size
    )
    kept = keep_exploration(group_advantage).numpy()
    group_advantage = group_advantage.numpy().astype(float)
    kept_per_arm = np.bincount(samples[kept], minlength=len(policy))
    advantage_sum = np.bincount(samples[kept], weights=group_advantage[kept], minlength=len(policy))
    step = eta * advantage_sum / np.maximum(kept_per_arm, 1)
    return ExplorationUpdate(
        samples,
        group_advantage,
        kept,
        step,
        groups_drawn,
        float(log_policy_covariance(policy, step / eta)),
        float(predicted_entropy_change(logits, step)),
        float(entropy_change(logits, step)),
    )


# ---------------------------------------------------------------------------------------------
# 3. Replay: reinforcing the same arm again and again
# ---------------------------------------------------------------------------------------------
def repeated_reinforcement(
    logits: np.ndarray, arm: int, *, advantage: float, eta: float, repeats: int
) -> pd.DataFrame:
    """Apply the NPG step ``eta * advantage`` on ``arm`` alone ``repeats`` times.

    One row per application: repeat, probability (of ``arm`` before the step), entropy (before),
    threshold (``exp(-H)``: the step raises the entropy while probability < threshold), covariance
    (Cov(log pi, advantage e_arm)), predicted and actual entropy change.
    """
    check_int("arm", arm, minimum=0, maximum=len(logits) - 1)
    check_float("eta", eta, minimum=0.0, min_exclusive=True)
    check_int("repeats", repeats, minimum=1)
    one_arm = np.zeros(len(logits))
    one_arm[arm] = advantage
    rows = []
    for repeat in range(repeats):
        policy = softmax(logits)
        rows.append(
            {
                "repeat": repeat,
                "probability": policy[arm],
                "entropy": float(entropy(policy)),
                "threshold": float(np.exp(-entropy(policy))),
                "covariance": float(log_policy_covariance(policy, one_arm)),
                "predicted": float(predicted_entropy_change(logits, eta * one_arm)),
                "actual": float(entropy_change(logits, eta * one_arm)),
            }
        )
        logits = npg_step(logits, one_arm, eta)
    return pd.DataFrame(rows)
