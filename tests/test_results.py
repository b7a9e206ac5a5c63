"""uec_repro.results on small synthetic run folders (the layout the notebook and the batch runner write)."""

import itertools
import json
import math
import random

import pandas as pd
import pytest

from uec_repro.results import (
    PAPER_RESULTS_FILE,
    confidence_interval,
    load_runs,
    paper_reference,
    summary_table,
    write_summary,
)
from uec_repro.validation import ParameterError

SAMPLES = 4  # eval.json "n"
PROMPTS = 10
STEPS = 6
VALIDATION_STEPS = (3, 6)
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
    skill = SKILL[variant.split("--")[0]]
    return [sum(rng.random() < skill for _ in range(SAMPLES)) for _ in range(PROMPTS)]


def token_entropy(variant: str, seed: int) -> float:
    return 0.5 + 0.1 * seed + (0.2 if variant.startswith("uec_rl") else 0.0)


def step_row(method: str, seed: int, step: int) -> dict:
    """One metrics.jsonl row; UEC-RL makes no update (logs no entropy) at step 2; validation every 3 steps."""
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
    # step time = the parts + 0.05 s of other work + validation
    row["time/step"] = (row["time/generation"] + row["time/scoring"] + row["time/update"] + row["time/replay"]
                        + 0.05 + row["time/validation"])
    if updated:
        row["entropy"] = (0.9 if uec else 1.0 - 0.12 * step) + 0.01 * seed
        row["entropy/sampled_nll"] = 1.1 * row["entropy"]
    if step in VALIDATION_STEPS:
        row["validation/accuracy"] = 0.4 + 0.02 * step + 0.01 * seed
    return row


def write_run(root, variant: str, method: str, sweep: dict, seed: int, status: str = "complete",
              policy: str = "toy", task: str = "arith") -> None:
    folder = root / variant / f"seed{seed}"
    folder.mkdir(parents=True)
    parameters = {"policy": policy, "task": task, "steps": STEPS, "num_generations": 8, "overrides": {},
                  "exploration_temperature": None, "replay_frequency": None}
    (folder / "run.json").write_text(json.dumps({
        "experiment": root.name, "variant": variant, "method": method, "seed": seed, "sweep": sweep,
        "status": status, "parameters": parameters, "wall_seconds": 60.0 + seed, "peak_rss_mb": 900.0,
        "versions": {}, "git_commit": None, "hardware": {},
    }))
    if method != "base":
        rows = [step_row(method, seed, step) for step in range(1, STEPS + 1)]
        lines = [json.dumps(row) for row in rows]
        if status != "complete":  # a running run: fewer steps, the last line half-written
            lines = [*lines[:3], lines[3][:20]]
        (folder / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    if status == "complete":
        correct = correct_counts(variant, seed)
        (folder / "eval.json").write_text(json.dumps({
            "summary": {"pass@1": sum(correct) / (SAMPLES * PROMPTS), f"mean@{SAMPLES}": 0.1 + 0.1 * seed,
                        f"maj@{SAMPLES}": 0.2, "token_entropy": token_entropy(variant, seed),
                        "completion_length": 22.0},
            "n": SAMPLES, "correct": correct, "difficulty": [1] * PROMPTS, "policy": policy, "task": task,
        }))


def write_experiment(root, variants: dict = FULL, incomplete: bool = True):
    """A runs directory with ``variants`` (``{variant: (method, sweep, seeds)}``), plus one running run."""
    for variant, (method, sweep, seeds) in variants.items():
        for seed in seeds:
            write_run(root, variant, method, sweep, seed)
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
    assert len(runs.steps) == trained * STEPS
    assert len(runs.passk) == complete * SAMPLES
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
    assert math.isnan(uec.loc[2, "entropy"]) and math.isnan(uec.loc[2, "entropy/sampled_nll"])
    assert uec.loc[3, "entropy"] == pytest.approx(0.9)
    assert uec["validation/accuracy"].notna().sum() == len(VALIDATION_STEPS)
    assert steps["step"].tolist()[:STEPS] == list(range(1, STEPS + 1))


def test_incomplete_runs_are_skipped_unless_asked_for(experiment):
    assert 3 not in load_runs(experiment).runs["seed"].tolist()
    runs = load_runs(experiment, include_incomplete=True)
    running = runs.runs[runs.runs["seed"] == 3]
    assert running["status"].tolist() == ["running"]
    # three whole rows; the half-written fourth line is skipped; no eval.json, so no eval row
    assert sorted(runs.steps.loc[runs.steps["seed"] == 3, "step"]) == [1, 2, 3]
    assert 3 not in runs.evals["seed"].tolist()


def test_passk_matches_brute_force_enumeration(tmp_path):
    correct = [0, 1, 2, 4, 3, 1]
    root = write_experiment(tmp_path / "e", {"base": ("base", {}, (0,))}, incomplete=False)
    eval_file = root / "base" / "seed0" / "eval.json"
    evaluation = json.loads(eval_file.read_text())
    eval_file.write_text(json.dumps({**evaluation, "correct": correct}))
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
    # GRPO's entropy 1 - 0.12 step + 0.01 seed: start = steps 1-3, end = steps 4-6, averaged over seeds
    assert table.loc["grpo", "entropy_start"] == pytest.approx(1.0 - 0.12 * 2 + 0.01)
    assert table.loc["grpo", "entropy_end"] == pytest.approx(1.0 - 0.12 * 5 + 0.01)
    assert table.loc["grpo", "sampled_nll_end"] == pytest.approx(1.1 * (1.0 - 0.12 * 5 + 0.01))
    # UEC-RL logs no entropy at step 2: its first three logged values are steps 1, 3, 4 (all 0.9 + 0.01 seed)
    assert table.loc["uec_rl", "entropy_start"] == pytest.approx(0.91)
    # step time without validation: GRPO 1.0 + 0.1 + (0.4 + 0.1 seed) + 0.05, mean over seeds
    assert table.loc["grpo", "step_seconds"] == pytest.approx(1.65)
    assert math.isnan(table.loc["base", "step_seconds"]) and math.isnan(table.loc["base", "entropy_start"])
    assert table.loc["uec_rl--exploration_temperature=1.5", "sweep_value"] == 1.5


def test_write_summary_writes_csv_and_markdown(experiment, tmp_path):
    table = summary_table(load_runs(experiment))
    csv_path, md_path = write_summary(table, tmp_path / "out")
    assert pd.read_csv(csv_path)["variant"].tolist() == table["variant"].tolist()
    markdown = md_path.read_text()
    grpo_line = next(line for line in markdown.splitlines() if line.startswith("| grpo |"))
    assert f"{table.set_index('variant').loc['grpo', 'pass@1']:.4g} [" in grpo_line


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
    assert list(paper.columns) == ["source", "table_or_figure", "model", "dataset", "method", "metric", "k",
                                   "value", "confidence"]
    geometry = paper[(paper["dataset"] == "Geometry3K test") & (paper["metric"] == "accuracy (Pass@1)")]
    assert sorted(geometry["value"]) == [38.44, 50.75, 55.41]
