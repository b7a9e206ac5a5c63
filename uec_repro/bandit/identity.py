"""Softmax policies, their entropy, and the first-order identity ΔH ≈ -Cov(log π, Δz) checked numerically, for
the vanilla (Δz = η π ⊙ A) and natural (Δz = η A) policy-gradient steps and for sampling at a temperature."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from ..validation import check_choice, check_float, check_int


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


# ---------------------------------------------------------------------------------------------
# Vanilla vs natural policy gradient: two logit steps, two first-order forms
# ---------------------------------------------------------------------------------------------
STEP_KINDS = {
    "vanilla": "plain policy gradient, dz = eta * grad_z E_pi[A] = eta * pi * A (what the simulation does)",
    "natural": "natural policy gradient on tabular logits, dz = eta * A",
}


def logit_step(logits: np.ndarray, advantages: np.ndarray, eta: float, kind: str = "vanilla") -> np.ndarray:
    r"""The expected logit step of one policy-gradient update with per-arm ``advantages``.

    ``"natural"``: :math:`\Delta z = \eta A`. ``"vanilla"``: :math:`\Delta z = \eta \nabla_z
    \mathbb{E}_\pi[A]`, whose component j is :math:`\eta \pi_j (A_j - \mathbb{E}_\pi[A])`, i.e.
    :math:`\eta\, \pi \odot A` for advantages centred under π (``A = r - E_pi[r]``, as :func:`advantages`
    returns). It is also the mean of the sampled step ``eta * A(a) * (e_a - pi)``, a ~ pi.
    """
    check_choice("kind", kind, STEP_KINDS)
    advantages = np.asarray(advantages, dtype=float)
    if kind == "natural":
        return eta * advantages
    policy = softmax(logits)
    centred = advantages - np.sum(policy * advantages, axis=-1, keepdims=True)
    return eta * policy * centred


def entropy_change_first_order(
    logits: np.ndarray, advantages: np.ndarray, eta: float, kind: str = "vanilla"
) -> np.ndarray:
    """First-order entropy change of the :func:`logit_step` of ``kind``:
    ``-eta Cov_pi(log pi, pi * A)`` (vanilla) or ``-eta Cov_pi(log pi, A)`` (natural)."""
    return -log_policy_covariance(softmax(logits), logit_step(logits, advantages, eta, kind))


def entropy_change_exact(
    logits: np.ndarray, advantages: np.ndarray, eta: float, kind: str = "vanilla"
) -> np.ndarray:
    """Exact entropy change ``H(softmax(z + dz)) - H(softmax(z))`` of the :func:`logit_step` of ``kind``."""
    return entropy_change(logits, logit_step(logits, advantages, eta, kind))


def step_forms_table(
    count: int, *, arms: int = 8, eta: float = 0.001, logit_scale: float = 1.5, seed: int = 0
) -> pd.DataFrame:
    """``count`` random bandits, each taking one vanilla and one natural step of ``eta`` (exact advantages).

    One row per (bandit, step): columns bandit, step ("vanilla" or "natural"), eta, actual (exact entropy
    change of that step), vanilla_form (``-eta Cov(log pi, pi A)``), natural_form (``-eta Cov(log pi, A)``).
    The form named like the step is the right one; the other is the wrong one.
    """
    check_int("count", count, minimum=1)
    check_int("arms", arms, minimum=2)
    check_float("eta", eta, minimum=0.0, min_exclusive=True)
    check_float("logit_scale", logit_scale, minimum=0.0)
    logits, rewards = _random_bandits(np.random.default_rng(seed), count, arms, logit_scale)
    advantage = advantages(softmax(logits), rewards)
    forms = {f"{kind}_form": entropy_change_first_order(logits, advantage, eta, kind) for kind in STEP_KINDS}
    frames = [
        pd.DataFrame(
            {
                "bandit": np.arange(count),
                "step": kind,
                "eta": eta,
                "actual": entropy_change_exact(logits, advantage, eta, kind),
                **forms,
            }
        )
        for kind in STEP_KINDS
    ]
    return pd.concat(frames, ignore_index=True)


def sign_error_shares(table: pd.DataFrame) -> pd.DataFrame:
    """From :func:`step_forms_table`: per step kind, the share of bandits whose actual entropy change has the
    other sign than the right form predicts (``right_form``) and than the wrong form predicts
    (``wrong_form``), and the median relative error of the right form."""
    rows = {}
    for kind, rows_of_kind in table.groupby("step", sort=False):
        other = next(k for k in STEP_KINDS if k != kind)
        actual, right = rows_of_kind["actual"], rows_of_kind[f"{kind}_form"]
        rows[kind] = {
            "bandits": len(rows_of_kind),
            "right_form": float((np.sign(right) != np.sign(actual)).mean()),
            "wrong_form": float((np.sign(rows_of_kind[f"{other}_form"]) != np.sign(actual)).mean()),
            "right_form_median_relative_error": float((np.abs(actual - right) / np.abs(right)).median()),
        }
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "step"
    return frame


# ---------------------------------------------------------------------------------------------
# Sampling at temperature t': the expected step is weighted by the tempered distribution
# ---------------------------------------------------------------------------------------------
def tempered_expected_step(
    logits: np.ndarray, rewards: np.ndarray, eta: float, temperature: float
) -> np.ndarray:
    r"""The expected logit step when the samples are drawn at ``temperature`` but the gradient is that of
    :math:`\log\pi` (t = 1), with the baseline of the sampled group, :math:`b = \mathbb{E}_{\pi_{t'}}[r]`:

    .. math::
        \eta\,\mathbb{E}_{a\sim\pi_{t'}}\big[(r(a) - b)(e_a - \pi)\big]
        = \eta\,\pi_{t'} \odot (r - b) - \eta\,\pi\,\mathbb{E}_{\pi_{t'}}[r - b]
        = \eta\,\pi_{t'} \odot (r - b),

    :math:`\pi_{t'} \propto \pi^{1/t'}`. At ``temperature`` 1 it is the vanilla step :math:`\eta\,\pi\odot A`.
    """
    check_float("temperature", temperature, minimum=0.0, min_exclusive=True)
    rewards = np.asarray(rewards, dtype=float)
    sampling = softmax(logits, temperature)
    centred = rewards - np.sum(sampling * rewards, axis=-1, keepdims=True)
    return eta * sampling * centred
