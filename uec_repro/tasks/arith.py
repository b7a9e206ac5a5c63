"""``arith``: integer arithmetic of graded difficulty, generated offline.

Tiers (``difficulty``):

1. one 2-digit and one 1-digit number, ``+`` or ``-``            e.g. ``What is 47+8?``
2. two 2-digit numbers, ``+`` or ``-``                           e.g. ``What is 47-38?``
3. one multiplication: 1-digit x 2-digit, or ``a+b*c``            e.g. ``What is 7*23?``
4. three operands with mixed operators and brackets, or 3-digit   e.g. ``What is (12+9)*4?``

An expression is kept as a small tree in ``meta["expr"]`` (nested ``[op, left, right]`` lists and ints)
so tests can re-derive the answer and the toy policy can write several valid worked solutions.
"""

from __future__ import annotations

import random
from typing import Any

from .procedural import Problem, generate_split

TIER_WEIGHTS = {1: 0.25, 2: 0.30, 3: 0.30, 4: 0.15}
PRECEDENCE = {"+": 1, "-": 1, "*": 2}

Expr = int | list[Any]  # an int, or [op, left, right]


def evaluate(expr: Expr) -> int:
    if isinstance(expr, int):
        return expr
    op, left, right = expr
    a, b = evaluate(left), evaluate(right)
    return a + b if op == "+" else a - b if op == "-" else a * b


def render(expr: Expr, parent_precedence: int = 0, right_side: bool = False) -> str:
    """Infix text with only the brackets that precedence and left-associativity need."""
    if isinstance(expr, int):
        return str(expr)
    op, left, right = expr
    precedence = PRECEDENCE[op]
    text = f"{render(left, precedence)}{op}{render(right, precedence, right_side=True)}"
    needs_brackets = precedence < parent_precedence or (right_side and precedence == parent_precedence)
    return f"({text})" if needs_brackets else text


def _tier1(rng: random.Random) -> Expr:
    return [rng.choice("+-"), rng.randint(10, 99), rng.randint(1, 9)]


def _tier2(rng: random.Random) -> Expr:
    return [rng.choice("+-"), rng.randint(10, 99), rng.randint(10, 99)]


def _tier3(rng: random.Random) -> Expr:
    if rng.random() < 0.6:
        return (
            ["*", rng.randint(2, 9), rng.randint(11, 99)]
            if rng.random() < 0.5
            else ["*", rng.randint(11, 99), rng.randint(2, 9)]
        )
    return ["+", rng.randint(2, 60), ["*", rng.randint(2, 9), rng.randint(2, 12)]]


def _tier4(rng: random.Random) -> Expr:
    kind = rng.randrange(4)
    if kind == 0:
        return [rng.choice("+-"), rng.randint(100, 999), rng.randint(10, 999)]
    if kind == 1:
        return ["+", ["+", rng.randint(10, 99), rng.randint(10, 99)], rng.randint(10, 99)]
    if kind == 2:
        return ["*", [rng.choice("+-"), rng.randint(10, 30), rng.randint(2, 9)], rng.randint(2, 9)]
    return ["-", ["*", rng.randint(2, 9), rng.randint(11, 40)], rng.randint(2, 60)]


_TIERS = {1: _tier1, 2: _tier2, 3: _tier3, 4: _tier4}


def make_problem(rng: random.Random, tier: int) -> Problem:
    expr = _TIERS[tier](rng)
    text = render(expr)
    value = evaluate(expr)
    return Problem(
        question=f"What is {text}?",
        answer=str(value),
        difficulty=tier,
        solution=f"{text}={value}",
        meta={"expr": expr},
    )


def generate(
    split: str, n: int, seed: int = 0, difficulties: list[int] | None = None, at_most: bool = False
) -> list[dict]:
    return generate_split(
        "arith",
        make_problem,
        TIER_WEIGHTS,
        split=split,
        n=n,
        seed=seed,
        difficulties=difficulties,
        at_most=at_most,
    )
