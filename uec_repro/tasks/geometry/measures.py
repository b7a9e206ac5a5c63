"""Tier 3 of ``geometry``: Pythagoras with surds, 45-45-90 and 30-60-90 triangles, circles with pi,
similar triangles."""

from __future__ import annotations

import math
import random
from fractions import Fraction

from ..procedural import Problem
from .notation import (
    LETTERS,
    Number,
    dec,
    exact,
    frac,
    letters,
    meta_num,
    num,
    pi_multiple,
    problem,
    round_note,
    rounded,
    simplify_sqrt,
    surd,
)


# ------------------------------------------------------------------------------------------------
# tier 3: Pythagoras and surds, circles with pi, similar triangles
# ------------------------------------------------------------------------------------------------
def _radical_or_round(rng: random.Random, coef: Number, radicand: int) -> tuple[str, int | None, str]:
    """(answer, places, instruction) for ``coef * sqrt(radicand)``: simplest radical form, or rounded
    to a tenth."""
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
    steps = (
        f"By the Pythagorean theorem, {hyp} = \\sqrt{{{a}^2 + "
        f"{b}^2}}{_root_steps(a * a + b * b, answer, places)}"
    )
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
    steps = (
        f"By the Pythagorean theorem, {b_name}{c_name} = \\sqrt{{{c}^2 - "
        f"{a}^2}}{_root_steps(c * c - a * a, answer, places)}"
    )
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
        steps = (
            f"In a 45-45-90 triangle the hypotenuse is \\sqrt{{2}} times a leg: {_radical_text(k, n)} \\cdot "
            f"\\sqrt{{2}} = {answer}"
        )
    else:
        if rng.random() < 0.5:
            k, n = 2 * rng.randint(1, 30), 1  # even integer hypotenuse -> (k/2) sqrt 2
            answer = surd(k // 2, 2)
        else:
            k, n = rng.randint(1, 40), 2  # hypotenuse k sqrt 2 -> leg k
            answer = str(k)
        find = "leg"
        steps = (
            f"In a 45-45-90 triangle a leg is the hypotenuse divided by \\sqrt{{2}}: "
            f"\\frac{{{_radical_text(k, n)}}}{{\\sqrt{{2}}}} = {answer}"
        )
    value_text = _radical_text(k, n)
    if rng.random() < 0.5:
        question = (
            f"In an isosceles right triangle, the {'length of each leg' if given == 'leg' else 'hypotenuse'} "
            f"is {value_text}. Find the length of {'the hypotenuse' if find == 'hypotenuse' else 'a leg'}."
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
        question = (
            f"In a 30-60-90 triangle, the {words[given]} is {value_text}. Find the length of the "
            f"{words[find]}."
        )
    else:
        question = (
            f"In \\triangle {a_name}{b_name}{c_name}, m \\angle {c_name} = 90, m \\angle {a_name} = 30, and "
            f"{sides[given]} = {value_text}. Find {sides[find]}."
        )
    steps = (
        f"In a 30-60-90 triangle the sides are s, s\\sqrt{{3}}, 2s; here the shorter leg is s = "
        f"{surd(coef, rad)}, so the {words[find]} is {answer}"
    )
    return problem(3, question, answer, steps, kind="special_30_60", given=given, k=k, n=n, find=find)


def circle_given(rng: random.Random) -> tuple[Fraction, str, str]:
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
    r, given, phrase = circle_given(rng)
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
            f"\\triangle {''.join(first)} \\sim \\triangle {''.join(second)}. If {seg(first, i)} = "
            f"{known_from}, {seg(second, i)} = {known_to}, and {seg(first, j)} = {other}, find "
            f"{seg(second, j)}."
        )
        ratio_from, ratio_to, unknown = known_from, known_to, seg(second, j)
    else:  # unknown in the first triangle
        value = Fraction(other * known_from, known_to)
        question = (
            f"\\triangle {''.join(first)} \\sim \\triangle {''.join(second)}. If {seg(first, i)} = "
            f"{known_from}, {seg(second, i)} = {known_to}, and {seg(second, j)} = {other}, find "
            f"{seg(first, j)}."
        )
        ratio_from, ratio_to, unknown = known_to, known_from, seg(first, j)
    answer = exact(value)
    steps = (
        f"Corresponding sides are proportional, so {unknown} = {other} \\cdot "
        f"\\frac{{{ratio_to}}}{{{ratio_from}}} = {answer}"
    )
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
            f"\\triangle {t1} \\sim \\triangle {t2} with {s1} = {a} and {s2} = {d}. Find the ratio of the "
            f"perimeter of \\triangle {t1} to the perimeter of \\triangle {t2}."
        )
        steps = f"The perimeters have the same ratio as corresponding sides: \\frac{{{a}}}{{{d}}} = {answer}"
        return problem(3, question, answer, steps, kind="similar_perimeter", find="ratio", sides=[a, d])
    perimeter = rng.randint(2 * a + 1, 4 * a)  # a triangle's perimeter exceeds twice any side
    value = Fraction(perimeter * d, a)
    answer = exact(value)
    question = (
        f"\\triangle {t1} \\sim \\triangle {t2}. The perimeter of \\triangle {t1} is {perimeter}, {s1} = "
        f"{a}, and {s2} = {d}. Find the perimeter of \\triangle {t2}."
    )
    steps = (
        f"The perimeters have the same ratio as corresponding sides, so P = {perimeter} \\cdot "
        f"\\frac{{{d}}}{{{a}}} = {answer}"
    )
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
