r"""``geometry``: text-only geometry problems of the kinds Geometry3K contains, generated offline.

Geometry3K (Lu et al., 2021; ``hiyouga/geometry3k`` on the Hub) asks high-school geometry questions
about a diagram. This family states the diagram in words instead, so a text-only policy can train on
the same kinds of problems without the Hub. Questions use Geometry3K's LaTeX-ish notation
(``m \angle A = 50``, ``\triangle ABC``, ``\odot P``, ``\widehat{QR}``, algebraic measures such as
``(3x+10)``) and answers are written the way Geometry3K writes them:

* integers ``68``; terminating decimals ``12.5`` (exact values with at most two decimals);
* rounded decimals when the question says so ("Round to the nearest tenth." / "hundredth."),
  rounded half up, trailing zeros dropped (``128.6``, ``45``);
* ``\frac{a}{b}`` in lowest terms; ``k\sqrt{n}`` / ``\sqrt{n}`` with ``n`` square-free;
* multiples of pi: ``\pi``, ``25\pi``, ``\frac{25}{2}\pi``.

Tiers (``difficulty``):

1. one step: third angle of a triangle, complementary / supplementary angles, the other acute
   angle of a right triangle, three angles around a point;
2. two steps, polygons, areas: isosceles base / vertex angles, exterior angle of a triangle,
   interior-angle sums and regular polygons, missing angle of a quadrilateral, parallel lines and a
   transversal (numeric), rectangle and triangle area / perimeter;
3. Pythagoras with surds (or rounded), 45-45-90 and 30-60-90 triangles, circles with pi (area,
   circumference, radius back from them), similar triangles (missing side, perimeter);
4. algebraic angle expressions (solve for x: parallel lines, angle pairs, triangle, isosceles
   triangle, quadrilateral), arc length and sector area, composite figures and shaded regions.

Every problem's ``meta`` holds its ``kind`` and all numeric parameters (numbers that are not integers
are stored as strings such as ``"7.5"``), enough to re-derive the answer independently; ``solution``
is a short worked solution whose last characters are the answer. Each tier's question space has
tens of thousands of distinct questions or more (vertex letters and wording vary as well as numbers).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction
from typing import Any

from .procedural import Problem, generate_split

TIER_WEIGHTS = {1: 0.2, 2: 0.3, 3: 0.3, 4: 0.2}

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


# ------------------------------------------------------------------------------------------------
# formatting
# ------------------------------------------------------------------------------------------------
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


def angle_answer(value: Number) -> str:
    return num(value)


# ------------------------------------------------------------------------------------------------
# tier 1: one step
# ------------------------------------------------------------------------------------------------
def triangle_third_angle(rng: random.Random) -> Problem:
    names = letters(rng, 3)
    a = rng.randint(15, 125)
    b = rng.randint(15, 165 - a)
    c = 180 - a - b
    missing = rng.randrange(3)
    given = [n for i, n in enumerate(names) if i != missing]
    tri = "".join(names)
    ask = rng.choice([f"Find m \\angle {names[missing]}.", f"Find the measure of \\angle {names[missing]}."])
    question = f"In \\triangle {tri}, m \\angle {given[0]} = {a} and m \\angle {given[1]} = {b}. {ask}"
    steps = f"The angles of a triangle sum to 180, so m \\angle {names[missing]} = 180 - {a} - {b} = {c}"
    return problem(1, question, str(c), steps, kind="triangle_third_angle", given=[a, b])


def _angle_pair(rng: random.Random, total: int, word: str, kind: str) -> Problem:
    a = half_or_int(rng, 1, total - 1)
    p, q = angle_names(rng)
    b = total - a
    if word == "supplementary" and len(p) == 3 and rng.random() < 0.5:
        relation = "form a linear pair"
    else:
        relation = f"are {word}"
    question = rng.choice(
        [
            f"\\angle {p} and \\angle {q} {relation}. If m \\angle {p} = {num(a)}, find m \\angle {q}.",
            f"Find m \\angle {q} if \\angle {p} and \\angle {q} {relation} and m \\angle {p} = {num(a)}.",
        ]
    )
    steps = f"The two angles sum to {total}, so m \\angle {q} = {total} - {num(a)} = {num(b)}"
    return problem(1, question, num(b), steps, kind=kind, given=meta_num(a))


def complementary(rng: random.Random) -> Problem:
    return _angle_pair(rng, 90, "complementary", "complementary")


def supplementary(rng: random.Random) -> Problem:
    return _angle_pair(rng, 180, "supplementary", "supplementary")


def right_triangle_acute(rng: random.Random) -> Problem:
    a_name, b_name, c_name = letters(rng, 3)
    a = half_or_int(rng, 1, 89)
    question = (
        f"In right \\triangle {a_name}{b_name}{c_name}, \\angle {c_name} is a right angle and "
        f"m \\angle {a_name} = {num(a)}. Find m \\angle {b_name}."
    )
    steps = f"The acute angles of a right triangle are complementary, so m \\angle {b_name} = 90 - {num(a)} = {num(90 - a)}"
    return problem(1, question, num(90 - a), steps, kind="right_triangle_acute", given=meta_num(a))


def angles_around_point(rng: random.Random) -> Problem:
    p, a_name, b_name, c_name = letters(rng, 4)
    a = rng.randint(40, 170)
    b = rng.randint(max(40, 181 - a), min(170, 330 - a))
    c = 360 - a - b
    question = (
        f"Rays {p}{a_name}, {p}{b_name}, and {p}{c_name} divide the plane around point {p} into three angles. "
        f"If m \\angle {a_name}{p}{b_name} = {a} and m \\angle {b_name}{p}{c_name} = {b}, find m \\angle {c_name}{p}{a_name}."
    )
    steps = f"The angles around a point sum to 360, so m \\angle {c_name}{p}{a_name} = 360 - {a} - {b} = {c}"
    return problem(1, question, str(c), steps, kind="angles_around_point", given=[a, b])


# ------------------------------------------------------------------------------------------------
# tier 2: two steps, polygons, areas
# ------------------------------------------------------------------------------------------------
def isosceles_base_angle(rng: random.Random) -> Problem:
    v_name, b1, b2 = letters(rng, 3)
    v = rng.randint(10, 170)
    base = Fraction(180 - v, 2)
    question = (
        f"In \\triangle {v_name}{b1}{b2}, {v_name}{b1} = {v_name}{b2} and m \\angle {v_name} = {v}. "
        f"Find m \\angle {b1}."
    )
    steps = (
        f"The base angles opposite the equal sides are congruent, so 2 m \\angle {b1} = 180 - {v} = {180 - v} "
        f"and m \\angle {b1} = {num(base)}"
    )
    return problem(2, question, num(base), steps, kind="isosceles_base_angle", vertex=v)


def isosceles_vertex_angle(rng: random.Random) -> Problem:
    v_name, b1, b2 = letters(rng, 3)
    base = half_or_int(rng, 10, 85)
    v = 180 - 2 * base
    question = (
        f"In \\triangle {v_name}{b1}{b2}, {v_name}{b1} = {v_name}{b2} and m \\angle {b2} = {num(base)}. "
        f"Find m \\angle {v_name}."
    )
    steps = (
        f"The base angles are congruent, so m \\angle {b1} = {num(base)} and "
        f"m \\angle {v_name} = 180 - 2({num(base)}) = {num(v)}"
    )
    return problem(2, question, num(v), steps, kind="isosceles_vertex_angle", base=meta_num(base))


def exterior_angle(rng: random.Random) -> Problem:
    a_name, b_name, c_name, d_name = letters(rng, 4)
    a = rng.randint(15, 120)
    b = rng.randint(15, 165 - a)
    setup = f"In \\triangle {a_name}{b_name}{c_name}, side {b_name}{c_name} is extended through {c_name} to point {d_name}."
    ext = f"\\angle {a_name}{c_name}{d_name}"
    if rng.random() < 0.5:
        question = f"{setup} If m \\angle {a_name} = {a} and m \\angle {b_name} = {b}, find m {ext}."
        steps = f"An exterior angle equals the sum of the two remote interior angles, so m {ext} = {a} + {b} = {a + b}"
        return problem(2, question, str(a + b), steps, kind="exterior_angle", find="exterior", remote=[a, b])
    question = f"{setup} If m {ext} = {a + b} and m \\angle {a_name} = {a}, find m \\angle {b_name}."
    steps = (
        f"An exterior angle equals the sum of the two remote interior angles, so "
        f"m \\angle {b_name} = {a + b} - {a} = {b}"
    )
    return problem(
        2, question, str(b), steps, kind="exterior_angle", find="remote", exterior=a + b, remote=[a]
    )


def _polygon_phrase(rng: random.Random, n: int, regular: bool) -> str:
    prefix = "regular" if regular else "convex"
    if n in POLYGON_NAMES and rng.random() < 0.6:
        return f"a {prefix} {POLYGON_NAMES[n]}"
    return rng.choice([f"a {prefix} {n}-gon", f"a {prefix} polygon with {n} sides"])


def polygon_interior_sum(rng: random.Random) -> Problem:
    n = rng.randint(4, 40)
    total = 180 * (n - 2)
    question = rng.choice(
        [
            f"Find the sum of the measures of the interior angles of {_polygon_phrase(rng, n, False)}.",
            f"What is the sum of the interior angle measures of {_polygon_phrase(rng, n, False)}?",
        ]
    )
    steps = f"The interior angles of an n-gon sum to 180(n - 2) = 180({n} - 2) = {total}"
    return problem(2, question, str(total), steps, kind="polygon_interior_sum", n=n)


def regular_polygon_angle(rng: random.Random) -> Problem:
    n = rng.randint(3, 40)
    which = rng.choice(["interior", "exterior"])
    value = Fraction(180 * (n - 2), n) if which == "interior" else Fraction(360, n)
    places = None if is_short_decimal(value) else 1
    answer = num(value) if places is None else rounded(dec(value), places)
    question = f"Find the measure of each {which} angle of {_polygon_phrase(rng, n, True)}."
    if places:
        question += f" {round_note(places)}"
    formula = f"180({n} - 2)/{n}" if which == "interior" else f"360/{n}"
    approx = "=" if places is None else "\\approx"
    steps = f"Each {which} angle of a regular {n}-gon measures {formula} {approx} {answer}"
    return problem(2, question, answer, steps, kind="regular_polygon_angle", n=n, which=which, places=places)


REGULAR_SIDES = [n for n in range(3, 361) if 360 % n == 0]


def regular_polygon_sides(rng: random.Random) -> Problem:
    n = rng.choice(REGULAR_SIDES)
    which = rng.choice(["interior", "exterior"])
    angle = 180 - 360 // n if which == "interior" else 360 // n
    question = rng.choice(
        [
            f"Each {which} angle of a regular polygon measures {angle}. How many sides does the polygon have?",
            f"The measure of an {which} angle of a regular polygon is {angle}. Find the number of sides of the polygon.",
        ]
    )
    if which == "interior":
        steps = f"Each exterior angle measures 180 - {angle} = {180 - angle}, so the polygon has 360/{180 - angle} = {n}"
    else:
        steps = f"The exterior angles sum to 360, so the polygon has 360/{angle} = {n}"
    return problem(2, question, str(n), steps, kind="regular_polygon_sides", which=which, angle=angle)


def quadrilateral_missing_angle(rng: random.Random) -> Problem:
    names = letters(rng, 4)
    while True:
        a, b, c = (rng.randint(40, 170) for _ in range(3))
        d = 360 - a - b - c
        if 40 <= d <= 170:
            break
    quad = "".join(names)
    question = (
        f"In quadrilateral {quad}, m \\angle {names[0]} = {a}, m \\angle {names[1]} = {b}, and "
        f"m \\angle {names[2]} = {c}. Find m \\angle {names[3]}."
    )
    steps = f"The angles of a quadrilateral sum to 360, so m \\angle {names[3]} = 360 - {a} - {b} - {c} = {d}"
    return problem(2, question, str(d), steps, kind="quadrilateral_missing_angle", given=[a, b, c])


PARALLEL_PAIRS = {
    "corresponding": [(1, 5), (2, 6), (3, 7), (4, 8)],
    "alternate interior": [(3, 6), (4, 5)],
    "alternate exterior": [(1, 8), (2, 7)],
    "consecutive interior": [(3, 5), (4, 6)],
}
PARALLEL_EQUAL = {
    "corresponding": True,
    "alternate interior": True,
    "alternate exterior": True,
    "consecutive interior": False,
}


def _parallel_setup(rng: random.Random) -> tuple[str, str, int, int]:
    l1, l2, t = rng.sample(LINE_NAMES, 3)
    relation = rng.choice(list(PARALLEL_PAIRS))
    i, j = rng.choice(PARALLEL_PAIRS[relation])
    if rng.random() < 0.5:
        i, j = j, i
    setup = (
        f"Lines {l1} and {l2} are parallel and are cut by transversal {t}. "
        f"\\angle {i} and \\angle {j} are {relation} angles"
    )
    return setup, relation, i, j


def parallel_lines_angle(rng: random.Random) -> Problem:
    setup, relation, i, j = _parallel_setup(rng)
    a = rng.randint(20, 160)
    b = a if PARALLEL_EQUAL[relation] else 180 - a
    question = f"{setup}. If m \\angle {i} = {a}, find m \\angle {j}."
    if PARALLEL_EQUAL[relation]:
        steps = f"{relation.capitalize()} angles are congruent, so m \\angle {j} = m \\angle {i} = {b}"
    else:
        steps = f"Consecutive interior angles are supplementary, so m \\angle {j} = 180 - {a} = {b}"
    return problem(2, question, str(b), steps, kind="parallel_lines_angle", relation=relation, given=a)


def _side(rng: random.Random, lo: int, hi: int, half_share: float = 0.15) -> Fraction:
    return half_or_int(rng, lo, hi, half_share)


def rectangle_measure(rng: random.Random) -> Problem:
    names = "".join(letters(rng, 4))
    length = _side(rng, 2, 40)
    width = _side(rng, 2, 40, half_share=0.0)
    while width == length:
        width = _side(rng, 2, 40, half_share=0.0)
    unit = unit_of(rng)
    find = rng.choice(["area", "perimeter"])
    question = rng.choice(
        [
            f"Rectangle {names} has length {with_unit(length, unit)} and width {with_unit(width, unit)}. Find its {find}.",
            f"Find the {find} of a rectangle with sides {with_unit(length, unit)} and {with_unit(width, unit)}.",
        ]
    )
    if find == "area":
        value = length * width
        steps = f"A = lw = {num(length)} \\cdot {num(width)} = {num(value)}"
    else:
        value = 2 * (length + width)
        steps = f"P = 2(l + w) = 2({num(length)} + {num(width)}) = {num(value)}"
    return problem(
        2,
        question,
        num(value),
        steps,
        kind="rectangle_measure",
        find=find,
        length=meta_num(length),
        width=meta_num(width),
    )


def rectangle_area_from_perimeter(rng: random.Random) -> Problem:
    names = "".join(letters(rng, 4))
    length = rng.randint(3, 40)
    width = rng.randint(2, 40)
    while width == length:
        width = rng.randint(2, 40)
    perimeter = 2 * (length + width)
    unit = unit_of(rng)
    question = (
        f"The perimeter of rectangle {names} is {with_unit(perimeter, unit)} and its length is "
        f"{with_unit(length, unit)}. Find the area of the rectangle."
    )
    steps = (
        f"The width is {perimeter}/2 - {length} = {width}, so A = {length} \\cdot {width} = {length * width}"
    )
    return problem(
        2,
        question,
        str(length * width),
        steps,
        kind="rectangle_area_from_perimeter",
        perimeter=perimeter,
        length=length,
    )


def triangle_area(rng: random.Random) -> Problem:
    names = "".join(letters(rng, 3))
    base = rng.randint(2, 40)
    height = rng.randint(2, 40)
    unit = unit_of(rng)
    value = Fraction(base * height, 2)
    question = rng.choice(
        [
            f"Find the area of a triangle with base {with_unit(base, unit)} and height {with_unit(height, unit)}.",
            f"In \\triangle {names}, the base {names[1]}{names[2]} = {with_unit(base, unit)} and the altitude from "
            f"{names[0]} to {names[1]}{names[2]} is {with_unit(height, unit)}. Find the area of \\triangle {names}.",
        ]
    )
    steps = f"A = \\frac{{1}}{{2}}bh = \\frac{{1}}{{2}}({base})({height}) = {num(value)}"
    return problem(2, question, num(value), steps, kind="triangle_area", base=base, height=height)


# ------------------------------------------------------------------------------------------------
# tier 3: Pythagoras and surds, circles with pi, similar triangles
# ------------------------------------------------------------------------------------------------
def _radical_or_round(rng: random.Random, coef: Number, radicand: int) -> tuple[str, int | None, str]:
    """(answer, places, instruction) for ``coef * sqrt(radicand)``: simplest radical form or rounded to a tenth."""
    k, n = simplify_sqrt(radicand)
    if n == 1:
        return exact(Fraction(coef) * k), None, ""
    if rng.random() < 0.3:
        return rounded(dec(0, sqrt_coef=coef, radicand=radicand), 1), 1, f" {round_note(1)}"
    return surd(coef, radicand), None, " Express your answer in simplest radical form."


PYTHAGOREAN_TRIPLES = (
    (3, 4, 5),
    (5, 12, 13),
    (8, 15, 17),
    (7, 24, 25),
    (20, 21, 29),
    (9, 40, 41),
    (12, 35, 37),
)


def _triple(rng: random.Random) -> tuple[int, int, int]:
    """A multiple of a Pythagorean triple with hypotenuse at most 100, legs in random order."""
    a, b, c = rng.choice(PYTHAGOREAN_TRIPLES)
    k = rng.randint(1, max(1, 100 // c))
    a, b = (a, b) if rng.random() < 0.5 else (b, a)
    return k * a, k * b, k * c


def _root_steps(radicand: int, answer: str, places: int | None) -> str:
    """`` = \\sqrt{r} = answer`` (or ``\\approx answer``), without repeating an unchanged radical."""
    root = f"\\sqrt{{{radicand}}}"
    if places is not None:
        return f" = {root} \\approx {answer}"
    return f" = {root}" if root == answer else f" = {root} = {answer}"


def pythagoras_hypotenuse(rng: random.Random) -> Problem:
    a_name, b_name, c_name = letters(rng, 3)
    if rng.random() < 0.25:
        a, b, _ = _triple(rng)
    else:
        a, b = rng.randint(1, 24), rng.randint(1, 24)
    answer, places, note = _radical_or_round(rng, 1, a * a + b * b)
    hyp = f"{a_name}{b_name}"
    question = (
        f"In right \\triangle {a_name}{b_name}{c_name}, \\angle {c_name} is a right angle, "
        f"{a_name}{c_name} = {a}, and {b_name}{c_name} = {b}. Find {hyp}.{note}"
    )
    steps = f"By the Pythagorean theorem, {hyp} = \\sqrt{{{a}^2 + {b}^2}}{_root_steps(a * a + b * b, answer, places)}"
    return problem(3, question, answer, steps, kind="pythagoras_hypotenuse", legs=[a, b], places=places)


def pythagoras_leg(rng: random.Random) -> Problem:
    a_name, b_name, c_name = letters(rng, 3)
    if rng.random() < 0.25:
        a, _, c = _triple(rng)
    else:
        c = rng.randint(3, 30)
        a = rng.randint(1, c - 1)
    answer, places, note = _radical_or_round(rng, 1, c * c - a * a)
    question = (
        f"In right \\triangle {a_name}{b_name}{c_name}, \\angle {c_name} is a right angle, "
        f"{a_name}{b_name} = {c}, and {a_name}{c_name} = {a}. Find {b_name}{c_name}.{note}"
    )
    steps = f"By the Pythagorean theorem, {b_name}{c_name} = \\sqrt{{{c}^2 - {a}^2}}{_root_steps(c * c - a * a, answer, places)}"
    return problem(3, question, answer, steps, kind="pythagoras_leg", hypotenuse=c, leg=a, places=places)


def rectangle_diagonal(rng: random.Random) -> Problem:
    names = letters(rng, 4)
    length, width = rng.randint(2, 40), rng.randint(1, 39)
    while width == length:
        width = rng.randint(1, 39)
    answer, places, note = _radical_or_round(rng, 1, length**2 + width**2)
    rect = "".join(names)
    question = (
        f"Rectangle {rect} has {names[0]}{names[1]} = {length} and {names[1]}{names[2]} = {width}. "
        f"Find the length of diagonal {names[0]}{names[2]}.{note}"
    )
    steps = (
        f"The diagonal is \\sqrt{{{length}^2 + {width}^2}}{_root_steps(length**2 + width**2, answer, places)}"
    )
    return problem(
        3, question, answer, steps, kind="rectangle_diagonal", length=length, width=width, places=places
    )


def _radical_text(k: int, n: int) -> str:
    return str(k) if n == 1 else surd(k, n)


def special_45(rng: random.Random) -> Problem:
    """Isosceles right triangle: hypotenuse = leg * sqrt(2)."""
    a_name, b_name, c_name = letters(rng, 3)
    given = rng.choice(["leg", "hypotenuse"])
    if given == "leg":
        k, n = rng.randint(1, 40), rng.choice([1, 1, 1, 2])  # leg = k sqrt(n)
        answer = _radical_text(k * 2, 1) if n == 2 else surd(k, 2)
        find = "hypotenuse"
        steps = f"In a 45-45-90 triangle the hypotenuse is \\sqrt{{2}} times a leg: {_radical_text(k, n)} \\cdot \\sqrt{{2}} = {answer}"
    else:
        if rng.random() < 0.5:
            k, n = 2 * rng.randint(1, 30), 1  # even integer hypotenuse -> (k/2) sqrt 2
            answer = surd(k // 2, 2)
        else:
            k, n = rng.randint(1, 40), 2  # hypotenuse k sqrt 2 -> leg k
            answer = str(k)
        find = "leg"
        steps = f"In a 45-45-90 triangle a leg is the hypotenuse divided by \\sqrt{{2}}: \\frac{{{_radical_text(k, n)}}}{{\\sqrt{{2}}}} = {answer}"
    value_text = _radical_text(k, n)
    if rng.random() < 0.5:
        question = (
            f"In an isosceles right triangle, the {'length of each leg' if given == 'leg' else 'hypotenuse'} is "
            f"{value_text}. Find the length of {'the hypotenuse' if find == 'hypotenuse' else 'a leg'}."
        )
    else:
        known, unknown = (
            (f"{a_name}{c_name}", f"{a_name}{b_name}")
            if given == "leg"
            else (f"{a_name}{b_name}", f"{a_name}{c_name}")
        )
        question = (
            f"In \\triangle {a_name}{b_name}{c_name}, m \\angle {c_name} = 90, m \\angle {a_name} = 45, and "
            f"{known} = {value_text}. Find {unknown}."
        )
    return problem(3, question, answer, steps, kind="special_45", given=given, k=k, n=n)


def special_30_60(rng: random.Random) -> Problem:
    """30-60-90 triangle with shorter leg s: longer leg s sqrt(3), hypotenuse 2s."""
    a_name, b_name, c_name = letters(rng, 3)  # right angle at C, 30 at A: BC short, AC long, AB hyp
    sides = {"short": f"{b_name}{c_name}", "long": f"{a_name}{c_name}", "hypotenuse": f"{a_name}{b_name}"}
    given = rng.choice(["short", "long", "hypotenuse"])
    m = rng.randint(1, 30)
    if given == "short":
        k, n = m, 1
        short = (Fraction(m), 1)  # (coef, radicand) of the shorter leg
    elif given == "hypotenuse":
        k, n = 2 * m, 1
        short = (Fraction(m), 1)
    elif rng.random() < 0.5:
        k, n = m, 3  # long = m sqrt 3 -> short = m
        short = (Fraction(m), 1)
    else:
        k, n = 3 * m, 1  # long = 3m -> short = m sqrt 3
        short = (Fraction(m), 3)
    find = rng.choice([s for s in sides if s != given])
    coef, rad = short
    if find == "short":
        answer = surd(coef, rad)
    elif find == "long":
        answer = surd(coef, rad * 3)
    else:
        answer = surd(2 * coef, rad)
    value_text = _radical_text(k, n)
    words = {"short": "shorter leg", "long": "longer leg", "hypotenuse": "hypotenuse"}
    if rng.random() < 0.5:
        question = f"In a 30-60-90 triangle, the {words[given]} is {value_text}. Find the length of the {words[find]}."
    else:
        question = (
            f"In \\triangle {a_name}{b_name}{c_name}, m \\angle {c_name} = 90, m \\angle {a_name} = 30, and "
            f"{sides[given]} = {value_text}. Find {sides[find]}."
        )
    steps = (
        f"In a 30-60-90 triangle the sides are s, s\\sqrt{{3}}, 2s; here the shorter leg is s = {surd(coef, rad)}, "
        f"so the {words[find]} is {answer}"
    )
    return problem(3, question, answer, steps, kind="special_30_60", given=given, k=k, n=n, find=find)


def _circle_given(rng: random.Random) -> tuple[Fraction, str, str]:
    """(radius, 'radius'|'diameter', phrase) with the given measure an integer."""
    if rng.random() < 0.5:
        r = Fraction(rng.randint(1, 30))
        return r, "radius", f"radius {num(r)}"
    d = rng.randint(2, 50)
    return Fraction(d, 2), "diameter", f"diameter {d}"


def _pi_or_round(rng: random.Random, coef: Fraction, places: int = 1) -> tuple[str, int | None, str]:
    if rng.random() < 0.5:
        return pi_multiple(coef), None, " Express your answer in terms of \\pi."
    return rounded(dec(0, pi_coef=coef), places), places, f" {round_note(places)}"


def circle_measure(rng: random.Random) -> Problem:
    r, given, phrase = _circle_given(rng)
    center = rng.choice(LETTERS)
    find = rng.choice(["area", "circumference"])
    coef = r * r if find == "area" else 2 * r
    answer, places, note = _pi_or_round(rng, coef)
    question = rng.choice(
        [
            f"Find the {find} of a circle with {phrase}.",
            f"\\odot {center} has {phrase}. Find the {find} of \\odot {center}.",
        ]
    )
    question += note
    if find == "area":
        steps = f"A = \\pi r^2 = \\pi ({num(r)})^2 = {pi_multiple(coef)}"
    else:
        steps = f"C = 2\\pi r = 2\\pi ({num(r)}) = {pi_multiple(coef)}"
    if places is not None:
        steps += f" \\approx {answer}"
    return problem(
        3,
        question,
        answer,
        steps,
        kind="circle_measure",
        find=find,
        given=given,
        radius=meta_num(r),
        places=places,
    )


def circle_radius(rng: random.Random) -> Problem:
    center = rng.choice(LETTERS)
    r = rng.randint(1, 30)
    given = rng.choice(["area", "circumference"])
    find = rng.choice(["radius", "diameter"])
    value = pi_multiple(r * r) if given == "area" else pi_multiple(2 * r)
    answer = str(r if find == "radius" else 2 * r)
    question = rng.choice(
        [
            f"The {given} of a circle is {value}. Find the {find} of the circle.",
            f"The {given} of \\odot {center} is {value}. Find its {find}.",
        ]
    )
    if given == "area":
        steps = f"\\pi r^2 = {value}, so r^2 = {r * r} and r = {r}"
    else:
        steps = f"2\\pi r = {value}, so r = {r}"
    if find == "diameter":
        steps += f"; the diameter is 2r = {2 * r}"
    return problem(
        3,
        question,
        answer,
        steps,
        kind="circle_radius",
        given=given,
        value_coef=r * r if given == "area" else 2 * r,
        find=find,
    )


def _similar_names(rng: random.Random) -> tuple[list[str], list[str]]:
    names = letters(rng, 6)
    return names[:3], names[3:]


def similar_side(rng: random.Random) -> Problem:
    first, second = _similar_names(rng)
    p, q = rng.randint(1, 6), rng.randint(1, 6)
    while p == q or math.gcd(p, q) != 1:
        p, q = rng.randint(1, 6), rng.randint(1, 6)
    m = rng.randint(1, 8)
    known_from, known_to = q * m, p * m  # a side of the first triangle and its image; ratio p/q
    other = rng.randint(2, 30)
    pairs = [(0, 1), (1, 2), (0, 2)]
    i, j = rng.sample(pairs, 2)
    seg = lambda tri, ij: f"{tri[ij[0]]}{tri[ij[1]]}"  # noqa: E731
    if rng.random() < 0.5:  # unknown in the second triangle
        value = Fraction(other * known_to, known_from)
        question = (
            f"\\triangle {''.join(first)} \\sim \\triangle {''.join(second)}. If {seg(first, i)} = {known_from}, "
            f"{seg(second, i)} = {known_to}, and {seg(first, j)} = {other}, find {seg(second, j)}."
        )
        ratio_from, ratio_to, unknown = known_from, known_to, seg(second, j)
    else:  # unknown in the first triangle
        value = Fraction(other * known_from, known_to)
        question = (
            f"\\triangle {''.join(first)} \\sim \\triangle {''.join(second)}. If {seg(first, i)} = {known_from}, "
            f"{seg(second, i)} = {known_to}, and {seg(second, j)} = {other}, find {seg(first, j)}."
        )
        ratio_from, ratio_to, unknown = known_to, known_from, seg(first, j)
    answer = exact(value)
    steps = f"Corresponding sides are proportional, so {unknown} = {other} \\cdot \\frac{{{ratio_to}}}{{{ratio_from}}} = {answer}"
    return problem(
        3, question, answer, steps, kind="similar_side", ratio_from=ratio_from, ratio_to=ratio_to, other=other
    )


def similar_perimeter(rng: random.Random) -> Problem:
    first, second = _similar_names(rng)
    a, d = rng.randint(2, 30), rng.randint(2, 30)
    while a == d:
        d = rng.randint(2, 30)
    t1, t2 = "".join(first), "".join(second)
    s1, s2 = f"{first[0]}{first[1]}", f"{second[0]}{second[1]}"
    if rng.random() < 0.5:
        answer = frac(Fraction(a, d))
        question = (
            f"\\triangle {t1} \\sim \\triangle {t2} with {s1} = {a} and {s2} = {d}. Find the ratio of the perimeter "
            f"of \\triangle {t1} to the perimeter of \\triangle {t2}."
        )
        steps = f"The perimeters have the same ratio as corresponding sides: \\frac{{{a}}}{{{d}}} = {answer}"
        return problem(3, question, answer, steps, kind="similar_perimeter", find="ratio", sides=[a, d])
    perimeter = rng.randint(2 * a + 1, 4 * a)  # a triangle's perimeter exceeds twice any side
    value = Fraction(perimeter * d, a)
    answer = exact(value)
    question = (
        f"\\triangle {t1} \\sim \\triangle {t2}. The perimeter of \\triangle {t1} is {perimeter}, {s1} = {a}, and "
        f"{s2} = {d}. Find the perimeter of \\triangle {t2}."
    )
    steps = f"The perimeters have the same ratio as corresponding sides, so P = {perimeter} \\cdot \\frac{{{d}}}{{{a}}} = {answer}"
    return problem(
        3,
        question,
        answer,
        steps,
        kind="similar_perimeter",
        find="perimeter",
        sides=[a, d],
        perimeter=perimeter,
    )


# ------------------------------------------------------------------------------------------------
# tier 4: algebra, arcs and sectors, composite figures
# ------------------------------------------------------------------------------------------------
def _linear(rng: random.Random, value: int, x: int, coef_range: tuple[int, int] = (1, 9)) -> tuple[int, int]:
    """(coef, const) with coef * x + const == value, preferring textbook-sized constants (|const| <= 90)."""
    for _ in range(20):
        coef = rng.randint(*coef_range)
        if abs(value - coef * x) <= 90:
            break
    return coef, value - coef * x


def _solve_sum(coef: int, const: int, rhs: int, x: int) -> str:
    """Text of solving coef*x + const = rhs (coef > 0)."""
    if coef == 1:
        return f"x = {rhs - const}" if rhs - const == x else f"x = {x}"
    return f"{coef}x = {rhs - const} and x = {x}"


def _solve_equal(p: int, q: int, r: int, s: int, x: int) -> str:
    """Text of solving p*x + q = r*x + s (p != r)."""
    coef, rhs = (p - r, s - q) if p > r else (r - p, q - s)
    return f"{coef}x = {rhs} and x = {x}" if coef != 1 else f"x = {x}"


def _find_x_or_angle(rng: random.Random, angle_name: str) -> str:
    return "x" if rng.random() < 0.7 else angle_name


def parallel_lines_algebra(rng: random.Random) -> Problem:
    setup, relation, i, j = _parallel_setup(rng)
    x = rng.randint(2, 40)
    a = rng.randint(20, 160)
    b = a if PARALLEL_EQUAL[relation] else 180 - a
    p, q = _linear(rng, a, x)
    r, s = _linear(rng, b, x, (0, 9))
    while PARALLEL_EQUAL[relation] and r == p:
        r, s = _linear(rng, b, x, (0, 9))
    find = _find_x_or_angle(rng, str(i))
    ask = "Find x." if find == "x" else f"Find m \\angle {i}."
    question = f"{setup}, with m \\angle {i} = {expr(p, q)} and m \\angle {j} = {expr(r, s)}. {ask}"
    if PARALLEL_EQUAL[relation]:
        eq = f"{relation.capitalize()} angles are congruent: {plain(p, q)} = {plain(r, s)}"
        steps = f"{eq}, so {_solve_equal(p, q, r, s, x)}"
    else:
        eq = f"Consecutive interior angles are supplementary: {expr(p, q)} + {expr(r, s)} = 180"
        steps = f"{eq}, so {_solve_sum(p + r, q + s, 180, x)}"
    answer = str(x) if find == "x" else str(a)
    if find != "x":
        steps += f", and m \\angle {i} = {plain(p, q).replace('x', f'({x})')} = {a}"
    return problem(
        4,
        question,
        answer,
        steps,
        kind="parallel_lines_algebra",
        relation=relation,
        expr1=[p, q],
        expr2=[r, s],
        find=find,
    )


def angle_pair_algebra(rng: random.Random) -> Problem:
    relation = rng.choice(["complementary", "supplementary", "vertical"])
    total = {"complementary": 90, "supplementary": 180, "vertical": None}[relation]
    x = rng.randint(2, 30)
    a = rng.randint(10, (total or 180) - 10)
    b = a if total is None else total - a
    p, q = _linear(rng, a, x)
    r, s = _linear(rng, b, x)
    while total is None and r == p:
        r, s = _linear(rng, b, x)
    n1, n2 = angle_names(rng)
    find = _find_x_or_angle(rng, n1)
    verb = "are vertical angles" if total is None else f"are {relation}"
    ask = "Find x." if find == "x" else f"Find m \\angle {n1}."
    question = f"\\angle {n1} and \\angle {n2} {verb}, m \\angle {n1} = {expr(p, q)}, and m \\angle {n2} = {expr(r, s)}. {ask}"
    if total is None:
        steps = (
            f"Vertical angles are congruent: {plain(p, q)} = {plain(r, s)}, so {_solve_equal(p, q, r, s, x)}"
        )
    else:
        steps = f"The angles sum to {total}: {expr(p, q)} + {expr(r, s)} = {total}, so {_solve_sum(p + r, q + s, total, x)}"
    answer = str(x) if find == "x" else str(a)
    if find != "x":
        steps += f", and m \\angle {n1} = {a}"
    return problem(
        4,
        question,
        answer,
        steps,
        kind="angle_pair_algebra",
        relation=relation,
        expr1=[p, q],
        expr2=[r, s],
        find=find,
    )


def _split_total(rng: random.Random, total: int, parts: int, lo: int, hi: int) -> list[int]:
    while True:
        values = [rng.randint(lo, hi) for _ in range(parts - 1)]
        last = total - sum(values)
        if lo <= last <= hi:
            return [*values, last]


def polygon_angles_algebra(rng: random.Random) -> Problem:
    sides = rng.choice([3, 3, 4])
    total = 180 * (sides - 2)
    names = letters(rng, sides)
    x = rng.randint(2, 30)
    values = _split_total(rng, total, sides, 20, 160)
    exprs = [_linear(rng, v, x, (1, 6)) for v in values]
    if rng.random() < 0.3:  # one measure given as a number
        k = rng.randrange(sides)
        exprs[k] = (0, values[k])
    if all(c == 0 for c, _ in exprs):
        exprs[0] = _linear(rng, values[0], x, (1, 6))
    shape = "\\triangle" if sides == 3 else "quadrilateral"
    measures = [f"m \\angle {n} = {expr(c, k)}" for n, (c, k) in zip(names, exprs, strict=True)]
    listing = ", ".join(measures[:-1]) + f", and {measures[-1]}"
    target = rng.choice([i for i, (c, _) in enumerate(exprs) if c != 0])
    find = "x" if rng.random() < 0.7 else names[target]
    ask = "Find x." if find == "x" else f"Find m \\angle {names[target]}."
    question = f"In {shape} {''.join(names)}, {listing}. {ask}"
    coef = sum(c for c, _ in exprs)
    const = sum(k for _, k in exprs)
    steps = (
        f"The angles sum to {total}: {coef}x {'+' if const >= 0 else '-'} {abs(const)} = {total}, so x = {x}"
    )
    answer = str(x) if find == "x" else str(values[target])
    if find != "x":
        steps += f" and m \\angle {names[target]} = {values[target]}"
    return problem(
        4,
        question,
        answer,
        steps,
        kind="polygon_angles_algebra",
        sides=sides,
        exprs=[list(e) for e in exprs],
        find=find,
        target=target if find != "x" else None,
    )


def isosceles_algebra(rng: random.Random) -> Problem:
    apex, b1, b2 = letters(rng, 3)
    x = rng.randint(2, 30)
    base = rng.randint(20, 85)
    p, q = _linear(rng, base, x)
    r, s = _linear(rng, base, x)
    while r == p:
        r, s = _linear(rng, base, x)
    find = rng.choice(["x", "x", "apex"])
    ask = "Find x." if find == "x" else f"Find m \\angle {apex}."
    question = (
        f"In \\triangle {apex}{b1}{b2}, {apex}{b1} = {apex}{b2}, m \\angle {b1} = {expr(p, q)}, and "
        f"m \\angle {b2} = {expr(r, s)}. {ask}"
    )
    steps = f"The base angles are congruent: {plain(p, q)} = {plain(r, s)}, so {_solve_equal(p, q, r, s, x)}"
    if find == "x":
        answer = str(x)
    else:
        answer = str(180 - 2 * base)
        steps += f"; each base angle measures {base}, so m \\angle {apex} = 180 - 2({base}) = {answer}"
    return problem(
        4, question, answer, steps, kind="isosceles_algebra", expr1=[p, q], expr2=[r, s], find=find
    )


def arc_or_sector(rng: random.Random) -> Problem:
    center, a_name, b_name = letters(rng, 3)
    r, given, phrase = _circle_given(rng)
    angle = rng.choice([rng.randrange(10, 360, 5), rng.randrange(15, 360, 15)])
    find = rng.choice(["arc", "sector"])
    coef = r * angle / 180 if find == "arc" else r * r * angle / 360
    if rng.random() < 0.5:
        answer, places, note = pi_multiple(coef), None, " Express your answer in terms of \\pi."
    else:
        places = 2 if find == "arc" else 1
        answer, note = rounded(dec(0, pi_coef=coef), places), f" {round_note(places)}"
    setup = f"In \\odot {center} with {phrase}, m \\angle {a_name}{center}{b_name} = {angle}."
    if find == "arc":
        question = f"{setup} Find the length of \\widehat{{{a_name}{b_name}}}.{note}"
        formula = f"\\frac{{{angle}}}{{360}} \\cdot 2\\pi ({num(r)}) = {pi_multiple(coef)}"
    else:
        question = f"{setup} Find the area of sector {a_name}{center}{b_name}.{note}"
        formula = f"\\frac{{{angle}}}{{360}} \\cdot \\pi ({num(r)})^2 = {pi_multiple(coef)}"
    steps = formula if places is None else f"{formula} \\approx {answer}"
    return problem(
        4,
        question,
        answer,
        steps,
        kind="arc_or_sector",
        find=find,
        given=given,
        radius=meta_num(r),
        angle=angle,
        places=places,
    )


def composite_figure(rng: random.Random) -> Problem:
    shape = rng.choice(["rect_semicircle", "house", "l_shape", "circle_in_square", "square_in_circle"])
    unit = unit_of(rng)
    u = lambda v: with_unit(v, unit)  # noqa: E731
    if shape == "rect_semicircle":
        length, width = rng.randint(4, 30), 2 * rng.randint(1, 12)
        find = rng.choice(["area", "perimeter"])
        if find == "area":
            value = dec(length * width, pi_coef=Fraction(width * width, 8))
            formula = f"{length} \\cdot {width} + \\frac{{1}}{{2}}\\pi ({width // 2})^2"
        else:
            value = dec(2 * length + width, pi_coef=Fraction(width, 2))
            formula = f"2({length}) + {width} + \\frac{{1}}{{2}} \\cdot 2\\pi ({width // 2})"
        answer = rounded(value, 1)
        question = (
            f"A figure is made of a {u(length)} by {u(width)} rectangle with a semicircle of diameter {u(width)} "
            f"attached outward to one of its {u(width)} sides. Find the {find} of the figure"
            + (" (three sides of the rectangle and the arc)" if find == "perimeter" else "")
            + f". {round_note(1)}"
        )
        params = {"length": length, "width": width, "find": find}
    elif shape == "house":
        width, height, roof = rng.randint(2, 30), rng.randint(2, 30), rng.randint(1, 20)
        exact_value = Fraction(width * height) + Fraction(width * roof, 2)
        answer = num(exact_value)
        question = (
            f"A pentagon is formed by a {u(width)} by {u(height)} rectangle with a triangle on its top side of "
            f"length {u(width)}; the triangle's height is {u(roof)}. Find the area of the pentagon."
        )
        formula = f"{width} \\cdot {height} + \\frac{{1}}{{2}}({width})({roof})"
        params = {"width": width, "height": height, "roof": roof}
    elif shape == "l_shape":
        big_l, big_w = rng.randint(5, 40), rng.randint(5, 40)
        cut_l, cut_w = rng.randint(1, big_l - 1), rng.randint(1, big_w - 1)
        answer = str(big_l * big_w - cut_l * cut_w)
        question = (
            f"An L-shaped figure is a {u(big_l)} by {u(big_w)} rectangle with a {u(cut_l)} by {u(cut_w)} "
            f"rectangle cut from one corner. Find the area of the figure."
        )
        formula = f"{big_l} \\cdot {big_w} - {cut_l} \\cdot {cut_w}"
        params = {"length": big_l, "width": big_w, "cut_length": cut_l, "cut_width": cut_w}
    elif shape == "circle_in_square":
        side = rng.randint(2, 40)
        answer = rounded(dec(side * side, pi_coef=Fraction(-side * side, 4)), 1)
        question = (
            f"A circle is inscribed in a square with side length {u(side)}. Find the area of the shaded region "
            f"inside the square but outside the circle. {round_note(1)}"
        )
        formula = f"{side}^2 - \\pi ({num(Fraction(side, 2))})^2"
        params = {"side": side}
    else:
        radius = rng.randint(1, 30)
        answer = rounded(dec(-2 * radius * radius, pi_coef=radius * radius), 1)
        question = (
            f"A square is inscribed in a circle of radius {u(radius)}. Find the area of the shaded region "
            f"inside the circle but outside the square. {round_note(1)}"
        )
        formula = f"\\pi ({radius})^2 - \\frac{{1}}{{2}}({2 * radius})^2"
        params = {"radius": radius}
    approx = "=" if shape in ("house", "l_shape") else "\\approx"
    steps = (
        f"The {'perimeter' if params.get('find') == 'perimeter' else 'area'} is {formula} {approx} {answer}"
    )
    return problem(4, question, answer, steps, kind="composite_figure", shape=shape, **params)


KINDS: dict[int, list[tuple[Callable[[random.Random], Problem], float]]] = {
    1: [
        (triangle_third_angle, 0.35),
        (complementary, 0.15),
        (supplementary, 0.2),
        (right_triangle_acute, 0.15),
        (angles_around_point, 0.15),
    ],
    2: [
        (isosceles_base_angle, 0.1),
        (isosceles_vertex_angle, 0.08),
        (exterior_angle, 0.12),
        (polygon_interior_sum, 0.06),
        (regular_polygon_angle, 0.08),
        (regular_polygon_sides, 0.05),
        (quadrilateral_missing_angle, 0.12),
        (parallel_lines_angle, 0.14),
        (rectangle_measure, 0.1),
        (rectangle_area_from_perimeter, 0.07),
        (triangle_area, 0.08),
    ],
    3: [
        (pythagoras_hypotenuse, 0.18),
        (pythagoras_leg, 0.16),
        (rectangle_diagonal, 0.06),
        (special_45, 0.1),
        (special_30_60, 0.12),
        (circle_measure, 0.14),
        (circle_radius, 0.06),
        (similar_side, 0.12),
        (similar_perimeter, 0.06),
    ],
    4: [
        (parallel_lines_algebra, 0.2),
        (angle_pair_algebra, 0.14),
        (polygon_angles_algebra, 0.18),
        (isosceles_algebra, 0.1),
        (arc_or_sector, 0.2),
        (composite_figure, 0.18),
    ],
}


def make_problem(rng: random.Random, tier: int) -> Problem:
    kinds = KINDS[tier]
    kind = rng.choices([k for k, _ in kinds], [w for _, w in kinds])[0]
    return kind(rng)


def generate(split: str, n: int, seed: int = 0, difficulties: list[int] | None = None) -> list[dict]:
    return generate_split(
        "geometry", make_problem, TIER_WEIGHTS, split=split, n=n, seed=seed, difficulties=difficulties
    )
