"""UEC-RL selection rules and buffers on hand-computed advantage vectors (notes, sections 1.2-1.7)."""

import math
import random

import pytest
import torch

from uec_repro.selection import (
    BatchBuffer,
    ReplayBuffer,
    drop_overlong,
    group_advantages,
    hard_prompts,
    keep_exploration,
    keep_regular,
    replay_entry,
)


def binary_group(correct: int, size: int) -> torch.Tensor:
    return torch.tensor([1.0] * correct + [0.0] * (size - correct))


def closed_form(correct: int, size: int) -> tuple[float, float]:
    """(A+, A-) of a 0/1 group: p = c/G, sigma = sqrt(G/(G-1) p (1-p)), A+ = (1-p)/sigma, A- = -p/sigma."""
    p = correct / size
    sigma = math.sqrt(size / (size - 1) * p * (1 - p))
    return (1 - p) / sigma, -p / sigma


@pytest.mark.parametrize("correct", range(1, 20))
def test_group_advantages_match_the_closed_form(correct):
    advantages = group_advantages(binary_group(correct, 20), 20)
    plus, minus = closed_form(correct, 20)
    assert advantages[0].item() == pytest.approx(plus, rel=1e-5)
    assert advantages[-1].item() == pytest.approx(minus, rel=1e-5)


def test_advantage_values_quoted_in_the_notes():
    assert group_advantages(binary_group(1, 20), 20)[0].item() == pytest.approx(4.249, abs=1e-3)
    assert group_advantages(binary_group(9, 20), 20)[0].item() == pytest.approx(1.078, abs=1e-3)
    assert group_advantages(binary_group(10, 20), 20)[0].item() == pytest.approx(0.975, abs=1e-3)
    five = group_advantages(binary_group(3, 5), 5)  # n = 5 standard group, 3 of 5 correct
    assert five[-1].item() == pytest.approx(-1.095, abs=1e-3)
    assert group_advantages(binary_group(1, 5), 5)[0].item() == pytest.approx(1.789, abs=1e-3)


@pytest.mark.parametrize("correct", range(1, 20))
def test_abs_gt_1_rule_on_a_g20_group(correct):
    """Released code: positives kept iff c <= 9, negatives kept iff c >= 11, nothing at c = 10."""
    kept = keep_exploration(group_advantages(binary_group(correct, 20), 20), "abs>1")
    positives, negatives = kept[:correct], kept[correct:]
    assert bool(positives.all()) == (correct <= 9) and bool(positives.any()) == (correct <= 9)
    assert bool(negatives.all()) == (correct >= 11) and bool(negatives.any()) == (correct >= 11)


@pytest.mark.parametrize("correct", range(1, 20))
def test_abs_gt_half_and_positive_rules_on_a_g20_group(correct):
    advantages = group_advantages(binary_group(correct, 20), 20)
    later = keep_exploration(advantages, "abs>0.5")  # ICR: positives iff c <= 15, negatives iff c >= 5
    assert bool(later[:correct].all()) == (correct <= 15)
    assert bool(later[correct:].all()) == (correct >= 5)
    paper = keep_exploration(advantages, "positive")
    assert paper.tolist() == [True] * correct + [False] * (20 - correct)


def test_a_group_without_success_keeps_nothing():
    advantages = group_advantages(torch.zeros(20), 20)
    assert advantages.abs().max() == 0
    for rule in ("abs>1", "abs>0.5", "positive"):
        assert not keep_exploration(advantages, rule).any()


def test_hard_prompts_are_groups_with_no_reward():
    rewards = torch.tensor([0, 0, 0, 0, 0, 0, 1, 0, 1, 1, 1, 1.0])
    assert hard_prompts(rewards, 4).tolist() == [True, False, False]


def test_keep_regular_drops_zero_variance_groups():
    rewards = torch.tensor([0, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1.0])
    kept = keep_regular(group_advantages(rewards, 4))
    assert kept.tolist() == [False] * 4 + [True] * 4 + [False] * 4


def test_overlong_filter_drops_only_truncated_positives():
    advantages = torch.tensor([1.5, 1.5, -0.5, -0.5, 0.0])
    truncated = torch.tensor([True, False, True, False, True])
    assert drop_overlong(advantages, truncated).tolist() == [False, True, True, True, True]


def test_replay_entry_rules():
    advantages = torch.tensor([1.789, 1.095, -1.095, -1.789, 0.5, 1.0])
    assert replay_entry(advantages, "abs").tolist() == [True, True, True, True, False, False]
    assert replay_entry(advantages, "positive").tolist() == [True, True, False, False, False, False]
    assert replay_entry(advantages, "positive", threshold=1.5).tolist() == [True, False, False, False, False, False]


@pytest.mark.parametrize(("function", "rule"), [(keep_exploration, "abs>2"), (replay_entry, "negative")])
def test_unknown_rules_name_the_allowed_ones(function, rule):
    with pytest.raises(ValueError, match="is not one of"):
        function(torch.zeros(2), rule)


def test_batch_buffer_updates_only_on_full_batches_and_keeps_the_rest():
    buffer = BatchBuffer(batch_size=4, capacity=8)
    buffer.push(range(3))
    assert not buffer.ready() and buffer.pop() == []
    buffer.push(range(3, 10))  # 10 samples > capacity 8: the two oldest go
    assert buffer.dropped == 2 and len(buffer) == 8
    assert buffer.ready() and buffer.pop() == list(range(2, 10))  # two whole batches, oldest first
    buffer.push(range(10, 15))
    assert buffer.pop() == [10, 11, 12, 13] and len(buffer) == 1


def test_replay_buffer_keeps_the_newest_and_draws_whole_batches():
    buffer = ReplayBuffer(batch_size=4, capacity=8)
    buffer.push(range(3))
    assert buffer.draw(random.Random(0)) == []
    buffer.push(range(3, 6))  # 6 samples: one batch of 4 drawn without replacement
    drawn = buffer.draw(random.Random(0))
    assert len(drawn) == 4 and len(set(drawn)) == 4 and set(drawn) <= set(range(6))
    assert len(buffer) == 6  # replayed samples stay
    buffer.push(range(6, 12))  # full: only the newest 8 remain, and all of them are replayed
    assert buffer.draw(random.Random(0)) == list(range(4, 12))


def test_buffers_reject_impossible_sizes():
    for cls in (BatchBuffer, ReplayBuffer):
        with pytest.raises(ValueError, match="batch_size"):
            cls(batch_size=4, capacity=3)
