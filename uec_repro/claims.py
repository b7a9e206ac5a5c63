"""The paper's claims, each tested on this package's runs: the claims table.

One row per claim and task block: the paper's statement (with its numbers from ``data/paper_results.csv``
where they exist), the statistic we compute, its effect with a 95 % interval, and a verdict. The verdict rule
was fixed in code before any result was seen (:func:`claim_verdict`): a claim *holds* when the whole interval
lies on the side of 0 the claim states, *does not hold* when the whole interval lies on the other side, is
*inconclusive* when the interval contains 0, and has *no data* without an interval. Verdicts are computed by
:func:`claims_table`, never edited by hand. The effects are measured on this package's toy runs, not on the
paper's models.

An experiment may hold several task blocks (the ``paper`` preset: arith, its main block, and geometry, the
variants ``<method>--task=geometry``); each claim is measured in every block that has its methods
(:func:`~uec_repro.results.task_block`).

>>> runs = load_runs("runs/paper")
>>> write_claims(runs, "figures/paper")
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .results.loading import Runs, paper_reference, run_tasks, task_block
from .results.statistics import (
    _paired_arrays,
    _per_run_values,
    _resample_weights,
    bootstrap_interval,
    paired_differences,
    verdict,
)
from .results.summary import _interval_text, _markdown
from .validation import ParameterError, check_choice, check_float, check_int

__all__ = [
    "CLAIMS",
    "CLAIM_COLUMNS",
    "Claim",
    "claim_verdict",
    "claims_table",
    "results_block",
    "update_readme",
    "write_claims",
]

WINDOW = 0.2  # claim (a): the first and the last 20 % of the training steps
VALIDATION = "validation/accuracy"
CLAIM_COLUMNS = [
    "id",
    "claim",
    "paper",
    "statistic",
    "effect",
    "low",
    "high",
    "task",
    "steps",
    "seeds",
    "verdict",
]
PAIRED_FIELDS = {"effect": "diff", "low": "low", "high": "high", "seeds": "seeds", "metric": "metric"}
VERDICTS = {"higher": "holds", "lower": "does not hold", "not resolved": "inconclusive", "no data": "no data"}


@dataclass(frozen=True)
class Claim:
    """One claim: ``direction`` +1 says the effect is > 0, -1 that it is < 0. ``methods``: the methods its
    statistic compares, in the order it uses them; ``metric``: a metric of :func:`paired_differences` or
    one of this module's measures; ``paper_rows``: (dataset, method, metric prefix) of the rows of
    ``paper_results.csv`` quoted; ``tasks``: the task blocks it applies to (None: every block)."""

    id: str
    claim: str
    paper: str
    statistic: str
    direction: int
    methods: tuple[str, ...]
    metric: str
    paper_rows: tuple[tuple[str, str, str], ...] = ()
    tasks: tuple[str, ...] | None = None


PAIRED = "paired bootstrap over seeds x prompts"
G3K = "Geometry3K test"
CLAIMS: tuple[Claim, ...] = (
    Claim(
        "a",
        "GRPO's policy entropy falls over training",
        "GRPO's entropy collapses during training",
        "GRPO's probe entropy (per seed: sum of entropy_sum / sum of tokens over the probe prompts), "
        "mean over the probe steps in the last 20 % of the steps minus that over the first 20 % "
        f"(step 0 included); {PAIRED}",
        -1,
        ("grpo",),
        "entropy_fall",
    ),
    Claim(
        "b",
        "UEC-RL's policy entropy stays above GRPO's at the end",
        "UEC-RL keeps the policy's entropy from collapsing",
        f"probe entropy at the last probe step, uec_rl minus grpo; {PAIRED}",
        1,
        ("uec_rl", "grpo"),
        "probe_entropy",
    ),
    Claim(
        "c",
        "UEC-RL >= GRPO at pass@1",
        "UEC-RL beats GRPO at pass@1",
        f"pass@1, uec_rl minus grpo; {PAIRED}",
        1,
        ("uec_rl", "grpo"),
        "pass@1",
        (
            (G3K, "UEC-RL (=EFRame)", "accuracy"),
            (G3K, "GRPO", "accuracy"),
            ("Average over 7 text benchmarks", "UEC-RL", "mean accuracy"),
            ("Average over 7 text benchmarks", "GRPO", "mean accuracy"),
        ),
    ),
    Claim(
        "d",
        "UEC-RL > GRPO at pass@k for large k",
        "UEC-RL keeps the large-k end of pass@k (curves; numbers not recovered)",
        f"{{metric}} (the largest k every run has), uec_rl minus grpo; {PAIRED}",
        1,
        ("uec_rl", "grpo"),
        "pass@k",
    ),
    Claim(
        "e",
        "removing targeted exploration hurts",
        "the ablation without targeted exploration scores lower",
        f"pass@1, uec_rl minus uec_rl_no_explore; {PAIRED}",
        1,
        ("uec_rl", "uec_rl_no_explore"),
        "pass@1",
        ((G3K, "UEC-RL full", "accuracy"), (G3K, "UEC-RL w/o targeted exploration", "accuracy")),
    ),
    Claim(
        "f",
        "removing the replay stabilizer hurts",
        "the ablation without replay scores lower",
        f"pass@1, uec_rl minus uec_rl_no_replay; {PAIRED}",
        1,
        ("uec_rl", "uec_rl_no_replay"),
        "pass@1",
        ((G3K, "UEC-RL full", "accuracy"), (G3K, "UEC-RL w/o replay stabilizer", "accuracy")),
    ),
    Claim(
        "g",
        "removing selective retention hurts",
        "the ablation without selective retention scores lower",
        f"pass@1, uec_rl minus uec_rl_no_retention; {PAIRED}",
        1,
        ("uec_rl", "uec_rl_no_retention"),
        "pass@1",
        ((G3K, "UEC-RL full", "accuracy"), (G3K, "UEC-RL w/o selective retention", "accuracy")),
    ),
    Claim(
        "h",
        "GRPO's validation accuracy is unstable",
        "GRPO's validation accuracy is unstable during training",
        "per seed, the standard deviation (ddof 1) of the step-to-step changes of validation/accuracy; grpo "
        "minus uec_rl, mean over paired seeds; percentile bootstrap over paired seeds",
        1,
        ("grpo", "uec_rl"),
        "validation_instability",
    ),
    Claim(
        "i",
        "UEC-RL improves 37.9 % over GRPO on Geometry3K",
        "UEC-RL improves 37.9 % over GRPO",
        "(U - B) / (G - B) - 1 with U, G, B the pass@1 of uec_rl, grpo and base; paired bootstrap over "
        "seeds x prompts, nearest-rank percentile",
        1,
        ("uec_rl", "grpo", "base"),
        "gain_ratio",
        (
            (G3K, "UEC-RL vs GRPO", "relative improvement"),
            (G3K, "base model (no RL)", "accuracy"),
            (G3K, "GRPO", "accuracy"),
            (G3K, "UEC-RL (=EFRame)", "accuracy"),
        ),
        tasks=("geometry", "geometry3k"),
    ),
)


def claim_verdict(low: float, high: float, direction: int) -> str:
    """The rule, fixed before any result was seen: ``"holds"`` when the whole interval [low, high] lies on the
    claimed side of 0 (strictly above it for ``direction`` +1, strictly below for -1), ``"does not hold"``
    when it lies wholly on the other side, ``"inconclusive"`` when it contains 0, ``"no data"`` when low or
    high is NaN."""
    check_choice("direction", direction, (1, -1))
    return VERDICTS[verdict(*sorted((direction * low, direction * high)))]


def claims_table(runs: Runs, *, level: float = 0.95, resamples: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Every claim of :data:`CLAIMS` per task block that has its methods (:data:`CLAIM_COLUMNS`).

    A claim missing its methods everywhere still gets a row in its home block (the first block it applies to;
    the experiment's first task where it applies to none) with NaNs and verdict "no data", so every claim is
    shown. ``steps``: the largest training steps of the runs compared; ``seeds``: the seeds paired.
    Bootstraps draw ``resamples`` resamples from a generator seeded with ``seed``.
    """
    check_float("level", level, minimum=0.0, maximum=1.0, min_exclusive=True)
    check_int("resamples", resamples, minimum=1)
    check_int("seed", seed, minimum=0)
    reference = paper_reference()
    tasks = run_tasks(runs)
    blocks = {task: task_block(runs, task) for task in tasks}
    options = {"level": level, "resamples": resamples, "seed": seed}
    rows = []
    for claim in CLAIMS:
        applicable = [task for task in tasks if claim.tasks is None or task in claim.tasks]
        measured = [task for task in applicable if set(claim.methods) <= set(blocks[task].runs["variant"])]
        for task in measured or (applicable or claim.tasks or tasks)[:1]:
            block = blocks.get(task, runs)
            used = list(claim.methods) if task in measured else []
            rows.append(_claim_row(claim, task, block, used, reference, options))
    return pd.DataFrame(rows, columns=CLAIM_COLUMNS)


def write_claims(runs: Runs, out_dir: str | Path) -> list[Path]:
    """Write :func:`claims_table` as ``claims.csv`` (every column) and ``claims.md``; returns their paths."""
    table = claims_table(runs)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = out / "claims.csv", out / "claims.md"
    table.to_csv(csv_path, index=False)
    cells = [
        [
            row.claim,
            row.paper,
            row.statistic,
            _interval_text(row.effect, row.low, row.high, spec=".3f", always=True),
            row.task,
            "n/a" if pd.isna(row.steps) else f"{row.steps:.0f}",
            str(row.seeds),
            row.verdict,
        ]
        for row in table.itertuples()
    ]
    md_path.write_text(
        "The paper's claims tested on this package's runs. Effects are measured on this package's toy runs, "
        "not on the paper's models; the paper's numbers are quoted as fractions. Verdict rule, fixed in code "
        "before any result was seen: a claim holds when the whole 95% interval lies on the side of 0 the "
        "claim states, does not hold when it lies wholly on the other side, is inconclusive when it contains "
        "0, and has no data without an interval. Verdicts are computed by `uec_repro.claims`, never edited "
        "by hand.\n\n"
        + _markdown(
            ["claim", "paper", "statistic", "effect [95% interval]", "task", "steps", "seeds", "verdict"],
            cells,
        )
    )
    return [csv_path, md_path]


def results_block(table: pd.DataFrame) -> str:
    """The README's "what the results say" block from a claims table (``claims.csv``): one row per claim, one
    column per task block, and the count of verdicts; generated, so the README cannot drift from the data."""
    tasks = list(dict.fromkeys(table["task"]))
    rows = []
    for claim, group in table.groupby("claim", sort=False):
        by_task = {row.task: row for row in group.itertuples()}
        cells = [
            f"{_interval_text(r.effect, r.low, r.high, spec='.3f', always=True)} {r.verdict}"
            if (r := by_task.get(task)) is not None
            else "–"
            for task in tasks
        ]
        rows.append([claim, *cells])
    counts = table["verdict"].value_counts()
    plural = {"holds": "hold", "does not hold": "do not hold"}
    tally = ", ".join(
        f"{counts[v]} {v if counts[v] == 1 else plural.get(v, v)}"
        for v in ("holds", "does not hold", "inconclusive", "no data")
        if v in counts
    )
    steps, seeds = table["steps"].dropna(), table.groupby("task")["seeds"].max()
    header = ["claim", *(f"{task} ({seeds[task]} seeds): effect [95 % interval], verdict" for task in tasks)]
    return (
        f"{len(table)} tests of the paper's claims at {steps.max():.0f} training steps: {tally}.\n\n"
        + _markdown(header, rows)
    )


README_MARKERS = ("<!-- results:start -->", "<!-- results:end -->")


def update_readme(readme: str | Path, claims_csv: str | Path) -> bool:
    """Rewrite the block between :data:`README_MARKERS` in ``readme`` with :func:`results_block` of
    ``claims_csv``; returns whether it changed."""
    path, (start, end) = Path(readme), README_MARKERS
    text = path.read_text()
    head, _, rest = text.partition(start)
    _, _, tail = rest.partition(end)
    new = f"{head}{start}\n{results_block(pd.read_csv(claims_csv)).strip()}\n{end}{tail}"
    if new != text:
        path.write_text(new)
    return new != text


def _claim_row(
    claim: Claim, task: str, runs: Runs, used: list[str], reference: pd.DataFrame, options: dict
) -> dict:
    """One row of the table: the claim measured on the variants ``used`` (none: no data)."""
    measured = MEASURES.get(claim.metric, _paired)(runs, used, claim.metric, **options) if used else {}
    effect, low, high = (measured.get(key, np.nan) for key in ("effect", "low", "high"))
    return {
        "id": claim.id,
        "claim": f"({claim.id}) {claim.claim}",
        "paper": _paper_text(claim, reference),
        "statistic": claim.statistic.format(metric=measured.get("metric", "pass@k")),
        "effect": effect,
        "low": low,
        "high": high,
        "task": task,
        "steps": runs.runs.loc[runs.runs["variant"].isin(used), "steps"].max(),
        "seeds": int(measured.get("seeds", 0)),
        "verdict": claim_verdict(low, high, claim.direction),
    }


def _paper_text(claim: Claim, reference: pd.DataFrame) -> str:
    """The paper's statement, then the values of its ``paper_rows`` (percentages, quoted as fractions)."""
    quoted: dict[str, list[str]] = {}
    for dataset, method, metric in claim.paper_rows:
        match = reference[
            (reference["dataset"] == dataset)
            & (reference["method"] == method)
            & reference["metric"].str.startswith(metric)
        ]
        if not match.empty:
            row = match.iloc[0]
            approximate = "~" if "approximate" in row["metric"] else ""
            quoted.setdefault(dataset, []).append(f"{method} {approximate}{row['value'] / 100:.4g}")
    return "; ".join(
        [claim.paper, *(f"{dataset}: {', '.join(values)}" for dataset, values in quoted.items())]
    )


# ---------------------------------------------------------------------------------------------------------
# Measures: (runs, variants in the claim's method order, metric, level, resamples, seed) -> effect, low,
# high, seeds (an empty dict: no data)
# ---------------------------------------------------------------------------------------------------------
def _paired(runs: Runs, variants: list[str], metric: str, *, level: float, resamples: int, seed: int) -> dict:
    """:func:`paired_differences` of the first variant minus the second."""
    ours, theirs = variants
    table = paired_differences(
        runs, theirs, (metric,), variants=[ours], level=level, resamples=resamples, seed=seed
    )
    if table.empty:  # pass@k without evaluations
        return {}
    row = table.iloc[0]
    return {key: row[column] for key, column in PAIRED_FIELDS.items()}


def _entropy_fall(
    runs: Runs, variants: list[str], metric: str, *, level: float, resamples: int, seed: int
) -> dict:
    """Claim (a): probe entropy, mean over the probe steps of the last 20 % of the steps minus that over the
    first 20 %, mean over seeds; the probe steps every seed has, on the same prompts at every step."""
    (variant,) = variants
    per_run = {s: steps for (v, s), steps in _per_run_values(runs, "probe_entropy").items() if v == variant}
    total = runs.runs.loc[runs.runs["variant"] == variant, "steps"].max()
    shared = set.intersection(*map(set, per_run.values())) if per_run else set()
    early = sorted(t for t in shared if t <= WINDOW * total)
    late = sorted(t for t in shared if t >= (1 - WINDOW) * total)
    if not early or not late:
        return {}
    seeds = sorted(per_run)
    entries = [per_run[s][t] for s in seeds for t in early + late]
    if len({prompt_ids for _, _, prompt_ids in entries}) > 1:
        raise ParameterError(f"variant={variant!r}: its probes did not use the same prompts at every step")
    num, den = (
        np.stack([e[i] for e in entries]).reshape(len(seeds), len(early) + len(late), -1) for i in (0, 1)
    )

    def late_minus_early(seed_weights: np.ndarray, prompt_weights: np.ndarray) -> np.ndarray:
        ratios = _ratios(num, den, prompt_weights)  # resamples x seeds x steps
        per_seed = ratios[:, :, len(early) :].mean(axis=2) - ratios[:, :, : len(early)].mean(axis=2)
        return _seed_mean(per_seed, seed_weights)

    draws = late_minus_early(*_resample_weights(len(seeds), num.shape[2], resamples, seed))
    low, high = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2])
    effect = late_minus_early(*_unit_weights(len(seeds), num.shape[2]))[0]
    return {"effect": float(effect), "low": float(low), "high": float(high), "seeds": len(seeds)}


def _validation_instability(
    runs: Runs, variants: list[str], metric: str, *, level: float, resamples: int, seed: int
) -> dict:
    """Claim (h): per seed, the standard deviation (ddof 1) of the step-to-step changes of the validation
    accuracy; the first variant minus the second, mean and percentile bootstrap over the paired seeds."""
    if VALIDATION not in runs.steps:
        return {}
    logged = runs.steps.dropna(subset=[VALIDATION]).sort_values("step")
    spread = [
        logged[logged["variant"] == variant].groupby("seed")[VALIDATION].apply(lambda s: s.diff().std())
        for variant in variants
    ]
    differences = (spread[0] - spread[1]).dropna()  # the seeds both have, with >= 3 validation steps
    effect, low, high = bootstrap_interval(differences, level=level, resamples=resamples, seed=seed)
    return {"effect": effect, "low": low, "high": high, "seeds": len(differences)}


def _gain_ratio(
    runs: Runs, variants: list[str], metric: str, *, level: float, resamples: int, seed: int
) -> dict:
    """Claim (i): (U - B) / (G - B) - 1 of the pass@1 of uec_rl, grpo and base over the seeds all three have.

    Each resample draws seeds and prompts jointly for the three variants and recomputes the ratio. Where
    G - B <= 0 the ratio is +inf when U - B > 0 (UEC-RL gains, GRPO does not) and NaN otherwise; NaN
    resamples are dropped. The interval takes nearest-rank percentiles (``inverted_cdf``), which stay defined
    when some resamples are +inf.
    """
    per_run = _per_run_values(runs, "pass@1")
    seeds = set.intersection(*({s for v, s in per_run if v == variant} for variant in variants))
    per_run = {key: value for key, value in per_run.items() if key[1] in seeds}
    ours, grpo, base = variants
    pairs = [_paired_arrays(per_run, variant, base)[0] for variant in (ours, grpo)]
    if pairs[0] is None or pairs[1] is None:
        return {}
    (u, b), (g, _) = pairs

    def ratio(seed_weights: np.ndarray, prompt_weights: np.ndarray) -> np.ndarray:
        mean_u, mean_g, mean_b = (_seed_mean(_ratios(*v, prompt_weights), seed_weights) for v in (u, g, b))
        gain, reference_gain = mean_u - mean_b, mean_g - mean_b
        with np.errstate(divide="ignore", invalid="ignore"):
            value = gain / reference_gain - 1
        return np.where(reference_gain > 0, value, np.where(gain > 0, np.inf, np.nan))

    draws = ratio(*_resample_weights(*u[0].shape, resamples, seed))
    draws = draws[~np.isnan(draws)]
    low, high = (
        np.quantile(draws, [(1 - level) / 2, (1 + level) / 2], method="inverted_cdf")
        if draws.size
        else (np.nan,) * 2
    )
    effect = ratio(*_unit_weights(*u[0].shape))[0]
    return {"effect": float(effect), "low": float(low), "high": float(high), "seeds": len(seeds)}


MEASURES = {
    "entropy_fall": _entropy_fall,
    "validation_instability": _validation_instability,
    "gain_ratio": _gain_ratio,
}


def _unit_weights(seeds: int, prompts: int) -> tuple[np.ndarray, np.ndarray]:
    """The data as drawn: one 'resample' that counts every seed and prompt once."""
    return np.ones((1, seeds)), np.ones((1, prompts))


def _ratios(num: np.ndarray, den: np.ndarray, prompt_weights: np.ndarray) -> np.ndarray:
    """Per resample, the prompt-weighted sum of ``num`` over that of ``den`` (prompts: the last axis)."""
    return np.tensordot(prompt_weights, num, axes=(1, -1)) / np.tensordot(prompt_weights, den, axes=(1, -1))


def _seed_mean(per_seed: np.ndarray, seed_weights: np.ndarray) -> np.ndarray:
    """Per resample, the seed-weighted mean of ``per_seed`` (resamples x seeds)."""
    return (seed_weights * per_seed).sum(axis=1) / seed_weights.shape[1]
