"""An experiment's run folders as tidy pandas frames, summaries over seeds, paired comparisons, and the paper's
numbers.

An experiment directory (``runs/<experiment>/``) holds one folder per run, ``<variant>/seed<k>/``, written by
the training notebook and the batch runner:

* ``run.json``: the runner's manifest (experiment, variant, method, seed, sweep, status, parameters, wall
  time, peak memory, versions); the variant is the method name, or ``<method>--<param>=<value>`` for a
  sensitivity sweep, whose ``sweep`` is then ``{param: value}``;
* ``metrics.jsonl``: one row per training step (training runs only; ``base`` trains nothing), and a step-0
  row with the entropy probe of the initial policy (``probe/...`` columns, logged every ``probe_every`` steps);
* ``probe.jsonl``: the entropy probe's per-prompt sums, one row per probe (runs made before the probe existed
  have none);
* ``eval.json``: the final evaluation: ``summary`` (pass@k, mean@n, maj@n, token entropy, ...), ``n`` samples
  per prompt and the ``correct`` count of each prompt, from which pass@k is recomputed for every k <= n.

Every method of an experiment is evaluated (and probed) on the same prompts in the same order with the same
seeds, so :func:`paired_differences` compares methods prompt by prompt and seed by seed.

>>> runs = load_runs("runs/default")
>>> runs.evals.groupby("variant")["pass@1"].mean()
>>> write_summary(summary_table(runs), "figures", paired=paired_differences(runs))
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

import uec_repro

from .config import METHODS
from .evaluation import pass_at_k
from .layout import BASE_METHOD, EVAL_FILE, MANIFEST_FILE, METRICS_FILE, PROBE_FILE
from .validation import ParameterError, check_choice, check_float, check_int

__all__ = [
    "METHOD_ORDER",
    "PAIRED_COLUMNS",
    "Runs",
    "bootstrap_interval",
    "verdict",
    "confidence_interval",
    "detectable_difference",
    "load_runs",
    "metric_bounds",
    "paired_differences",
    "paired_per_prompt",
    "paper_reference",
    "per_step_seconds",
    "run_tasks",
    "summary_table",
    "task_block",
    "variance_components",
    "write_summary",
]

PAPER_RESULTS_FILE = Path(uec_repro.__file__).parents[1] / "data" / "paper_results.csv"

#: Every ordering of methods (frames, tables, figures): the untrained policy, then the registry's order.
METHOD_ORDER: tuple[str, ...] = (BASE_METHOD, *METHODS)

ID_COLUMNS = ["variant", "method", "seed", "sweep_param", "sweep_value"]
#: Update-batch columns of runs made before they were renamed, and their current names.
LEGACY_COLUMNS = {
    "entropy": "entropy/update_batch",
    "entropy/sampled_nll": "entropy/update_batch_sampled_nll",
    "entropy/exploration_sampled_nll": "entropy/update_batch_exploration_sampled_nll",
}
PROBE_MEASURES = {"probe/entropy": "probe_entropy", "probe/sampled_nll": "probe_sampled_nll"}
UPDATE_BATCH_MEASURES = {
    "entropy/update_batch": "update_batch_entropy",
    "entropy/update_batch_sampled_nll": "update_batch_sampled_nll",
}
EDGE_STEPS = 3  # update-batch entropy "at start" / "at end" = mean of the first / last 3 logged values
SUMMARY_INTERVAL = "95% Student-t over seeds, clipped to the metric's range"
#: Paired metrics computed from probe.jsonl: the per-prompt numerator summed over tokens.
PROBE_RATIOS = {"probe_entropy": "entropy_sum", "probe_sampled_nll": "nll_sum"}
PAIRED_COLUMNS = [
    "variant",
    "method",
    "reference",
    "metric",
    "diff",
    "low",
    "high",
    "value",
    "reference_value",
    "seeds",
    "prompts",
    "step",
    "interval",
    "verdict",
]


@dataclass
class Runs:
    """One experiment's runs as tidy frames (see :func:`load_runs` for the columns)."""

    runs: pd.DataFrame
    steps: pd.DataFrame
    evals: pd.DataFrame
    passk: pd.DataFrame
    prompts: pd.DataFrame
    probes: pd.DataFrame


def load_runs(experiment_dir: str | Path, include_incomplete: bool = False) -> Runs:
    """The runs under ``experiment_dir`` (``<variant>/seed<k>/run.json``) as six frames, ordered by method.

    * ``runs``: one row per run: experiment, variant, method, seed, sweep_param, sweep_value (None/NaN when
      the variant is no sweep), status, policy, task, steps, wall_seconds, peak_rss_mb, path, parameters;
    * ``steps``: one row per run and logged step (step 0: the probe of the initial policy): the id columns,
      ``step`` and every logged metric (NaN where a step did not log it); the update-batch columns of older
      runs get their current names (:data:`LEGACY_COLUMNS`);
    * ``evals``: one row per evaluated run: the id columns, ``n``, and every key of the eval summary;
    * ``passk``: the id columns, ``k`` and ``pass_at_k`` for k = 1..n, recomputed from the per-prompt
      correct counts with the unbiased estimator;
    * ``prompts``: one row per evaluated run and test prompt: the id columns, ``prompt`` (its position), ``n``,
      ``correct`` and the prompt's ``difficulty`` tier (NaN where the evaluation did not record it);
    * ``probes``: one row per run, probe step and probe prompt (runs with a ``probe.jsonl``): the id columns,
      ``step``, ``prompt`` (position), ``prompt_id``, ``entropy_sum``, ``nll_sum``, ``tokens``, ``correct``,
      ``samples``.

    Only runs with status ``"complete"`` are loaded unless ``include_incomplete``.
    """
    root = Path(experiment_dir)
    if not root.is_dir():
        raise ParameterError(f"experiment_dir={str(experiment_dir)!r} is not a directory")
    manifests = sorted(root.glob(f"*/*/{MANIFEST_FILE}"))
    run_rows, step_frames, eval_rows, passk_frames, prompt_frames, probe_frames = [], [], [], [], [], []
    skipped = 0
    for manifest_path in manifests:
        manifest = _read_json(manifest_path)
        if manifest.get("status") != "complete" and not include_incomplete:
            skipped += 1
            continue
        folder = manifest_path.parent
        run = _run_row(manifest, folder)
        run_rows.append(run)
        ids = {column: run[column] for column in ID_COLUMNS}
        if (folder / METRICS_FILE).exists():
            step_frames.append(_read_steps(folder / METRICS_FILE).assign(**ids))
        if (folder / PROBE_FILE).exists():
            probe_frames.append(_read_probes(folder / PROBE_FILE).assign(**ids))
        if (folder / EVAL_FILE).exists():
            evaluation = _read_json(folder / EVAL_FILE)
            correct = evaluation["correct"]
            eval_rows.append({**ids, "n": evaluation["n"], **evaluation["summary"]})
            passk_frames.append(_passk_frame(evaluation["n"], correct).assign(**ids))
            difficulty = evaluation.get("difficulty") or [math.nan] * len(correct)
            if len(difficulty) != len(correct):
                raise ParameterError(
                    f"{folder / EVAL_FILE}: 'difficulty' has {len(difficulty)} entries and "
                    f"'correct' {len(correct)}; they must be one per test prompt"
                )
            prompt_frames.append(
                pd.DataFrame(
                    {
                        "prompt": range(len(correct)),
                        "n": evaluation["n"],
                        "correct": correct,
                        "difficulty": difficulty,
                    }
                ).assign(**ids)
            )
    if not run_rows:
        hint = f" ({skipped} incomplete skipped; include_incomplete=True loads them)" if skipped else ""
        raise ParameterError(
            f"no runs in {str(experiment_dir)!r}: expected <variant>/seed<k>/{MANIFEST_FILE}{hint}"
        )
    runs = _ordered(pd.DataFrame(run_rows))
    steps = _ordered(_concat(step_frames, [*ID_COLUMNS, "step"]), "step")
    evals = _ordered(pd.DataFrame(eval_rows) if eval_rows else pd.DataFrame(columns=[*ID_COLUMNS, "n"]))
    passk = _ordered(_concat(passk_frames, [*ID_COLUMNS, "k", "pass_at_k"]), "k")
    prompts = _ordered(
        _concat(prompt_frames, [*ID_COLUMNS, "prompt", "n", "correct", "difficulty"]), "prompt"
    )
    probe_columns = ["step", "prompt", "prompt_id", "entropy_sum", "nll_sum", "tokens", "correct", "samples"]
    probes = _ordered(_concat(probe_frames, [*ID_COLUMNS, *probe_columns]), "step", "prompt")
    steps = steps[[*ID_COLUMNS, "step", *(c for c in steps.columns if c not in {*ID_COLUMNS, "step"})]]
    return Runs(
        runs=runs,
        steps=steps,
        evals=evals,
        passk=passk[[*ID_COLUMNS, "k", "pass_at_k"]],
        prompts=prompts[[*ID_COLUMNS, "prompt", "n", "correct", "difficulty"]],
        probes=probes[[*ID_COLUMNS, *probe_columns]],
    )


TASK_SWEEP = (
    "task"  # a block of a grid swept over ``task`` is that task's runs (variants ``<method>--task=<t>``)
)


def task_block(runs: Runs, task: str) -> Runs:
    """The runs of one task as if they were an experiment of their own: the unswept runs of ``task`` and its
    sensitivity sweeps, or the block swept to ``task`` (``<method>--task=<task>``, renamed to ``<method>``).
    The ``paper`` preset trains arith in its main block and geometry in a block swept to ``geometry``."""
    frame = runs.runs
    swept = (frame["sweep_param"] == TASK_SWEEP) & (frame["sweep_value"].astype(str) == task)
    own = (frame["task"] == task) & (frame["sweep_param"] != TASK_SWEEP)
    keep = frame.loc[swept | own, "variant"]
    renamed = dict(zip(frame.loc[swept, "variant"], frame.loc[swept, "method"], strict=True))

    def select(table: pd.DataFrame) -> pd.DataFrame:
        table = table[table["variant"].isin(keep)].copy()
        moved = table["variant"].isin(renamed)
        table.loc[moved, "variant"] = table.loc[moved, "variant"].map(renamed)
        table.loc[moved, "sweep_param"], table.loc[moved, "sweep_value"] = None, math.nan
        return table.reset_index(drop=True)

    return Runs(
        *(select(getattr(runs, name)) for name in ("runs", "steps", "evals", "passk", "prompts", "probes"))
    )


def run_tasks(runs: Runs) -> list[str]:
    """The tasks an experiment trained on, its main block's first."""
    frame = runs.runs
    swept = frame["sweep_param"] == TASK_SWEEP
    return list(
        dict.fromkeys([*frame.loc[~swept, "task"].dropna(), *frame.loc[swept, "sweep_value"].astype(str)])
    )


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ParameterError(f"{path} is not valid JSON: {error}") from error


def _run_row(manifest: dict, folder: Path) -> dict:
    sweep = manifest.get("sweep") or {}
    if len(sweep) == 1:
        ((sweep_param, sweep_value),) = sweep.items()
    else:  # no sweep, or several parameters swept together: their names and values joined
        sweep_param = ",".join(sweep) or None
        sweep_value = ",".join(map(str, sweep.values())) or math.nan
    parameters = manifest.get("parameters") or {}
    return {
        "experiment": manifest.get("experiment"),
        "variant": manifest["variant"],
        "method": manifest["method"],
        "seed": int(manifest["seed"]),
        "sweep_param": sweep_param,
        "sweep_value": sweep_value,
        "status": manifest.get("status"),
        "policy": parameters.get("policy"),
        "task": parameters.get("task"),
        "steps": parameters.get("steps"),
        "wall_seconds": manifest.get("wall_seconds", math.nan),
        "peak_rss_mb": manifest.get("peak_rss_mb", math.nan),
        "path": str(folder),
        "parameters": parameters,
    }


def _read_jsonl(path: Path) -> list[dict]:
    """Rows of a ``.jsonl`` file; a line that is not JSON (a running run's half-written row) is skipped."""
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def _read_steps(path: Path) -> pd.DataFrame:
    """Rows of ``metrics.jsonl``, the update-batch columns of older runs renamed (:data:`LEGACY_COLUMNS`)."""
    frame = pd.DataFrame(_read_jsonl(path))
    return frame.rename(columns={old: new for old, new in LEGACY_COLUMNS.items() if new not in frame})


def _read_probes(path: Path) -> pd.DataFrame:
    """``probe.jsonl`` as one row per probe step and prompt (a repeated step: its last row)."""
    frames = []
    for row in _read_jsonl(path):
        count = len(row["tokens"])
        ids = row.get("prompt_ids", row.get("id"))  # the trainer's key for the probe prompts' ids
        frames.append(
            pd.DataFrame(
                {
                    "step": row["step"],
                    "prompt": range(count),
                    "prompt_id": ids if ids is not None else range(count),
                    "entropy_sum": row["entropy_sum"],
                    "nll_sum": row["nll_sum"],
                    "tokens": row["tokens"],
                    "correct": row["correct"],
                    "samples": row["samples"],
                }
            )
        )
    frame = _concat(frames, ["step", "prompt"])
    return frame.drop_duplicates(["step", "prompt"], keep="last")


def _passk_frame(n: int, correct: Iterable[int]) -> pd.DataFrame:
    """Mean unbiased pass@k over prompts for k = 1..n (each distinct correct count is computed once)."""
    counts = Counter(correct)
    prompts = sum(counts.values())
    values = [sum(m * pass_at_k(n, c, k) for c, m in counts.items()) / prompts for k in range(1, n + 1)]
    return pd.DataFrame({"k": range(1, n + 1), "pass_at_k": values})


def _concat(frames: list[pd.DataFrame], empty_columns: list[str]) -> pd.DataFrame:
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=empty_columns)


def method_rank(methods: pd.Series) -> pd.Series:
    """Position of each method in :data:`METHOD_ORDER` (unknown methods last), for sorting."""
    return methods.map({m: i for i, m in enumerate(METHOD_ORDER)}).fillna(len(METHOD_ORDER))


def _ordered(frame: pd.DataFrame, *then: str) -> pd.DataFrame:
    """Sorted by method order, variant, seed and ``then``; a method's own variant before its sweeps."""
    if frame.empty:
        return frame.reset_index(drop=True)
    return (
        frame.assign(_rank=method_rank(frame["method"]), _swept=frame["sweep_param"].notna())
        .sort_values(["_rank", "_swept", "sweep_param", "variant", "seed", *then], kind="stable")
        .drop(columns=["_rank", "_swept"])
        .reset_index(drop=True)
    )


def paper_reference() -> pd.DataFrame:
    """Every number the paper (and its earlier EFRame versions) reports, as recovered in the notes.

    Columns: source, table_or_figure, model, dataset, method, metric, k, value, confidence.
    """
    return pd.read_csv(PAPER_RESULTS_FILE)


# ---------------------------------------------------------------------------------------------------------
# Intervals
# ---------------------------------------------------------------------------------------------------------
def metric_bounds(name: str) -> tuple[float, float]:
    """The range a metric's values can take: [0, 1] for pass@k, mean@n, maj@n, hard shares and accuracies;
    [0, inf) for entropies, -log p, lengths, times and ``uec/`` sample counts; otherwise unbounded."""
    if re.search(r"(pass|mean|maj|hard_share)@\d+|pass_at_k|accuracy$", name):
        return 0.0, 1.0
    if re.search(r"entropy|nll|length|seconds|^time/|^uec/", name):
        return 0.0, math.inf
    return -math.inf, math.inf


def confidence_interval(
    values: Iterable[float], level: float = 0.95, bounds: tuple[float, float] = (-math.inf, math.inf)
) -> tuple[float, float, float]:
    """(mean, low, high): Student-t interval of the mean over seeds, clipped to ``bounds``; NaNs are ignored.

    Clipping to the range the quantity can take only drops impossible values, so the interval keeps its
    coverage. One value gives (v, v, v); no values give NaNs.
    """
    data = np.asarray([v for v in values if not pd.isna(v)], dtype=float)
    if data.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(data.mean())
    if data.size == 1:
        return mean, mean, mean
    half = float(stats.t.ppf((1 + level) / 2, data.size - 1) * data.std(ddof=1) / math.sqrt(data.size))
    return mean, max(mean - half, bounds[0]), min(mean + half, bounds[1])


def bootstrap_interval(
    values: Iterable[float], level: float = 0.95, resamples: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """(mean, low, high): percentile bootstrap interval of the mean over seeds (unpaired); NaNs are ignored.

    A resampled mean lies between the smallest and largest value, so the interval never leaves the range of
    a bounded metric. With few seeds it is narrow: for 3 seeds it is their range (each extreme is the whole
    resample with probability 1/27 > 2.5%), which covers a 95% interval less often than the Student-t one.
    One value gives (v, v, v); no values give NaNs.
    """
    data = np.asarray([v for v in values if not pd.isna(v)], dtype=float)
    if data.size == 0:
        return math.nan, math.nan, math.nan
    weights = _resample_counts(np.random.default_rng(seed), data.size, resamples)
    low, high = np.quantile(weights @ data / data.size, [(1 - level) / 2, (1 + level) / 2])
    return float(data.mean()), float(low), float(high)


# ---------------------------------------------------------------------------------------------------------
# Paired comparisons
# ---------------------------------------------------------------------------------------------------------
def paired_differences(
    runs_or_dir: Runs | str | Path,
    reference: str = "grpo",
    metrics: Iterable[str] = ("pass@1", "pass@k", "probe_entropy"),
    *,
    variants: Iterable[str] | None = None,
    level: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Each variant minus ``reference``, per metric: the mean difference and a paired bootstrap interval.

    ``variants``: the variants compared (default: every unswept one but the reference). ``metrics``:
    ``pass@<k>``; ``pass@k``, the largest k every evaluated run has; ``probe_entropy`` and
    ``probe_sampled_nll``, the last probe both variants' runs share (token-weighted: per seed, the sum over
    prompts of ``entropy_sum`` (``nll_sum``) over the sum of ``tokens``).

    Design. A variant's value is the mean over seeds of its per-seed value on the test (probe) prompts.
    Seeds are the unit of training randomness and prompts the unit of evaluation randomness, and they are
    crossed (every run sees every prompt), so each bootstrap resample draws seeds (with replacement, among
    the seeds both variants have) and, independently, prompts (with replacement), and recomputes the
    difference of the two variants' values on the same drawn seeds and prompt indices. Pairing removes what
    both variants share -- how hard each prompt is, what each seed's data order does -- from the
    difference, which unpaired intervals cannot. The interval is the percentile interval of the
    ``resamples`` differences at ``level``. Every variant and metric is resampled with a generator seeded
    with ``seed``, so the same draws are used across variants and results are reproducible. With few seeds
    the seed level is coarse (3 seeds give 10 distinct multisets) and its variance is underestimated by a
    factor (S - 1) / S; the prompt level is what makes intervals informative.

    Returns one row per variant and metric (:data:`PAIRED_COLUMNS`): ``diff`` (variant - reference),
    ``low``, ``high``, ``value`` and ``reference_value`` (the two means over the paired seeds), ``seeds`` and
    ``prompts`` paired (0 and NaNs when either lacks the data), the probe ``step`` used, ``interval`` and the
    :func:`verdict`.
    """
    runs = runs_or_dir if isinstance(runs_or_dir, Runs) else load_runs(runs_or_dir)
    loaded = list(dict.fromkeys(runs.runs["variant"]))
    check_choice("reference", reference, loaded)
    check_float("level", level, minimum=0.0, maximum=1.0, min_exclusive=True)
    check_int("resamples", resamples, minimum=1)
    check_int("seed", seed, minimum=0)
    if variants is None:
        unswept = runs.runs.loc[runs.runs["sweep_param"].isna(), "variant"]
        variants = [v for v in dict.fromkeys(unswept) if v != reference]
    else:
        variants = [check_choice("variants", v, loaded) for v in variants]
    method = runs.runs.drop_duplicates("variant").set_index("variant")["method"]
    interval = f"paired bootstrap over seeds and prompts, {100 * level:g}% percentile, {resamples} resamples"
    rows = []

    @functools.cache
    def weights(seeds: int, prompts: int) -> tuple[np.ndarray, np.ndarray]:  # the same draws for every pair
        rng = np.random.default_rng(seed)
        return _resample_counts(rng, seeds, resamples), _resample_counts(rng, prompts, resamples)

    for metric in _resolve_metrics(metrics, runs):
        per_run = _per_run_values(runs, metric)
        for variant in variants:
            arrays, step = _paired_arrays(per_run, variant, reference)
            row = {
                "variant": variant,
                "method": method[variant],
                "reference": reference,
                "metric": metric,
                "seeds": 0,
                "prompts": 0,
                "step": step,
                "interval": interval,
            }
            if arrays is not None:
                row.update(_bootstrap_difference(*arrays, weights(*arrays[0][0].shape), level))
            rows.append(row)
    for row in rows:
        row["verdict"] = verdict(row.get("low", math.nan), row.get("high", math.nan))
    table = pd.DataFrame(rows, columns=PAIRED_COLUMNS)
    return table.astype({"seeds": int, "prompts": int})


def verdict(low: float, high: float) -> str:
    """The rule by which a paired difference is read, fixed before any result was looked at: ``"higher"`` when
    the whole interval is above 0, ``"lower"`` when it is below 0, ``"not resolved"`` when it contains 0 (no
    claim either way), ``"no data"`` when there is no interval."""
    if pd.isna(low) or pd.isna(high):
        return "no data"
    if low > 0:
        return "higher"
    if high < 0:
        return "lower"
    return "not resolved"


def variance_components(differences: np.ndarray) -> dict[str, float]:
    """Seed, prompt and residual variances of a seeds x prompts table of paired per-prompt differences, by the
    two-way random-effects ANOVA without replication (negative estimates set to 0)."""
    table = np.asarray(differences, dtype=float)
    seeds, prompts = table.shape
    if seeds < 2 or prompts < 2:
        raise ParameterError(
            f"differences has shape {table.shape}; at least 2 seeds and 2 prompts are needed"
        )
    grand = table.mean()
    seed_effects, prompt_effects = table.mean(axis=1) - grand, table.mean(axis=0) - grand
    residual = table - grand - seed_effects[:, None] - prompt_effects[None, :]
    ms_seed = prompts * (seed_effects**2).sum() / (seeds - 1)
    ms_prompt = seeds * (prompt_effects**2).sum() / (prompts - 1)
    ms_residual = (residual**2).sum() / ((seeds - 1) * (prompts - 1))
    return {
        "seed": float(max((ms_seed - ms_residual) / prompts, 0.0)),
        "prompt": float(max((ms_prompt - ms_residual) / seeds, 0.0)),
        "residual": float(ms_residual),
    }


def detectable_difference(
    components: dict[str, float], seeds: int, prompts: int, level: float = 0.95, power: float = 0.8
) -> float:
    """The smallest true mean difference that a two-sided ``level`` interval excludes 0 for with probability
    ``power``, for a design of ``seeds`` x ``prompts`` with the :func:`variance_components` ``components``:
    (z_(1+level)/2 + z_power) x sqrt(seed / S + prompt / P + residual / (S P))."""
    check_int("seeds", seeds, minimum=1)
    check_int("prompts", prompts, minimum=1)
    variance = (
        components["seed"] / seeds
        + components["prompt"] / prompts
        + components["residual"] / (seeds * prompts)
    )
    return float((stats.norm.ppf((1 + level) / 2) + stats.norm.ppf(power)) * math.sqrt(variance))


def paired_per_prompt(
    runs: Runs, variant: str, reference: str = "grpo", metric: str = "pass@1"
) -> np.ndarray:
    """Seeds x prompts table of ``variant`` minus ``reference`` per prompt (pass@k) over their shared seeds."""
    arrays, _ = _paired_arrays(_per_run_values(runs, metric), variant, reference)
    if arrays is None:
        raise ParameterError(f"variant={variant!r} and reference={reference!r} share no evaluated seed")
    (num_a, den_a), (num_b, den_b) = arrays
    return num_a / den_a - num_b / den_b


def _resolve_metrics(metrics: Iterable[str], runs: Runs) -> list[str]:
    """The metric names with ``pass@k`` replaced by the largest k every evaluated run has; checked."""
    resolved = []
    for metric in [metrics] if isinstance(metrics, str) else metrics:
        if metric == "pass@k":
            if runs.prompts.empty:
                continue
            metric = f"pass@{int(runs.prompts['n'].min())}"
        elif not (re.fullmatch(r"pass@[1-9]\d*", metric) or metric in PROBE_RATIOS):
            raise ParameterError(
                f"metrics={metric!r} is not allowed; choose pass@<k>, pass@k (the largest k "
                f"every run has) or one of {list(PROBE_RATIOS)}"
            )
        resolved.append(metric)
    return list(dict.fromkeys(resolved))


def _per_run_values(runs: Runs, metric: str) -> dict[tuple[str, int], dict[int, tuple]]:
    """(variant, seed) -> probe step (-1: the final evaluation) -> (per-prompt numerators, denominators,
    prompt ids)."""
    if metric in PROBE_RATIOS:
        frame = runs.probes.assign(num=runs.probes[PROBE_RATIOS[metric]], den=runs.probes["tokens"])
    else:
        k = int(metric.removeprefix("pass@"))
        values = np.full(len(runs.prompts), np.nan)
        for n, rows in runs.prompts.groupby("n"):  # per-prompt pass@k, each (n, c) computed once
            table = np.array([pass_at_k(int(n), c, k) for c in range(int(n) + 1)])
            values[rows.index] = table[rows["correct"].to_numpy(dtype=int)]
        frame = runs.prompts.assign(num=values, den=1.0, prompt_id=runs.prompts["prompt"], step=-1)
    if frame.empty:
        return {}
    keys = ["variant", "seed", "step"]
    codes = frame.groupby(keys, sort=False).ngroup().to_numpy()
    order = np.argsort(codes, kind="stable")  # slicing numpy arrays: far faster than iterating a groupby
    starts = np.flatnonzero(np.diff(codes[order], prepend=-1))
    parts = [np.split(frame[c].to_numpy()[order], starts[1:]) for c in ("num", "den", "prompt_id")]
    per_run: dict[tuple[str, int], dict[int, tuple]] = {}
    for (variant, seed, step), num, den, prompt_ids in zip(
        frame[keys].to_numpy()[order[starts]].tolist(), *parts, strict=True
    ):
        per_run.setdefault((variant, seed), {})[step] = (
            num.astype(float),
            den.astype(float),
            tuple(prompt_ids),
        )
    return per_run


def _paired_arrays(per_run: dict[tuple[str, int], dict[int, tuple]], variant: str, reference: str):
    """((num, den) of the variant, (num, den) of the reference), each seeds x prompts, over the seeds both
    have at the last step they all share (None when there is none), and that step (NaN for pass@k)."""
    seeds = sorted({s for v, s in per_run if v == variant} & {s for v, s in per_run if v == reference})
    shared = (
        set.intersection(*(set(per_run[v, s]) for v in (variant, reference) for s in seeds)) if seeds else {}
    )
    if not shared:
        return None, math.nan
    step = max(shared)
    entries = [[per_run[v, s][step] for s in seeds] for v in (variant, reference)]
    if len({prompt_ids for runs in entries for _, _, prompt_ids in runs}) > 1:
        raise ParameterError(
            f"variant={variant!r} and reference={reference!r}: their runs were not evaluated on the same "
            "prompts in the same order, so they cannot be paired"
        )
    arrays = tuple((np.stack([e[0] for e in runs]), np.stack([e[1] for e in runs])) for runs in entries)
    return arrays, math.nan if step < 0 else float(step)


def _resample_counts(rng: np.random.Generator, units: int, resamples: int) -> np.ndarray:
    """How often each of ``units`` is drawn in each of ``resamples`` draws with replacement (resamples x units)."""
    drawn = rng.integers(0, units, size=(resamples, units)) + units * np.arange(resamples)[:, None]
    return np.bincount(drawn.ravel(), minlength=resamples * units).reshape(resamples, units).astype(float)


def _bootstrap_difference(
    ours: tuple[np.ndarray, np.ndarray],
    theirs: tuple[np.ndarray, np.ndarray],
    weights: tuple[np.ndarray, np.ndarray],
    level: float,
) -> dict:
    """Paired bootstrap of mean over seeds of (sum num / sum den over prompts), ``ours`` minus ``theirs``;
    ``weights``: the resampled seed and prompt counts (resamples x seeds, resamples x prompts)."""
    seed_weights, prompt_weights = weights
    seeds, prompts = ours[0].shape
    sums = prompt_weights @ np.vstack([*ours, *theirs]).T  # resamples x (4 seeds): each run's resampled sums
    num_a, den_a, num_b, den_b = np.split(sums, 4, axis=1)
    draws = (seed_weights * (num_a / den_a - num_b / den_b)).sum(axis=1) / seeds
    value, reference_value = (
        float(np.mean(num.sum(axis=1) / den.sum(axis=1))) for num, den in (ours, theirs)
    )
    low, high = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2])
    return {
        "diff": value - reference_value,
        "low": float(low),
        "high": float(high),
        "value": value,
        "reference_value": reference_value,
        "seeds": seeds,
        "prompts": prompts,
    }


# ---------------------------------------------------------------------------------------------------------
# Summaries
# ---------------------------------------------------------------------------------------------------------
def per_step_seconds(steps: pd.DataFrame) -> pd.Series:
    """Wall time of each step without in-training validation and entropy probe (``time/step -
    time/validation - time/probe``); NaN for rows without a step time (the step-0 probe)."""
    if "time/step" not in steps:
        return pd.Series(math.nan, index=steps.index)
    seconds = steps["time/step"]
    for timer in ("time/validation", "time/probe"):
        if timer in steps:
            seconds = seconds - steps[timer].fillna(0.0)
    return seconds


def summary_table(runs: Runs) -> pd.DataFrame:
    """Final metrics per variant, as mean over seeds with a 95% interval (``<metric>``, ``_low``, ``_high``).

    Metrics: pass@1 and pass@k for the largest k every run has (recomputed from the correct counts); each
    mean@n and maj@n and ``token_entropy`` of the final evaluation; the probe's entropy and -log p of the
    sampled tokens of the initial policy (step 0) and at the last probe (``probe_entropy_start``/``_end``,
    ``probe_sampled_nll_start``/``_end``); the same measures on the samples each method trained on
    (``update_batch_entropy_start``/``_end``, ``update_batch_sampled_nll_start``/``_end``: mean of the first /
    last 3 logged values); ``step_seconds``, the mean wall time per step without validation and probe.
    ``seeds`` counts the loaded runs.

    The interval is the Student-t one over seeds, clipped to the metric's range (:func:`metric_bounds`):
    clipping keeps its coverage, whereas a percentile bootstrap over 3 seeds is just their range.
    """
    per_run = runs.runs[ID_COLUMNS].copy()
    keys = ["variant", "seed"]
    if not runs.passk.empty:
        k_max = int(runs.passk.groupby(keys)["k"].max().min())
        for k in sorted({1, k_max}):
            chosen = runs.passk[runs.passk["k"] == k].set_index(keys)["pass_at_k"].rename(f"pass@{k}")
            per_run = per_run.join(chosen, on=keys)
    final = [c for c in runs.evals.columns if re.fullmatch(r"(mean|maj)@\d+", c)] + ["token_entropy"]
    if not runs.evals.empty:
        per_run = per_run.join(runs.evals.set_index(keys)[[c for c in final if c in runs.evals]], on=keys)
    if not runs.steps.empty:
        grouped = runs.steps.groupby(keys)
        for column, short in PROBE_MEASURES.items():
            if column in runs.steps:
                start = runs.steps[runs.steps["step"] == 0].groupby(keys)[column].last()
                per_run = per_run.join(start.rename(f"{short}_start"), on=keys)
                per_run = per_run.join(grouped[column].last().rename(f"{short}_end"), on=keys)
        for column, short in UPDATE_BATCH_MEASURES.items():
            if column in runs.steps:
                logged = grouped[column].apply(lambda s: s.dropna().to_numpy())
                start = logged.map(lambda v: _edge_mean(v[:EDGE_STEPS])).rename(f"{short}_start")
                end = logged.map(lambda v: _edge_mean(v[-EDGE_STEPS:])).rename(f"{short}_end")
                per_run = per_run.join(start, on=keys).join(end, on=keys)
        seconds = per_step_seconds(runs.steps).groupby([runs.steps[k] for k in keys]).mean()
        per_run = per_run.join(seconds.rename("step_seconds"), on=keys)
    metrics = [c for c in per_run.columns if c not in ID_COLUMNS]
    rows = []
    for _, group in per_run.groupby("variant", sort=False):
        row = {
            **group.iloc[0][[c for c in ID_COLUMNS if c != "seed"]].to_dict(),
            "seeds": len(group),
            "interval": SUMMARY_INTERVAL,
        }
        for metric in metrics:
            row[metric], row[f"{metric}_low"], row[f"{metric}_high"] = confidence_interval(
                group[metric], bounds=metric_bounds(metric)
            )
        rows.append(row)
    return pd.DataFrame(rows)


def _edge_mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else math.nan


def write_summary(
    table: pd.DataFrame, out_dir: str | Path, *, paired: pd.DataFrame | None = None
) -> list[Path]:
    """Write ``summary.csv`` (every column) and ``summary.md`` (``mean [low, high]`` per metric), and with
    ``paired`` (from :func:`paired_differences`) ``paired.csv`` and ``paired.md`` (``diff [low, high]``);
    returns the paths written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = out / "summary.csv", out / "summary.md"
    table.to_csv(csv_path, index=False)
    metrics = [c for c in table.columns if f"{c}_low" in table.columns]
    cells = [
        [
            str(row["variant"]),
            str(row["seeds"]),
            *(_interval_text(row[m], row[f"{m}_low"], row[f"{m}_high"]) for m in metrics),
        ]
        for _, row in table.iterrows()
    ]
    md_path.write_text(
        f"Mean over seeds with {SUMMARY_INTERVAL} [low, high]; one seed gives no interval.\n\n"
        + _markdown(["variant", "seeds", *metrics], cells)
    )
    if paired is None:
        return [csv_path, md_path]
    paired_csv, paired_md = out / "paired.csv", out / "paired.md"
    paired.to_csv(paired_csv, index=False)
    cells = [
        [
            row.variant,
            row.reference,
            row.metric,
            _interval_text(row.diff, row.low, row.high, always=True),
            row.verdict,
            str(row.seeds),
            str(row.prompts),
        ]
        for row in paired.itertuples()
    ]
    intervals = "; ".join(paired["interval"].unique())
    paired_md.write_text(
        f"Difference variant - reference ({intervals or 'no comparisons'}).\n\n"
        + _markdown(
            ["variant", "reference", "metric", "diff [low, high]", "verdict", "seeds", "prompts"], cells
        )
    )
    return [csv_path, md_path, paired_csv, paired_md]


def _markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(cells) + " |" for cells in rows]) + "\n"


def _interval_text(mean: float, low: float, high: float, *, always: bool = False) -> str:
    if pd.isna(mean):
        return "n/a"
    return f"{mean:.4g}" if low == high and not always else f"{mean:.4g} [{low:.4g}, {high:.4g}]"
