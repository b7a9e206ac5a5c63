"""Tiers 1 and 2 of ``geometry``: one-step angle problems; isosceles and exterior angles, polygons,
parallel lines and a transversal, rectangle and triangle areas."""

from __future__ import annotations

import random
from fractions import Fraction

from ..procedural import Problem
from .notation import (
    LINE_NAMES,
    POLYGON_NAMES,
    angle_names,
    dec,
    half_or_int,
    is_short_decimal,
    letters,
    meta_num,
    num,
    problem,
    round_note,
    rounded,
    unit_of,
    with_unit,
)


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
    steps = (
        f"The acute angles of a right triangle are complementary, so m \\angle {b_name} = 90 - {num(a)} = "
        f"{num(90 - a)}"
    )
    return problem(1, question, num(90 - a), steps, kind="right_triangle_acute", given=meta_num(a))


def angles_around_point(rng: random.Random) -> Problem:
    p, a_name, b_name, c_name = letters(rng, 4)
    a = rng.randint(40, 170)
    b = rng.randint(max(40, 181 - a), min(170, 330 - a))
    c = 360 - a - b
    question = (
        f"Rays {p}{a_name}, {p}{b_name}, and {p}{c_name} divide the plane around point {p} into three "
        f"angles. If m \\angle {a_name}{p}{b_name} = {a} and m \\angle {b_name}{p}{c_name} = {b}, find m "
        f"\\angle {c_name}{p}{a_name}."
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
        f"In \\triangle {v_name}{b1}{b2}, {v_name}{b1} = {v_name}{b2} and m \\angle {v_name} = {v}. Find m "
        f"\\angle {b1}."
    )
    steps = (
        f"The base angles opposite the equal sides are congruent, so 2 m \\angle {b1} = 180 - {v} = "
        f"{180 - v} and m \\angle {b1} = {num(base)}"
    )
    return problem(2, question, num(base), steps, kind="isosceles_base_angle", vertex=v)


def isosceles_vertex_angle(rng: random.Random) -> Problem:
    v_name, b1, b2 = letters(rng, 3)
    base = half_or_int(rng, 10, 85)
    v = 180 - 2 * base
    question = (
        f"In \\triangle {v_name}{b1}{b2}, {v_name}{b1} = {v_name}{b2} and m \\angle {b2} = {num(base)}. Find "
        f"m \\angle {v_name}."
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
    setup = (
        f"In \\triangle {a_name}{b_name}{c_name}, side {b_name}{c_name} is extended through {c_name} to "
        f"point {d_name}."
    )
    ext = f"\\angle {a_name}{c_name}{d_name}"
    if rng.random() < 0.5:
        question = f"{setup} If m \\angle {a_name} = {a} and m \\angle {b_name} = {b}, find m {ext}."
        steps = (
            f"An exterior angle equals the sum of the two remote interior angles, so m {ext} = {a} + {b} = "
            f"{a + b}"
        )
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
            f"Each {which} angle of a regular polygon measures {angle}. How many sides does the polygon "
            f"have?",
            f"The measure of an {which} angle of a regular polygon is {angle}. Find the number of sides of "
            f"the polygon.",
        ]
    )
    if which == "interior":
        steps = (
            f"Each exterior angle measures 180 - {angle} = {180 - angle}, so the polygon has "
            f"360/{180 - angle} = {n}"
        )
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


def parallel_setup(rng: random.Random) -> tuple[str, str, int, int]:
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
    setup, relation, i, j = parallel_setup(rng)
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
            f"Rectangle {names} has length {with_unit(length, unit)} and width {with_unit(width, unit)}. "
            f"Find its {find}.",
            f"Find the {find} of a rectangle with sides {with_unit(length, unit)} and "
            f"{with_unit(width, unit)}.",
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
            f"Find the area of a triangle with base {with_unit(base, unit)} and height "
            f"{with_unit(height, unit)}.",
            f"In \\triangle {names}, the base {names[1]}{names[2]} = {with_unit(base, unit)} and the "
            f"altitude from {names[0]} to {names[1]}{names[2]} is {with_unit(height, unit)}. Find the area "
            f"of \\triangle {names}.",
        ]
    )
    steps = f"A = \\frac{{1}}{{2}}bh = \\frac{{1}}{{2}}({base})({height}) = {num(value)}"
    return problem(2, question, num(value), steps, kind="triangle_area", base=base, height=height)
