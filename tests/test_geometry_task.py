r"""The built-in ``geometry`` family: determinism, splits, tiers, schema, and answers re-derived from
``meta``.

The answer checks do not use the generator's own arithmetic: each kind's answer is derived again here
from the parameters in ``meta`` with sympy, and the answer string is parsed by a small parser of the
formats Geometry3K uses (integers, decimals, ``\frac{a}{b}``, ``k\sqrt{n}``, multiples of ``\pi``).
"""

from __future__ import annotations

import json
import math
import re
from decimal import ROUND_HALF_UP, Decimal

import pytest
import sympy as sp

from uec_repro.tasks import generate_rows, load_task
from uec_repro.tasks import geometry as geo
from uec_repro.tasks.procedural import generate_split
from uec_repro.tasks.schema import FIELDS, validate_example
from uec_repro.validation import ParameterError

TIERS = (1, 2, 3, 4)
X = sp.Symbol("x")

# --------------------------------------------------------------------------------------------------
# answer parsing and format rules (independent of the package)
# --------------------------------------------------------------------------------------------------
INT = r"[1-9]\d*|0"
DECIMAL = r"(?:[1-9]\d*|0)\.\d*[1-9]"
FRAC = r"\\frac\{([1-9]\d*)\}\{([1-9]\d*)\}"
SURD = r"([1-9]\d*)?\\sqrt\{([1-9]\d*)\}"
PI = rf"(?:{INT}|{FRAC})?\\pi"


def parse_answer(text: str) -> sp.Expr:
    """sympy value of an answer string; raises AssertionError for anything outside the allowed forms."""
    if re.fullmatch(rf"-?(?:{INT}|{DECIMAL})", text):
        return sp.Rational(text)
    if m := re.fullmatch(FRAC, text):
        return sp.Rational(int(m[1]), int(m[2]))
    if m := re.fullmatch(SURD, text):
        return int(m[1] or 1) * sp.sqrt(int(m[2]))
    if re.fullmatch(PI, text):
        coef = text[: -len("\\pi")]
        return (parse_answer(coef) if coef else 1) * sp.pi
    raise AssertionError(f"answer {text!r} is not in a Geometry3K format")


def square_free(n: int) -> bool:
    return all(n % (f * f) for f in range(2, math.isqrt(n) + 1))


def check_format(text: str) -> None:
    """Fractions in lowest terms with denominator > 1, surds square-free with coefficient != 1, no 1\\pi."""
    parse_answer(text)
    for num, den in re.findall(FRAC, text):
        assert math.gcd(int(num), int(den)) == 1 and int(den) > 1, text
    if m := re.fullmatch(SURD, text):
        assert m[1] != "1" and int(m[2]) > 1 and square_free(int(m[2])), text
    assert not text.startswith("1\\pi"), text


@pytest.mark.parametrize(
    "text, value",
    [
        ("68", 68),
        ("12.5", sp.Rational(25, 2)),
        ("\\frac{40}{3}", sp.Rational(40, 3)),
        ("8\\sqrt{2}", 8 * sp.sqrt(2)),
        ("\\sqrt{13}", sp.sqrt(13)),
        ("25\\pi", 25 * sp.pi),
        ("\\frac{25}{2}\\pi", sp.Rational(25, 2) * sp.pi),
        ("\\pi", sp.pi),
    ],
)
def test_answer_parser(text, value):
    assert parse_answer(text) == value
    check_format(text)


@pytest.mark.parametrize(
    "text", ["\\frac{4}{6}", "2\\sqrt{8}", "1\\sqrt{3}", "\\frac{3}{1}", "12.50", "1\\pi", "x"]
)
def test_format_rules_reject(text):
    with pytest.raises(AssertionError):
        check_format(text)


# --------------------------------------------------------------------------------------------------
# independent re-derivation from meta
# --------------------------------------------------------------------------------------------------
def R(value) -> sp.Rational:
    return sp.Rational(str(value))


def lin(e) -> sp.Expr:
    return e[0] * X + e[1]


def solve_x(equation: sp.Expr) -> sp.Expr:
    (x,) = sp.solve(equation, X)
    return x


CONGRUENT = {"corresponding", "alternate interior", "alternate exterior", "vertical"}
SUM_OF = {"consecutive interior": 180, "supplementary": 180, "complementary": 90}


def pair_x(m) -> sp.Expr:
    a, b = lin(m["expr1"]), lin(m["expr2"])
    return solve_x(a - b if m["relation"] in CONGRUENT else a + b - SUM_OF[m["relation"]])


def derive(m: dict) -> sp.Expr:
    kind = m["kind"]
    if kind == "triangle_third_angle":
        return 180 - sum(m["given"])
    if kind == "complementary":
        return 90 - R(m["given"])
    if kind == "supplementary":
        return 180 - R(m["given"])
    if kind == "right_triangle_acute":
        return 90 - R(m["given"])
    if kind == "angles_around_point":
        return 360 - sum(m["given"])
    if kind == "isosceles_base_angle":
        return sp.Rational(180 - m["vertex"], 2)
    if kind == "isosceles_vertex_angle":
        return 180 - 2 * R(m["base"])
    if kind == "exterior_angle":
        return sum(m["remote"]) if m["find"] == "exterior" else m["exterior"] - m["remote"][0]
    if kind == "polygon_interior_sum":
        return 180 * (m["n"] - 2)
    if kind == "regular_polygon_angle":
        n = m["n"]
        return sp.Rational(180 * (n - 2), n) if m["which"] == "interior" else sp.Rational(360, n)
    if kind == "regular_polygon_sides":
        exterior = 180 - m["angle"] if m["which"] == "interior" else m["angle"]
        return sp.Rational(360, exterior)
    if kind == "quadrilateral_missing_angle":
        return 360 - sum(m["given"])
    if kind == "parallel_lines_angle":
        return m["given"] if m["relation"] in CONGRUENT else 180 - m["given"]
    if kind == "rectangle_measure":
        length, width = R(m["length"]), R(m["width"])
        return length * width if m["find"] == "area" else 2 * (length + width)
    if kind == "rectangle_area_from_perimeter":
        return m["length"] * (sp.Rational(m["perimeter"], 2) - m["length"])
    if kind == "triangle_area":
        return sp.Rational(m["base"] * m["height"], 2)
    if kind == "pythagoras_hypotenuse":
        a, b = m["legs"]
        return sp.sqrt(a**2 + b**2)
    if kind == "pythagoras_leg":
        return sp.sqrt(m["hypotenuse"] ** 2 - m["leg"] ** 2)
    if kind == "rectangle_diagonal":
        return sp.sqrt(m["length"] ** 2 + m["width"] ** 2)
    if kind == "special_45":
        given = m["k"] * sp.sqrt(m["n"])
        return given * sp.sqrt(2) if m["given"] == "leg" else given / sp.sqrt(2)
    if kind == "special_30_60":
        given = m["k"] * sp.sqrt(m["n"])
        short = {"short": given, "long": given / sp.sqrt(3), "hypotenuse": given / 2}[m["given"]]
        return {"short": short, "long": short * sp.sqrt(3), "hypotenuse": 2 * short}[m["find"]]
    if kind == "circle_measure":
        r = R(m["radius"])
        return sp.pi * r**2 if m["find"] == "area" else 2 * sp.pi * r
    if kind == "circle_radius":
        r = sp.sqrt(m["value_coef"]) if m["given"] == "area" else sp.Rational(m["value_coef"], 2)
        return r if m["find"] == "radius" else 2 * r
    if kind == "similar_side":
        return sp.Rational(m["other"] * m["ratio_to"], m["ratio_from"])
    if kind == "similar_perimeter":
        a, d = m["sides"]
        return sp.Rational(a, d) if m["find"] == "ratio" else sp.Rational(m["perimeter"] * d, a)
    if kind in ("parallel_lines_algebra", "angle_pair_algebra"):
        x = pair_x(m)
        return x if m["find"] == "x" else lin(m["expr1"]).subs(X, x)
    if kind == "polygon_angles_algebra":
        x = solve_x(sum(lin(e) for e in m["exprs"]) - 180 * (m["sides"] - 2))
        return x if m["find"] == "x" else lin(m["exprs"][m["target"]]).subs(X, x)
    if kind == "isosceles_algebra":
        x = solve_x(lin(m["expr1"]) - lin(m["expr2"]))
        return x if m["find"] == "x" else 180 - 2 * lin(m["expr1"]).subs(X, x)
    if kind == "arc_or_sector":
        r, angle = R(m["radius"]), m["angle"]
        return 2 * sp.pi * r * angle / 360 if m["find"] == "arc" else sp.pi * r**2 * angle / 360
    if kind == "composite_figure":
        shape = m["shape"]
        if shape == "rect_semicircle":
            length, width = m["length"], m["width"]
            if m["find"] == "area":
                return length * width + sp.pi * (sp.Rational(width, 2)) ** 2 / 2
            return 2 * length + width + sp.pi * sp.Rational(width, 2)
        if shape == "house":
            return m["width"] * m["height"] + sp.Rational(m["width"] * m["roof"], 2)
        if shape == "l_shape":
            return m["length"] * m["width"] - m["cut_length"] * m["cut_width"]
        if shape == "circle_in_square":
            return m["side"] ** 2 - sp.pi * sp.Rational(m["side"], 2) ** 2
        if shape == "square_in_circle":
            return sp.pi * m["radius"] ** 2 - 2 * m["radius"] ** 2
    raise AssertionError(f"no re-derivation for kind {kind!r}")


ROUNDED = {"rect_semicircle", "circle_in_square", "square_in_circle"}


def places_of(m: dict) -> int | None:
    if m["kind"] == "composite_figure":
        return 1 if m["shape"] in ROUNDED else None
    return m.get("places")


def check_answer(row: dict) -> None:
    m = json.loads(row["meta"])
    truth = derive(m)
    answer = row["answer"]
    check_format(answer)
    places = places_of(m)
    if places is None:
        assert "Round" not in row["question"], row
        value = parse_answer(answer)
        assert sp.simplify(value - truth) == 0, (row["question"], answer, truth)
    else:
        word = {1: "tenth", 2: "hundredth"}[places]
        assert row["question"].endswith(f"Round to the nearest {word}."), row["question"]
        expected = Decimal(str(sp.N(truth, 40))).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
        assert Decimal(answer) == expected, (row["question"], answer, expected)
        assert abs(float(parse_answer(answer)) - float(truth)) <= 0.5 * 10**-places + 1e-9


def numbers_in_meta(m: dict):
    """The numbers the question must state (skips flags, coefficients 0/1 that are not written)."""
    skip = {"places", "target", "sides", "n" if m["kind"] in ("special_45", "special_30_60") else ""}
    for key, value in m.items():
        if key in skip or key == "kind":
            continue
        for v in value if isinstance(value, list) else [value]:
            for item in v if isinstance(v, list) else [v]:
                if isinstance(item, int) and not isinstance(item, bool) and abs(item) > 1:
                    yield str(abs(item))
                elif isinstance(item, str) and re.fullmatch(r"\d+\.\d+", item):
                    yield item


def check_question_states_meta(row: dict) -> None:
    m = json.loads(row["meta"])
    q = row["question"]
    for number in numbers_in_meta(m):
        diameter_given = m["kind"] in ("circle_measure", "arc_or_sector") and m.get("given") == "diameter"
        if diameter_given and number == str(m["radius"]):
            number = str(R(m["radius"]) * 2)
        if m["kind"] in ("polygon_interior_sum", "regular_polygon_angle") and number == str(m["n"]):
            name = geo.POLYGON_NAMES.get(m["n"])
            if name and name in q:
                continue
        assert re.search(rf"(?<![\d.]){re.escape(number)}(?![\d]|\.\d)", q), (number, q, m)
    for key in ("relation", "which"):
        if key in m:
            assert m[key] in q, (key, q)


# --------------------------------------------------------------------------------------------------
# tests
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def rows_by_tier():
    return {
        t: generate_rows("geometry", "train", 1200, seed=3, difficulties=[t])
        + generate_rows("geometry", "test", 300, seed=3, difficulties=[t])
        for t in TIERS
    }


def test_every_kind_appears_and_answers_rederive(rows_by_tier):
    seen: dict[int, set[str]] = {}
    for tier, rows in rows_by_tier.items():
        for row in rows:
            assert row["difficulty"] == tier
            check_answer(row)
            check_question_states_meta(row)
            seen.setdefault(tier, set()).add(json.loads(row["meta"])["kind"])
    for tier in TIERS:
        assert seen[tier] == {fn.__name__ for fn, _ in geo.KINDS[tier]}, tier


def test_answer_forms_cover_geometry3k_styles(rows_by_tier):
    answers = [r["answer"] for rows in rows_by_tier.values() for r in rows]
    forms = {
        "integer": r"\d+",
        "decimal": r"\d+\.\d+",
        "fraction": FRAC,
        "surd": SURD,
        "pi": PI,
    }
    for form, pattern in forms.items():
        assert any(re.fullmatch(pattern, a) for a in answers), form
    assert any(
        "Round to the nearest hundredth." in r["question"] for rows in rows_by_tier.values() for r in rows
    )


def test_solutions_end_with_the_answer(rows_by_tier):
    for rows in rows_by_tier.values():
        for row in rows:
            assert row["solution"].endswith(row["answer"]), (row["solution"], row["answer"])


def test_schema_and_ids(rows_by_tier):
    for rows in rows_by_tier.values():
        for row in rows:
            validate_example(row)
            assert set(row) == set(FIELDS)
            assert row["source"] == "geometry" and "image" not in row  # text task: no image column
            assert row["prompt"] == row["question"]
            assert row["id"].startswith(f"geometry-{row['difficulty']}-")
            assert "<image>" not in row["question"] and "  " not in row["question"]
    ids = [r["id"] for rows in rows_by_tier.values() for r in rows]
    assert len(ids) == len(set(ids))


def test_deterministic_and_seed_dependent():
    a = generate_rows("geometry", "train", 200, seed=0)
    b = generate_rows("geometry", "train", 200, seed=0)
    c = generate_rows("geometry", "train", 200, seed=1)
    assert a == b
    assert [r["question"] for r in a] != [r["question"] for r in c]


def test_train_and_test_are_disjoint():
    train = {r["question"] for r in generate_rows("geometry", "train", 3000, seed=0)}
    test = {r["question"] for r in generate_rows("geometry", "test", 500, seed=0)}
    assert len(train) == 3000 and len(test) == 500
    assert not train & test


def test_mixed_tiers_all_present():
    rows = generate_rows("geometry", "train", 400, seed=0)
    assert {r["difficulty"] for r in rows} == set(TIERS)


@pytest.mark.parametrize("tier", TIERS)
def test_large_problem_space_per_tier(tier):
    """Every tier supplies 5000 train and 500 test distinct problems (the split is a 10% hash share)."""
    train = geo.generate("train", 5000, seed=7, difficulties=[tier])
    test = geo.generate("test", 500, seed=7, difficulties=[tier])
    assert len({r["question"] for r in train}) == 5000
    assert len({r["question"] for r in test}) == 500


def test_bad_arguments():
    with pytest.raises(ParameterError, match="difficulties"):
        geo.generate("train", 5, difficulties=[5])
    with pytest.raises(ParameterError, match="split"):
        geo.generate("validation", 5)
    with pytest.raises(ParameterError, match="n="):
        geo.generate("train", 0)


def test_n_larger_than_the_split_raises():
    """Polygon interior sums alone have ~150 distinct questions, ~15 of them in the test split."""
    with pytest.raises(ParameterError, match=r"n=100 is more than the 'test' split of task 'geometry'"):
        generate_split(
            "geometry", lambda rng, tier: geo.polygon_interior_sum(rng), {2: 1.0}, split="test", n=100, seed=0
        )


def test_load_task_geometry_prompts():
    ds = load_task("geometry", "test", n=8, seed=0)
    assert len(ds) == 8
    assert ds[0]["prompt"][0]["role"] == "user"
    assert ds[0]["prompt"][0]["content"].startswith(ds[0]["question"])


@pytest.mark.parametrize(
    "fmt, value, expected",
    [
        (geo.surd, (1, 200), "10\\sqrt{2}"),
        (geo.surd, (3, 12), "6\\sqrt{3}"),
        (geo.surd, (1, 49), "7"),
        (geo.pi_multiple, (sp.Rational(25, 2),), "\\frac{25}{2}\\pi"),
        (geo.exact, (sp.Rational(40, 3),), "\\frac{40}{3}"),
        (geo.exact, (sp.Rational(25, 2),), "12.5"),
    ],
)
def test_formatters(fmt, value, expected):
    from fractions import Fraction

    args = [
        Fraction(int(v.p), int(v.q)) if isinstance(v, sp.Rational) and not isinstance(v, sp.Integer) else v
        for v in value
    ]
    assert fmt(*args) == expected


def test_rounding_is_half_up_and_drops_trailing_zeros():
    assert geo.rounded(Decimal("168.75"), 1) == "168.8"
    assert geo.rounded(Decimal("44.98"), 1) == "45"
    assert geo.rounded(Decimal("3.14159"), 2) == "3.14"
