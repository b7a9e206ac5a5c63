"""The mix of problem kinds per tier and the split builder of ``geometry``."""

from __future__ import annotations

import random
from collections.abc import Callable

from ..procedural import Problem, generate_split
from .algebra import (
    angle_pair_algebra,
    arc_or_sector,
    composite_figure,
    isosceles_algebra,
    parallel_lines_algebra,
    polygon_angles_algebra,
)
from .basic import (
    angles_around_point,
    complementary,
    exterior_angle,
    isosceles_base_angle,
    isosceles_vertex_angle,
    parallel_lines_angle,
    polygon_interior_sum,
    quadrilateral_missing_angle,
    rectangle_area_from_perimeter,
    rectangle_measure,
    regular_polygon_angle,
    regular_polygon_sides,
    right_triangle_acute,
    supplementary,
    triangle_area,
    triangle_third_angle,
)
from .measures import (
    circle_measure,
    circle_radius,
    pythagoras_hypotenuse,
    pythagoras_leg,
    rectangle_diagonal,
    similar_perimeter,
    similar_side,
    special_30_60,
    special_45,
)

TIER_WEIGHTS = {1: 0.2, 2: 0.3, 3: 0.3, 4: 0.2}


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


def generate(
    split: str, n: int, seed: int = 0, difficulties: list[int] | None = None, at_most: bool = False
) -> list[dict]:
    return generate_split(
        "geometry",
        make_problem,
        TIER_WEIGHTS,
        split=split,
        n=n,
        seed=seed,
        difficulties=difficulties,
        at_most=at_most,
    )
