"""Entropy-control baselines (docs/paper.md#baselines) on small tensors with expected values worked out by
hand."""

from __future__ import annotations

import pytest
import torch

from uec_repro.baselines import clip_cov_mask, entropy_shaped_advantages, kl_cov_penalty, token_covariance

NAN = float("nan")

# Two sequences, the second padded at its last position (5 valid tokens).
MASK = torch.tensor([[1, 1, 1], [1, 1, 0]])
LOGPS = torch.tensor([[-1.0, -2.0, -3.0], [-4.0, -2.0, NAN]])
ADVANTAGES = torch.tensor([1.0, -1.0])
# mean(logp) = -12 / 5 = -2.4, centred: 1.4, 0.4, -0.6 | -1.6, 0.4
# mean(A) over tokens = (1 + 1 + 1 - 1 - 1) / 5 = 0.2, centred: 0.8, 0.8, 0.8 | -1.2, -1.2
COVARIANCE = torch.tensor([[1.4 * 0.8, 0.4 * 0.8, -0.6 * 0.8], [-1.6 * -1.2, 0.4 * -1.2, 0.0]])


def test_covariance_by_hand() -> None:
    torch.testing.assert_close(token_covariance(LOGPS, ADVANTAGES, MASK), COVARIANCE)
    per_token = torch.tensor([[1.0, 1.0, 1.0], [-1.0, -1.0, 0.0]])
    torch.testing.assert_close(token_covariance(LOGPS, per_token, MASK), COVARIANCE)


def test_covariance_ignores_padding() -> None:
    per_token = torch.tensor([[1.0, 1.0, 1.0], [-1.0, -1.0, 0.0]])
    for garbage in (1e6, -1e6, NAN, float("inf")):
        logps, advantages = LOGPS.clone(), per_token.clone()
        logps[1, 2] = advantages[1, 2] = garbage
        torch.testing.assert_close(token_covariance(logps, advantages, MASK), COVARIANCE)


def test_covariance_is_detached_and_handles_an_empty_batch() -> None:
    logps = LOGPS.clone().requires_grad_()
    assert not token_covariance(logps, ADVANTAGES, MASK).requires_grad
    assert torch.equal(token_covariance(LOGPS, ADVANTAGES, torch.zeros(2, 3)), torch.zeros(2, 3))


def test_advantages_of_the_wrong_shape_are_refused() -> None:
    with pytest.raises(ValueError, match=r"advantages of shape \(3,\)"):
        token_covariance(LOGPS, torch.ones(3), MASK)


def test_kl_cov_selects_the_top_tokens_and_penalises_them() -> None:
    old_logps = torch.tensor([[-1.5, -1.0, -3.0], [-3.0, -2.5, NAN]])  # logp - old: 0.5, -1, 0 | -1, 0.5
    logps = LOGPS.clone().requires_grad_()
    # N = 5, ratio 0.5: int(2.5) = 2 tokens, the covariances 1.92 at (1, 0) and 1.12 at (0, 0).
    penalty, selected = kl_cov_penalty(logps, old_logps, ADVANTAGES, MASK, ratio=0.5, coef=2.0)
    assert selected.tolist() == [[True, False, False], [True, False, False]]
    torch.testing.assert_close(penalty.detach(), torch.tensor([[2.0 * 0.5, 0, 0], [2.0 * 1.0, 0, 0]]))
    penalty.sum().backward()
    # d(coef * |logp - old|) / d logp = coef * sign(logp - old) on selected tokens, 0 elsewhere (padding too).
    assert torch.equal(logps.grad, torch.tensor([[2.0, 0, 0], [-2.0, 0, 0]]))


def test_kl_cov_default_selects_at_least_one_token() -> None:
    old_logps = torch.zeros(2, 3)
    penalty, selected = kl_cov_penalty(LOGPS, old_logps, ADVANTAGES, MASK)  # int(2e-3 * 5) = 0 -> 1
    assert selected.tolist() == [[False, False, False], [True, False, False]]
    assert torch.equal(penalty, torch.tensor([[0.0, 0, 0], [4.0, 0, 0]]))


def test_kl_cov_without_valid_tokens_selects_nothing() -> None:
    penalty, selected = kl_cov_penalty(LOGPS, torch.zeros(2, 3), ADVANTAGES, torch.zeros(2, 3))
    assert not selected.any()
    assert torch.equal(penalty, torch.zeros(2, 3))


# Clip-Cov example: 7 valid tokens, logps and advantages both of mean 0, so Cov_t = logp_t * A_t.
CLIP_MASK = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
CLIP_LOGPS = torch.tensor([[2.0, 1.0, -1.0, -2.0], [3.0, -3.0, 0.0, NAN]])
CLIP_ADVANTAGES = torch.tensor([[3.0, 2.0, -3.0, -0.5], [1.0, -1.0, -1.5, NAN]])
# Cov: 6 (above 5), 2, 3, 1 (on the bound: out) | 3, 3, 0 (below 1), padding
CLIPPED = torch.tensor([[False, False, False, False], [False, True, False, False]])
ELIGIBLE = {(0, 1), (0, 2), (1, 0)}  # in (1, 5), valid, not clipped by PPO


def chosen_positions(chosen: torch.Tensor) -> set[tuple[int, int]]:
    return {tuple(position) for position in chosen.nonzero().tolist()}


def test_clip_cov_covariance_example() -> None:
    expected = torch.tensor([[6.0, 2.0, 3.0, 1.0], [3.0, 3.0, 0.0, 0.0]])
    torch.testing.assert_close(token_covariance(CLIP_LOGPS, CLIP_ADVANTAGES, CLIP_MASK), expected)


@pytest.mark.parametrize(("ratio", "count"), [(2e-4, 1), (0.3, 2), (1.0, 3)])  # max(int(r * 7), 1), at most 3
def test_clip_cov_picks_the_right_count_of_eligible_tokens(ratio: float, count: int) -> None:
    for seed in range(20):
        generator = torch.Generator().manual_seed(seed)
        chosen = clip_cov_mask(
            CLIP_LOGPS, CLIP_ADVANTAGES, CLIP_MASK, ratio=ratio, clipped=CLIPPED, generator=generator
        )
        assert chosen.dtype == torch.bool
        assert len(chosen_positions(chosen)) == count
        assert chosen_positions(chosen) <= ELIGIBLE


def test_clip_cov_without_clipped_tokens_takes_all_in_bounds() -> None:
    chosen = clip_cov_mask(CLIP_LOGPS, CLIP_ADVANTAGES, CLIP_MASK, ratio=1.0)
    assert chosen_positions(chosen) == ELIGIBLE | {(1, 1)}


def test_clip_cov_is_reproducible_and_random() -> None:
    def draw(seed: int) -> set[tuple[int, int]]:
        generator = torch.Generator().manual_seed(seed)
        return chosen_positions(
            clip_cov_mask(CLIP_LOGPS, CLIP_ADVANTAGES, CLIP_MASK, clipped=CLIPPED, generator=generator)
        )

    assert all(draw(seed) == draw(seed) for seed in range(10))
    assert set().union(*(draw(seed) for seed in range(50))) == ELIGIBLE


def test_clip_cov_never_picks_padding() -> None:
    chosen = clip_cov_mask(CLIP_LOGPS, CLIP_ADVANTAGES, CLIP_MASK, ratio=1.0, low=-100.0, high=100.0)
    assert torch.equal(chosen, CLIP_MASK.bool())


def test_clip_cov_with_no_eligible_token_picks_none() -> None:
    chosen = clip_cov_mask(CLIP_LOGPS, CLIP_ADVANTAGES, CLIP_MASK, low=10.0, high=20.0)
    assert chosen.shape == (2, 4) and not chosen.any()
    everything_clipped = torch.ones(2, 4, dtype=torch.bool)
    assert not clip_cov_mask(CLIP_LOGPS, CLIP_ADVANTAGES, CLIP_MASK, clipped=everything_clipped).any()


def test_entropy_shaped_advantages_by_hand() -> None:
    advantages = torch.tensor([1.0, -2.0, 0.0])
    entropies = torch.tensor([[0.5, 2.0], [1.0, 10.0], [3.0, NAN]], requires_grad=True)
    mask = torch.tensor([[1, 1], [1, 1], [1, 0]])
    shaped = entropy_shaped_advantages(advantages, entropies, mask)
    # A > 0: bonus alpha * H = 0.2 uncapped, then 0.8 capped at |A| / kappa = 0.5.
    # A < 0: bonus 0.4, then 4.0 capped at 1 (the magnitude halved). A = 0: no bonus. Padding: 0.
    expected = torch.tensor(
        [[1.0 + 0.4 * 0.5, 1.0 + 1.0 / 2], [-2.0 + 0.4 * 1.0, -2.0 + 2.0 / 2], [0.0, 0.0]]
    )
    torch.testing.assert_close(shaped, expected)
    assert not shaped.requires_grad  # the entropy is a detached bonus


def test_entropy_shaping_keeps_sign_and_bounds() -> None:
    generator = torch.Generator().manual_seed(0)
    advantages = torch.randn(64, 8, generator=generator)
    entropies = 5 * torch.rand(64, 8, generator=generator)
    shaped = entropy_shaped_advantages(advantages, entropies, torch.ones(64, 8))
    positive, negative = advantages > 0, advantages < 0
    assert torch.all(shaped[positive] >= advantages[positive])
    assert torch.all(shaped[positive] <= 1.5 * advantages[positive])
    assert torch.all(shaped[negative] >= advantages[negative])
    assert torch.all(shaped[negative] <= 0.5 * advantages[negative])
