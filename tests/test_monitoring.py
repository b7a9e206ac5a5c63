"""Live monitoring: report_to (TensorBoard event files of every metric group) and the progress bar."""

from types import SimpleNamespace

import pytest

from uec_repro.settings import BATCH_ENVIRONMENT, TENSORBOARD_DIR, RunSettings
from uec_repro.training import run_training
from uec_repro.validation import ParameterError


def tiny_run(output_dir, **changes) -> RunSettings:
    """Two steps on the toy policy, as small as a run allows (the probe at step 0 and at the last step): a few
    seconds, so these end-to-end tests are not marked slow."""
    return RunSettings(
        method="uec_rl",
        steps=2,
        prompts_per_step=2,
        num_generations=2,
        max_completion_length=16,
        eval_prompts=2,
        eval_samples=1,
        probe_prompts=2,
        validation_every=0,
        checkpoint_every=0,
        save_adapter=False,
        threads=1,
        output_dir=str(output_dir),
        **changes,
    )


CHOICES = r"one of \['none', 'tensorboard', 'trackio', 'wandb'\] or a list of them"


@pytest.mark.parametrize(
    ("report_to", "message"),
    [
        ("tb", r"report_to='tb': 'tb' is not allowed; choose " + CHOICES),
        (
            ["tensorboard", "mlflow"],
            r"report_to=\['tensorboard', 'mlflow'\]: 'mlflow' is not allowed; choose ",
        ),
        (["none", "tensorboard"], r"report_to=\['none', 'tensorboard'\]: 'none' cannot be combined"),
        ([], r"report_to=\[\] is not allowed; choose " + CHOICES),
        (3, r"report_to=3 is not allowed"),
    ],
)
def test_bad_report_to_names_the_field_value_and_choices(report_to, message):
    with pytest.raises(ParameterError, match=message):
        RunSettings(report_to=report_to)


def test_report_to_a_missing_package_says_which_extra_to_install(monkeypatch):
    import importlib.util

    installed = importlib.util.find_spec

    def find_spec(name, *args):
        return None if name.startswith("tensorboard") else installed(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(ParameterError, match=r"report_to='tensorboard'.*pip install -e '\.\[monitor\]'"):
        RunSettings(report_to="tensorboard")


def test_report_to_reaches_the_trainer_config():
    assert RunSettings().trainer_config().report_to == []  # the default: offline
    assert RunSettings(report_to="tensorboard").trainer_config().report_to == ["tensorboard"]
    assert RunSettings(report_to=["tensorboard"]).trainer_config().disable_tqdm  # one bar: ours


def test_progress_is_on_unless_the_batch_runner_runs_it(monkeypatch, tmp_path):
    from uec_repro.experiments.execution import child_environment

    monkeypatch.delenv(BATCH_ENVIRONMENT, raising=False)
    assert RunSettings().show_progress() and not RunSettings(progress=False).show_progress()
    monkeypatch.setenv(BATCH_ENVIRONMENT, "1")
    assert not RunSettings().show_progress() and RunSettings(progress=True).show_progress()
    assert child_environment(tmp_path, None)[BATCH_ENVIRONMENT] == "1"
    with pytest.raises(ParameterError, match="progress"):
        RunSettings(progress="yes")


def test_the_progress_bar_shows_reward_probe_entropy_and_hard_prompts():
    import io

    from uec_repro.callbacks import Progress

    out = io.StringIO()
    bar = Progress(file=out, mininterval=0)
    state = SimpleNamespace(is_world_process_zero=True, max_steps=4, global_step=0)
    bar.on_step_begin(None, state, None)
    state.global_step = 1
    bar.on_step_end(None, state, None)
    bar.on_log(None, state, None, logs={"reward": 0.25, "uec/hard_prompts": 3.0, "uec/prompts": 8.0})
    state.global_step = 2
    bar.on_step_end(None, state, None)
    bar.on_log(None, state, None, logs={"reward": 0.5, "probe/entropy": 1.234567, "uec/hard_prompts": 2.0})
    bar.on_train_end(None, state, None)
    last = out.getvalue().split("\r")[-1]
    assert "2/4" in last and "reward=0.500, probe/entropy=1.235, hard_prompts=2" in last  # in this order


def test_a_resumed_runs_bar_starts_at_its_checkpoints_step():
    import io

    from uec_repro.callbacks import Progress

    bar = Progress(file=io.StringIO(), mininterval=0)
    state = SimpleNamespace(is_world_process_zero=True, max_steps=4, global_step=0)
    bar.on_train_begin(None, state, None)  # HF calls this before it loads the checkpoint's state
    state.global_step = 2  # loaded: the run resumes after checkpoint-2
    bar.on_step_begin(None, state, None)
    assert (bar.bar.initial, bar.bar.n) == (2, 2)
    state.global_step = 3
    bar.on_step_end(None, state, None)
    assert bar.bar.n == 3


def test_tensorboard_gets_every_metric_group_and_the_bar_the_step_numbers(toy_policy_path, tmp_path, capfd):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_training(tiny_run(tmp_path, report_to="tensorboard", progress=True))
    events = sorted((tmp_path / TENSORBOARD_DIR).rglob("events.out.tfevents.*"))
    assert events
    tags = set()
    for path in events:
        accumulator = EventAccumulator(str(path))
        accumulator.Reload()
        tags |= set(accumulator.Tags()["scalars"])
    for group in ("uec/", "probe/", "time/"):  # HF writes them as train/<name>
        assert any(group in tag for tag in tags), (group, sorted(tags))
    assert "train/reward" in tags
    bar = capfd.readouterr().err
    assert "reward=" in bar and "hard_prompts=" in bar and "2/2" in bar


def test_batch_runs_show_no_progress_bar(toy_policy_path, tmp_path, capfd, monkeypatch):
    monkeypatch.setenv(BATCH_ENVIRONMENT, "1")
    run_training(tiny_run(tmp_path))
    assert "reward" not in capfd.readouterr().err
    assert not (tmp_path / TENSORBOARD_DIR).exists()  # report_to="none": offline
