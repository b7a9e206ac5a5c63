"""UEC-RL's step cost: ``uec_rl`` against ``grpo`` at equal prompts per step (the default preset's step),
split into generation, scoring, update and replay from the ``time/*`` columns ``UECTrainer`` logs, with the
hard-prompt fraction beside it. The paper reports 0.79x.

Four trainers run interleaved in one process, one step each in turn: ``uec_rl`` and ``grpo`` as they are, and
both again with TRL's eager reference pass (``defer_reference_logps = False``: the KL term's reference
log-probs computed for every rollout at scoring time, as before the trainer deferred them to the samples
trained on), so the gain of that change is measured in the same run. A UEC-RL step's cost varies by design (no
update while the batch buffer fills, replay every ``replay_frequency`` steps), so ratios are of totals over
blocks of ``replay_frequency`` steps; the spread is over blocks. Every trainer runs the entropy probe as
``run_training`` does (every ``probe_every`` steps); its time is reported on its own and left out of the step
times and ratios, since it measures the policy and is the same work for every method.

    python -m benchmarks.uec_cost --mode quick
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from .common import parse_args, read_metrics, run_interleaved, run_settings, uec_trainer, write_results
from .profiling import block_ratios, summarize

NAME = "uec_cost"
WARMUP_STEPS = 1
PLAN = {"quick": {"steps": 10}, "full": {"steps": 20}}
PAPER_RATIO = 0.79
VARIANTS = {
    "uec_rl": ("uec_rl", True),
    "grpo": ("grpo", True),
    "uec_rl_eager_ref": ("uec_rl", False),
    "grpo_eager_ref": ("grpo", False),
}
RATIOS = {
    "uec_rl / grpo": ("uec_rl", "grpo"),
    "uec_rl / grpo, eager reference (before)": ("uec_rl_eager_ref", "grpo_eager_ref"),
    "uec_rl deferred / eager reference": ("uec_rl", "uec_rl_eager_ref"),
    "grpo deferred / eager reference": ("grpo", "grpo_eager_ref"),
}
PHASES = ("generation", "exploration generation", "scoring", "update", "replay", "probe", "other")


def eager_reference_trainer() -> type:
    from uec_repro.trainer import UECTrainer

    class EagerReferenceTrainer(UECTrainer):
        defer_reference_logps = False

    return EagerReferenceTrainer


def phase_split(row: dict[str, Any]) -> dict[str, float]:
    """One metrics row's step time in disjoint phases: standard and exploration generation, scoring (both
    rollouts), update (with its old- and deferred reference log-prob passes), replay, and the rest (TRL's
    eager reference pass when it is on, selection, buffers)."""
    generation, explore = row.get("time/generation", 0.0), row.get("time/exploration_generation", 0.0)
    parts = {
        "generation": generation - explore,
        "exploration generation": explore,
        "scoring": row.get("time/scoring", 0.0),
        "update": row.get("time/update", 0.0),
        "replay": row.get("time/replay", 0.0),
        "probe": row.get("time/probe", 0.0),
    }
    parts["other"] = row["time/step"] - sum(parts.values())
    return parts


def measure(mode: str, threads: int, out: str | Path) -> dict[str, Any]:
    steps = WARMUP_STEPS + PLAN[mode]["steps"]
    with tempfile.TemporaryDirectory() as tmp:
        trainers = {}
        for name, (method, deferred) in VARIANTS.items():
            settings = run_settings(method, steps, Path(tmp) / name)
            trainers[name] = uec_trainer(
                settings, None if deferred else eager_reference_trainer(), probe=True
            )
        block = trainers["uec_rl"].args.replay_frequency
        times = run_interleaved(trainers)
        # the step-0 row is the probe of the initial policy (made inside the first, warm-up step)
        metrics = {
            name: [row for row in read_metrics(trainer) if row["step"] > 0][WARMUP_STEPS:]
            for name, trainer in trainers.items()
        }
    timed = {
        name: [
            seconds - row["time/probe"]
            for seconds, row in zip(values[WARMUP_STEPS:], metrics[name], strict=True)
        ]
        for name, values in times.items()
    }
    probes = [row["time/probe"] for rows in metrics.values() for row in rows if row["time/probe"] > 0]

    ratios = {}
    for label, (a, b) in RATIOS.items():
        blocks = block_ratios(timed[a], timed[b], block)
        ratios[label] = {
            "ratio_of_totals": sum(timed[a]) / sum(timed[b]),
            "blocks": summarize(blocks) if blocks else None,
            "block_steps": block,
        }
    split = {
        name: {phase: sum(phase_split(row)[phase] for row in rows) / len(rows) for phase in PHASES}
        for name, rows in metrics.items()
    }
    selection = {}
    for name in ("uec_rl", "uec_rl_eager_ref"):
        rows = metrics[name]
        selection[name] = {
            "hard_prompt_fraction": sum(r["uec/hard_prompts"] for r in rows)
            / sum(r["uec/prompts"] for r in rows),
            "exploration_completions_per_step": sum(r["uec/exploration_generated"] for r in rows) / len(rows),
            "standard_completions_per_step": trainers[name].args.per_device_train_batch_size,
            "steps_with_update": sum(r["uec/updated"] for r in rows) / len(rows),
            "samples_trained_per_step": sum(r["uec/update_samples"] + r["uec/replay_samples"] for r in rows)
            / len(rows),
        }
    rows_out = [
        {"variant": name, "step": i + 1 + WARMUP_STEPS, "metric": "seconds_per_step", "value": value}
        for name, values in timed.items()
        for i, value in enumerate(values)
    ]
    rows_out += [
        {"variant": name, "step": row["step"], "metric": f"phase/{phase}", "value": value}
        for name, rows in metrics.items()
        for row in rows
        for phase, value in phase_split(row).items()
    ]
    record = {
        "settings": {
            "steps_timed": PLAN[mode]["steps"],
            "warmup_steps": WARMUP_STEPS,
            "prompts_per_step": settings.prompts_per_step,
            "num_generations": settings.num_generations,
            "max_completion_length": settings.max_completion_length,
            "validation": "off (same in both)",
            "threads": threads,
            "variants": {k: {"method": m, "deferred_reference": d} for k, (m, d) in VARIANTS.items()},
        },
        "goal": f"uec_rl / grpo <= {PAPER_RATIO} (paper) on the default preset",
        "seconds_per_step": {name: summarize(values) for name, values in timed.items()},
        "ratios": ratios,
        "phase_seconds_per_step": split,
        "probe": {
            "seconds_per_probe": summarize(probes) if probes else None,
            "probe_every": trainers["uec_rl"].args.probe_every,
            "prompts": settings.probe_prompts,
            "samples_per_prompt": trainers["uec_rl"].args.probe_samples,
            "note": "left out of seconds_per_step and the ratios",
        },
        "selection": selection,
    }
    write_results(out, NAME, mode, record, rows_out)
    return record


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__.splitlines()[0], argv)
    record = measure(args.mode, args.threads, args.out)
    for label, ratio in record["ratios"].items():
        print(f"{label}: {ratio['ratio_of_totals']:.3f}")


if __name__ == "__main__":
    main()
