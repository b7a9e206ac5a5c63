"""Faults on the toy policy: NaN/inf anywhere in a step skips it (or stops the run), a checkpoint is never
written from non-finite weights or onto a full disk, killed runs resume to the same numbers, seeds repeat."""

import json
import math
from collections import namedtuple

import pytest
import torch

from benchmarks.stress import STRESS_SETTINGS, VOLATILE, Kill, StressReport, attempt, compare_runs, run_chain
from uec_repro.config import METHODS, method_config
from uec_repro.layout import METRICS_FILE
from uec_repro.models import LoraSettings, cast_trainable_to_fp32, load_policy
from uec_repro.rewards import accuracy_reward
from uec_repro.tasks import load_task
from uec_repro.trainer import InsufficientDiskError, NonFiniteError, UECTrainer
from uec_repro.training import RunSettings, run_training
from uec_repro.validation import ParameterError

pytestmark = pytest.mark.slow


def make_trainer(policy_path, out, method="uec_rl", reward=accuracy_reward, **overrides):
    from transformers import set_seed

    set_seed(0)
    model, tokenizer = load_policy(str(policy_path), lora=LoraSettings(r=4, alpha=8, dropout=0.0))
    settings = dict(
        output_dir=str(out),
        use_cpu=True,
        max_steps=2,
        per_device_train_batch_size=16,
        num_generations=4,
        max_completion_length=24,
        learning_rate=1e-3,
        seed=0,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
        gradient_checkpointing=False,
        batch_buffer=False,
    )
    trainer = UECTrainer(
        model=model,
        reward_funcs=[reward],
        args=method_config(method, **{**settings, **overrides}),
        train_dataset=load_task("arith", "train", n=64, seed=0, tokenizer=tokenizer),
        processing_class=tokenizer,
    )
    cast_trainable_to_fp32(trainer.model)
    return trainer


def weights(trainer):
    return {name: p.detach().clone() for name, p in trainer.model.named_parameters() if p.requires_grad}


def rows(out):
    return [json.loads(line) for line in (out / METRICS_FILE).read_text().splitlines()]


def nan_on_first_call(reward):
    calls = []

    def scored(completions, answer, **kwargs):
        calls.append(1)
        values = reward(completions, answer)
        return [math.nan] * len(values) if len(calls) == 1 else values

    return scored


def test_nonfinite_rewards_skip_the_step_and_the_next_step_trains(toy_policy_path, tmp_path):
    trainer = make_trainer(toy_policy_path, tmp_path, reward=nan_on_first_call(accuracy_reward))
    before = weights(trainer)
    with pytest.warns(RuntimeWarning, match="step 1: non-finite rewards"):
        trainer.train()
    first, second = rows(tmp_path)
    assert (first["faults/skipped_step"], first["uec/update_samples"], first["uec/optimizer_steps"]) == (
        1,
        0,
        0,
    )
    assert second["faults/skipped_step"] == 0 and second["uec/update_samples"] > 0
    assert any(not torch.equal(p, before[name]) for name, p in weights(trainer).items())


@pytest.mark.parametrize("fault", ["loss", "gradients"])
def test_nonfinite_loss_or_gradients_make_no_update(toy_policy_path, tmp_path, fault):
    trainer = make_trainer(toy_policy_path, tmp_path, max_steps=1, nonfinite_patience=1)
    if fault == "loss":
        trainer.compute_loss = lambda model, inputs, *args, **kwargs: torch.tensor(
            math.nan, requires_grad=True
        )
    else:
        lora = next(p for name, p in trainer.model.named_parameters() if p.requires_grad)
        lora.register_hook(lambda grad: torch.full_like(grad, math.inf))
    before = weights(trainer)
    with pytest.warns(RuntimeWarning, match=f"non-finite {fault}"):
        trainer.train()
    assert rows(tmp_path)[0]["faults/skipped_step"] == 1.0
    after = weights(trainer)
    assert all(torch.equal(after[name], before[name]) for name in before)


def test_too_many_nonfinite_steps_stop_the_run_before_a_checkpoint(toy_policy_path, tmp_path):
    def always_nan(completions, answer, **kwargs):
        return [math.inf] * len(completions)

    trainer = make_trainer(
        toy_policy_path,
        tmp_path,
        reward=always_nan,
        max_steps=4,
        nonfinite_patience=1,
        save_strategy="steps",
        save_steps=1,
    )
    with (
        pytest.raises(NonFiniteError, match=r"2 step\(s\) in a row.*nonfinite_patience=1"),
        pytest.warns(RuntimeWarning),
    ):
        trainer.train()
    assert [row["step"] for row in rows(tmp_path)] == [1]
    assert [p.name for p in tmp_path.glob("checkpoint-*")] == ["checkpoint-1"]


def test_no_checkpoint_is_written_from_nonfinite_weights(toy_policy_path, tmp_path):
    trainer = make_trainer(toy_policy_path, tmp_path, max_steps=1)
    trainer.train()
    next(p for p in trainer.model.parameters() if p.requires_grad).data[0, 0] = math.nan
    with pytest.raises(NonFiniteError, match="checkpoint-1 not written: non-finite weights"):
        trainer._save_checkpoint(trainer.model, None)
    assert not list(tmp_path.glob("checkpoint-*"))


def test_a_short_disk_stops_the_run_and_keeps_the_earlier_checkpoint(toy_policy_path, tmp_path, monkeypatch):
    import uec_repro.guards

    usage = namedtuple("usage", "total used free")
    calls = []

    def disk_usage(path):
        calls.append(path)
        return usage(
            10**12, 0, 10**12 if len(calls) == 1 else 5 * 2**20
        )  # room for the first checkpoint only

    monkeypatch.setattr(uec_repro.guards.shutil, "disk_usage", disk_usage)
    trainer = make_trainer(toy_policy_path, tmp_path, max_steps=3, save_strategy="steps", save_steps=1)
    with pytest.raises(
        InsufficientDiskError, match=r"checkpoint-2 not written: 5 MB free.*min_free_disk_mb=64"
    ):
        trainer.train()
    assert [p.name for p in tmp_path.glob("checkpoint-*")] == ["checkpoint-1"]
    assert [row["step"] for row in rows(tmp_path)] == [1, 2]


@pytest.mark.parametrize("method", list(METHODS))
def test_same_seed_same_metrics_for_every_method(toy_policy_path, tmp_path, method):
    def numbers(out):
        return [{k: v for k, v in row.items() if not k.startswith(VOLATILE)} for row in rows(out)]

    for name in ("a", "b"):
        make_trainer(toy_policy_path, tmp_path / name, method, max_steps=3, replay_frequency=2).train()
    assert numbers(tmp_path / "a") == numbers(tmp_path / "b")
    assert len(numbers(tmp_path / "a")) == 3


def test_killed_runs_resume_to_the_uninterrupted_numbers(tmp_path):
    reference = tmp_path / "reference"
    assert attempt({**STRESS_SETTINGS, "output_dir": str(reference)}, None) == 0
    reached = [row for row in rows(reference) if row["step"] > 0]  # step 0: the probe of the initial policy
    assert any(row["uec/replayed"] for row in reached) and any(row["uec/updated"] for row in reached)
    replay_step = next(row["step"] for row in reached if row["uec/replayed"])
    kills = [
        Kill("KILL", "generation", 2),
        Kill("KILL", "checkpoint", 4),
        Kill("TERM", "update", 4),
        Kill("KILL", "replay", replay_step),
    ]
    report = StressReport()
    run_chain(STRESS_SETTINGS, tmp_path / "killed", kills, reference, report)
    assert [a["killed"] for a in report.attempts] == [True] * len(kills), report.attempts
    assert (report.kills, report.resumes, report.lost_steps, report.duplicated_steps) == (4, 4, 0, 0)
    assert report.differences == [] and report.identical
    assert json.loads((tmp_path / "killed" / "eval.json").read_text())["resumed_from_step"] == 4
    kept = list((tmp_path / "killed").glob("checkpoint-*"))  # keep_checkpoints="last": the newest one only
    assert len(kept) == 1 and (kept[0] / "uec_state.json").is_file()


def test_compare_runs_sees_a_changed_value(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "eval.json").write_text(json.dumps({"summary": {"pass@1": 0.5}, "correct": [1]}))
    (tmp_path / "a" / METRICS_FILE).write_text('{"step": 1, "loss": 0.5, "time/step": 1.0}\n')
    (tmp_path / "b" / METRICS_FILE).write_text('{"step": 1, "loss": 0.5, "time/step": 2.0}\n')
    assert compare_runs(tmp_path / "a", tmp_path / "b") == []
    (tmp_path / "b" / METRICS_FILE).write_text('{"step": 1, "loss": 0.25, "time/step": 2.0}\n')
    assert compare_runs(tmp_path / "a", tmp_path / "b") == ["step 1 loss: 0.5 != 0.25"]


def test_rerunning_an_unfinished_run_with_other_settings_is_refused(tmp_path, monkeypatch):
    settings = dict(STRESS_SETTINGS, output_dir=str(tmp_path / "run"))
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "settings.json").write_text(json.dumps(vars(RunSettings(**settings))))
    (tmp_path / "run" / METRICS_FILE).write_text('{"step": 1}\n')
    monkeypatch.setattr("uec_repro.models.load_policy", lambda *a, **k: pytest.fail("loaded a model"))
    with pytest.raises(ParameterError, match=r"unfinished run with other settings \(seed\)"):
        run_training(RunSettings(**{**settings, "seed": 1}))
    assert (tmp_path / "run" / METRICS_FILE).read_text() == '{"step": 1}\n'  # nothing lost
