"""UECTrainer in two processes (torchrun; gloo on this CPU): the update is the one-process update of the same
global batch, every process makes the same selections and holds the same buffers, and a crashed two-process
run resumes from its checkpoint."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from uec_repro.tasks import load_task
from uec_repro.training import RunSettings
from uec_repro.validation import ParameterError

WORKER = Path(__file__).with_name("multiprocess_worker.py")
ROOT = Path(__file__).resolve().parents[1]
# every update of the made-up batch of 17 samples, then a replay of the 16 newest (threshold 0: every sample
# enters the buffer); plain SGD, so that float rounding in the split sums stays rounding in the weights
FIXED = {
    "batch_buffer": False,
    "replay_threshold": 0.0,
    "replay_capacity": 1,
    "replay_frequency": 2,
    "optim": "sgd",
    "learning_rate": 0.1,
}


def launch(processes: int, *target: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python target...`` in one process, under ``torchrun --standalone`` (a free port) in several."""
    runner = (
        ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
        if processes > 1
        else []
    )
    return subprocess.run(
        [sys.executable, *runner, *target],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
    )


def run_worker(
    policy, out: Path, processes: int, rollouts: str, steps: int, overrides: dict, *options: str
) -> list[dict]:
    result = launch(
        processes,
        str(WORKER),
        str(policy),
        str(out),
        f"--rollouts={rollouts}",
        f"--steps={steps}",
        f"--overrides={json.dumps(overrides)}",
        *options,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return [json.loads((out / f"rank{rank}.json").read_text()) for rank in range(processes)]


def weights(out: Path, rank: int) -> dict[str, torch.Tensor]:
    return load_file(str(out / f"rank{rank}.safetensors"))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("loss_type", "updates_per_batch", "optimizer_steps"),
    [
        (
            "bnpo",
            8,
            [9, 17],
        ),  # token mean; mini-batches of 2, one of them a single sample: a process gets none of it
        (
            "grpo",
            6,
            [6, 12],
        ),  # mean of sequence means; mini-batches of 3 and 2: a process gets one sample less
    ],
)
def test_two_processes_make_the_update_of_one(
    toy_policy_path, tmp_path, loss_type, updates_per_batch, optimizer_steps
):
    overrides = {**FIXED, "loss_type": loss_type, "updates_per_batch": updates_per_batch}
    (one,) = run_worker(toy_policy_path, tmp_path / "one", 1, "fixed", 2, overrides)
    first, second = run_worker(toy_policy_path, tmp_path / "two", 2, "fixed", 2, overrides)
    assert (one["batch_size"], first["batch_size"], first["processes"]) == (16, 16, 2)
    rows = one["rows"]
    assert [row["uec/update_samples"] for row in rows] == [17, 17]
    assert [
        row["uec/optimizer_steps"] for row in rows
    ] == optimizer_steps  # the update's, then the replay's too
    assert [row["uec/replay_samples"] for row in rows] == [0, 16]
    for row_one, row_two in zip(rows, first["rows"], strict=True):
        for name in ("uec/optimizer_steps", "uec/update_samples", "uec/replay_samples"):
            assert row_one[name] == row_two[name], name
        for name in ("loss", "kl", "uec/inner_grad_norm", "entropy/update_batch_sampled_nll"):
            assert row_two[name] == pytest.approx(row_one[name], rel=1e-4), name
    single, main, other = (
        weights(tmp_path / "one", 0),
        weights(tmp_path / "two", 0),
        weights(tmp_path / "two", 1),
    )
    assert len(one["changed"]) == len(single) > 0  # every adapter weight moved
    for name in single:
        assert torch.equal(main[name], other[name]), name  # DDP: the processes hold the same weights
        # the same update as one process up to float rounding; weighting each process's loss by 1 instead of
        # its share of the mini-batch is off by about 2e-2 here
        torch.testing.assert_close(main[name], single[name], rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_two_processes_select_and_buffer_the_global_batch_alike(toy_policy_path, tmp_path):
    first, second = run_worker(toy_policy_path, tmp_path, 2, "real", 4, {"replay_frequency": 2})
    for key in ("batch_buffer", "replay_buffer", "replay_size", "python_random", "changed"):
        assert first[key] == second[key], key
    main, other = weights(tmp_path, 0), weights(tmp_path, 1)
    assert all(torch.equal(main[name], other[name]) for name in main)
    rows = first["rows"]
    assert [row["step"] for row in rows] == [1, 2, 3, 4]  # one row per step: only the main process writes
    group, extra = 4, 16  # G, and G' = 4 G
    for row in rows:
        assert row["uec/prompts"] == 16 / group  # the global batch, not one process's half
        assert row["uec/exploration_generated"] == row["uec/hard_prompts"] * extra
        assert row["uec/update_samples"] % 16 == 0  # whole global batches B0 leave the batch buffer
    assert sum(row["uec/exploration_generated"] for row in rows) > 0
    assert sum(row["uec/updated"] for row in rows) > 0 and first["changed"]


@pytest.mark.slow
def test_two_processes_train_a_vision_language_model_alike(toy_policy_path, tmp_path):
    first, second = run_worker(
        toy_policy_path,
        tmp_path,
        2,
        "real",
        3,
        {"batch_buffer": False, "replay_threshold": 0.5, "replay_frequency": 3},
        "--vision",
    )
    for key in ("replay_buffer", "replay_size", "python_random", "changed"):
        assert first[key] == second[key], key
    main, other = weights(tmp_path, 0), weights(tmp_path, 1)
    assert all(torch.equal(main[name], other[name]) for name in main)
    rows = first["rows"]
    assert all(row["uec/prompts"] == 4 for row in rows)
    assert sum(row["uec/exploration_generated"] for row in rows) > 0
    assert (
        first["replay_with_images"] == first["replay_size"] > 0
    )  # samples crossed processes with their pixels
    assert any("visual" in name for name in first["changed"])


@pytest.mark.slow
def test_a_crashed_two_process_run_resumes_from_its_checkpoint(toy_policy_path, tmp_path):
    out = tmp_path / "run"
    settings = [
        f"policy={toy_policy_path}",
        "method=uec_rl",
        "steps=4",
        "prompts_per_step=4",
        "num_generations=4",
        "max_completion_length=24",
        "checkpoint_every=2",
        "validation_every=2",
        "validation_prompts=4",
        "eval_prompts=8",
        "eval_samples=2",
        "threads=1",
        f"output_dir={out}",
    ]
    crashed = launch(2, "-m", "uec_repro", "train", *settings, env={"UEC_REPRO_FAULT": "KILL:generation:3"})
    assert crashed.returncode != 0
    assert (out / "checkpoint-2" / "uec_state.json").is_file() and not (out / "eval.json").exists()
    resumed = launch(2, "-m", "uec_repro", "train", *settings)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    result = json.loads((out / "eval.json").read_text())
    assert (result["processes"], result["resumed_from_step"]) == (2, 2)
    # the two processes' shares of the evaluation (every other prompt), back in the test split's order
    test = load_task("arith", "test", n=8)
    assert (
        result["difficulty"] == list(test["difficulty"])
        and len(result["correct"]) == result["summary"]["prompts"] == 8
    )
    assert result["summary"]["mean@2"] == pytest.approx(sum(result["correct"]) / 16)
    probe_row, *rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert probe_row["step"] == 0 and "uec/prompts" not in probe_row  # the step-0 probe of the initial policy
    assert [row["step"] for row in rows] == [
        1,
        2,
        3,
        4,
    ]  # the crashed run's rows past checkpoint-2 were dropped
    assert all(row["uec/prompts"] == 4 for row in rows)
    probes = [json.loads(line) for line in (out / "probe.jsonl").read_text().splitlines()]
    assert [row["step"] for row in probes] == [0, 4]  # step 0 and the last step, once each across the resume
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    assert [p.name for p in out.glob("checkpoint-*")] == ["checkpoint-4"]  # keep_checkpoints="last"


def test_a_launch_that_cannot_split_the_step_is_refused_before_loading(monkeypatch, tmp_path):
    monkeypatch.setenv("WORLD_SIZE", "3")
    with pytest.raises(
        ParameterError, match=r"prompts_per_step=4 must be a multiple of the number of processes"
    ):
        RunSettings(method="grpo", prompts_per_step=4, output_dir=str(tmp_path))
    with pytest.raises(ParameterError, match=r"method='base' only evaluates"):
        RunSettings(method="base", output_dir=str(tmp_path))
