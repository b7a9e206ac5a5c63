"""RunSettings (the 01_train parameters), training_grid, and one short run_training end to end."""

import json

import pytest

from uec_repro.evaluation import pass_at_k
from uec_repro.experiments import training_grid
from uec_repro.layout import EVAL_FILE
from uec_repro.training import RunSettings, run_training
from uec_repro.validation import ParameterError


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"method": "ppo"}, "method"),
        ({"task": "aime"}, "task"),
        ({"quantization": "int8"}, "quantization"),
        ({"steps": 0}, "steps"),
        ({"num_generations": 1}, "num_generations"),
        ({"seed": -1}, "seed"),
        ({"eval_temperature": 0.0}, "eval_temperature"),
        ({"exploration_temperature": -1.0}, "exploration_temperature"),
        ({"replay_frequency": 0}, "replay_frequency"),
        ({"overrides": {"exploration_rule": "abs>2"}}, "exploration_rule"),
        ({"overrides": {"no_such_field": 1}}, "no_such_field"),
        ({"overrides": [("beta", 0.0)]}, "overrides"),
        ({"save_adapter": "yes"}, "save_adapter"),
        ({"policy": ""}, "policy"),
    ],
)
def test_bad_settings_fail_at_once_naming_the_parameter(changes, named):
    with pytest.raises(ParameterError, match=named):
        RunSettings(**changes)


def test_settings_become_the_methods_config_with_overrides_last():
    config = RunSettings(
        method="dapo",
        prompts_per_step=3,
        num_generations=4,
        exploration_temperature=1.5,
        overrides={"beta": 0.02},
    ).trainer_config()
    assert config.per_device_train_batch_size == 12 and config.num_generations == 4
    assert config.epsilon_high == 0.28 and config.batch_buffer and not config.exploration  # dapo's own
    assert config.exploration_temperature == 1.5 and config.beta == 0.02


def test_from_namespace_takes_the_fields_it_finds():
    settings = RunSettings.from_namespace({"method": "grpo", "steps": 3, "unrelated": object()})
    assert (settings.method, settings.steps, settings.seed) == ("grpo", 3, 0)


def test_training_grid_has_one_block_per_sweep_and_checks_every_value():
    grid = training_grid(
        "runs/exp",
        ["base", "grpo"],
        [0, 1],
        {"steps": 5},
        sweeps={"exploration_temperature": [1.0, 1.5]},
        sweep_seeds=[0],
    )
    assert grid["experiment"] == "exp" and grid["parameters"] == {"steps": 5}
    assert grid["grid"] == [
        {"methods": ["base", "grpo"], "seeds": [0, 1]},
        {"methods": ["uec_rl"], "seeds": [0], "sweep": {"exploration_temperature": [1.0, 1.5]}},
    ]
    with pytest.raises(ParameterError, match="exploration_temperature"):
        training_grid("runs/exp", ["grpo"], [0], {}, sweeps={"exploration_temperature": [1.0, -2.0]})
    with pytest.raises(ParameterError, match="stepz"):
        training_grid("runs/exp", ["grpo"], [0], {"stepz": 5})
    with pytest.raises(ParameterError, match="output_dir"):
        training_grid("runs/exp", ["grpo"], [0], {"output_dir": "x"})


def test_an_existing_run_is_not_overwritten_by_default(tmp_path):
    (tmp_path / EVAL_FILE).write_text("{}")
    with pytest.raises(ParameterError, match="overwrite"):
        run_training(RunSettings(method="base", output_dir=str(tmp_path)))
    assert (tmp_path / EVAL_FILE).read_text() == "{}"


@pytest.mark.slow
def test_a_short_run_writes_metrics_evaluation_and_adapter(toy_policy_path, tmp_path):
    settings = RunSettings(
        method="uec_rl",
        steps=2,
        prompts_per_step=4,
        num_generations=4,
        eval_prompts=6,
        probe_prompts=8,
        eval_samples=4,
        validation_every=0,
        output_dir=str(tmp_path),
        threads=2,
    )
    result = run_training(settings)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [0, 1, 2]  # step 0: the probe of the initial policy
    probes = [json.loads(line) for line in (tmp_path / "probe.jsonl").read_text().splitlines()]
    assert [row["step"] for row in probes] == [0, 2]  # and the last step (probe_every = 5)
    assert len(probes[0]["prompt_ids"]) == 8 and "probe/entropy" in rows[0] and "probe/entropy" in rows[2]
    stored = json.loads((tmp_path / EVAL_FILE).read_text())
    assert stored["correct"] == result["correct"] and len(stored["correct"]) == 6 and stored["n"] == 4
    for k in (1, 2, 4):
        expected = sum(pass_at_k(4, c, k) for c in stored["correct"]) / 6
        assert stored["summary"][f"pass@{k}"] == pytest.approx(expected)
    assert stored["seconds_per_step"] > 0 and stored["peak_rss_mb"] > 0
    assert (tmp_path / "adapter" / "adapter_model.safetensors").stat().st_size > 0
