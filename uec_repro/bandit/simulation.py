"""The three strategies (policy gradient, + exploration, + replay) on a pool of bandit prompts."""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch

from ..selection import (
    ReplayBuffer,
    group_advantages,
    hard_prompts,
    keep_exploration,
    keep_regular,
    replay_entry,
)
from ..validation import ParameterError, check_choice, check_float, check_int
from .identity import entropy, predicted_entropy_change, softmax

STRATEGIES = {
    "policy_gradient": "GRPO on the G standard samples at t = 1 only",
    "exploration": "+ G' extra samples at t' on hard prompts (all G wrong), rare successes kept",
    "exploration_replay": "+ every replay_every steps, the update again on the replay buffer",
}
PHASES = ("standard", "exploration", "replay")  # the updates one simulated step can make


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
    """``group_size`` samples per prompt at ``temperature``: prompt, arm, reward and GRPO advantage
    of each."""
    arms = _sample_arms(rng, softmax(logits[prompts], temperature), group_size).flatten()
    rewards = torch.from_numpy((arms == np.repeat(correct[prompts], group_size)).astype(np.float32))
    return np.repeat(prompts, group_size), arms, rewards, group_advantages(rewards, group_size)


def _policy_gradient_step(
    logits: np.ndarray, samples: tuple[np.ndarray, np.ndarray, np.ndarray], weight: float
) -> np.ndarray:
    """The logit step of ``weight x sum_i A_i grad log pi(arm_i | prompt_i)``, with ``grad_z log pi(a) =
    e_a - pi`` for softmax logits (what the trainer's loss ``-A log pi`` does); zero for untouched prompts."""
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
    """Train the same pool of prompts (:func:`_initial_pool`) with each strategy of :data:`STRATEGIES`.

    Each step draws ``prompts_per_step`` prompts, ``group_size`` samples of each at t = 1, kept when
    |A| > 0.05; with exploration, a prompt with all samples wrong gets ``exploration_group_size`` more at
    ``exploration_temperature``, kept when |A| > 1. Kept samples make a policy-gradient step of
    ``eta / group_size`` each. With replay, kept samples with |A| > 1 enter a FIFO buffer of 2 x B0
    (B0 = prompts_per_step x group_size), replayed every ``replay_every`` steps. Rules and buffer are those
    of :mod:`uec_repro.selection`.

    Returns one row per (strategy, step, prompts in {"all", "easy", "hard"}; step 0 = before training):
    entropy (mean nats), accuracy (mean probability of the correct arm) and, per phase of :data:`PHASES`,
    ``<phase>_effect``, the mean first-order entropy change -Cov(log pi, step) of that phase's step (NaN
    where it did not run).
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
    """Per (strategy, prompts): entropy at the start, lowest, highest and at the end of :func:`simulate`,
    and the step at which it was highest (``highest_step``)."""
    ordered = simulation.sort_values("step", kind="stable")
    grouped = ordered.groupby(["strategy", "prompts"], sort=False)["entropy"]
    return pd.DataFrame(
        {
            "start": grouped.first(),
            "lowest": grouped.min(),
            "highest": grouped.max(),
            "highest_step": ordered.loc[grouped.idxmax(), ["strategy", "prompts", "step"]].set_index(
                ["strategy", "prompts"]
            )["step"],
            "end": grouped.last(),
        }
    )


def accuracy_summary(simulation: pd.DataFrame) -> pd.DataFrame:
    """Per (strategy, prompts): accuracy (mean probability of the correct arm) at the start and at the end
    of :func:`simulate`, and the gain end - start."""
    grouped = simulation.sort_values("step", kind="stable").groupby(["strategy", "prompts"], sort=False)[
        "accuracy"
    ]
    start, end = grouped.first(), grouped.last()
    return pd.DataFrame({"start": start, "end": end, "gain": end - start})


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
