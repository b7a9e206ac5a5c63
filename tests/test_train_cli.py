"""``uec-repro train``: every RunSettings and UECConfig field a flag (TRL's TrlParser), recipes from YAML or a
runner preset, the older name=value form, and refusals with exit code 2."""

import dataclasses

import pytest

from uec_repro import cli
from uec_repro.config import UECConfig
from uec_repro.experiments import load_grid
from uec_repro.train_cli import DERIVED_FIELDS, parse_train_args
from uec_repro.training import RunSettings


def test_flags_fill_run_settings_and_the_config_fields_become_overrides(tmp_path):
    settings = parse_train_args(
        [
            "--method", "uec_rl", "--steps", "7", "--output_dir", str(tmp_path / "run"), "--beta", "0.0",
            "--replay_rule", "positive", "--exploration", "false", "--clip_cov_bounds", "1", "5",
        ]
    )  # fmt: skip
    assert (settings.method, settings.steps, settings.output_dir) == ("uec_rl", 7, str(tmp_path / "run"))
    assert settings.overrides == {
        "beta": 0.0,
        "replay_rule": "positive",
        "exploration": False,
        "clip_cov_bounds": (1.0, 5.0),
    }
    config = settings.trainer_config()
    assert (config.beta, config.replay_rule, config.exploration, config.clip_cov_bounds) == (
        0.0,
        "positive",
        False,
        (1.0, 5.0),
    )


def test_unset_flags_leave_the_method_and_run_defaults(tmp_path):
    settings = parse_train_args(["--method", "dapo", "--output_dir", str(tmp_path / "run")])
    defaults = RunSettings(method="dapo", output_dir=str(tmp_path / "run"))
    assert settings == defaults and settings.overrides == {}


def test_a_yaml_recipe_sets_fields_and_flags_win_over_it(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("method: grpo\nsteps: 3\nlora_r: 8\nbeta: 0.0\n")
    settings = parse_train_args(
        ["--config", str(recipe), "--steps", "5", "--output_dir", str(tmp_path / "r")]
    )
    assert (settings.method, settings.steps, settings.lora_r, settings.overrides) == (
        "grpo",
        5,
        8,
        {"beta": 0.0},
    )


def test_a_runner_preset_is_a_recipe(tmp_path):
    preset = load_grid("paper").parameters
    settings = parse_train_args(
        ["--config", "paper", "--method", "uec_rl", "--output_dir", str(tmp_path / "r")]
    )
    assert settings.steps == preset["steps"] and settings.eval_prompts == preset["eval_prompts"]
    assert settings.overrides == preset["overrides"]


def test_the_older_name_value_form_reads_as_flags(tmp_path):
    old = parse_train_args(["method=grpo", "steps=4", f"output_dir={tmp_path / 'r'}", "beta=0.0"])
    new = parse_train_args(
        ["--method", "grpo", "--steps", "4", "--output_dir", str(tmp_path / "r"), "--beta", "0"]
    )
    assert old == new


def test_every_config_field_is_a_flag_a_run_setting_or_derived(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["train", "--help"])
    assert exit_.value.code == 0
    shown = capsys.readouterr().out
    run_fields = {f.name for f in dataclasses.fields(RunSettings)}
    assert set(DERIVED_FIELDS) <= {f.name for f in dataclasses.fields(UECConfig)}
    for f in dataclasses.fields(UECConfig):
        if f.init and f.name not in run_fields and f.name not in DERIVED_FIELDS:
            assert f"--{f.name}" in shown, f.name
    for name in run_fields - {"overrides"}:
        assert f"--{name}" in shown, name
    replay_rule = next(f for f in dataclasses.fields(UECConfig) if f.name == "replay_rule")
    assert " ".join(replay_rule.metadata["help"].split()) in " ".join(shown.split())  # help from the field


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        (["--stepz", "3"], "--stepz"),
        (["--steps", "0"], "steps=0"),
        (["--method", "ppo"], "method='ppo'"),
        (["--kl_cov_ratio", "2"], "kl_cov_ratio=2.0"),
    ],
)
def test_bad_flags_exit_with_2_and_name_the_flag(arguments, named, tmp_path, capsys):
    assert cli.main(["train", *arguments, "--output_dir", str(tmp_path / "r")]) == 2
    assert named in capsys.readouterr().err


def test_an_unknown_key_in_a_recipe_is_refused(tmp_path, capsys):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("stepz: 3\n")
    assert cli.main(["train", "--config", str(recipe), "--output_dir", str(tmp_path / "r")]) == 2
    assert "stepz" in capsys.readouterr().err
