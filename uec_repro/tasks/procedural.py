"""Shared machinery of the built-in, procedurally generated task families.

A family supplies ``make_problem(rng, tier) -> Problem``. Which split a problem belongs to is a pure
function of its question text (a stable hash), so train and test are disjoint by construction and a
problem never changes split when more examples are drawn. Sampling is seeded and deterministic.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..validation import ParameterError, check_choice, check_int
from .schema import make_example

SPLITS = ("train", "test")
TEST_PERCENT = 10  # share of the problem space that belongs to the test split


@dataclass(frozen=True)
class Problem:
    question: str
    answer: str
    difficulty: int
    solution: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict)


def stable_hash(text: str) -> int:
    return int.from_bytes(hashlib.sha1(text.encode("utf-8")).digest()[:8], "big")


def split_of(question: str) -> str:
    return "test" if stable_hash(question) % 100 < TEST_PERCENT else "train"


def generate_split(
    source: str,
    make_problem: Callable[[random.Random, int], Problem],
    tier_weights: Mapping[int, float],
    *,
    split: str,
    n: int,
    seed: int,
    difficulties: Sequence[int] | None = None,
    patience: int = 20_000,
    at_most: bool = False,
) -> list[dict[str, Any]]:
    """Draw ``n`` distinct problems of ``split`` (schema rows, ``prompt`` = bare question).

    ``difficulties`` restricts the tiers (default: all, mixed by ``tier_weights``). Raises
    :class:`ParameterError` when the split cannot supply ``n`` distinct problems (``patience`` draws in
    a row found no new one), unless ``at_most``: then the problems found so far (the whole split, but for
    ones ``patience`` draws did not reach) are returned; the first rows are the same either way.
    """
    check_choice("split", split, SPLITS)
    check_int("n", n, minimum=1)
    check_int("seed", seed, minimum=0)
    tiers = sorted(tier_weights) if difficulties is None else list(difficulties)
    if not tiers:
        raise ParameterError(f"difficulties={difficulties!r} is empty; choose from {sorted(tier_weights)}")
    for tier in tiers:
        check_choice("difficulties", tier, sorted(tier_weights))
    weights = [tier_weights[t] for t in tiers]
    rng = random.Random(f"{source}/{split}/{seed}")
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    misses = 0
    while len(rows) < n:
        misses += 1
        if misses > patience:
            if at_most and rows:
                break
            raise ParameterError(
                f"n={n} is more than the {split!r} split of task {source!r} can supply for difficulties "
                f"{tiers} (found {len(rows)} distinct problems); ask for fewer or allow more tiers"
            )
        problem = make_problem(rng, rng.choices(tiers, weights)[0])
        if problem.question in seen or split_of(problem.question) != split:
            continue
        misses = 0
        seen.add(problem.question)
        rows.append(
            make_example(
                id=f"{source}-{problem.difficulty}-{stable_hash(problem.question):016x}",
                question=problem.question,
                answer=problem.answer,
                source=source,
                difficulty=problem.difficulty,
                solution=problem.solution,
                meta=json.dumps(dict(problem.meta), sort_keys=True),
            )
        )
    return rows
