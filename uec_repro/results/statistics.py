"""Intervals over seeds, paired comparisons of methods over seeds and prompts, and power analysis.

Every method of an experiment is evaluated (and probed) on the same prompts in the same order with the same
seeds, so :func:`paired_differences` compares methods prompt by prompt and seed by seed.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from ..evaluation import pass_at_k
from ..validation import ParameterError, check_choice, check_float, check_int
from .loading import Runs, _unswept, load_runs

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

    It never leaves a bounded metric's range, but with few seeds it is narrow: for 3 seeds it is their range,
    which covers less often than the Student-t one. One value gives (v, v, v); no values give NaNs.
    """
    data = np.asarray([v for v in values if not pd.isna(v)], dtype=float)
    if data.size == 0:
        return math.nan, math.nan, math.nan
    weights = _resample_counts(np.random.default_rng(seed), data.size, resamples)
    low, high = np.quantile(weights @ data / data.size, [(1 - level) / 2, (1 + level) / 2])
    return float(data.mean()), float(low), float(high)


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

    A variant's value is the mean over seeds of its value on the test (probe) prompts. Seeds and prompts are
    crossed, so each resample draws seeds (among those both variants have) and, independently, prompts, with
    replacement, and recomputes the difference on the same draws: pairing removes what both variants share
    (prompt difficulty, a seed's data order). The interval is the percentile interval of the ``resamples``
    differences at ``level``; every variant and metric uses the same draws (generator seeded with ``seed``).
    With few seeds the seed level is coarse; the prompt level is what makes intervals informative.

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
        variants = [v for v in dict.fromkeys(_unswept(runs.runs)["variant"]) if v != reference]
    else:
        variants = [check_choice("variants", v, loaded) for v in variants]
    method = runs.runs.drop_duplicates("variant").set_index("variant")["method"]
    interval = f"paired bootstrap over seeds and prompts, {100 * level:g}% percentile, {resamples} resamples"
    rows = []

    @functools.cache
    def weights(seeds: int, prompts: int) -> tuple[np.ndarray, np.ndarray]:  # the same draws for every pair
        return _resample_weights(seeds, prompts, resamples, seed)

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
    """Seeds x prompts table of ``variant`` minus ``reference`` per prompt over their shared seeds."""
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
    """How often each of ``units`` is drawn in each of ``resamples`` draws with replacement (resamples x
    units)."""
    drawn = rng.integers(0, units, size=(resamples, units)) + units * np.arange(resamples)[:, None]
    return np.bincount(drawn.ravel(), minlength=resamples * units).reshape(resamples, units).astype(float)


def _resample_weights(seeds: int, prompts: int, resamples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Resampled seed and prompt counts (resamples x seeds, resamples x prompts) from a generator seeded with
    ``seed``: the draws of :func:`paired_differences`."""
    rng = np.random.default_rng(seed)
    return _resample_counts(rng, seeds, resamples), _resample_counts(rng, prompts, resamples)


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
