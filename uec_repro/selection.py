"""UEC-RL's sample selection, top to bottom: which prompts are explored, which samples are kept, what is
replayed.

One training step of the authors' released code (docs/paper.md#one-training-step), with the function that does
each part::

    rewards of the G standard rollouts per prompt
    A      = group_advantages(rewards, G)                         # GRPO, unbiased std (the trainer: TRL's)
    hard   = hard_prompts(rewards, G)                             # all G rewards are 0
    extra  = G' rollouts per hard prompt at temperature t'        # (the trainer generates them)
    A'     = group_advantages(extra_rewards, G')                  # within the G' new responses only
    keep_R = keep_regular(A)                                      # |A| > 0.05
    keep_H = keep_exploration(A', rule)                           # |A'| > 1 (released code) ...
    data   = keep_R U keep_H, minus drop_overlong(truncated & A > 0)
    BatchBuffer.push(data); update only when it holds >= B0 samples, on BatchBuffer.pop()
    ReplayBuffer.push(samples of the update passing replay_entry(A, rule)), every f_replay steps
    ReplayBuffer.draw(): the whole buffer when full, else floor(len / B0) * B0 random samples

Every function takes and returns plain tensors or lists and has no state; the buffers hold opaque samples
(whatever the trainer stores per sample), so each rule can be checked by hand.

Paper vs. released code (docs/paper.md#paper-versus-code): the defaults are the released code's; the
paper-text variants are ``exploration_rule="positive"`` (keep exploration samples with A > 0) and
``replay_rule="positive"`` (enter the replay buffer when A > A0); ``"abs>0.5"`` is the authors' later (ICR)
exploration filter.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable
from typing import Any

import torch

__all__ = [
    "EXPLORATION_RULES",
    "REPLAY_RULES",
    "BatchBuffer",
    "ReplayBuffer",
    "drop_overlong",
    "group_advantages",
    "hard_prompts",
    "keep_exploration",
    "keep_regular",
    "replay_entry",
]

EXPLORATION_RULES = {
    "abs>1": "released code: keep exploration samples with |A| > 1 (rare successes and, in mostly-solved "
    "groups, failures)",
    "abs>0.5": "authors' later code (ICR): keep exploration samples with |A| > 0.5",
    "positive": "paper text: keep exploration samples with positive advantage, A > 0",
}
REPLAY_RULES = {
    "abs": "released code: a sample enters the replay buffer when |A| > A0 (negatives too)",
    "positive": "paper text and later code: a sample enters when A > A0",
}


def group_advantages(rewards: torch.Tensor, group_size: int, eps: float = 1e-6) -> torch.Tensor:
    """GRPO advantages (r - mean) / (std + eps) within consecutive groups, std unbiased, eps 1e-6 as in the
    authors' code. The trainer uses TRL's advantages (the same with eps 1e-4); for binary rewards both give
    the same kept and replayed sets (``tests/test_selection.py`` checks the rules with TRL's eps)."""
    if rewards.numel() % group_size:
        raise ValueError(f"{rewards.numel()} rewards do not split into groups of {group_size}")
    grouped = rewards.float().view(-1, group_size)
    std = grouped.std(dim=1, keepdim=True) if group_size > 1 else torch.zeros_like(grouped[:, :1])
    return ((grouped - grouped.mean(dim=1, keepdim=True)) / (std + eps)).view(-1)


def hard_prompts(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """One bool per group: True when every reward of the group is 0 (the paper's max_i R_i = 0)."""
    return (rewards.view(-1, group_size) <= 0).all(dim=1)


def keep_regular(advantages: torch.Tensor, threshold: float = 0.05) -> torch.Tensor:
    """Standard rollouts worth training on: |A| > threshold (drops all-correct and all-wrong groups)."""
    return advantages.abs() > threshold


def keep_exploration(advantages: torch.Tensor, rule: str = "abs>1") -> torch.Tensor:
    """Exploration rollouts worth training on, by one of :data:`EXPLORATION_RULES`."""
    if rule == "abs>1":
        return advantages.abs() > 1
    if rule == "abs>0.5":
        return advantages.abs() > 0.5
    if rule == "positive":
        return advantages > 0
    raise ValueError(f"exploration rule {rule!r} is not one of {list(EXPLORATION_RULES)}")


def drop_overlong(advantages: torch.Tensor, truncated: torch.Tensor) -> torch.Tensor:
    """Keep-mask of the overlong filter: a truncated sample is dropped when its advantage is positive
    (an unfinished answer must not be reinforced); truncated samples with A <= 0 stay and are penalised."""
    return ~(truncated.bool() & (advantages > 0))


def replay_entry(advantages: torch.Tensor, rule: str = "abs", threshold: float = 1.0) -> torch.Tensor:
    """Samples of an update that enter the replay buffer, by one of :data:`REPLAY_RULES` with A0 =
    ``threshold``."""
    if rule == "abs":
        return advantages.abs() > threshold
    if rule == "positive":
        return advantages > threshold
    raise ValueError(f"replay rule {rule!r} is not one of {list(REPLAY_RULES)}")


class BatchBuffer:
    """FIFO of filtered samples; an update happens only when it holds at least one full batch of
    ``batch_size``.

    ``pop`` returns the oldest ``floor(len / batch_size) * batch_size`` samples (one or more whole batches).
    On overflow past ``capacity`` the oldest samples are dropped (counted in ``dropped``).
    """

    def __init__(self, batch_size: int, capacity: int) -> None:
        if batch_size < 1 or capacity < batch_size:
            raise ValueError(
                f"need 1 <= batch_size <= capacity, got batch_size={batch_size}, capacity={capacity}"
            )
        self.batch_size, self.capacity = batch_size, capacity
        self._samples: deque[Any] = deque()
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._samples)

    def push(self, samples: Iterable[Any]) -> None:
        self._samples.extend(samples)
        while len(self._samples) > self.capacity:
            self._samples.popleft()
            self.dropped += 1

    def ready(self) -> bool:
        return len(self._samples) >= self.batch_size

    def contents(self) -> list[Any]:
        """The samples held, oldest first (what a checkpoint saves)."""
        return list(self._samples)

    def restore(self, samples: list[Any], dropped: int = 0) -> None:
        """Replace the content with ``samples`` (oldest first), as saved by a checkpoint."""
        if len(samples) > self.capacity:
            raise ValueError(f"{len(samples)} samples exceed the capacity {self.capacity}")
        self._samples, self.dropped = deque(samples), dropped

    def pop(self) -> list[Any]:
        count = len(self._samples) // self.batch_size * self.batch_size
        return [self._samples.popleft() for _ in range(count)]


class ReplayBuffer:
    """The newest ``capacity`` high-advantage samples; replayed samples stay until newer ones push them
    out."""

    def __init__(self, batch_size: int, capacity: int) -> None:
        if batch_size < 1 or capacity < batch_size:
            raise ValueError(
                f"need 1 <= batch_size <= capacity, got batch_size={batch_size}, capacity={capacity}"
            )
        self.batch_size, self.capacity = batch_size, capacity
        self._samples: deque[Any] = deque(maxlen=capacity)

    def __len__(self) -> int:
        return len(self._samples)

    def push(self, samples: Iterable[Any]) -> None:
        self._samples.extend(samples)

    def contents(self) -> list[Any]:
        """The samples held, oldest first (what a checkpoint saves)."""
        return list(self._samples)

    def restore(self, samples: list[Any]) -> None:
        """Replace the content with ``samples`` (oldest first), as saved by a checkpoint."""
        if len(samples) > self.capacity:
            raise ValueError(f"{len(samples)} samples exceed the capacity {self.capacity}")
        self._samples = deque(samples, maxlen=self.capacity)

    def draw(self, rng: random.Random) -> list[Any]:
        """The whole buffer when full; else ``floor(len / batch_size) * batch_size`` samples drawn uniformly
        without replacement; nothing when it holds less than one batch."""
        if len(self._samples) == self.capacity:
            return list(self._samples)
        count = len(self._samples) // self.batch_size * self.batch_size
        return rng.sample(list(self._samples), count) if count else []
