"""UEC-RL selection rules and buffers on hand-computed advantage vectors (docs/paper.md#the-algorithm)."""

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


def test_advantage_values_quoted_in_docs_paper():
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
    assert replay_entry(advantages, "positive", threshold=1.5).tolist() == [
        True,
        False,
        False,
        False,
        False,
        False,
    ]


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


# --------------------------------------------------------------------------------------------------
# Edges: strict thresholds, groups of one and two, eps, buffer sizes
# --------------------------------------------------------------------------------------------------
def test_groups_of_one_have_zero_advantage_and_groups_of_two_are_plus_minus_one_over_root_two():
    assert group_advantages(torch.tensor([1.0, 0.0, 0.5]), 1).tolist() == [0.0, 0.0, 0.0]  # no std: not NaN
    two = group_advantages(torch.tensor([1.0, 0.0, 0.0, 0.0]), 2)  # std of (1, 0) = sqrt(1/2), unbiased
    assert two.tolist() == pytest.approx([math.sqrt(0.5), -math.sqrt(0.5), 0.0, 0.0], rel=1e-5)


def test_eps_is_added_to_the_std():
    # (1, 0) with eps 0.5: A+ = 0.5 / (sqrt(1/2) + 0.5) = sqrt(2) - 1
    advantages = group_advantages(torch.tensor([1.0, 0.0]), 2, eps=0.5)
    assert advantages.tolist() == pytest.approx([math.sqrt(2) - 1, 1 - math.sqrt(2)], rel=1e-6)


def test_thresholds_are_strict():
    at = torch.tensor([1.0, -1.0, 1.0625, -1.0625, 0.9375])  # exact in float32
    assert keep_exploration(at, "abs>1").tolist() == [False, False, True, True, False]
    half = torch.tensor([0.5, -0.5, 0.5625, -0.5625, 0.4375])
    assert keep_exploration(half, "abs>0.5").tolist() == [False, False, True, True, False]
    assert keep_exploration(torch.tensor([0.0, -0.0, 0.125, -0.125]), "positive").tolist() == [
        False,
        False,
        True,
        False,
    ]
    assert keep_regular(torch.tensor([0.25, -0.25, 0.375]), 0.25).tolist() == [False, False, True]
    assert keep_regular(torch.tensor([0.049, -0.051, 0.051])).tolist() == [False, True, True]  # default 0.05
    assert replay_entry(torch.tensor([1.0, -1.0, 1.125, -1.125]), "abs").tolist() == [
        False,
        False,
        True,
        True,
    ]
    assert replay_entry(torch.tensor([1.0, 1.125]), "positive").tolist() == [False, True]


def test_overlong_filter_drops_every_truncated_positive_however_small():
    advantages = torch.tensor([0.25, 1e-3, 0.0, -1e-3, 0.25])
    truncated = torch.tensor([True, True, True, True, False])
    assert drop_overlong(advantages, truncated).tolist() == [False, False, True, True, True]


@pytest.mark.parametrize("cls", [BatchBuffer, ReplayBuffer])
def test_buffer_sizes_at_their_limits(cls):
    one = cls(batch_size=1, capacity=1)  # the smallest buffer
    one.push(["a"])
    assert len(one) == 1
    same = cls(batch_size=4, capacity=4)  # capacity = batch_size is allowed
    same.restore(list(range(4)))  # exactly the capacity: allowed
    assert same.contents() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="exceed the capacity 4"):
        same.restore(list(range(5)))
    for batch_size, capacity in ((0, 4), (-1, 4), (5, 4)):
        with pytest.raises(ValueError, match="batch_size"):
            cls(batch_size=batch_size, capacity=capacity)


def test_batch_buffer_is_ready_with_exactly_one_batch_and_restore_resets_the_drop_count():
    buffer = BatchBuffer(batch_size=4, capacity=8)
    buffer.push(range(3))
    assert not buffer.ready()
    buffer.push([3])
    assert buffer.ready() and buffer.pop() == [0, 1, 2, 3] and not buffer.ready()
    buffer.push(range(10))
    assert buffer.dropped == 2
    buffer.restore([7, 8])  # a checkpoint without a drop count
    assert buffer.dropped == 0 and buffer.contents() == [7, 8]
    buffer.restore([1], dropped=5)
    assert buffer.dropped == 5


# --------------------------------------------------------------------------------------------------
# The trainer's advantages are TRL's, not group_advantages': (r - mean) / (std + 1e-4), std unbiased
# --------------------------------------------------------------------------------------------------
TRL_EPS = 1e-4


def trl_group_advantages(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """TRL 1.16 GRPOTrainer._generate_and_score_completions with scale_rewards="group" (the default, which
    UECConfig keeps): rewards minus the group's nanmean, over the group's nanstd (Bessel-corrected) + 1e-4."""
    from trl.trainer.utils import nanstd

    grouped = rewards.float().view(-1, group_size)
    mean = torch.nanmean(grouped, dim=1, keepdim=True)
    return ((grouped - mean) / (nanstd(grouped, dim=1, keepdim=True) + TRL_EPS)).view(-1)


def test_trl_advantage_formula_is_the_one_re_measured_here():
    import inspect

    from trl import GRPOTrainer
    from trl.trainer.utils import nanstd

    from uec_repro.config import METHODS, method_config

    source = inspect.getsource(GRPOTrainer._generate_and_score_completions)
    assert "std_rewards = nanstd(rewards.view(-1, num_generations), dim=1)" in source
    assert "advantages = rewards - mean_grouped_rewards" in source
    assert "advantages = advantages / (std_rewards + 1e-4)" in source
    for method in METHODS:  # every method's trainer takes this branch of TRL's code
        config = method_config(method, output_dir="unused", use_cpu=True)
        assert (config.scale_rewards, config.multi_objective_aggregation) == ("group", "sum_then_normalize")
    assert nanstd(torch.tensor([0.0, 1.0])).item() == pytest.approx(math.sqrt(0.5))  # unbiased: /(n-1)


@pytest.mark.parametrize(
    ("correct", "plus", "minus"),
    # hand-computed: p = c/20, sigma = sqrt(20/19 p(1-p)), A+ = (1-p)/(sigma + 1e-4), A- = -p/(sigma + 1e-4)
    [
        (1, 4.24663, -0.22351),
        (9, 1.07734, -0.88146),
        (10, 0.97449, -0.97449),
        (11, 0.88146, -1.07734),
        (19, 0.22351, -4.24663),
    ],
)
def test_trl_advantages_of_a_g20_binary_group(correct, plus, minus):
    advantages = trl_group_advantages(binary_group(correct, 20), 20)
    assert advantages[0].item() == pytest.approx(plus, abs=2e-5)
    assert advantages[-1].item() == pytest.approx(minus, abs=2e-5)
    # group_advantages with TRL's eps gives the same numbers; with its default 1e-6 they differ by < 1e-3
    assert torch.allclose(group_advantages(binary_group(correct, 20), 20, eps=TRL_EPS), advantages, rtol=1e-6)
    assert (group_advantages(binary_group(correct, 20), 20) - advantages).abs().max() < 2e-3


@pytest.mark.parametrize("correct", range(1, 20))
def test_abs_gt_1_rule_on_trl_advantages_keeps_the_same_samples(correct):
    """With TRL's eps 1e-4, A+ at c = 9 is 1.0773 and |A| at c = 10 is 0.9745: the |A| > 1 decisions are those
    of eps 1e-6 (margins of 0.025 and more against shifts of 2e-4 relative)."""
    trl = trl_group_advantages(binary_group(correct, 20), 20)
    kept = keep_exploration(trl, "abs>1")
    assert (
        kept.tolist() == keep_exploration(group_advantages(binary_group(correct, 20), 20), "abs>1").tolist()
    )
    positives, negatives = kept[:correct], kept[correct:]
    assert bool(positives.all()) == (correct <= 9) and bool(positives.any()) == (correct <= 9)
    assert bool(negatives.all()) == (correct >= 11) and bool(negatives.any()) == (correct >= 11)
    for rule in ("abs>0.5", "positive"):
        assert (
            keep_exploration(trl, rule).tolist()
            == keep_exploration(group_advantages(binary_group(correct, 20), 20), rule).tolist()
        )
