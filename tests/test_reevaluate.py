"""Reusable adapters and checkpoints: RunSettings.keep_checkpoints (what stays after a run) and
``uec-repro evaluate`` (uec_repro.reevaluate), which evaluates a run's adapter or a checkpoint again."""

import json
from dataclasses import asdict

import pytest

from uec_repro import cli
from uec_repro.checkpoints import STATE_FILE, prepare_resume, prune_checkpoints
from uec_repro.layout import EVAL_FILE, SETTINGS_FILE
from uec_repro.training import RESUMABLE_CHANGES, RunSettings, run_training
from uec_repro.validation import ParameterError

TINY = {
    "method": "grpo",
    "steps": 2,
    "prompts_per_step": 2,
    "num_generations": 2,
    "max_completion_length": 24,
    "eval_prompts": 4,
    "eval_samples": 4,
    "probe_prompts": 2,
    "validation_prompts": 2,
    "validation_every": 0,
    "checkpoint_every": 1,
    "threads": 1,
}


def checkpoints(folder):
    return sorted(p.name for p in folder.glob("checkpoint-*"))


def fake_checkpoint(folder, step, complete=True):
    path = folder / f"checkpoint-{step}"
    path.mkdir(parents=True)
    if complete:
        (path / STATE_FILE).write_text("{}")
    return path


# ---- keep_checkpoints without training ----
def test_keep_checkpoints_is_checked_and_does_not_stop_a_resume():
    with pytest.raises(ParameterError, match=r"keep_checkpoints='some'.*\['none', 'last', 'all'\]"):
        RunSettings(keep_checkpoints="some")
    assert "keep_checkpoints" in RESUMABLE_CHANGES  # it does not change the training
    assert RunSettings().keep_checkpoints == "last"
    assert RunSettings(keep_checkpoints="all").trainer_config().keep_all_checkpoints
    assert not RunSettings(keep_checkpoints="last").trainer_config().keep_all_checkpoints


@pytest.mark.parametrize(
    ("keep", "kept"),
    [("none", []), ("last", ["checkpoint-10"]), ("all", ["checkpoint-10", "checkpoint-5"])],
)
def test_pruning_keeps_complete_checkpoints_and_drops_cut_off_ones(tmp_path, keep, kept):
    fake_checkpoint(tmp_path, 5)
    fake_checkpoint(tmp_path, 10)
    fake_checkpoint(tmp_path, 15, complete=False)  # cut off while being written
    assert [p.name for p in prune_checkpoints(tmp_path, keep)] == sorted(kept, key=lambda n: int(n[11:]))
    assert checkpoints(tmp_path) == kept
    with pytest.raises(ParameterError, match="keep_checkpoints='every'"):
        prune_checkpoints(tmp_path, "every")


def test_a_resume_that_keeps_all_checkpoints_removes_only_cut_off_ones(tmp_path):
    fake_checkpoint(tmp_path, 1)
    latest = fake_checkpoint(tmp_path, 2)
    fake_checkpoint(tmp_path, 3, complete=False)
    assert prepare_resume(tmp_path, keep_all=True) == latest
    assert checkpoints(tmp_path) == ["checkpoint-1", "checkpoint-2"]
    assert prepare_resume(tmp_path) == latest
    assert checkpoints(tmp_path) == ["checkpoint-2"]


# ---- bad input: exit code 2 and the option's name, before any model is loaded ----
@pytest.fixture
def fake_run(tmp_path, monkeypatch):
    """A run folder with settings.json and an adapter/ that is never read: loading a model fails the test."""
    import uec_repro.models

    def no_loading(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(uec_repro.models, "load_policy", no_loading)
    run = tmp_path / "run"
    settings = RunSettings(method="base", output_dir=str(run))
    (run / "adapter").mkdir(parents=True)
    (run / SETTINGS_FILE).write_text(json.dumps(asdict(settings)))
    (run / "adapter" / "adapter_config.json").write_text("{}")
    (run / "adapter" / "adapter_model.safetensors").write_bytes(b"")
    return run


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (["--task", "aime"], "--task='aime'"),
        (["--n", "0"], "--n=0"),
        (["--samples", "0"], "--samples=0"),
        (["--temperature", "0"], "--temperature=0"),
        (["--max-new-tokens", "0"], "--max-new-tokens=0"),
        (["--seed", "-1"], "--seed=-1"),
        (["--policy", "no/such/folder/x"], "--policy="),
    ],
)
def test_bad_options_exit_with_2_naming_the_option(fake_run, capsys, options, named):
    assert cli.main(["evaluate", str(fake_run), *options]) == 2
    assert named in capsys.readouterr().err


def test_bad_paths_exit_with_2_naming_path_or_the_missing_option(fake_run, tmp_path, capsys):
    assert cli.main(["evaluate", str(tmp_path / "nowhere")]) == 2
    assert "PATH=" in capsys.readouterr().err and not (tmp_path / "nowhere").exists()
    empty = tmp_path / "empty"
    fake_checkpoint(empty, 3).joinpath("adapter_config.json").write_text("{}")
    (empty / "checkpoint-3" / "adapter_model.safetensors").write_bytes(b"")
    assert cli.main(["evaluate", str(empty)]) == 2
    err = capsys.readouterr().err
    assert "holds no adapter" in err and "checkpoint-3" in err  # points at what can be evaluated
    assert cli.main(["evaluate", str(empty / "checkpoint-3")]) == 2  # an adapter without its run's settings
    assert "--policy" in capsys.readouterr().err
    cut_off = fake_checkpoint(fake_run, 4, complete=False)
    assert cli.main(["evaluate", str(cut_off)]) == 2
    assert "cut off" in capsys.readouterr().err
    assert cli.main(["evaluate", str(fake_run), "--out", str(tmp_path)]) == 2
    assert "--out=" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:  # argparse's own type check
        cli.main(["evaluate", str(fake_run), "--n", "many"])
    assert stop.value.code == 2 and "--n" in capsys.readouterr().err


# ---- on a trained toy run ----
@pytest.fixture(scope="module")
def finished_run(toy_policy_path, tmp_path_factory):
    """A 2-step run that keeps all its checkpoints, and its eval.json."""
    out = tmp_path_factory.mktemp("reevaluate") / "run"
    result = run_training(RunSettings(**TINY, keep_checkpoints="all", output_dir=str(out)))
    return out, result


@pytest.mark.slow
@pytest.mark.parametrize(("keep", "kept"), [("none", []), ("last", ["checkpoint-2"])])
def test_keep_checkpoints_decides_what_stays_after_the_run(toy_policy_path, tmp_path, keep, kept):
    run_training(RunSettings(**TINY, keep_checkpoints=keep, output_dir=str(tmp_path)))
    assert (tmp_path / EVAL_FILE).is_file() and checkpoints(tmp_path) == kept


@pytest.mark.slow
def test_all_checkpoints_stay(finished_run):
    out, _ = finished_run
    assert (out / EVAL_FILE).is_file() and checkpoints(out) == ["checkpoint-1", "checkpoint-2"]
    assert all((out / name / "adapter_model.safetensors").is_file() for name in checkpoints(out))


@pytest.mark.slow
def test_evaluating_a_run_again_repeats_its_evaluation(finished_run, capsys):
    out, result = finished_run
    own = (out / EVAL_FILE).read_text()
    options = ["--task", "arith", "--n", "4", "--samples", "4", "--temperature", "1.0", "--seed", "0"]
    assert cli.main(["evaluate", str(out), *options]) == 0
    assert "written to" in capsys.readouterr().out
    again = json.loads((out / "eval-arith-T1.json").read_text())
    assert again["correct"] == result["correct"] and again["summary"] == result["summary"]
    assert set(result) <= set(again) and again["n"] == 4 and again["task"] == "arith"
    assert again["settings"] == result["settings"]  # what trained the adapter
    assert again["evaluated"]["adapter"] == str(out / "adapter") and again["evaluated"]["seed"] == 0
    assert (out / EVAL_FILE).read_text() == own  # the run's own evaluation is untouched
    # the defaults are the run's: the same evaluation, the same file
    assert cli.main(["evaluate", str(out / "adapter"), "--out", str(out / "again.json")]) == 0
    assert json.loads((out / "again.json").read_text())["correct"] == result["correct"]


@pytest.mark.slow
def test_evaluating_checkpoints(finished_run, tmp_path):
    out, result = finished_run
    last = tmp_path / "last.json"
    assert cli.main(["evaluate", str(out / "checkpoint-2"), "--out", str(last)]) == 0
    record = json.loads(last.read_text())
    assert record["evaluated"]["checkpoint_step"] == 2
    assert record["correct"] == result["correct"]  # the last checkpoint holds the final adapter
    assert cli.main(["evaluate", str(out / "checkpoint-1"), "--n", "2", "--samples", "2"]) == 0
    first = json.loads((out / "checkpoint-1" / "eval-arith-T1.json").read_text())
    assert first["evaluated"]["checkpoint_step"] == 1 and len(first["correct"]) == 2 and first["n"] == 2
    assert set(first["summary"]) >= {"pass@1", "pass@2", "mean@2", "hard_share@2"}
