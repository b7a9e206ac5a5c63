"""Softmax policies, their entropy, and the first-order identity ΔH ≈ -Cov(log π, Δz) checked numerically."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from ..validation import check_float, check_int


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
    """First-order prediction ``-Cov_{a~pi}(log pi(a), step(a))``; for NPG (step = eta A)
    ``-eta Cov(log pi, A)``."""
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
