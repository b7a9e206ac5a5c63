"""The replication's figures, one function per figure, from :func:`uec_repro.results.load_runs` frames.

Each ``fig_<name>(runs, out_dir)`` writes ``<out_dir>/<name>.png``, ``.pdf`` and ``.csv`` (the data drawn,
one row per value with its ``source``, ``label``, value or mean, interval and seeds) and returns the png
path as a :class:`FigureFile`, which a notebook shows as the image. Conventions:

* methods in :data:`METHOD_ORDER` with the colours of :data:`METHOD_COLORS` (UEC-RL variants red and
  thicker, baselines cool, ``base`` grey); more than :data:`MAX_LINES` methods: small multiples;
* our values: mean over seeds with a 95% Student-t interval clipped to the quantity's range, labelled
  ``ours (<policy>, <task>)``; sweep variants appear only in the sensitivity figure;
* methods are compared by their paired difference to GRPO (:func:`uec_repro.results.paired_differences`);
* the policy's entropy is the probe's; that of the samples trained on only in panels titled "update batch";
* the paper's values (``data/paper_results.csv``) are hatched / dashed / hollow and labelled
  ``paper (<model>)``; approximate ones carry "~";
* a panel without data says "no data"; every file is still written.

Figures use matplotlib's object API: no pyplot state, no display, no global settings.

>>> make_all(load_runs("runs/default"), "figures")
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..claims import write_claims
from ..results.loading import METHOD_ORDER, Runs, paper_reference, run_tasks, task_block
from ..results.summary import summary_table, write_summary
from .comparison import _paired, fig_ablation_bars, fig_baseline_differences, fig_geometry3k_bars
from .costs import fig_sample_categories, fig_sensitivity, fig_step_cost
from .drawing import MAX_LINES, METHOD_COLORS, FigureFile
from .dynamics import (
    fig_entropy_dynamics,
    fig_grpo_failure_modes,
    fig_passk_curves,
    fig_reward_and_validation,
)
from .tables import fig_math_table

__all__ = [
    "FigureFile",
    "METHOD_COLORS",
    "METHOD_ORDER",
    "MAX_LINES",
    "fig_ablation_bars",
    "fig_baseline_differences",
    "fig_entropy_dynamics",
    "fig_geometry3k_bars",
    "fig_grpo_failure_modes",
    "fig_math_table",
    "fig_passk_curves",
    "fig_reward_and_validation",
    "fig_sample_categories",
    "fig_sensitivity",
    "fig_step_cost",
    "figure_blocks",
    "make_all",
]


def figure_blocks(runs: Runs) -> tuple[Runs, Runs]:
    """(main block, geometry view): the experiment's first task block, and its geometry block if it has one
    besides (else the main block again); see :func:`~uec_repro.results.task_block`."""
    blocks = {task: task_block(runs, task) for task in run_tasks(runs)}
    main = next(iter(blocks.values()), runs)
    return main, blocks.get("geometry", main)


def make_all(runs: Runs, out_dir: str | Path, *, paper: pd.DataFrame | None = None) -> list[Path]:
    """Every figure (png, pdf, csv), the summary table (``summary.csv``, ``summary.md``), the paired
    differences to GRPO (``paired.csv``, ``paired.md``) and the claims table (``claims.csv``, ``claims.md``)
    into ``out_dir``; returns the paths written (the same set whatever data there is).

    An experiment with several task blocks (the ``paper`` preset) draws its Geometry3K view and ablation from
    its geometry block and everything else from its main block (:func:`~uec_repro.results.task_block`); the
    claims table covers every block."""
    paper = paper_reference() if paper is None else paper
    main, geometry = figure_blocks(runs)
    paired = _paired(main)
    drawn = [
        fig_grpo_failure_modes(main, out_dir),
        fig_entropy_dynamics(main, out_dir),
        fig_reward_and_validation(main, out_dir),
        fig_passk_curves(main, out_dir),
        fig_geometry3k_bars(geometry, out_dir, paper=paper),
        fig_math_table(main, out_dir, paper=paper),
        fig_ablation_bars(geometry, out_dir, paper=paper, paired=None if geometry is not main else paired),
        fig_baseline_differences(main, out_dir, paired=paired),
        fig_sensitivity(main, out_dir),
        fig_step_cost(main, out_dir, paper=paper),
        fig_sample_categories(main, out_dir),
    ]
    figures = [Path(png).with_suffix(suffix) for png in drawn for suffix in (".png", ".pdf", ".csv")]
    return figures + write_summary(summary_table(main), out_dir, paired=paired) + write_claims(runs, out_dir)
