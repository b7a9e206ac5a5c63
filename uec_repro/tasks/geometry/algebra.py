"""Tier 4 of ``geometry``: algebraic angle expressions (solve for x), arc length and sector area,
composite figures and shaded regions."""

from __future__ import annotations

import random
from fractions import Fraction

from ..procedural import Problem
from .basic import PARALLEL_EQUAL, parallel_setup
from .measures import circle_given
from .notation import (
    angle_names,
    dec,
    expr,
    letters,
    meta_num,
    num,
    pi_multiple,
    plain,
    problem,
    round_note,
    rounded,
    unit_of,
    with_unit,
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
    setup, relation, i, j = parallel_setup(rng)
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
    question = (
        f"\\angle {n1} and \\angle {n2} {verb}, m \\angle {n1} = {expr(p, q)}, and m \\angle {n2} = "
        f"{expr(r, s)}. {ask}"
    )
    if total is None:
        steps = (
            f"Vertical angles are congruent: {plain(p, q)} = {plain(r, s)}, so {_solve_equal(p, q, r, s, x)}"
        )
    else:
        steps = (
            f"The angles sum to {total}: {expr(p, q)} + {expr(r, s)} = {total}, so "
            f"{_solve_sum(p + r, q + s, total, x)}"
        )
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
    r, given, phrase = circle_given(rng)
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
            f"A figure is made of a {u(length)} by {u(width)} rectangle with a semicircle of diameter "
            f"{u(width)} attached outward to one of its {u(width)} sides. Find the {find} of the figure"
            + (" (three sides of the rectangle and the arc)" if find == "perimeter" else "")
            + f". {round_note(1)}"
        )
        params = {"length": length, "width": width, "find": find}
    elif shape == "house":
        width, height, roof = rng.randint(2, 30), rng.randint(2, 30), rng.randint(1, 20)
        exact_value = Fraction(width * height) + Fraction(width * roof, 2)
        answer = num(exact_value)
        question = (
            f"A pentagon is formed by a {u(width)} by {u(height)} rectangle with a triangle on its top side "
            f"of length {u(width)}; the triangle's height is {u(roof)}. Find the area of the pentagon."
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
            f"A circle is inscribed in a square with side length {u(side)}. Find the area of the shaded "
            f"region inside the square but outside the circle. {round_note(1)}"
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
