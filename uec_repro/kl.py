"""The authors' KL term as TRL computes it: plain k3 with each token's value clamped to ``limit``.

The authors' loss adds ``beta * k3`` per token, ``k3 = exp(x) - x - 1`` with ``x = log p_ref - log p``,
clamped to [-10, 10] (k3 >= 0, so only the upper bound acts). TRL computes the same k3 from the reference
log-probs it is given, without a clamp. :func:`clamped_reference_logps` gives TRL reference log-probs that
make its k3 the clamped one: on a token whose k3 exceeds ``limit`` the reference becomes ``log p + c`` with
``k3(c) = limit``, so TRL's ``x`` is the constant ``c``: the token's KL is exactly ``limit`` and has no
gradient, as after a clamp.
"""

from __future__ import annotations

import math
from functools import cache

import torch

__all__ = ["clamped_reference_logps", "k3_roots"]


@cache
def k3_roots(limit: float) -> tuple[float, float]:
    """The two ``x`` with ``k3(x) = limit``: (negative root, positive root); e.g. about (-11.0, 2.61) for
    10."""
    low = high = 0.0
    for _ in range(200):  # both fixed-point maps contract: |d/dx| < 1 near the roots
        low, high = math.exp(low) - limit - 1, math.log(limit + 1 + high)
    return low, high


def clamped_reference_logps(ref_logps: torch.Tensor, logps: torch.Tensor, limit: float) -> torch.Tensor:
    """Reference log-probs for TRL's k3 such that its per-token value is ``min(k3(ref - logp), limit)`` and a
    clamped token's KL has no gradient (see the module docstring). ``logps`` are the loss's log-probs (with
    gradient); tokens within the limit keep ``ref_logps`` unchanged."""
    low, high = k3_roots(limit)
    x = ref_logps - logps.detach()
    over = (x > high) | (x < low)
    if not over.any():
        return ref_logps
    bound = torch.where(x > 0, torch.full_like(x, high), torch.full_like(x, low))
    return torch.where(over, logps + bound, ref_logps)
