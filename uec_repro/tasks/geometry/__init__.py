r"""``geometry``: text-only geometry problems of the kinds Geometry3K contains, generated offline.

Geometry3K (Lu et al., 2021; ``hiyouga/geometry3k``) asks about a diagram; this family states the diagram in
words, in Geometry3K's notation (``m \angle A = 50``, ``\triangle ABC``, ``\odot P``, ``(3x+10)``) and answer
formats (:mod:`.notation`), so a text-only policy can train on the same kinds of problems without the Hub.

Tiers (``difficulty``): 1. one-step angles (:mod:`.basic`); 2. two steps, polygons, parallel lines, areas
(:mod:`.basic`); 3. Pythagoras and surds, special right triangles, circles, similar triangles
(:mod:`.measures`); 4. solving for x, arcs and sectors, composite figures (:mod:`.algebra`).

A problem's ``meta`` holds its ``kind`` and every numeric parameter (non-integers as strings such as
``"7.5"``), enough to re-derive the answer; ``solution`` is a short worked solution ending with the answer.
"""

from .basic import POLYGON_NAMES, polygon_interior_sum
from .build import KINDS, TIER_WEIGHTS, generate, make_problem
from .notation import exact, pi_multiple, rounded, surd

__all__ = [
    "KINDS",
    "POLYGON_NAMES",
    "TIER_WEIGHTS",
    "exact",
    "generate",
    "make_problem",
    "pi_multiple",
    "polygon_interior_sum",
    "rounded",
    "surd",
]
