"""Batch runner: execute notebooks with papermill over a grid of methods x seeds (x one swept value).

``grid`` reads and checks a grid (TOML preset or file, or :func:`training_grid` from a notebook), ``cells`` is
one notebook execution and its state on disk, ``provenance`` what its manifest records, ``execution`` runs one
cell, ``scheduling`` runs a grid (:func:`run_grid`), ``cli`` is
``python -m uec_repro.experiments run | list | show`` (also ``uec-repro``).
"""

from .cells import Cell
from .cli import main
from .grid import GridSpec, list_presets, load_grid, training_grid
from .provenance import environment_record
from .scheduling import GridReport, RunOutcome, run_grid

__all__ = [
    "Cell",
    "GridReport",
    "GridSpec",
    "RunOutcome",
    "environment_record",
    "list_presets",
    "load_grid",
    "main",
    "run_grid",
    "training_grid",
]
