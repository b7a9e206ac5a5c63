"""UECConfig: defaults from the authors' code, every registered method builds, bad values are named."""

from dataclasses import fields

import pytest

from uec_repro.config import METHODS, UECConfig, method_config, methods_table
from uec_repro.validation import ParameterError

CPU = {"output_dir": "unused", "use_cpu": True}
ADDED = {f.name for f in fields(UECConfig)} - {f.name for f in fields(UECConfig.__mro__[1])}


def test_defaults_are_the_released_code():
    config = UECConfig(**CPU)
    assert (
        config.exploration,
        config.retention,
        config.overlong_filter,
        config.batch_buffer,
        config.replay,
    ) == (True, True, True, True, True)
    assert config.exploration_temperature == 1.2 and config.exploration_rule == "abs>1"
    assert (config.replay_rule, config.replay_threshold, config.replay_capacity, config.replay_frequency) == (
        "abs",
        1.0,
        2.0,
        5,
    )
    assert (config.epsilon, config.epsilon_high, config.beta, config.top_p, config.temperature) == (
        0.2,
        0.2,
        0.01,
        0.99,
        1.0,
    )
    assert config.updates_per_batch == 4 and config.validation_temperature == 0.5
    assert (config.loss_type, config.delta, config.disable_dropout) == ("bnpo", 3.0, True)
    assert config.bf16 is False  # CPU: fp32
    assert config.learning_rate == 2e-4 and config.lr_scheduler_type == "constant"


def test_every_added_field_is_documented():
    for f in fields(UECConfig):
        if f.name in ADDED:
            assert len(f.metadata.get("help", "")) > 20, f.name


@pytest.mark.parametrize("name", list(METHODS))
def test_every_method_builds_with_its_overrides(name):
    config = method_config(name, **CPU)
    for field_name, value in METHODS[name].overrides.items():
        assert getattr(config, field_name) == value, (name, field_name)


def test_methods_switch_the_right_components():
    grpo, dapo, uec = (method_config(n, **CPU) for n in ("grpo", "dapo", "uec_rl"))
    assert not any((grpo.exploration, grpo.retention, grpo.batch_buffer, grpo.replay))
    assert dapo.retention and dapo.batch_buffer and not dapo.exploration and not dapo.replay
    assert dapo.epsilon_high == 0.28 and dapo.beta == 0.0
    for ablation, switched_off in (
        ("uec_rl_no_explore", "exploration"),
        ("uec_rl_no_replay", "replay"),
        ("uec_rl_no_retention", "retention"),
    ):
        config = method_config(ablation, **CPU)
        differing = [f.name for f in fields(UECConfig) if getattr(config, f.name) != getattr(uec, f.name)]
        assert differing == [switched_off], ablation
    paper = method_config("uec_rl_paper", **CPU)
    assert (paper.exploration_rule, paper.replay_rule) == ("positive", "positive")


def test_user_overrides_win_and_trl_options_still_work():
    config = method_config("dapo", epsilon_high=0.2, num_generations=4, per_device_train_batch_size=8, **CPU)
    assert config.epsilon_high == 0.2 and config.num_generations == 4


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"exploration_generations": 1}, "exploration_generations=1"),
        ({"exploration_temperature": 0.0}, "exploration_temperature=0.0"),
        ({"exploration_temperature": -1.2}, "exploration_temperature=-1.2"),
        ({"exploration_rule": "abs>2"}, "exploration_rule='abs>2'"),
        ({"replay_rule": "negative"}, "replay_rule='negative'"),
        ({"replay_frequency": 0}, "replay_frequency=0"),
        ({"replay_capacity": 0.5}, "replay_capacity=0.5"),
        ({"batch_buffer_capacity": 0.0}, "batch_buffer_capacity=0.0"),
        ({"regular_threshold": -0.1}, "regular_threshold=-0.1"),
        ({"kl_cov_ratio": 1.5}, "kl_cov_ratio=1.5"),
        ({"kl_cov_ratio": 0.0, "kl_cov_coef": -1.0}, "kl_cov_coef=-1.0"),  # checked once, not per mini-batch
        ({"clip_cov_ratio": -1e-4}, "clip_cov_ratio=-0.0001"),
        ({"clip_cov_bounds": (5.0, 1.0)}, "clip_cov_bounds=(5.0, 1.0)"),
        ({"entropy_adv_kappa": 1.0}, "entropy_adv_kappa=1.0"),
        ({"entropy_adv_alpha": -0.4}, "entropy_adv_alpha=-0.4"),
        ({"validation_temperature": 0}, "validation_temperature=0"),
        ({"replay": "yes"}, "replay='yes'"),
        ({"beta": -0.01}, "beta=-0.01"),
        ({"updates_per_batch": 0}, "updates_per_batch=0"),
        ({"steps_per_generation": 4}, "steps_per_generation=4"),
        ({"gradient_accumulation_steps": 2}, "gradient_accumulation_steps=2"),
        # HF's scheduler would follow training steps, not UECTrainer's optimizer steps
        ({"lr_scheduler_type": "cosine"}, "lr_scheduler_type='cosine'"),
        # refused before anything loads, not a crash mid-run (TRL's vLLM path ignores t' and G')
        ({"use_vllm": True}, "use_vllm=True is not supported"),
        ({"exploration_max_rows": 0}, "exploration_max_rows=0"),
        ({"use_transformers_continuous_batching": True}, "use_transformers_continuous_batching=True"),
        ({"lr_scheduler_type": "constant_with_warmup"}, "lr_scheduler_type='constant_with_warmup'"),
    ],
)
def test_bad_values_name_the_field_and_value(overrides, named):
    with pytest.raises(ParameterError) as error:
        method_config("uec_rl", **overrides, **CPU)
    assert named in str(error.value)


def test_unknown_method_and_unknown_field():
    with pytest.raises(ParameterError, match="method='ppo'.*'uec_rl'"):
        method_config("ppo", **CPU)
    with pytest.raises(ParameterError, match="replay_size"):
        method_config("uec_rl", replay_size=2, **CPU)


def test_paper_index_lists_every_method_with_a_source():
    table = methods_table()
    for name, method in METHODS.items():
        assert f"`{name}`" in table and method.source in table


def test_the_documented_paper_index_names_every_method():
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "docs" / "methods.md").read_text()
    index = readme[readme.index("## Methods and the paper index") : readme.index("## Paper vs. code")]
    for name in METHODS:
        assert f"`{name}`" in index, name


def test_exploration_rollouts_must_split_evenly_across_processes(monkeypatch):
    monkeypatch.setattr(UECConfig, "world_size", property(lambda self: 4))  # as under a 4-process launch
    with pytest.raises(
        ParameterError,
        match=r"exploration_generations=6 must be a multiple of the number of "
        r"processes \(4\)",
    ):
        UECConfig(**CPU, num_generations=4, per_device_train_batch_size=8, exploration_generations=6)
    assert UECConfig(**CPU, num_generations=4, per_device_train_batch_size=8).exploration_group_size == 16
    assert (
        UECConfig(
            **CPU,
            num_generations=4,
            per_device_train_batch_size=8,
            exploration_generations=6,
            exploration=False,
        ).exploration_group_size
        == 6
    )  # not generated: no constraint


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_uses_the_authors_plain_k3_and_weight_decay(method):
    config = method_config(method, output_dir="unused", use_cpu=True)
    assert config.use_bias_correction_kl is False  # TRL's default (True) multiplies k3 by the ratio
    assert config.kl_clamp == 10.0
    assert config.weight_decay == 0.01
    assert config.shuffle_mini_batches is False


def test_dapo_uses_the_authors_four_batch_buffer():
    assert method_config("dapo", output_dir="unused", use_cpu=True).batch_buffer_capacity == 4.0
    assert method_config("uec_rl", output_dir="unused", use_cpu=True).batch_buffer_capacity == 2.0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("kl_clamp", 0.0),
        ("kl_clamp", "10"),
        ("weight_decay", -0.1),
        ("probe_every", -1),
        ("probe_samples", 0),
        ("shuffle_mini_batches", 1),
    ],
)
def test_new_fields_refuse_bad_values_by_name(field, value):
    with pytest.raises(ParameterError, match=field):
        method_config("uec_rl", output_dir="unused", use_cpu=True, **{field: value})
