"""Harness overhead: our ``grpo`` (``UECTrainer`` with ``method_config("grpo")``) against TRL's stock
``GRPOTrainer`` on the identical config, policy, data and seed (default preset's step: 8 prompts x 8
completions, 48 tokens, 4 optimizer steps per batch; TRL does the same work as a generation batch of 64 split
into 4 steps). Time per step is measured interleaved in one process (UEC step, 4 stock steps, UEC step, ...);
peak memory (RSS from after loading to the end of the steps; CUDA max allocated) in fresh processes, one per
trainer, alternating. Goal: time ratio <= 1.05.

    python -m benchmarks.overhead --mode quick
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from .common import parse_args, run_interleaved, run_settings, stock_trainer, uec_trainer, write_results
from .profiling import paired_ratios, summarize

NAME = "overhead"
WARMUP_STEPS = 1
PLAN = {
    "quick": {"steps": 6, "memory_pairs": 1, "memory_steps": 2},
    "full": {"steps": 12, "memory_pairs": 2, "memory_steps": 2},
}
GOAL = 1.05


def measure(mode: str, threads: int, out: str | Path) -> dict[str, Any]:
    from .probe import probe

    plan = PLAN[mode]
    steps = WARMUP_STEPS + plan["steps"]
    with tempfile.TemporaryDirectory() as tmp:
        settings = run_settings("grpo", steps, Path(tmp) / "uec")
        updates = settings.trainer_config().updates_per_batch
        trainers = {
            "uec_grpo": uec_trainer(settings),
            "stock_grpo": stock_trainer(settings, Path(tmp) / "stock"),
        }
        times = run_interleaved(trainers, {"stock_grpo": updates})
    timed = {name: values[WARMUP_STEPS:] for name, values in times.items()}
    time_ratios = paired_ratios(timed["uec_grpo"], timed["stock_grpo"])

    memory: dict[str, list[dict[str, Any]]] = {"uec": [], "stock": []}
    for pair in range(plan["memory_pairs"]):
        for trainer in ("uec", "stock") if pair % 2 == 0 else ("stock", "uec"):
            memory[trainer].append(
                probe(trainer=trainer, method="grpo", steps=plan["memory_steps"], threads=threads)
            )
    rss_ratios = paired_ratios(
        [m["train_peak_rss_mb"] for m in memory["uec"]], [m["train_peak_rss_mb"] for m in memory["stock"]]
    )

    rows = [
        {"variant": name, "repetition": i, "metric": "seconds_per_step", "value": value}
        for name, values in timed.items()
        for i, value in enumerate(values)
    ]
    rows += [
        {"variant": trainer, "repetition": i, "metric": key, "value": value}
        for trainer, records in memory.items()
        for i, record in enumerate(records)
        for key, value in record.items()
        if key != "cuda"
    ]
    record = {
        "settings": {
            "method": "grpo",
            "steps_timed": plan["steps"],
            "warmup_steps": WARMUP_STEPS,
            "prompts_per_step": settings.prompts_per_step,
            "num_generations": settings.num_generations,
            "max_completion_length": settings.max_completion_length,
            "updates_per_batch": updates,
            "stock_structure": "per_device_train_batch_size="
            f"{settings.prompts_per_step * settings.num_generations // updates}, "
            f"steps_per_generation={updates}",
            "memory_steps": plan["memory_steps"],
            "threads": threads,
        },
        "goal": f"uec_grpo / stock_grpo time per step <= {GOAL}",
        "seconds_per_step": {name: summarize(values) for name, values in timed.items()},
        "time_ratio": summarize(time_ratios),
        "meets_goal": summarize(time_ratios)["median"] <= GOAL,
        "peak_rss_mb": {
            name: summarize([m["train_peak_rss_mb"] for m in records]) for name, records in memory.items()
        },
        "peak_rss_ratio": summarize(rss_ratios),
        "cuda_memory_mb": {name: records[0]["cuda"] or "no CUDA" for name, records in memory.items()},
    }
    write_results(out, NAME, mode, record, rows)
    return record


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__.splitlines()[0], argv)
    record = measure(args.mode, args.threads, args.out)
    ratio = record["time_ratio"]
    print(
        f"overhead: uec_grpo / stock_grpo time per step {ratio['median']:.3f} "
        f"[IQR {ratio['q1']:.3f}-{ratio['q3']:.3f}], peak RSS ratio {record['peak_rss_ratio']['median']:.3f}"
    )


if __name__ == "__main__":
    main()
