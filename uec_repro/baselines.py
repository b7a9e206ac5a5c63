"""Per-token pieces of three entropy-control baselines (docs/paper.md#baselines).

Policy-gradient RL on reasoning models tends to collapse the policy's entropy early. The baselines below
counter this token by token; each is a small pure function of per-token tensors, and the trainer wires them
into its loss elsewhere. All tensors are ``(B, T)`` over completion tokens, with ``mask`` 1 on valid
tokens and 0 on padding. Padded positions never influence a result and come out as 0 / ``False``.

* **Token covariance** (Cui et al. 2025, "The Entropy Mechanism of Reinforcement Learning for Reasoning
  Language Models", arXiv:2505.22617). Entropy changes roughly with minus the covariance between a token's
  log-probability and its advantage, ``Cov_t = (logp_t - mean(logp)) * (A_t - mean(A))``, means over the
  valid tokens of the batch. A few tokens with large covariance drive the collapse.
* **KL-Cov** (same paper): the ``max(int(k * N), 1)`` valid tokens with the largest ``Cov_t`` (``N`` valid
  tokens) get the extra loss ``beta * |logp - old_logp|``, which holds them near the old policy.
* **Clip-Cov** (same paper): among valid tokens not already clipped by PPO whose covariance lies strictly
  between ``low`` and ``high``, ``max(int(r * N), 1)`` chosen at random (at most as many as there are)
  have their gradient cut: the trainer detaches them from the loss.
* **Entropy-Adv** (Cheng et al. 2025, "Reasoning with Exploration: An Entropy Perspective",
  arXiv:2506.14758): the advantage gets an entropy bonus, ``A + min(alpha * H, |A| / kappa)`` with ``H``
  the detached entropy of the full next-token distribution. The cap ``|A| / kappa`` keeps the sign of
  ``A``: a zero advantage gets nothing, and with ``kappa = 2`` a negative one shrinks by at most half
  while a positive one grows by at most 50%.

Defaults: KL-Cov ``k = 2e-3``, ``beta = 1`` and Clip-Cov ``r = 2e-4``, bounds 1 and 5 are verl's
recipe for the Cui et al. paper (its 7B runs); Entropy-Adv ``alpha = 0.4``, ``kappa = 2`` follow
Cheng et al. The arguments are checked once, as :class:`~uec_repro.config.UECConfig` fields, not on every
mini-batch.
"""

from __future__ import annotations

import torch

from .validation import ParameterError

__all__ = ["clip_cov_mask", "entropy_shaped_advantages", "kl_cov_penalty", "token_covariance"]


def _per_token(advantages: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Advantages as ``(B, T)``: a per-sequence ``(B,)`` advantage is repeated on every token."""
    if advantages.shape == mask.shape[:1]:
        return advantages.unsqueeze(-1).expand_as(mask)
    if advantages.shape != mask.shape:
        shape, (batch, length) = tuple(advantages.shape), mask.shape
        raise ParameterError(
            f"advantages of shape {shape} must be ({batch},) or ({batch}, {length}), like mask"
        )
    return advantages


@torch.no_grad()
def token_covariance(logps: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``Cov_t = (logp_t - mean(logp)) * (A_t - mean(A))`` per token, means over valid tokens; no gradient.

    ``logps`` are the log-probs of the sampled tokens under the current policy, ``advantages`` are
    ``(B,)`` or ``(B, T)``. Returns ``(B, T)``, 0 at padding (and everywhere if no token is valid).
    """
    valid = mask.bool()
    logps, advantages = logps.detach(), _per_token(advantages.detach(), mask)
    if not valid.any():
        return torch.zeros_like(logps)
    centred_logps = logps - logps[valid].mean()
    centred_advantages = advantages - advantages[valid].mean()
    return torch.where(valid, centred_logps * centred_advantages, 0.0)


def kl_cov_penalty(
    logps: torch.Tensor,
    old_logps: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    ratio: float = 2e-3,
    coef: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """KL-Cov: ``coef * |logp - old_logp|`` on the ``max(int(ratio * N), 1)`` highest-covariance tokens.

    Returns ``(penalty, selected)``, both ``(B, T)``: the penalty to add to the per-token loss (it carries
    gradient through ``logps`` only, so ``d penalty / d logp = coef * sign(logp - old_logp)`` on selected
    tokens) and the bool mask of selected tokens. ``N`` is the number of valid tokens.
    """
    valid = mask.bool()
    selected = torch.zeros(mask.shape, dtype=torch.bool, device=mask.device)
    count = int(valid.sum())
    if count:
        scores = token_covariance(logps, advantages, mask).masked_fill(~valid, float("-inf"))
        top = scores.flatten().topk(max(int(ratio * count), 1)).indices
        selected.view(-1)[top] = True
    difference = (logps - old_logps.detach()).masked_fill(~selected, 0.0)
    return coef * difference.abs(), selected


def clip_cov_mask(
    logps: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    ratio: float = 2e-4,
    low: float = 1.0,
    high: float = 5.0,
    clipped: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Clip-Cov: the bool ``(B, T)`` mask of tokens whose gradient is to be cut (detached from the loss).

    Eligible are valid tokens with ``low < Cov_t < high`` that PPO has not already clipped (``clipped``,
    bool ``(B, T)``; ``None`` means none). Of these, ``max(int(ratio * N), 1)`` are drawn uniformly without
    replacement with ``generator``, or all of them if there are fewer; none if none is eligible.
    """
    valid = mask.bool()
    covariance = token_covariance(logps, advantages, mask)
    eligible = valid & (covariance > low) & (covariance < high)
    if clipped is not None:
        eligible &= ~clipped.bool()
    candidates = eligible.flatten().nonzero().squeeze(1)
    count = min(max(int(ratio * int(valid.sum())), 1), candidates.numel())
    device = generator.device if generator is not None else candidates.device
    order = torch.randperm(candidates.numel(), generator=generator, device=device).to(candidates.device)
    chosen = torch.zeros(mask.shape, dtype=torch.bool, device=mask.device)
    chosen.view(-1)[candidates[order[:count]]] = True
    return chosen


def entropy_shaped_advantages(
    advantages: torch.Tensor,
    entropies: torch.Tensor,
    mask: torch.Tensor,
    alpha: float = 0.4,
    kappa: float = 2.0,
) -> torch.Tensor:
    """Entropy-Adv: ``A + min(alpha * H, |A| / kappa)`` per token, ``H`` the detached token entropy.

    ``advantages`` are ``(B,)`` or ``(B, T)``, ``entropies`` ``(B, T)``. Returns ``(B, T)``, 0 at padding.
    """
    advantages = _per_token(advantages, mask)
    bonus = torch.minimum(alpha * entropies.detach(), advantages.abs() / kappa)
    return torch.where(mask.bool(), advantages + bonus, 0.0)
