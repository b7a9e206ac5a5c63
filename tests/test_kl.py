"""The authors' KL term through TRL's formula: plain k3, each token's value clamped at 10 (uec_repro.kl)."""

import math

import pytest
import torch

from uec_repro.kl import clamped_reference_logps, k3_roots


def trl_k3(ref_logps, logps):
    """TRL 1.16's per-token KL with use_bias_correction_kl=False (grpo_trainer._compute_loss)."""
    return torch.exp(ref_logps - logps) - (ref_logps - logps) - 1


def test_roots_solve_k3_equal_to_the_limit():
    low, high = k3_roots(10.0)
    assert math.exp(high) - high - 1 == pytest.approx(10.0, abs=1e-12)
    assert math.exp(low) - low - 1 == pytest.approx(10.0, abs=1e-12)
    assert 2.6 < high < 2.62 and -11.0 < low < -10.99


def test_kl_values_and_gradients_equal_clamped_k3_by_hand():
    # x = ref - logp: 1 and -5 are inside the clamp, 3 (k3 = e^3 - 4 = 16.09) and -12 (k3 = 11.000006) are not
    x = torch.tensor([[1.0, -5.0, 3.0, -12.0]], dtype=torch.float64)
    logps = torch.tensor([[-0.5, -1.0, -2.0, -0.1]], dtype=torch.float64, requires_grad=True)
    ref = logps.detach() + x
    kl = trl_k3(clamped_reference_logps(ref, logps, 10.0), logps)
    kl.sum().backward()
    expected = [math.e - 2, math.exp(-5) + 4, 10.0, 10.0]
    assert kl.detach()[0].tolist() == pytest.approx(expected, abs=1e-9)
    # d/dlogp [exp(x) - x - 1] with x = ref - logp is 1 - exp(x); a clamped token has none
    assert logps.grad[0].tolist() == pytest.approx([1 - math.e, 1 - math.exp(-5), 0.0, 0.0], abs=1e-9)


def test_tokens_inside_the_clamp_keep_their_reference_unchanged():
    logps = torch.tensor([[-1.0, -2.0]])
    ref = torch.tensor([[-1.5, -0.5]])
    assert clamped_reference_logps(ref, logps, 10.0) is ref
