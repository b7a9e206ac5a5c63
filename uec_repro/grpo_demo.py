"""The package's main job until the notebook pipeline lands: a short plain-TRL GRPO run.

It loads a policy from the zoo (default: the toy policy, built offline on first use), evaluates it on
held-out problems, trains it for a few GRPO steps with TRL's stock ``GRPOTrainer`` and a LoRA (or
QLoRA) adapter, evaluates again and prints what happened. Everything runs on CPU without the Hub.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .validation import check_choice, check_float, check_int


@dataclass
class GRPODemoConfig:
    """Parameters of the demo run (field help text is the documentation)."""

    policy: str = field(
        default="toy", metadata={"help": "Policy name from the zoo, a local folder or a hub id."}
    )
    task: str = field(default="arith", metadata={"help": "Training task (see uec_repro.tasks.TASKS)."})
    steps: int = field(default=30, metadata={"help": "GRPO optimizer steps."})
    prompts_per_step: int = field(
        default=8, metadata={"help": "Prompts per step; each gets num_generations completions."}
    )
    num_generations: int = field(default=8, metadata={"help": "Group size G (completions per prompt)."})
    max_completion_length: int = field(default=48, metadata={"help": "Generation budget in tokens."})
    temperature: float = field(default=1.0, metadata={"help": "Rollout sampling temperature."})
    learning_rate: float = field(default=2e-4, metadata={"help": "AdamW learning rate of the LoRA adapter."})
    quantization: str = field(
        default="none", metadata={"help": "'none' (LoRA) or 'nf4' (QLoRA, bitsandbytes 4-bit)."}
    )
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    seed: int = field(default=0, metadata={"help": "Seed for data order, sampling and initialisation."})
    eval_prompts: int = field(
        default=100, metadata={"help": "Held-out test prompts evaluated before and after."}
    )
    eval_samples: int = field(default=8, metadata={"help": "Samples per test prompt (pass@1 is their mean)."})
    output_dir: str = field(
        default="runs/grpo-demo", metadata={"help": "Where TRL writes its outputs and we write summary.json."}
    )

    def __post_init__(self) -> None:
        from .tasks import TASKS

        check_choice("task", self.task, TASKS)
        check_choice("quantization", self.quantization, ("none", "nf4"))
        for name in (
            "steps",
            "prompts_per_step",
            "max_completion_length",
            "lora_r",
            "eval_prompts",
            "eval_samples",
        ):
            check_int(name, getattr(self, name), minimum=1)
        check_int("num_generations", self.num_generations, minimum=2)
        check_int("seed", self.seed, minimum=0)
        check_float("temperature", self.temperature, minimum=0.0, min_exclusive=True)
        check_float("learning_rate", self.learning_rate, minimum=0.0, min_exclusive=True)


def run_grpo_demo(config: GRPODemoConfig) -> dict[str, Any]:
    """Evaluate, train with stock TRL GRPO, evaluate again; returns (and saves) a summary."""
    from transformers import PrinterCallback, set_seed
    from trl import GRPOConfig, GRPOTrainer

    from .evaluation import evaluate_policy
    from .models import LoraSettings, cast_trainable_to_fp32, count_parameters, load_policy
    from .rewards import accuracy_reward
    from .tasks import load_task

    set_seed(config.seed)
    started = time.perf_counter()
    model, tokenizer = load_policy(
        config.policy,
        quantization=config.quantization,
        lora=LoraSettings(r=config.lora_r, alpha=2 * config.lora_r),
    )
    train = load_task(
        config.task, "train", n=config.steps * config.prompts_per_step, seed=config.seed, tokenizer=tokenizer
    )
    test = load_task(config.task, "test", n=config.eval_prompts, tokenizer=tokenizer)

    def evaluate() -> dict[str, float]:
        return evaluate_policy(
            model,
            tokenizer,
            test,
            n=config.eval_samples,
            ks=(1, config.eval_samples),
            max_new_tokens=config.max_completion_length,
            seed=config.seed,
        ).summary

    before = evaluate()
    args = GRPOConfig(
        output_dir=config.output_dir,
        max_steps=config.steps,
        per_device_train_batch_size=config.prompts_per_step * config.num_generations,
        num_generations=config.num_generations,
        max_completion_length=config.max_completion_length,
        temperature=config.temperature,
        learning_rate=config.learning_rate,
        lr_scheduler_type="constant",
        seed=config.seed,
        use_cpu=not _cuda(),
        bf16=_cuda(),
        activation_checkpointing=False,  # TRL defaults to True; the toy needs no memory savings
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
    )
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[accuracy_reward],
        args=args,
        train_dataset=train,
        processing_class=tokenizer,
    )
    trainer.remove_callback(PrinterCallback)  # per-step logs go to summary.json, not the terminal
    if not _cuda():
        cast_trainable_to_fp32(trainer.model)  # TRL casts adapters to bf16 on 4-bit bases: slow on CPU
    train_started = time.perf_counter()
    trainer.train()
    train_seconds = time.perf_counter() - train_started
    after = evaluate()
    history = [
        {
            k: v
            for k, v in row.items()
            if k in ("step", "reward", "entropy", "completions/mean_length", "loss")
        }
        for row in trainer.state.log_history
        if "reward" in row
    ]
    summary = {
        "config": asdict(config),
        "parameters": count_parameters(trainer.model),
        "before": before,
        "after": after,
        "seconds_per_step": train_seconds / config.steps,
        "total_seconds": time.perf_counter() - started,
        "history": history,
    }
    Path(config.output_dir).mkdir(parents=True, exist_ok=True)
    (Path(config.output_dir) / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


def format_summary(summary: dict[str, Any]) -> str:
    c, b, a = summary["config"], summary["before"], summary["after"]
    k = c["eval_samples"]
    lines = [
        f"GRPO demo: policy={c['policy']} task={c['task']} quantization={c['quantization']} "
        f"steps={c['steps']} prompts/step={c['prompts_per_step']} G={c['num_generations']}",
        f"trainable parameters: {summary['parameters']['trainable']:,} of {summary['parameters']['total']:,}",
        f"{'':14}{'before':>10}{'after':>10}",
        *(
            f"{name:14}{b[key]:>10.3f}{a[key]:>10.3f}"
            for name, key in (
                ("pass@1", "pass@1"),
                (f"pass@{k}", f"pass@{k}"),
                ("token entropy", "token_entropy"),
                ("length", "completion_length"),
            )
        ),
        f"time: {summary['seconds_per_step']:.2f} s/step, {summary['total_seconds']:.0f} s in all; "
        f"summary in {c['output_dir']}/summary.json",
    ]
    return "\n".join(lines)


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()
