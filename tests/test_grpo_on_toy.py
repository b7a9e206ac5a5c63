"""Stock TRL GRPO on the toy policy with LoRA and QLoRA: every adapter weight learns, nothing else moves."""

import json

import pytest
import torch

from uec_repro.models import LoraSettings, cast_trainable_to_fp32, load_policy
from uec_repro.rewards import accuracy_reward
from uec_repro.tasks import load_task

pytestmark = pytest.mark.slow


def _grpo_two_steps(policy_path, quantization, tmp_path):
    from trl import GRPOConfig, GRPOTrainer

    model, tokenizer = load_policy(
        str(policy_path), quantization=quantization, lora=LoraSettings(r=4, alpha=8, dropout=0.0)
    )
    # easy prompts, so that groups have mixed rewards and non-zero advantages
    train = load_task("arith", "train", n=16, seed=0, difficulties=[1], tokenizer=tokenizer)
    args = GRPOConfig(
        output_dir=str(tmp_path),
        max_steps=2,
        per_device_train_batch_size=32,
        num_generations=8,
        max_completion_length=32,
        learning_rate=1e-3,
        seed=0,
        use_cpu=True,
        bf16=False,
        gradient_checkpointing=False,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        logging_steps=1,
    )
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[accuracy_reward],
        args=args,
        train_dataset=train,
        processing_class=tokenizer,
    )
    cast_trainable_to_fp32(trainer.model)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    return trainer, before


@pytest.mark.parametrize("quantization", ["none", "nf4"])
def test_two_grpo_steps_change_every_lora_parameter_and_nothing_else(toy_policy_path, quantization, tmp_path):
    trainer, before = _grpo_two_steps(toy_policy_path, quantization, tmp_path)
    rewards = [row["reward"] for row in trainer.state.log_history if "reward" in row]
    stds = [row["reward_std"] for row in trainer.state.log_history if "reward_std" in row]
    assert len(rewards) == 2 and any(s > 0 for s in stds), "need reward variance for a gradient"
    lora, frozen = 0, 0
    for name, param in trainer.model.named_parameters():
        changed = not torch.equal(param.detach(), before[name])
        if param.requires_grad:
            assert "lora_" in name, name
            assert changed, f"LoRA parameter {name} did not change"
            lora += 1
        else:
            assert not changed, f"frozen parameter {name} changed"
            frozen += 1
    assert lora > 0 and frozen > 0
    if quantization == "nf4":
        import bitsandbytes as bnb

        layers = [m for m in trainer.model.modules() if isinstance(m, bnb.nn.Linear4bit)]
        assert layers and all(m.weight.quant_type == "nf4" for m in layers)


def test_grpo_demo_runs_and_reports(toy_policy_path, tmp_path, capsys):
    from uec_repro.cli import main

    out = tmp_path / "demo"
    code = main(
        [
            "grpo-demo",
            "--policy",
            str(toy_policy_path),
            "--steps",
            "2",
            "--prompts-per-step",
            "4",
            "--eval-prompts",
            "8",
            "--eval-samples",
            "4",
            "--output-dir",
            str(out),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "pass@1" in printed and "s/step" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["history"]) == 2
    assert summary["parameters"]["trainable"] < summary["parameters"]["total"]
    for phase in ("before", "after"):
        assert 0 <= summary[phase]["pass@1"] <= summary[phase]["pass@4"] <= 1


def test_cli_rejects_bad_parameters_before_loading(tmp_path, capsys):
    from uec_repro.cli import main

    assert main(["grpo-demo", "--task", "poetry"]) == 2
    assert "task='poetry'" in capsys.readouterr().err
    assert main(["grpo-demo", "--num-generations", "1"]) == 2
    assert "num_generations=1" in capsys.readouterr().err
    assert main(["reproduce", "--jobs", "0", "--runs-root", str(tmp_path)]) == 2
    assert "jobs=0" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
