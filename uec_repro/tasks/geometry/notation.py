r"""Geometry3K's notation and answer formats, and the helpers every problem kind shares.

Answers are written the way Geometry3K writes them: integers ``68``; terminating decimals ``12.5``;
rounded decimals when the question says so (half up, trailing zeros dropped: ``128.6``, ``45``);
``\frac{a}{b}`` in lowest terms; ``k\sqrt{n}`` with ``n`` square-free; multiples of pi (``25\pi``).
"""

from __future__ import annotations

import random
from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction
from typing import Any

from ..procedural import Problem

LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"  # no I or O (they read as 1 and 0)
LINE_NAMES = ("a", "b", "c", "j", "k", "\\ell", "m", "n", "p", "q", "r", "s")
UNITS = ("", "", "cm", "in.", "ft", "m", "mm", "yd")
PI = Decimal("3.14159265358979323846264338327950288419716939937510582097494459")
PLACE_WORDS = {1: "tenth", 2: "hundredth"}
POLYGON_NAMES = {
    3: "triangle",
    4: "quadrilateral",
    5: "pentagon",
    6: "hexagon",
    7: "heptagon",
    8: "octagon",
    9: "nonagon",
    10: "decagon",
    12: "dodecagon",
}

Number = int | Fraction


def num(value: Number) -> str:
    """An exact number as Geometry3K writes it: ``68``, ``12.5``, ``-3`` (terminating decimals only)."""
    value = Fraction(value)
    if value.denominator == 1:
        return str(value.numerator)
    d = value.denominator
    while d % 2 == 0:
        d //= 2
    while d % 5 == 0:
        d //= 5
    if d != 1:
        raise ValueError(f"{value} has no terminating decimal")
    text = format(Decimal(value.numerator) / Decimal(value.denominator), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def is_short_decimal(value: Number, places: int = 2) -> bool:
    """True when ``value`` is written exactly with at most ``places`` decimals."""
    return (Fraction(value) * 10**places).denominator == 1


def frac(value: Number) -> str:
    r"""``\frac{a}{b}`` in lowest terms (or an integer)."""
    value = Fraction(value)
    if value.denominator == 1:
        return str(value.numerator)
    sign = "-" if value < 0 else ""
    return f"{sign}\\frac{{{abs(value.numerator)}}}{{{value.denominator}}}"


def exact(value: Number) -> str:
    """An exact rational answer: integer, short decimal (``12.5``) or ``\\frac{a}{b}``."""
    return num(value) if is_short_decimal(value) else frac(value)


def simplify_sqrt(radicand: int) -> tuple[int, int]:
    """``sqrt(radicand) = k * sqrt(n)`` with ``n`` square-free; returns ``(k, n)``."""
    if radicand < 0:
        raise ValueError("negative radicand")
    k, n, f = 1, radicand, 2
    while f * f <= n:
        while n % (f * f) == 0:
            n //= f * f
            k *= f
        f += 1
    return k, n


def surd(coef: Number, radicand: int) -> str:
    r"""``coef * sqrt(radicand)`` simplified: ``8\sqrt{2}``, ``\sqrt{13}``, ``12`` (integer ``coef``)."""
    k, n = simplify_sqrt(radicand)
    coef = Fraction(coef) * k
    if n == 1:
        return exact(coef)
    if coef.denominator != 1:
        raise ValueError("surd answers have integer coefficients")
    c = coef.numerator
    return f"\\sqrt{{{n}}}" if c == 1 else f"{c}\\sqrt{{{n}}}"


def pi_multiple(coef: Number) -> str:
    r"""``coef * pi``: ``\pi``, ``25\pi``, ``\frac{25}{2}\pi``."""
    coef = Fraction(coef)
    if coef == 1:
        return "\\pi"
    return f"{frac(coef)}\\pi"


def rounded(value: Decimal, places: int) -> str:
    """``value`` rounded half up to ``places`` decimals, trailing zeros dropped (``128.6``, ``45``)."""
    q = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    text = format(q, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def dec(value: Number, pi_coef: Number = 0, sqrt_coef: Number = 0, radicand: int = 0) -> Decimal:
    """``value + pi_coef * pi + sqrt_coef * sqrt(radicand)`` to 50 significant digits."""
    with localcontext() as ctx:
        ctx.prec = 60
        total = Decimal(0)
        for coef, factor in ((value, Decimal(1)), (pi_coef, PI), (sqrt_coef, Decimal(radicand).sqrt())):
            c = Fraction(coef)
            if c:
                total += Decimal(c.numerator) * factor / Decimal(c.denominator)
        return +total


def round_note(places: int) -> str:
    return f"Round to the nearest {PLACE_WORDS[places]}."


def expr(coef: int, const: int, var: str = "x") -> str:
    """``(3x+10)``, ``(x-4)``, ``(5x)``; a bare number when ``coef`` is 0."""
    if coef == 0:
        return str(const)
    body = f"{'' if coef == 1 else coef}{var}"
    if const:
        body += f"+{const}" if const > 0 else f"-{-const}"
    return f"({body})"


def plain(coef: int, const: int, var: str = "x") -> str:
    return expr(coef, const, var).strip("()")


def meta_num(value: Number) -> int | str:
    """JSON-friendly parameter: ints stay ints, other exact numbers become strings ``"7.5"``/``"9/2"``."""
    value = Fraction(value)
    if value.denominator == 1:
        return value.numerator
    return num(value) if is_short_decimal(value, 6) else f"{value.numerator}/{value.denominator}"


def letters(rng: random.Random, k: int) -> list[str]:
    return rng.sample(LETTERS, k)


def unit_of(rng: random.Random) -> str:
    return rng.choice(UNITS)


def with_unit(value: Number, unit: str) -> str:
    return f"{num(value)} {unit}" if unit else num(value)


def half_or_int(rng: random.Random, lo: int, hi: int, half_share: float = 0.15) -> Fraction:
    """An integer in [lo, hi], or (with probability ``half_share``) a value ending in .5 inside it."""
    if hi > lo and rng.random() < half_share:
        return Fraction(2 * rng.randint(lo, hi - 1) + 1, 2)
    return Fraction(rng.randint(lo, hi))


def problem(tier: int, question: str, answer: str, steps: str, **meta: Any) -> Problem:
    question = question.replace("in..", "in.")
    solution = steps if steps.endswith(answer) else f"{steps}, so the answer is {answer}"
    return Problem(question=question, answer=answer, difficulty=tier, solution=solution, meta=meta)


def angle_names(rng: random.Random) -> tuple[str, str]:
    """Names of two angles: numbered (``1``, ``2``) or three letters sharing a vertex (``ABD``, ``DBC``)."""
    if rng.random() < 0.5:
        i, j = rng.sample(range(1, 9), 2)
        return str(i), str(j)
    a, b, c, d = letters(rng, 4)
    return f"{a}{b}{d}", f"{d}{b}{c}"
