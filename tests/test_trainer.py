"""UECTrainer on the toy policy: every method trains, UEC-RL's components are visible in the metrics."""

import json

import pytest
import torch

from uec_repro.config import METHODS, method_config
from uec_repro.layout import METRICS_FILE
from uec_repro.models import LoraSettings, cast_trainable_to_fp32, load_policy
from uec_repro.rewards import accuracy_reward
from uec_repro.tasks import load_task
from uec_repro.trainer import UECTrainer
from uec_repro.validation import ParameterError

pytestmark = pytest.mark.slow

UEC_COLUMNS = (
    "uec/hard_prompts",
    "uec/exploration_generated",
    "uec/exploration_kept_positive",
    "uec/exploration_kept_negative",
    "uec/regular_kept",
    "uec/overlong_dropped",
    "uec/batch_buffer_size",
    "uec/updated",
    "uec/replay_buffer_size",
    "uec/replayed",
    "uec/optimizer_steps",
    "reward",
    "completions/mean_length",
    "completions/clipped_ratio",
    "time/generation",
    "time/scoring",
    "time/exploration",
    "time/update",
    "time/replay",
    "time/step",
    "time/tokens_per_second",
    "memory/peak_rss_mb",
    "grad_norm",
)


def run(policy_path, tmp_path, method, *, quantization="none", steps=2, **overrides):
    from transformers import set_seed

    set_seed(0)
    model, tokenizer = load_policy(
        str(policy_path), quantization=quantization, lora=LoraSettings(r=4, alpha=8, dropout=0.0)
    )
    train = load_task("arith", "train", n=64, seed=0, tokenizer=tokenizer)
    settings = dict(
        output_dir=str(tmp_path / method),
        use_cpu=True,
        max_steps=steps,
        per_device_train_batch_size=16,
        num_generations=4,
        max_completion_length=32,
        learning_rate=1e-3,
        seed=0,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
        gradient_checkpointing=False,
    )
    config = method_config(method, **{**settings, **overrides})
    trainer = UECTrainer(
        model=model,
        reward_funcs=[accuracy_reward],
        args=config,
        train_dataset=train,
        processing_class=tokenizer,
        validation_dataset=load_task("arith", "test", n=8, tokenizer=tokenizer),
    )
    cast_trainable_to_fp32(trainer.model)
    before = {name: p.detach().clone() for name, p in trainer.model.named_parameters() if p.requires_grad}
    trainer.train()
    rows = [json.loads(line) for line in (tmp_path / method / METRICS_FILE).read_text().splitlines()]
    return trainer, before, rows


def assert_every_trainable_parameter_changed(trainer, before):
    for name, param in trainer.model.named_parameters():
        if param.requires_grad:
            assert not torch.equal(param.detach(), before[name]), f"{name} did not change"


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_trains_every_lora_parameter_and_logs_its_columns(toy_policy_path, tmp_path, method):
    # no batch buffer wait: every step with data updates, so two steps move every adapter weight
    trainer, before, rows = run(toy_policy_path, tmp_path, method, batch_buffer=False, validation_every=2)
    assert [row["step"] for row in rows] == [1, 2]
    for column in UEC_COLUMNS:
        assert column in rows[0], column
    assert "validation/accuracy" in rows[1]
    assert sum(row["uec/optimizer_steps"] for row in rows) >= 2
    assert_every_trainable_parameter_changed(trainer, before)
    if method in ("kl_cov", "clip_cov"):
        assert any(row.get(f"baselines/{method}_tokens", 0) > 0 for row in rows)


@pytest.mark.parametrize("method", list(METHODS))
def test_qlora_runs_train_every_adapter_weight(toy_policy_path, tmp_path, method):
    import bitsandbytes as bnb

    trainer, before, rows = run(toy_policy_path, tmp_path, method, quantization="nf4", batch_buffer=False)
    assert any(isinstance(m, bnb.nn.Linear4bit) for m in trainer.model.modules())
    assert_every_trainable_parameter_changed(trainer, before)


def test_uec_components_are_visible_in_the_metrics(toy_policy_path, tmp_path):
    trainer, _, rows = run(
        toy_policy_path,
        tmp_path,
        "uec_rl",
        steps=6,
        replay_frequency=3,
        exploration_temperature=1.2,
        per_device_train_batch_size=32,
    )
    explored = [row for row in rows if row["uec/hard_prompts"] > 0]
    assert explored, "some prompts must be hard for the toy policy"
    for row in explored:  # G' = 4 G extra rollouts per hard prompt
        assert row["uec/exploration_generated"] == 16 * row["uec/hard_prompts"]
        assert row["exploration/completions/mean_length"] > 0
    assert sum(row["uec/exploration_kept_positive"] for row in rows) > 0
    assert (
        sum(row["uec/update_exploration_samples"] for row in rows) > 0
    )  # kept exploration samples are trained on
    for row in rows:  # the batch buffer: an update only with at least B0 = 32 samples, in whole batches
        assert (row["uec/update_samples"] > 0) == bool(row["uec/updated"])
        assert row["uec/optimizer_steps"] == 4 * (row["uec/update_samples"] + row["uec/replay_samples"]) // 32
    assert [row["step"] for row in rows] == [1, 2, 3, 4, 5, 6]
    batch_capacity, replay_capacity = trainer.batch_buffer.capacity, trainer.replay_buffer.capacity
    assert replay_capacity == 64  # 2 x B0
    held_before = replay_before = 0
    for row in rows:  # the buffers' bookkeeping, step by step
        kept = (
            row["uec/regular_kept"]
            + row["uec/exploration_kept_positive"]
            + row["uec/exploration_kept_negative"]
            - row["uec/overlong_dropped"]
        )
        held = min(held_before + kept, batch_capacity)  # the oldest samples go on overflow
        assert row["uec/update_samples"] == held // 32 * 32, row  # whole batches, all of them
        assert row["uec/batch_buffer_size"] == held - row["uec/update_samples"] < 32, row
        # every 3rd step, a draw from the replay buffer after this step's update samples entered it (the
        # authors' order): all of it when full, else as many whole batches as it holds
        size = row["uec/replay_buffer_size"]
        assert replay_before <= size <= replay_capacity
        due = row["step"] % 3 == 0
        drawn = (size if size == replay_capacity else size // 32 * 32) if due else 0
        assert (row["uec/replay_samples"], row["uec/replayed"]) == (drawn, float(drawn > 0)), row
        held_before, replay_before = row["uec/batch_buffer_size"], size
    assert any(row["uec/replayed"] for row in rows)  # not vacuous: the seeded run replays at a due step


@pytest.mark.parametrize(
    ("ablation", "column"),
    [("uec_rl_no_explore", "uec/exploration_generated"), ("uec_rl_no_replay", "uec/replay_buffer_size")],
)
def test_ablations_switch_off_exactly_their_component(toy_policy_path, tmp_path, ablation, column):
    _, _, rows = run(toy_policy_path, tmp_path, ablation, steps=3, replay_frequency=1, batch_buffer=False)
    assert all(row[column] == 0 for row in rows)
    assert any(row["uec/hard_prompts"] > 0 for row in rows)
    other = "uec/replay_buffer_size" if column == "uec/exploration_generated" else "uec/exploration_generated"
    assert any(row[other] > 0 for row in rows)  # the rest still works


def test_without_retention_every_sample_is_kept(toy_policy_path, tmp_path):
    _, _, rows = run(
        toy_policy_path, tmp_path, "uec_rl_no_retention", steps=2, batch_buffer=False, overlong_filter=False
    )
    for row in rows:
        assert row["uec/regular_kept"] == 16
        assert row["uec/update_samples"] == 16 + row["uec/exploration_generated"]


def test_trainer_needs_a_uec_config(toy_policy_path):
    from trl import GRPOConfig

    model, tokenizer = load_policy(str(toy_policy_path))
    with pytest.raises(ParameterError, match="UECConfig"):
        UECTrainer(
            model=model,
            reward_funcs=[accuracy_reward],
            args=GRPOConfig(output_dir="unused", use_cpu=True),
            processing_class=tokenizer,
        )


def test_fresh_replay_shapes_entropy_advantages_once(toy_policy_path, tmp_path):
    trainer, _, rows = run(
        toy_policy_path,
        tmp_path,
        "entropy_adv",
        steps=4,
        replay=True,
        replay_frequency=1,
        replay_threshold=0.0,
        replay_fresh_logprobs=True,
        batch_buffer=False,
        replay_capacity=4.0,
    )
    assert any(row["uec/replayed"] for row in rows)
    samples = list(trainer.replay_buffer._samples)
    assert samples and all(s.token_advantages is not None for s in samples)
    for sample in samples:  # one shaping: A <= shaped <= 1.5 A for A > 0, A <= shaped <= A / 2 for A < 0
        low, high = sorted((sample.advantage, sample.advantage + abs(sample.advantage) / 2))
        assert ((sample.token_advantages >= low - 1e-6) & (sample.token_advantages <= high + 1e-6)).all()
