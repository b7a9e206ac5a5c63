"""An experiment's runs as tidy pandas frames, summaries over seeds, paired comparisons, the paper's numbers.

:mod:`.loading` reads the runs, :mod:`.statistics` computes intervals and paired differences, :mod:`.summary`
writes the summary tables.

>>> runs = load_runs("runs/default")
>>> runs.evals.groupby("variant")["pass@1"].mean()
>>> write_summary(summary_table(runs), "figures", paired=paired_differences(runs))
"""

from .loading import (
    LEGACY_COLUMNS,
    METHOD_ORDER,
    PAPER_RESULTS_FILE,
    Runs,
    load_runs,
    method_rank,
    paper_reference,
    run_tasks,
    task_block,
)
from .statistics import (
    PAIRED_COLUMNS,
    bootstrap_interval,
    confidence_interval,
    detectable_difference,
    metric_bounds,
    paired_differences,
    paired_per_prompt,
    variance_components,
    verdict,
)
from .summary import per_step_seconds, probe_change, summary_table, write_summary

__all__ = [
    "LEGACY_COLUMNS",
    "METHOD_ORDER",
    "PAIRED_COLUMNS",
    "PAPER_RESULTS_FILE",
    "Runs",
    "bootstrap_interval",
    "confidence_interval",
    "detectable_difference",
    "load_runs",
    "method_rank",
    "metric_bounds",
    "paired_differences",
    "paired_per_prompt",
    "paper_reference",
    "per_step_seconds",
    "probe_change",
    "run_tasks",
    "summary_table",
    "task_block",
    "variance_components",
    "verdict",
    "write_summary",
]
