r"""Entropy mechanics of policy-gradient RL on softmax bandits: the theory UEC-RL leans on, made numerical.

A K-armed bandit has logits :math:`z`, a policy :math:`\pi = \mathrm{softmax}(z)`, rewards :math:`r(a)` and
advantages :math:`A(a) = r(a) - \mathbb{E}_\pi[r]`. Its entropy is :math:`H = -\sum_a \pi_a \log \pi_a`.

**The first-order identity** (Cui et al. 2025, cited by UEC-RL as its Theorem 4.2). Differentiating,
:math:`\partial \pi_a / \partial z_j = \pi_a(\delta_{aj} - \pi_j)`, so

.. math::
    \frac{\partial H}{\partial z_j} = -\sum_a \pi_a(\delta_{aj} - \pi_j)(\log \pi_a + 1)
                                    = -\pi_j\,(\log \pi_j - \mathbb{E}_\pi[\log \pi])

(the ``+1`` cancels because :math:`\sum_a \pi_a(\delta_{aj} - \pi_j) = 0`). For any logit step
:math:`\Delta z`, to first order

.. math::
    \Delta H \approx \sum_j \frac{\partial H}{\partial z_j}\,\Delta z_j
             = -\mathrm{Cov}_{a\sim\pi}\big(\log \pi(a),\ \Delta z_a\big).

Natural policy gradient on tabular softmax logits moves each logit by :math:`\eta` times its advantage,
:math:`\Delta z = \eta A`, hence **ΔH ≈ -η Cov_{a~π}(log π(a), A(a))**, with an :math:`O(\eta^2)` error.
Entropy falls when the update pushes up actions that are already likely (positive covariance) and rises
when it pushes up actions that are unlikely (negative covariance).

**Reinforcing one action.** A step :math:`\Delta z = \eta A\,e_c` on a single arm :math:`c` has covariance
:math:`\eta A\,\pi_c(\log \pi_c + H)`: with :math:`A > 0` it raises the entropy while
:math:`\pi_c < e^{-H}` (a rare arm: UEC-RL's exploration) and lowers it once :math:`\pi_c > e^{-H}` (an arm
made likely by earlier updates: UEC-RL's replay).

**Sampling at temperature t'.** Samples drawn from :math:`\pi^{1/t'}` (renormalised) give a rare arm a
larger share when :math:`t' > 1`; a group of :math:`G'` of them contains it with probability
:math:`1 - (1 - q)^{G'}`, :math:`q` its tempered probability.

:func:`simulate` puts the pieces together on a pool of prompts, each a bandit with its own logits (the
tabular setting of the identity), trained with the selection rules of :mod:`uec_repro.selection` and plain
policy-gradient steps ``A grad log pi`` (what the trainer's loss does) rather than NPG steps; the identity
holds for any logit step, so each kind of update's entropy effect is still ``-Cov(log pi, step)``.
Everything here is small NumPy (plus the torch selection rules), runs in seconds on a CPU and is seeded
through a ``seed`` argument.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from .selection import (
    ReplayBuffer,
    group_advantages,
    hard_prompts,
    keep_exploration,
    keep_regular,
    replay_entry,
)
from .validation import ParameterError, check_choice, check_float, check_int

__all__ = [
    "DISCOVERY_TEMPERATURES",
    "PHASES",
    "STRATEGIES",
    "BanditConfig",
    "ExplorationUpdate",
    "advantages",
    "bandit_with_rare_arm",
    "discovery_table",
    "entropy",
    "entropy_change",
    "entropy_summary",
    "exploration_update",
    "first_order_table",
    "log_policy_covariance",
    "npg_step",
    "phase_effects",
    "plot_discovery",
    "plot_first_order",
    "plot_phase_effects",
    "plot_repeated_reinforcement",
    "plot_replay_sweep",
    "plot_simulation",
    "predicted_entropy_change",
    "prob_rare_arm_found",
    "random_bandits_table",
    "repeated_reinforcement",
    "replay_sweep",
    "save_figures",
    "simulate",
    "softmax",
    "tempered",
]

STRATEGIES = {
    "policy_gradient": "GRPO on the G standard samples at t = 1 only",
    "exploration": "+ G' extra samples at t' on hard prompts (all G wrong), rare successes kept",
    "exploration_replay": "+ every replay_every steps, the update again on the replay buffer",
}
PHASES = ("standard", "exploration", "replay")  # the updates one simulated step can make
DISCOVERY_TEMPERATURES = tuple(np.round(np.linspace(0.8, 2.0, 25), 2))  # t' grid of the discovery plot


@dataclass(frozen=True)
class BanditConfig:
    """Parameters of the entropy-mechanics notebook; every field is checked on construction."""

    seed: int = 0  # seed of every random draw
    arms: int = 8  # K, actions of each bandit
    eta: float = 0.5  # step size: logits move by eta x advantage
    exploration_temperature: float = 1.2  # t', temperature of the exploration samples
    group_size: int = 5  # G, standard samples per prompt at t = 1
    exploration_group_size: int = 20  # G', exploration samples per hard prompt
    steps: int = 60  # simulated training steps
    replay_every: int = 5  # f_replay: a replay update every this many steps
    prompts: int = 256  # prompts in the simulated training set
    prompts_per_step: int = 16  # prompts per simulated step
    hard_fraction: float = 0.9  # share of hard prompts (correct arm among the least likely half)
    initial_logit_scale: float = 2.5  # std of the initial logits (larger: a more confident start)
    rare_probability: float = 0.01  # probability of the rare correct arm in the exploration examples
    figures_dir: str = "figures"  # where save_figures writes PNG files
    save_figures: bool = False  # write the figures to figures_dir

    def __post_init__(self) -> None:
        check_int("seed", self.seed, minimum=0)
        check_int("arms", self.arms, minimum=2, maximum=1000)
        check_float("eta", self.eta, minimum=0.0, min_exclusive=True, maximum=10.0)
        check_float(
            "exploration_temperature",
            self.exploration_temperature,
            minimum=0.0,
            min_exclusive=True,
            maximum=100.0,
        )
        check_int("group_size", self.group_size, minimum=2, maximum=1000)
        check_int("exploration_group_size", self.exploration_group_size, minimum=2, maximum=1000)
        check_int("steps", self.steps, minimum=1, maximum=10_000)
        check_int("replay_every", self.replay_every, minimum=1)
        check_int("prompts", self.prompts, minimum=1, maximum=100_000)
        check_int("prompts_per_step", self.prompts_per_step, minimum=1, maximum=self.prompts)
        check_float("hard_fraction", self.hard_fraction, minimum=0.0, maximum=1.0)
        check_float("initial_logit_scale", self.initial_logit_scale, minimum=0.0, maximum=20.0)
        check_float("rare_probability", self.rare_probability, minimum=0.0, min_exclusive=True, maximum=0.5)
        if not isinstance(self.figures_dir, str) or not self.figures_dir:
            raise ParameterError(f"figures_dir={self.figures_dir!r} must be a non-empty path string")
        if not isinstance(self.save_figures, bool):
            raise ParameterError(f"save_figures={self.save_figures!r} must be True or False")


# ---------------------------------------------------------------------------------------------
# Softmax policies (every function works along the last axis, so a row is one bandit)
# ---------------------------------------------------------------------------------------------
def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """``softmax(logits / temperature)``, numerically stable."""
    scaled = np.asarray(logits, dtype=float) / temperature
    exp = np.exp(scaled - scaled.max(axis=-1, keepdims=True))
    return exp / exp.sum(axis=-1, keepdims=True)


def tempered(policy: np.ndarray, temperature: float) -> np.ndarray:
    """The distribution of samples drawn at ``temperature``: ``policy ** (1 / temperature)``, renormalised."""
    return softmax(np.log(policy), temperature)


def entropy(policy: np.ndarray) -> np.ndarray:
    """Shannon entropy in nats (0 log 0 = 0)."""
    policy = np.asarray(policy, dtype=float)
    return -np.sum(policy * np.log(np.where(policy > 0, policy, 1.0)), axis=-1)


def advantages(policy: np.ndarray, rewards: np.ndarray) -> np.ndarray:
    """``A(a) = r(a) - E_pi[r]``: the exact advantage of every arm."""
    return rewards - np.sum(policy * rewards, axis=-1, keepdims=True)


def log_policy_covariance(policy: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``Cov_{a~pi}(log pi(a), values(a))``."""
    log_policy = np.log(policy)
    mean_log = np.sum(policy * log_policy, axis=-1, keepdims=True)
    mean_value = np.sum(policy * values, axis=-1, keepdims=True)
    return np.sum(policy * (log_policy - mean_log) * (values - mean_value), axis=-1)


def npg_step(logits: np.ndarray, advantage: np.ndarray, eta: float) -> np.ndarray:
    """Natural policy gradient on tabular softmax logits: ``z + eta * A``."""
    return logits + eta * advantage


def entropy_change(logits: np.ndarray, logit_step: np.ndarray) -> np.ndarray:
    """Exact ``H(softmax(z + step)) - H(softmax(z))``."""
    return entropy(softmax(logits + logit_step)) - entropy(softmax(logits))


def predicted_entropy_change(logits: np.ndarray, logit_step: np.ndarray) -> np.ndarray:
    """First-order prediction ``-Cov_{a~pi}(log pi(a), step(a))``; for NPG (step = eta A) ``-eta Cov(log pi, A)``."""
    return -log_policy_covariance(softmax(logits), logit_step)


def _random_bandits(rng: np.random.Generator, count: int, arms: int, logit_scale: float):
    """``count`` bandits: logits ~ N(0, logit_scale^2), rewards ~ U(0, 1) per arm."""
    return rng.normal(0.0, logit_scale, (count, arms)), rng.random((count, arms))


# ---------------------------------------------------------------------------------------------
# 1. The first-order identity
# ---------------------------------------------------------------------------------------------
def first_order_table(
    etas: Iterable[float], *, arms: int = 8, logit_scale: float = 1.0, seed: int = 0
) -> pd.DataFrame:
    """One random bandit, one NPG step per ``eta``: exact vs predicted entropy change.

    Columns: eta, actual, predicted, ratio (actual / predicted), relative_error (|actual - predicted| /
    |predicted|, which shrinks like eta).
    """
    check_int("arms", arms, minimum=2)
    check_float("logit_scale", logit_scale, minimum=0.0)
    etas = np.array([check_float("eta", eta, minimum=0.0, min_exclusive=True) for eta in etas])
    logits, rewards = _random_bandits(np.random.default_rng(seed), 1, arms, logit_scale)
    advantage = advantages(softmax(logits), rewards)
    steps = etas[:, None] * advantage
    actual, predicted = entropy_change(logits, steps), predicted_entropy_change(logits, steps)
    return pd.DataFrame(
        {
            "eta": etas,
            "actual": actual,
            "predicted": predicted,
            "ratio": actual / predicted,
            "relative_error": np.abs(actual - predicted) / np.abs(predicted),
        }
    )


def random_bandits_table(
    count: int, *, arms: int = 8, eta: float = 0.1, logit_scale: float = 1.5, seed: int = 0
) -> pd.DataFrame:
    """``count`` random bandits, one NPG step of ``eta`` each: columns bandit, eta, covariance
    (Cov(log pi, A)), predicted, actual."""
    check_int("count", count, minimum=1)
    check_int("arms", arms, minimum=2)
    check_float("eta", eta, minimum=0.0, min_exclusive=True)
    check_float("logit_scale", logit_scale, minimum=0.0)
    logits, rewards = _random_bandits(np.random.default_rng(seed), count, arms, logit_scale)
    advantage = advantages(softmax(logits), rewards)
    return pd.DataFrame(
        {
            "bandit": np.arange(count),
            "eta": eta,
            "covariance": log_policy_covariance(softmax(logits), advantage),
            "predicted": predicted_entropy_change(logits, eta * advantage),
            "actual": entropy_change(logits, eta * advantage),
        }
    )


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


# ---------------------------------------------------------------------------------------------
# The three strategies on a pool of prompts
# ---------------------------------------------------------------------------------------------
def _sample_arms(rng: np.random.Generator, policies: np.ndarray, count: int) -> np.ndarray:
    """``count`` arms per row of ``policies`` (inverse-CDF sampling, one row per prompt)."""
    cumulative = policies.cumsum(axis=-1)
    draws = rng.random((len(policies), count, 1)) * cumulative[:, None, -1:]
    return (draws > cumulative[:, None, :]).sum(axis=-1)


def _initial_pool(
    config: BanditConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Logits (prompts x arms), correct arm and hardness of every prompt. An easy prompt's correct arm is
    its most likely one; a hard prompt's is drawn from its least likely half."""
    logits = rng.normal(0.0, config.initial_logit_scale, (config.prompts, config.arms))
    by_probability = np.argsort(-logits, axis=1)
    hard = rng.random(config.prompts) < config.hard_fraction
    rare_rank = rng.integers(config.arms // 2, config.arms, size=config.prompts)
    correct = np.where(hard, by_probability[np.arange(config.prompts), rare_rank], by_probability[:, 0])
    return logits, correct, hard


def _group(
    rng: np.random.Generator,
    logits: np.ndarray,
    correct: np.ndarray,
    prompts: np.ndarray,
    temperature: float,
    group_size: int,
) -> tuple[np.ndarray, np.ndarray, torch.Tensor, torch.Tensor]:
    """``group_size`` samples per prompt at ``temperature``: prompt, arm, reward and GRPO advantage of each."""
    arms = _sample_arms(rng, softmax(logits[prompts], temperature), group_size).flatten()
    rewards = torch.from_numpy((arms == np.repeat(correct[prompts], group_size)).astype(np.float32))
    return np.repeat(prompts, group_size), arms, rewards, group_advantages(rewards, group_size)


def _policy_gradient_step(
    logits: np.ndarray, samples: tuple[np.ndarray, np.ndarray, np.ndarray], weight: float
) -> np.ndarray:
    """The logit step of ``weight x sum_i A_i grad log pi(arm_i | prompt_i)``, where for softmax logits
    ``grad_z log pi(a) = e_a - pi`` (what the trainer's loss ``-A log pi`` does); zero for untouched prompts."""
    prompts, arms, advantage = samples
    step = np.zeros_like(logits)
    np.add.at(step, (prompts, arms), weight * advantage)
    np.add.at(step, prompts, -(weight * advantage)[:, None] * softmax(logits[prompts]))
    return step


def _kept(
    prompts: np.ndarray, arms: np.ndarray, advantage: torch.Tensor, keep: torch.Tensor
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The samples a selection rule keeps, as NumPy arrays (prompt, arm, advantage)."""
    mask = keep.numpy()
    return prompts[mask], arms[mask], advantage.numpy().astype(float)[mask]


def simulate(config: BanditConfig, strategies: Sequence[str] = tuple(STRATEGIES)) -> pd.DataFrame:
    """Train the same pool of prompts with each strategy of :data:`STRATEGIES`; entropy step by step.

    Every prompt is a bandit with its own logits (the tabular softmax of the identity) and one correct arm
    (reward 1, else 0): the most likely arm, or for the ``hard_fraction`` hard prompts one of the least likely
    half. Each step draws ``prompts_per_step`` prompts and ``group_size`` samples of each at t = 1 and keeps
    those with |A| > 0.05; with exploration, a prompt whose samples are all wrong gets ``exploration_group_size``
    more at ``exploration_temperature``, kept when |A| > 1. The kept samples make one policy-gradient step
    of ``eta / group_size`` per sample (a standard group's step is eta x its mean gradient). With replay,
    kept samples with |A| > 1 enter a FIFO buffer of 2 x B0 samples (B0 = prompts_per_step x group_size)
    and every ``replay_every`` steps the same step is made on the buffer. The rules and buffer are those
    of :mod:`uec_repro.selection` with the released code's defaults.

    Returns one row per (strategy, step, prompts), prompts in {"all", "easy", "hard"}: strategy, step
    (0 = before training), prompts, entropy (mean nats), accuracy (mean probability of the correct arm)
    and, per phase of :data:`PHASES`, ``<phase>_effect``: the first-order entropy change -Cov(log pi,
    step) that the phase's step made at this step, averaged over the prompts (NaN where the phase did not
    run).
    """
    for strategy in strategies:
        check_choice("strategy", strategy, STRATEGIES)
    weight = config.eta / config.group_size
    batch_size = config.prompts_per_step * config.group_size
    rows = []
    for strategy in strategies:
        rng = np.random.default_rng(config.seed)
        logits, correct, hard = _initial_pool(config, rng)
        groups = {"all": np.ones(config.prompts, dtype=bool), "easy": ~hard, "hard": hard}
        replay = ReplayBuffer(batch_size, 2 * batch_size)
        replay_rng = random.Random(config.seed)
        effects: dict[str, np.ndarray] = {}
        for step in range(config.steps + 1):
            policy = softmax(logits)
            entropies, accuracies = entropy(policy), policy[np.arange(config.prompts), correct]
            for name, members in groups.items():
                if members.any():
                    rows.append(
                        {
                            "strategy": strategy,
                            "step": step,
                            "prompts": name,
                            "entropy": float(entropies[members].mean()),
                            "accuracy": float(accuracies[members].mean()),
                            **{
                                f"{phase}_effect": float(effects[phase][members].mean())
                                if phase in effects
                                else np.nan
                                for phase in PHASES
                            },
                        }
                    )
            if step == config.steps:
                break
            batch = rng.choice(config.prompts, config.prompts_per_step, replace=False)
            prompts, arms, rewards, advantage = _group(rng, logits, correct, batch, 1.0, config.group_size)
            phases = {"standard": _kept(prompts, arms, advantage, keep_regular(advantage))}
            failed = batch[hard_prompts(rewards, config.group_size).numpy()]
            if strategy != "policy_gradient" and len(failed):
                prompts, arms, _, advantage = _group(
                    rng,
                    logits,
                    correct,
                    failed,
                    config.exploration_temperature,
                    config.exploration_group_size,
                )
                phases["exploration"] = _kept(prompts, arms, advantage, keep_exploration(advantage))
            steps = {
                phase: _policy_gradient_step(logits, samples, weight) for phase, samples in phases.items()
            }
            effects = {phase: predicted_entropy_change(logits, update) for phase, update in steps.items()}
            logits = logits + sum(steps.values())
            if strategy == "exploration_replay":
                for prompt_ids, arm_ids, values in phases.values():
                    entering = replay_entry(torch.from_numpy(values)).numpy()
                    replay.push(zip(prompt_ids[entering], arm_ids[entering], values[entering], strict=True))
                drawn = replay.draw(replay_rng) if (step + 1) % config.replay_every == 0 else []
                if drawn:
                    samples = tuple(np.array(column) for column in zip(*drawn, strict=True))
                    update = _policy_gradient_step(logits, samples, weight)
                    effects["replay"] = predicted_entropy_change(logits, update)
                    logits = logits + update
    return pd.DataFrame(rows)


def entropy_summary(simulation: pd.DataFrame) -> pd.DataFrame:
    """Per (strategy, prompts): entropy at the start, lowest, highest and at the end of :func:`simulate`."""
    grouped = simulation.sort_values("step", kind="stable").groupby(["strategy", "prompts"], sort=False)[
        "entropy"
    ]
    return pd.DataFrame(
        {"start": grouped.first(), "lowest": grouped.min(), "highest": grouped.max(), "end": grouped.last()}
    )


def phase_effects(simulation: pd.DataFrame) -> pd.DataFrame:
    """Per (strategy, prompts): the mean first-order entropy change of each phase's step over the steps it
    ran (positive: that kind of update raises entropy, i.e. Cov(log pi, step) < 0)."""
    columns = [f"{phase}_effect" for phase in PHASES]
    return simulation.groupby(["strategy", "prompts"], sort=False)[columns].mean()


def replay_sweep(config: BanditConfig, replay_every: Iterable[int]) -> pd.DataFrame:
    """:func:`simulate` with exploration and replay for each replay frequency (the replay budget):
    columns replay_every, step, entropy (mean over all prompts)."""
    frames = []
    for every in replay_every:
        frame = simulate(replace(config, replay_every=every), strategies=("exploration_replay",))
        frame = frame.loc[frame["prompts"] == "all", ["step", "entropy"]]
        frames.append(frame.assign(replay_every=every))
    return pd.concat(frames, ignore_index=True)[["replay_every", "step", "entropy"]]


# ---------------------------------------------------------------------------------------------
# Figures (each takes the frames above and returns a matplotlib Figure)
# ---------------------------------------------------------------------------------------------
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
