"""uec_repro.results on small synthetic run folders (the layout the notebook and the batch runner write)."""

import itertools
import json
import math
import random

import numpy as np
import pandas as pd
import pytest

from uec_repro.results import (
    LEGACY_COLUMNS,
    PAIRED_COLUMNS,
    PAPER_RESULTS_FILE,
    bootstrap_interval,
    confidence_interval,
    detectable_difference,
    load_runs,
    metric_bounds,
    paired_differences,
    paper_reference,
    run_tasks,
    summary_table,
    task_block,
    variance_components,
    write_summary,
)
from uec_repro.validation import ParameterError

SAMPLES = 4  # eval.json "n"
PROMPTS = 10
STEPS = 6
VALIDATION_STEPS = (3, 6)
PROBE_STEPS = (0, 3, 6)  # the initial policy, then every 3 steps
PROBE_PROMPTS = 4
PROBE_SAMPLES = 2
SKILL = {"base": 0.3, "grpo": 0.45, "uec_rl": 0.55}
FULL = {  # variant: (method, sweep, seeds)
    "base": ("base", {}, (0, 1)),
    "grpo": ("grpo", {}, (0, 1, 2)),
    "uec_rl": ("uec_rl", {}, (0, 1, 2)),
    "uec_rl--exploration_temperature=1.0": ("uec_rl", {"exploration_temperature": 1.0}, (0, 1)),
    "uec_rl--exploration_temperature=1.5": ("uec_rl", {"exploration_temperature": 1.5}, (0, 1)),
    "uec_rl--replay_frequency=2": ("uec_rl", {"replay_frequency": 2}, (0, 1)),
}


def correct_counts(variant: str, seed: int) -> list[int]:
    """Deterministic per-prompt correct counts out of SAMPLES."""
    rng = random.Random(f"{variant}/{seed}")
    skill = SKILL.get(variant.split("--")[0], 0.4)
    return [sum(rng.random() < skill for _ in range(SAMPLES)) for _ in range(PROMPTS)]


def token_entropy(variant: str, seed: int) -> float:
    return 0.5 + 0.1 * seed + (0.2 if variant.startswith("uec_rl") else 0.0)


def probe_row(method: str, seed: int, step: int) -> dict:
    """One probe.jsonl row: prompt p has 8 + 2p tokens of entropy h + 0.05 p, with h falling for GRPO only."""
    tokens = [8 + 2 * p for p in range(PROBE_PROMPTS)]
    h = (0.9 if method.startswith("uec_rl") else 1.0 - 0.1 * step) + 0.01 * seed
    entropy_sum = [(h + 0.05 * p) * t for p, t in enumerate(tokens)]
    return {
        "step": step,
        "prompt_ids": [f"q{p}" for p in range(PROBE_PROMPTS)],
        "entropy_sum": entropy_sum,
        "nll_sum": [1.1 * e for e in entropy_sum],
        "tokens": tokens,
        "correct": [(p + seed) % (PROBE_SAMPLES + 1) for p in range(PROBE_PROMPTS)],
        "samples": PROBE_SAMPLES,
    }


def probe_columns(method: str, seed: int, step: int) -> dict:
    """The probe's metrics.jsonl columns: token-weighted means of the probe row."""
    row = probe_row(method, seed, step)
    tokens = sum(row["tokens"])
    return {
        "probe/entropy": sum(row["entropy_sum"]) / tokens,
        "probe/sampled_nll": sum(row["nll_sum"]) / tokens,
        "probe/accuracy": sum(row["correct"]) / (PROBE_SAMPLES * PROBE_PROMPTS),
        "probe/mean_length": tokens / (PROBE_SAMPLES * PROBE_PROMPTS),
        "time/probe": 0.25,
    }


def step_row(method: str, seed: int, step: int) -> dict:
    """One metrics.jsonl row; UEC-RL makes no update (logs no entropy) at step 2; validation every 3 steps;
    the probe at PROBE_STEPS (its time is part of the step's)."""
    uec = method == "uec_rl"
    updated = not (uec and step == 2)
    row = {
        "step": step,
        "reward": 0.3 + 0.05 * step + 0.01 * seed,
        "completions/mean_length": 20.0 + step,
        "uec/updated": float(updated),
        "uec/hard_prompts": 4.0 - step / 2 if uec else 0.0,
        "uec/prompts": 8.0,
        "uec/exploration_kept_positive": 3.0 + seed if uec else 0.0,
        "uec/exploration_kept_negative": 5.0 if uec else 0.0,
        "uec/regular_kept": 30.0 + step,
        "uec/replay_samples": 64.0 if uec and step == 5 else 0.0,
        "time/generation": 1.0,
        "time/scoring": 0.1,
        "time/exploration": 0.3 if uec else 0.0,
        "time/update": 0.4 + 0.1 * seed,
        "time/replay": 0.2 if uec and step == 5 else 0.0,
        "time/validation": 0.5 if step in VALIDATION_STEPS else 0.0,
    }
    if step in PROBE_STEPS:
        row.update(probe_columns(method, seed, step))
    # step time = the parts + 0.05 s of other work + validation + probe
    row["time/step"] = (
        row["time/generation"]
        + row["time/scoring"]
        + row["time/update"]
        + row["time/replay"]
        + 0.05
        + row["time/validation"]
        + row.get("time/probe", 0.0)
    )
    if updated:
        row["entropy/update_batch"] = (0.9 if uec else 1.0 - 0.12 * step) + 0.01 * seed
        row["entropy/update_batch_sampled_nll"] = 1.1 * row["entropy/update_batch"]
    if step in VALIDATION_STEPS:
        row["validation/accuracy"] = 0.4 + 0.02 * step + 0.01 * seed
    return row


def write_run(
    root,
    variant: str,
    method: str,
    sweep: dict,
    seed: int,
    status: str = "complete",
    policy: str = "toy",
    task: str = "arith",
) -> None:
    folder = root / variant / f"seed{seed}"
    folder.mkdir(parents=True)
    parameters = {
        "policy": policy,
        "task": task,
        "steps": STEPS,
        "num_generations": 8,
        "overrides": {},
        "exploration_temperature": None,
        "replay_frequency": None,
    }
    (folder / "run.json").write_text(
        json.dumps(
            {
                "experiment": root.name,
                "variant": variant,
                "method": method,
                "seed": seed,
                "sweep": sweep,
                "status": status,
                "parameters": parameters,
                "wall_seconds": 60.0 + seed,
                "peak_rss_mb": 900.0,
                "versions": {},
                "git_commit": None,
                "hardware": {},
            }
        )
    )
    if method != "base":
        rows = [{"step": 0, **probe_columns(method, seed, 0)}]
        rows += [step_row(method, seed, step) for step in range(1, STEPS + 1)]
        lines = [json.dumps(row) for row in rows]
        probes = [json.dumps(probe_row(method, seed, step)) for step in PROBE_STEPS]
        if status != "complete":  # a running run: fewer steps, the last line half-written
            lines, probes = [*lines[:4], lines[4][:20]], probes[:1]
        (folder / "metrics.jsonl").write_text("\n".join(lines) + "\n")
        (folder / "probe.jsonl").write_text("\n".join(probes) + "\n")
    if status == "complete":
        correct = correct_counts(variant, seed)
        (folder / "eval.json").write_text(
            json.dumps(
                {
                    "summary": {
                        "pass@1": sum(correct) / (SAMPLES * PROMPTS),
                        f"mean@{SAMPLES}": 0.1 + 0.1 * seed,
                        f"maj@{SAMPLES}": 0.2,
                        "token_entropy": token_entropy(variant, seed),
                        "completion_length": 22.0,
                    },
                    "n": SAMPLES,
                    "correct": correct,
                    "difficulty": [1 + p % 2 for p in range(PROMPTS)],  # tiers 1 and 2, alternating
                    "policy": policy,
                    "task": task,
                }
            )
        )


def write_experiment(root, variants: dict = FULL, incomplete: bool = True):
    """A runs directory with ``variants`` (``{variant: (method, sweep, seeds)}``), plus one running run."""
    for variant, (method, sweep, seeds) in variants.items():
        block = (
            {"task": sweep["task"], "policy": f"toy-{sweep['task']}"} if "task" in sweep else {}
        )  # a task block
        for seed in seeds:
            write_run(root, variant, method, sweep, seed, **block)
    if incomplete:
        write_run(root, "uec_rl", "uec_rl", {}, 3, status="running")
    return root


@pytest.fixture
def experiment(tmp_path):
    return write_experiment(tmp_path / "default")


def test_load_runs_frames_have_one_row_per_run_step_and_k(experiment):
    runs = load_runs(experiment)
    complete = sum(len(seeds) for _, _, seeds in FULL.values())
    trained = complete - len(FULL["base"][2])
    assert len(runs.runs) == complete
    assert len(runs.evals) == complete
    assert len(runs.steps) == trained * (STEPS + 1)  # step 0: the probe of the initial policy
    assert len(runs.passk) == complete * SAMPLES
    assert len(runs.prompts) == complete * PROMPTS
    assert len(runs.probes) == trained * len(PROBE_STEPS) * PROBE_PROMPTS
    grpo = runs.prompts[(runs.prompts["variant"] == "grpo") & (runs.prompts["seed"] == 1)]
    assert grpo["correct"].tolist() == correct_counts("grpo", 1)
    probe = runs.probes.query("variant == 'uec_rl' and seed == 2 and step == 3")
    assert probe["prompt_id"].tolist() == probe_row("uec_rl", 2, 3)["prompt_ids"]
    assert probe["entropy_sum"].tolist() == probe_row("uec_rl", 2, 3)["entropy_sum"]
    assert set(runs.passk["k"]) == set(range(1, SAMPLES + 1))
    # method order: base first, then the registry order; unswept before sweeps
    assert list(dict.fromkeys(runs.runs["variant"]))[:3] == ["base", "grpo", "uec_rl"]
    settings = runs.runs[["policy", "task", "steps"]].drop_duplicates()
    assert settings.to_numpy().tolist() == [["toy", "arith", STEPS]]
    assert runs.runs["experiment"].eq("default").all()
    expected = [token_entropy(v, s) for v, s in runs.evals[["variant", "seed"]].itertuples(index=False)]
    assert runs.evals["token_entropy"].tolist() == expected


def test_load_runs_parses_sweeps_from_the_manifest(experiment):
    runs = load_runs(experiment).runs.drop_duplicates("variant").set_index("variant")
    swept = runs.loc["uec_rl--exploration_temperature=1.5"]
    assert swept["method"] == "uec_rl"
    assert (swept["sweep_param"], swept["sweep_value"]) == ("exploration_temperature", 1.5)
    assert runs.loc["uec_rl--replay_frequency=2", "sweep_param"] == "replay_frequency"
    assert runs.loc["uec_rl--replay_frequency=2", "sweep_value"] == 2
    assert runs.loc[["base", "grpo", "uec_rl"], "sweep_param"].isna().all()
    assert runs.loc[["base", "grpo", "uec_rl"], "sweep_value"].isna().all()


def test_steps_keep_missing_metrics_as_nan(experiment):
    steps = load_runs(experiment).steps
    uec = steps[(steps["variant"] == "uec_rl") & (steps["seed"] == 0)].set_index("step")
    assert math.isnan(uec.loc[2, "entropy/update_batch"])
    assert math.isnan(uec.loc[2, "entropy/update_batch_sampled_nll"])
    assert uec.loc[3, "entropy/update_batch"] == pytest.approx(0.9)
    assert uec["validation/accuracy"].notna().sum() == len(VALIDATION_STEPS)
    assert uec["probe/entropy"].dropna().index.tolist() == list(PROBE_STEPS)
    assert math.isnan(uec.loc[0, "reward"])  # the step-0 row holds only the probe
    assert steps["step"].tolist()[: STEPS + 1] == list(range(STEPS + 1))


def test_runs_from_before_the_probe_load_with_the_update_batch_names(tmp_path):
    root = write_experiment(tmp_path / "old", {"grpo": FULL["grpo"]}, incomplete=False)
    renamed = {new: old for old, new in LEGACY_COLUMNS.items()}
    for folder in root.glob("grpo/seed*"):
        (folder / "probe.jsonl").unlink()
        rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
        rows = [
            {renamed.get(k, k): v for k, v in row.items() if not k.startswith("probe/")} for row in rows[1:]
        ]
        (folder / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    runs = load_runs(root)
    assert runs.probes.empty and "probe/entropy" not in runs.steps
    assert runs.steps.loc[0, "entropy/update_batch"] == pytest.approx(1.0 - 0.12)
    table = summary_table(runs).set_index("variant")
    assert table.loc["grpo", "update_batch_entropy_end"] == pytest.approx(1.0 - 0.12 * 5 + 0.01)
    assert "probe_entropy_end" not in table
    paired = paired_differences(runs, variants=["grpo"], metrics=["probe_entropy"])
    assert paired["seeds"].tolist() == [0] and paired["diff"].isna().all()


def test_incomplete_runs_are_skipped_unless_asked_for(experiment):
    assert 3 not in load_runs(experiment).runs["seed"].tolist()
    runs = load_runs(experiment, include_incomplete=True)
    running = runs.runs[runs.runs["seed"] == 3]
    assert running["status"].tolist() == ["running"]
    # four whole rows (the step-0 probe, steps 1-3); the half-written fifth line is skipped; no eval.json, so
    # no eval row
    assert sorted(runs.steps.loc[runs.steps["seed"] == 3, "step"]) == [0, 1, 2, 3]
    assert 3 not in runs.evals["seed"].tolist()


def test_passk_matches_brute_force_enumeration(tmp_path):
    correct = [0, 1, 2, 4, 3, 1]
    root = write_experiment(tmp_path / "e", {"base": ("base", {}, (0,))}, incomplete=False)
    eval_file = root / "base" / "seed0" / "eval.json"
    evaluation = json.loads(eval_file.read_text())
    eval_file.write_text(json.dumps({**evaluation, "correct": correct, "difficulty": [1] * len(correct)}))
    passk = load_runs(root).passk.set_index("k")["pass_at_k"]
    for k in range(1, SAMPLES + 1):
        per_prompt = []
        for c in correct:
            samples = [True] * c + [False] * (SAMPLES - c)
            subsets = list(itertools.combinations(samples, k))
            per_prompt.append(sum(any(s) for s in subsets) / len(subsets))
        assert passk[k] == pytest.approx(sum(per_prompt) / len(per_prompt), abs=1e-12)


def test_confidence_interval_matches_hand_computation():
    # mean 2.5, sample sd sqrt(5/3), t(0.975, df=3) = 3.182446 (table value)
    half = 3.182446 * math.sqrt(5 / 3) / 2
    mean, low, high = confidence_interval([1.0, 2.0, 3.0, 4.0])
    assert (mean, low, high) == pytest.approx((2.5, 2.5 - half, 2.5 + half), abs=1e-5)
    wider = confidence_interval([1.0, 2.0, 3.0, 4.0], level=0.99)
    assert wider[1] < low and wider[2] > high
    assert confidence_interval([0.7]) == (0.7, 0.7, 0.7)
    assert confidence_interval([0.7, math.nan]) == (0.7, 0.7, 0.7)
    assert all(math.isnan(v) for v in confidence_interval([]))
    # clipped to the range the quantity can take
    clipped = confidence_interval([0.0, 0.0, 0.3], bounds=(0.0, 1.0))
    assert clipped[1] == 0.0 and clipped[2] == pytest.approx(0.1 + 4.302653 * math.sqrt(0.03) / math.sqrt(3))
    assert confidence_interval([0.7, 1.0, 1.0], bounds=metric_bounds("pass@4"))[2] == 1.0


def test_metric_bounds():
    for name in (
        "pass@1",
        "pass@16",
        "mean@8",
        "maj@8",
        "pass_at_k",
        "validation/accuracy",
        "probe/accuracy",
    ):
        assert metric_bounds(name) == (0.0, 1.0), name
    for name in (
        "probe/entropy",
        "probe_sampled_nll_end",
        "token_entropy",
        "entropy/update_batch",
        "completions/mean_length",
        "step_seconds",
        "uec/replay_samples",
    ):
        assert metric_bounds(name) == (0.0, math.inf), name
    assert metric_bounds("reward") == (-math.inf, math.inf)


def test_bootstrap_interval_is_the_range_of_three_seeds_and_stays_in_bounds():
    # each extreme is the whole resample with probability 1/27 > 2.5%, so the 95% interval is [min, max]
    assert bootstrap_interval([0.0, 0.2, 0.9]) == pytest.approx((1.1 / 3, 0.0, 0.9))
    assert bootstrap_interval([0.4]) == (0.4, 0.4, 0.4)
    assert all(math.isnan(v) for v in bootstrap_interval([math.nan]))
    values = [0.0, 0.0, 0.0, 0.05, 1.0, 1.0]
    mean, low, high = bootstrap_interval(values, level=0.99, seed=3)
    assert 0.0 <= low <= mean <= high <= 1.0
    assert bootstrap_interval(values, seed=3) == bootstrap_interval(values, seed=3)


def test_summary_table_means_over_seeds(experiment):
    runs = load_runs(experiment)
    table = summary_table(runs).set_index("variant")
    assert list(table.index[:3]) == ["base", "grpo", "uec_rl"]
    assert table.loc["grpo", "seeds"] == 3 and table.loc["base", "seeds"] == 2
    expected_pass1 = sum(sum(correct_counts("grpo", s)) / (SAMPLES * PROMPTS) for s in (0, 1, 2)) / 3
    assert table.loc["grpo", "pass@1"] == pytest.approx(expected_pass1)
    assert table.loc["grpo", "pass@1_low"] < table.loc["grpo", "pass@1"] < table.loc["grpo", "pass@1_high"]
    assert f"pass@{SAMPLES}" in table and f"mean@{SAMPLES}" in table and f"maj@{SAMPLES}" in table
    assert table.loc["uec_rl", f"mean@{SAMPLES}"] == pytest.approx(0.2)  # (0.1 + 0.2 + 0.3) / 3
    assert table.loc["uec_rl", "token_entropy"] == pytest.approx(0.8)  # 0.7 + mean(0, 0.1, 0.2)
    # the probe: the initial policy (step 0) and the last probe, mean over seeds
    for short, column in (("probe_entropy", "probe/entropy"), ("probe_sampled_nll", "probe/sampled_nll")):
        for edge, step in (("start", 0), ("end", STEPS)):
            expected = sum(probe_columns("grpo", s, step)[column] for s in (0, 1, 2)) / 3
            assert table.loc["grpo", f"{short}_{edge}"] == pytest.approx(expected)
    # token-weighted: prompts with more tokens (8 + 2p) weigh more in the mean of h + 0.05 p
    weights = [8 + 2 * p for p in range(PROBE_PROMPTS)]
    uec_end = 0.91 + 0.05 * sum(p * w for p, w in enumerate(weights)) / sum(weights)
    assert table.loc["uec_rl", "probe_entropy_end"] == pytest.approx(uec_end)
    # GRPO's update-batch entropy 1 - 0.12 step + 0.01 seed: start = steps 1-3, end = steps 4-6
    assert table.loc["grpo", "update_batch_entropy_start"] == pytest.approx(1.0 - 0.12 * 2 + 0.01)
    assert table.loc["grpo", "update_batch_entropy_end"] == pytest.approx(1.0 - 0.12 * 5 + 0.01)
    assert table.loc["grpo", "update_batch_sampled_nll_end"] == pytest.approx(1.1 * (1.0 - 0.12 * 5 + 0.01))
    # UEC-RL updates nothing at step 2: its first three logged values are steps 1, 3, 4 (all 0.9 + 0.01 seed)
    assert table.loc["uec_rl", "update_batch_entropy_start"] == pytest.approx(0.91)
    # step time without validation and probe: GRPO 1.0 + 0.1 + (0.4 + 0.1 seed) + 0.05, mean over seeds
    assert table.loc["grpo", "step_seconds"] == pytest.approx(1.65)
    assert math.isnan(table.loc["base", "step_seconds"])
    assert math.isnan(table.loc["base", "probe_entropy_start"])
    assert math.isnan(table.loc["base", "update_batch_entropy_start"])
    # no interval leaves the range of its metric
    for metric in [c for c in table if f"{c}_low" in table]:
        lowest, highest = metric_bounds(metric)
        assert (table[f"{metric}_low"].dropna() >= lowest).all(), metric
        assert (table[f"{metric}_high"].dropna() <= highest).all(), metric
    assert table.loc["uec_rl--exploration_temperature=1.5", "sweep_value"] == 1.5


def test_probe_change_is_the_first_and_last_probe_per_variant(experiment):
    from uec_repro.results.summary import probe_change

    table = probe_change(load_runs(experiment).steps).set_index("variant")
    assert "base" not in table.index  # never trained, never probed
    assert list(table.index[:2]) == ["grpo", "uec_rl"]
    # probe entropy = h + 0.05 * (0*8 + 1*10 + 2*12 + 3*14) / (8 + 10 + 12 + 14) = h + 0.95 / 11, with
    # h = 1.0 - 0.1 step + 0.01 seed for GRPO and 0.9 + 0.01 seed for UEC-RL; seeds 0, 1, 2 average to 0.01
    grpo = table.loc["grpo"]
    assert (grpo["seeds"], grpo["first_step"], grpo["last_step"]) == (3, 0, STEPS)
    assert grpo["start"] == pytest.approx(1.01 + 0.95 / 11)
    assert grpo["end"] == pytest.approx(0.41 + 0.95 / 11)
    assert grpo["change"] == pytest.approx(-0.6)
    assert table.loc["uec_rl", "change"] == pytest.approx(0.0)
    swept = table.loc["uec_rl--replay_frequency=2"]  # seeds 0 and 1: h = 0.905
    assert (swept["seeds"], swept["end"]) == (2, pytest.approx(0.905 + 0.95 / 11))
    # one run per variant, without a seed column (metrics.jsonl read by hand), any logged column
    one = load_runs(experiment).steps.query("seed == 1").drop(columns="seed")
    nll = probe_change(one, "probe/sampled_nll").set_index("variant")
    assert nll.loc["grpo", "seeds"] == 1
    assert nll.loc["grpo", "change"] == pytest.approx(1.1 * -0.6)
    assert probe_change(one, "no/such_column").empty


def test_write_summary_writes_csv_and_markdown(experiment, tmp_path):
    table = summary_table(load_runs(experiment))
    csv_path, md_path = write_summary(table, tmp_path / "out")
    assert pd.read_csv(csv_path)["variant"].tolist() == table["variant"].tolist()
    markdown = md_path.read_text()
    grpo_line = next(line for line in markdown.splitlines() if line.startswith("| grpo |"))
    assert f"{table.set_index('variant').loc['grpo', 'pass@1']:.4g} [" in grpo_line


def write_minimal(
    root,
    variant: str,
    seed: int,
    correct: list[int],
    probes: tuple = (),
    *,
    method=None,
    sweep=None,
    task=None,
) -> None:
    """A run folder with only what paired_differences reads: manifest, correct counts, probe rows."""
    folder = root / variant / f"seed{seed}"
    folder.mkdir(parents=True)
    manifest = {
        "variant": variant,
        "method": method or variant,
        "seed": seed,
        "status": "complete",
        "sweep": sweep or {},
        "parameters": {"task": task} if task else {},
    }
    (folder / "run.json").write_text(json.dumps(manifest))
    (folder / "eval.json").write_text(json.dumps({"summary": {}, "n": SAMPLES, "correct": correct}))
    if probes:
        (folder / "probe.jsonl").write_text("".join(json.dumps(row) + "\n" for row in probes))


def probe(step: int, entropy_sum: list[float], tokens: list[int]) -> dict:
    count = len(tokens)
    return {
        "step": step,
        "prompt_ids": list(range(count)),
        "entropy_sum": entropy_sum,
        "nll_sum": [2 * e for e in entropy_sum],
        "tokens": tokens,
        "correct": [0] * count,
        "samples": 2,
    }


def test_paired_differences_of_the_experiment(experiment):
    runs = load_runs(experiment)
    paired = paired_differences(runs)
    assert list(paired.columns) == PAIRED_COLUMNS
    assert paired[["variant", "metric"]].to_numpy().tolist() == [
        ["base", "pass@1"],
        ["uec_rl", "pass@1"],
        ["base", f"pass@{SAMPLES}"],
        ["uec_rl", f"pass@{SAMPLES}"],
        ["base", "probe_entropy"],
        ["uec_rl", "probe_entropy"],
    ]  # sweeps and the reference left out
    rows = paired.set_index(["variant", "metric"])
    assert rows.loc[("uec_rl", "pass@1"), ["seeds", "prompts"]].tolist() == [3, PROMPTS]
    assert rows.loc[("base", "pass@1"), "seeds"] == 2  # the seeds both have: 0 and 1
    per_seed = [
        (sum(correct_counts("uec_rl", s)) - sum(correct_counts("grpo", s))) / (SAMPLES * PROMPTS)
        for s in (0, 1, 2)
    ]
    assert rows.loc[("uec_rl", "pass@1"), "diff"] == pytest.approx(sum(per_seed) / 3)
    uec = rows.loc[("uec_rl", "probe_entropy")]
    expected = [probe_columns(m, s, STEPS)["probe/entropy"] for m in ("uec_rl", "grpo") for s in (0, 1, 2)]
    assert uec["step"] == STEPS and uec[["seeds", "prompts"]].tolist() == [3, PROBE_PROMPTS]
    assert uec["diff"] == pytest.approx((sum(expected[:3]) - sum(expected[3:])) / 3)
    assert uec["value"] == pytest.approx(sum(expected[:3]) / 3)
    for row in paired.dropna(subset=["diff"]).itertuples():
        assert row.low <= row.diff <= row.high
    # the untrained policy has no probe: no data, not an error
    assert rows.loc[("base", "probe_entropy"), "seeds"] == 0
    assert rows.loc[("base", "probe_entropy"), ["diff", "low", "high"]].isna().all()
    # reproducible with the same seed; another seed draws other resamples
    pd.testing.assert_frame_equal(paired_differences(runs), paired)
    assert not paired_differences(runs, seed=1)["low"].equals(paired["low"])


def test_identical_variants_differ_by_exactly_zero(tmp_path):
    for variant in ("grpo", "dapo"):
        for seed in (0, 1, 2):
            write_minimal(
                tmp_path,
                variant,
                seed,
                [seed, 1, 4, 0, 2],
                (probe(0, [1.0 + seed, 2.0, 0.5, 3.0], [3, 4, 1, 7]),),
            )
    metrics = ("pass@1", "pass@k", "probe_entropy", "probe_sampled_nll")
    paired = paired_differences(tmp_path, metrics=metrics)
    assert paired["metric"].tolist() == ["pass@1", f"pass@{SAMPLES}", "probe_entropy", "probe_sampled_nll"]
    assert (paired[["diff", "low", "high"]] == 0).all().all()
    assert paired["seeds"].tolist() == [3] * 4 and paired["prompts"].tolist() == [5, 5, 4, 4]


def test_a_constant_gain_on_every_prompt_is_exactly_that_constant(tmp_path):
    # prompts of every difficulty; dapo solves one more sample of each, and its probe entropy is 0.5 higher
    for seed in (0, 1, 2):
        reference = [0, 3, 1, 2, 0, 3]
        tokens = [2, 9, 4, 1]
        entropy = [0.3 * seed, 5.0, 1.0, 0.7]
        write_minimal(tmp_path, "grpo", seed, reference, (probe(6, entropy, tokens),))
        write_minimal(
            tmp_path,
            "dapo",
            seed,
            [c + 1 for c in reference],
            (probe(6, [e + 0.5 * t for e, t in zip(entropy, tokens, strict=True)], tokens),),
        )
    rows = paired_differences(tmp_path, metrics=("pass@1", "probe_entropy")).set_index("metric")
    assert rows.loc["pass@1", ["diff", "low", "high"]].tolist() == pytest.approx([1 / SAMPLES] * 3)
    assert rows.loc["probe_entropy", ["diff", "low", "high"]].tolist() == pytest.approx([0.5] * 3)


def test_bootstrap_over_two_prompts_matches_enumeration(tmp_path):
    # one seed, two prompts: the resamples are {0, 0} (1/4), {0, 1} (1/2), {1, 1} (1/4)
    write_minimal(tmp_path, "grpo", 0, [1, 0])
    write_minimal(tmp_path, "dapo", 0, [2, 3])
    rows = paired_differences(tmp_path, metrics=("pass@1", "pass@2")).set_index("metric")
    # pass@1 differences per prompt: 1/4 and 3/4
    assert rows.loc["pass@1", ["diff", "low", "high"]].tolist() == [0.5, 0.25, 0.75]
    # pass@2 (n = 4): c = 0, 1, 2, 3 give 0, 1/2, 5/6, 1; differences per prompt 1/3 and 1
    assert rows.loc["pass@2", ["diff", "low", "high"]].tolist() == pytest.approx([2 / 3, 1 / 3, 1.0])
    # the middle 40% of the resamples are all the mixed multiset
    narrow = paired_differences(tmp_path, metrics=("pass@1",), level=0.4)
    assert narrow[["low", "high"]].to_numpy().tolist() == [[0.5, 0.5]]


def test_bootstrap_over_two_seeds_matches_enumeration(tmp_path):
    # one prompt, two seeds with differences 1/2 and 0: the resamples average to 1/2, 1/4 or 0
    write_minimal(tmp_path, "grpo", 0, [1])
    write_minimal(tmp_path, "grpo", 1, [1])
    write_minimal(tmp_path, "dapo", 0, [3])
    write_minimal(tmp_path, "dapo", 1, [1])
    write_minimal(tmp_path, "dapo", 2, [4])  # a seed grpo lacks is left out
    row = paired_differences(tmp_path, metrics=("pass@1",)).iloc[0]
    assert [row["diff"], row["low"], row["high"], row["seeds"], row["prompts"]] == [0.25, 0.0, 0.5, 2, 1]


def test_probe_entropy_is_a_ratio_of_sums_at_the_last_shared_probe(tmp_path):
    # dapo at step 3: entropy sums 2 and 6 over 1 and 2 tokens; resamples {0,0}: 2, {0,1}: 8/3, {1,1}: 3
    write_minimal(
        tmp_path,
        "grpo",
        0,
        [0, 0],
        (probe(0, [9, 9], [1, 2]), probe(3, [0, 0], [1, 2]), probe(6, [9, 9], [1, 2])),
    )
    write_minimal(tmp_path, "dapo", 0, [0, 0], (probe(0, [9, 9], [1, 2]), probe(3, [2, 6], [1, 2])))
    row = paired_differences(tmp_path, metrics=("probe_entropy",)).iloc[0]
    assert row["step"] == 3
    assert [row["diff"], row["low"], row["high"]] == pytest.approx(
        [8 / 3, 2.0, 3.0]
    )  # not the mean ratio 2.5


def test_paired_differences_reject_bad_arguments_and_unpaired_prompts(tmp_path):
    write_minimal(tmp_path, "grpo", 0, [1, 2, 3], (probe(0, [1, 1], [1, 1]),))
    write_minimal(tmp_path, "dapo", 0, [1, 2, 3], (probe(0, [1, 1], [1, 1]),))
    with pytest.raises(
        ParameterError, match=r"reference='nope' is not allowed; choose one of \['grpo', 'dapo'\]"
    ):
        paired_differences(tmp_path, reference="nope")
    with pytest.raises(ParameterError, match=r"variants='ppo' is not allowed"):
        paired_differences(tmp_path, variants=["ppo"])
    with pytest.raises(ParameterError, match=r"metrics='accuracy' is not allowed; choose pass@<k>"):
        paired_differences(tmp_path, metrics=("accuracy",))
    with pytest.raises(ParameterError, match=r"k=5 must be between 1 and n=4"):
        paired_differences(tmp_path, metrics=("pass@5",))
    with pytest.raises(ParameterError, match=r"level=1.5 must be <= 1"):
        paired_differences(tmp_path, level=1.5)
    write_minimal(tmp_path, "dapo", 1, [1, 2])
    write_minimal(tmp_path, "grpo", 1, [1, 2, 3])
    with pytest.raises(ParameterError, match="not evaluated on the same prompts"):
        paired_differences(tmp_path, metrics=("pass@1",))
    other = probe(0, [1, 1], [1, 1]) | {"prompt_ids": ["a", "b"]}
    write_minimal(tmp_path / "probe", "grpo", 0, [1], (probe(0, [1, 1], [1, 1]),))
    write_minimal(tmp_path / "probe", "dapo", 0, [1], (other,))
    with pytest.raises(ParameterError, match="not evaluated on the same prompts"):
        paired_differences(tmp_path / "probe", metrics=("probe_entropy",))


def test_write_summary_writes_the_paired_table(experiment, tmp_path):
    runs = load_runs(experiment)
    paired = paired_differences(runs)
    paths = write_summary(summary_table(runs), tmp_path, paired=paired)
    assert [p.name for p in paths] == ["summary.csv", "summary.md", "paired.csv", "paired.md"]
    pd.testing.assert_frame_equal(pd.read_csv(paths[2]), paired, check_dtype=False)
    markdown = paths[3].read_text()
    uec = paired.set_index(["variant", "metric"]).loc[("uec_rl", "pass@1")]
    assert (
        f"| uec_rl | grpo | pass@1 | {uec['diff']:.4g} [{uec['low']:.4g}, {uec['high']:.4g}] | "
        f"{uec['verdict']} "
        "| 3 | 10 |" in markdown
    )
    assert "| base | grpo | probe_entropy | n/a | no data | 0 | 0 |" in markdown
    assert "paired bootstrap over seeds and prompts, 95% percentile, 2000 resamples" in markdown


def test_bad_directories_raise_parameter_error(tmp_path):
    with pytest.raises(ParameterError, match="not a directory"):
        load_runs(tmp_path / "missing")
    with pytest.raises(ParameterError, match="no runs"):
        load_runs(tmp_path)
    write_run(tmp_path, "grpo", "grpo", {}, 0, status="failed")
    with pytest.raises(ParameterError, match="include_incomplete"):
        load_runs(tmp_path)
    (tmp_path / "grpo" / "seed0" / "run.json").write_text("{not json")
    with pytest.raises(ParameterError, match="not valid JSON"):
        load_runs(tmp_path, include_incomplete=True)


def test_paper_reference_is_the_notes_table():
    paper = paper_reference()
    assert PAPER_RESULTS_FILE.name == "paper_results.csv"
    assert list(paper.columns) == [
        "source",
        "table_or_figure",
        "model",
        "dataset",
        "method",
        "metric",
        "k",
        "value",
        "confidence",
    ]
    geometry = paper[(paper["dataset"] == "Geometry3K test") & (paper["metric"] == "accuracy (Pass@1)")]
    assert sorted(geometry["value"]) == [38.44, 50.75, 55.41]


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (0.01, 0.2, "higher"),
        (-0.2, -0.001, "lower"),
        (-0.1, 0.1, "not resolved"),
        (0.0, 0.1, "not resolved"),
        (-0.1, 0.0, "not resolved"),
        (float("nan"), 0.1, "no data"),
    ],
)
def test_verdict_claims_a_difference_only_when_the_interval_excludes_zero(low, high, expected):
    from uec_repro.results import verdict

    assert verdict(low, high) == expected


def test_variance_components_and_detectable_difference_by_hand():
    components = variance_components(np.array([[1.0, 2.0], [3.0, 6.0]]))
    # grand mean 3; seed effects -1.5, 1.5; prompt effects -1, 1; residuals +-0.5
    # mean squares: seed 2 x 4.5 = 9, prompt 2 x 2 = 4, residual 1 -> (9 - 1) / 2, (4 - 1) / 2, 1
    assert components == pytest.approx({"seed": 4.0, "prompt": 1.5, "residual": 1.0})
    z = 1.959964 + 0.841621  # two-sided 95 % and 80 % power
    assert detectable_difference(components, 2, 2) == pytest.approx(
        z * math.sqrt(4 / 2 + 1.5 / 2 + 1 / 4), rel=1e-5
    )
    assert detectable_difference(components, 8, 2) < detectable_difference(
        components, 2, 8
    )  # seeds dominate here
    assert (
        variance_components(np.array([[1.0, 2.0], [1.0, 2.0]]))["seed"] == 0.0
    )  # clipped at 0, not negative
    with pytest.raises(ParameterError, match="2 seeds and 2 prompts"):
        variance_components(np.ones((1, 5)))


def test_a_task_block_is_read_as_an_experiment_of_its_own(tmp_path):
    for variant, sweep in (
        ("grpo", {}),
        ("grpo--task=geometry", {"task": "geometry"}),
        ("uec_rl--task=geometry", {"task": "geometry"}),
        ("uec_rl--replay_frequency=2", {"replay_frequency": 2}),
    ):
        write_minimal(
            tmp_path,
            variant,
            0,
            [1, 2],
            method=variant.split("--")[0],
            sweep=sweep,
            task=sweep.get("task", "arith"),
        )
    runs = load_runs(tmp_path)
    assert run_tasks(runs) == ["arith", "geometry"]
    geometry = task_block(runs, "geometry")
    assert (
        sorted(geometry.runs["variant"]) == ["grpo", "uec_rl"] and geometry.runs["sweep_param"].isna().all()
    )
    assert sorted(geometry.prompts["variant"].unique()) == ["grpo", "uec_rl"]
    arith = task_block(runs, "arith")
    assert sorted(arith.runs["variant"]) == ["grpo", "uec_rl--replay_frequency=2"]  # its own sweeps stay
    assert task_block(runs, "other").runs.empty


def test_an_evaluation_whose_difficulties_do_not_match_its_prompts_is_named(tmp_path):
    root = write_experiment(tmp_path / "e", {"base": ("base", {}, (0,))}, incomplete=False)
    eval_file = root / "base" / "seed0" / "eval.json"
    eval_file.write_text(json.dumps({**json.loads(eval_file.read_text()), "difficulty": [1, 2]}))
    with pytest.raises(ParameterError, match=r"seed0/eval.json: 'difficulty' has 2 entries and 'correct' 10"):
        load_runs(root)
