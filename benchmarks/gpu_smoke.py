"""GPU smoke check (``make gpu-smoke``): what the GPU presets rely on, in a few minutes on one GPU, offline.

    python -m benchmarks.gpu_smoke                 # on a CUDA machine: SmolLM2-135M, NF4 QLoRA, bf16
    python -m benchmarks.gpu_smoke --reduced       # anywhere: the toy policy, fp32 (what the tests run)

Each check records its numbers and ``ok``; the record goes to ``benchmarks/results/gpu_smoke.json`` (reduced:
``gpu_smoke_reduced.json``) and the exit status is 1 when any check failed. The checks:

* ``dtypes``: trainable weights are fp32 after loading and after the trainer's init (TRL casts LoRA to bf16 on
  4-bit bases; the package keeps fp32 masters);
* ``exploration``: a step whose prompts are all hard calls generation twice, with G rows per prompt at T = 1
  and G' rows per hard prompt at t', and restores T afterwards;
* ``updates``: five optimizer steps move the adapters;
* ``logps``: TRL's fused per-token log-probs equal a full log-softmax of the logits;
* ``importance_ratio``: before any update, the first mini-batch's ratio to the old policy is 1;
* ``resume``: a run checkpointed at step 2 resumes to step 4;
* ``memory``: peak memory of an evaluation at two generation lengths grows about linearly (ratio < 3 for 2x
  the tokens), and of one update with activation checkpointing off and on (CUDA only).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import torch

from .common import RESULTS_DIR, relative_record, run_settings, uec_trainer

STEP = {"prompts_per_step": 2, "num_generations": 4, "max_completion_length": 24, "eval_samples": 2}


def check_dtypes(policy: str, quantization: str, tmp: Path) -> dict[str, Any]:
    settings = run_settings("grpo", 1, tmp / "dtypes", policy=policy, quantization=quantization, **STEP)
    trainer = uec_trainer(settings)
    trainable = {str(p.dtype) for p in trainer.model.parameters() if p.requires_grad}
    return {"trainable_dtypes": sorted(trainable), "ok": trainable == {"torch.float32"}}


def check_exploration(policy: str, quantization: str, tmp: Path) -> dict[str, Any]:
    from uec_repro.trainer import UECTrainer

    calls: list[dict[str, Any]] = []

    class Recording(UECTrainer):
        def _generate(self, prompts):
            calls.append({"rows": len(prompts), "temperature": self.generation_config.temperature})
            return super()._generate(prompts)

        def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
            rewards = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
            self._last_rewards = torch.zeros_like(self._last_rewards)  # every prompt is hard
            return torch.zeros_like(rewards)

    settings = run_settings(
        "uec_rl",
        1,
        tmp / "explore",
        policy=policy,
        quantization=quantization,
        exploration_generations=8,
        **STEP,
    )
    trainer = uec_trainer(settings, Recording)
    trainer.train()
    group, extra, hot = settings.num_generations, 8, trainer.args.exploration_temperature
    expected = [
        {"rows": settings.prompts_per_step * group, "temperature": 1.0},
        {"rows": settings.prompts_per_step * extra, "temperature": hot},
    ]
    restored = trainer.generation_config.temperature == 1.0
    return {"calls": calls, "expected": expected, "ok": calls == expected and restored}


def check_updates(policy: str, quantization: str, tmp: Path) -> dict[str, Any]:
    settings = run_settings("grpo", 5, tmp / "updates", policy=policy, quantization=quantization, **STEP)
    trainer = uec_trainer(settings)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
    trainer.train()
    moved = {
        n: float((p.detach() - before[n]).abs().max())
        for n, p in trainer.model.named_parameters()
        if n in before
    }
    lora_b = [value for name, value in moved.items() if "lora_B" in name]
    return {"max_change_lora_B": max(lora_b), "ok": bool(lora_b) and min(lora_b) > 0}


def check_logps_and_ratio(policy: str, quantization: str, tmp: Path) -> dict[str, Any]:
    settings = run_settings("grpo", 1, tmp / "logps", policy=policy, quantization=quantization, **STEP)
    trainer = uec_trainer(settings)
    samples = trainer.rollouts(next(iter(trainer.get_train_dataloader())))
    batch = trainer.collate(samples, with_old_logps=False)
    inputs = trainer.model_inputs(batch)
    with torch.no_grad():
        fused, _ = trainer.policy_logps(batch)
        logits = trainer.model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits
        keep = inputs["logits_to_keep"]
        logits = logits[:, -keep - 1 : -1].float() / trainer.temperature
        full = torch.log_softmax(logits, dim=-1).gather(-1, batch["completion_ids"].unsqueeze(-1)).squeeze(-1)
    mask = batch["completion_mask"].bool()
    gap = float((fused - full).abs()[mask].max())
    trainer._prepare_old_logps(samples)
    with torch.no_grad():
        again, _ = trainer.policy_logps(trainer.collate(samples))
    old = trainer.collate(samples)["old_per_token_logps"]
    ratio_gap = float((torch.exp(again - old) - 1).abs()[mask].max())
    tolerance = 2e-2 if trainer.args.bf16 else 1e-4
    return {
        "fused_vs_full_max_abs": gap,
        "first_ratio_max_abs_minus_1": ratio_gap,
        "ok": gap < tolerance and ratio_gap < tolerance,
    }


def check_resume(policy: str, quantization: str, tmp: Path) -> dict[str, Any]:
    settings = run_settings(
        "uec_rl", 4, tmp / "resume", policy=policy, quantization=quantization, checkpoint_every=2, **STEP
    )
    first = uec_trainer(settings)
    first.args.max_steps = 2
    first.train()
    checkpoint = Path(settings.output_dir) / "checkpoint-2"
    second = uec_trainer(settings)
    second.train(resume_from_checkpoint=str(checkpoint))
    return {
        "checkpoint": checkpoint.name,
        "final_step": second.state.global_step,
        "ok": second.state.global_step == 4,
    }


def check_memory(policy: str, quantization: str, tmp: Path) -> dict[str, Any]:
    from uec_repro.evaluation import evaluate_policy
    from uec_repro.tasks import load_task

    settings = run_settings("grpo", 1, tmp / "memory", policy=policy, quantization=quantization, **STEP)
    trainer = uec_trainer(settings)
    prompts = load_task(settings.task, "test", n=8, tokenizer=trainer.processing_class)
    cuda = torch.cuda.is_available()
    peaks = {}
    for tokens in (32, 64):
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        evaluate_policy(trainer.model, trainer.processing_class, prompts, n=2, ks=(1,), hard_group_size=1,
                        max_new_tokens=tokens, batch_size=16)  # fmt: skip
        peaks[tokens] = torch.cuda.max_memory_allocated() / 2**20 if cuda else None
    record: dict[str, Any] = {"evaluation_peak_mb": peaks}
    if not cuda:  # peak RSS only grows; the linear-vs-quadratic check needs CUDA's resettable counter
        return {**record, "ok": True, "note": "CUDA only"}
    ratio = peaks[64] / max(peaks[32], 1e-9)
    return {**record, "ratio_2x_tokens": ratio, "ok": ratio < 3}


CHECKS = {
    "dtypes": check_dtypes,
    "exploration": check_exploration,
    "updates": check_updates,
    "logps": check_logps_and_ratio,
    "resume": check_resume,
    "memory": check_memory,
}


def run(reduced: bool, out: Path | None = None) -> dict[str, Any]:
    """Every check (a failing one records its error and the others still run); writes the record."""
    policy, quantization = ("toy", "none") if reduced else ("smollm2-135m", "nf4")
    record: dict[str, Any] = {
        "reduced": reduced,
        "policy": policy,
        "quantization": quantization,
        "checks": {},
    }
    record["device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    with tempfile.TemporaryDirectory() as folder:
        for name, check in CHECKS.items():
            started = time.perf_counter()
            try:
                result = check(policy, quantization, Path(folder))
            except Exception as error:  # a smoke check reports every failure, not only the first
                result = {
                    "ok": False,
                    "error": f"{type(error).__name__}: {error}",
                    "trace": traceback.format_exc(),
                }
            record["checks"][name] = {**result, "seconds": round(time.perf_counter() - started, 1)}
    record["ok"] = all(c["ok"] for c in record["checks"].values())
    path = Path(out or RESULTS_DIR) / ("gpu_smoke_reduced.json" if reduced else "gpu_smoke.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(relative_record(record), indent=1, default=str) + "\n")
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.gpu_smoke", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--reduced", action="store_true", help="the toy policy in fp32 (no GPU needed)")
    parser.add_argument("--out", type=Path, default=None, help="folder of the record (benchmarks/results)")
    args = parser.parse_args(argv)
    if not args.reduced and not torch.cuda.is_available():
        print("no CUDA device: run with --reduced, or on a GPU machine", file=sys.stderr)
        return 2
    record = run(args.reduced, args.out)
    for name, check in record["checks"].items():
        print(f"{'ok  ' if check['ok'] else 'FAIL'} {name} ({check['seconds']} s)")
    return 0 if record["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
