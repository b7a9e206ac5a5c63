"""Scaling: time per step as prompts per step, G (completions per prompt) and the completion length double, on
``grpo``, and exploration time per hard prompt as G' doubles, on ``uec_rl``; every configuration interleaved
in one process, one step each in turn. The log-log slope against the doubled parameter says how the cost
grows: 1 is linear, below 1 sub-linear (fixed per-step costs amortised), above 1 super-linear. Time is also
set against the tokens actually generated, since the policy often stops before the length budget.

    python -m benchmarks.scaling --mode quick
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from .common import parse_args, read_metrics, run_interleaved, run_settings, uec_trainer, write_results
from .profiling import loglog_slope, summarize

NAME = "scaling"
WARMUP_STEPS = 1
PLAN = {"quick": {"steps": 3}, "full": {"steps": 5}}
BASE = {"prompts_per_step": 4, "num_generations": 4, "max_completion_length": 16}
BASE_EXPLORATION = 8  # G' at multiplier 1 (2 x G)
MULTIPLIERS = (1, 2, 4)
FACTORS = ("prompts_per_step", "num_generations", "max_completion_length", "exploration_generations")


def configurations() -> dict[str, tuple[str, str, int, dict[str, Any]]]:
    """name -> (factor, method, multiplier, run parameters); the base configuration is shared by the grpo
    factors."""
    configs = {"grpo x1": ("base", "grpo", 1, dict(BASE))}
    for factor in FACTORS[:3]:
        for multiplier in MULTIPLIERS[1:]:
            configs[f"{factor} x{multiplier}"] = (
                factor,
                "grpo",
                multiplier,
                {**BASE, factor: BASE[factor] * multiplier},
            )
    for multiplier in MULTIPLIERS:
        configs[f"exploration_generations x{multiplier}"] = (
            "exploration_generations",
            "uec_rl",
            multiplier,
            {**BASE, "exploration_generations": BASE_EXPLORATION * multiplier},
        )
    return configs


def measure(mode: str, threads: int, out: str | Path) -> dict[str, Any]:
    steps = WARMUP_STEPS + PLAN[mode]["steps"]
    configs = configurations()
    with tempfile.TemporaryDirectory() as tmp:
        trainers = {}
        for index, (name, (_, method, _, parameters)) in enumerate(configs.items()):
            trainers[name] = uec_trainer(run_settings(method, steps, Path(tmp) / str(index), **parameters))
        times = run_interleaved(trainers)
        metrics = {name: read_metrics(trainer)[WARMUP_STEPS:] for name, trainer in trainers.items()}
    timed = {name: values[WARMUP_STEPS:] for name, values in times.items()}

    points: dict[str, dict[str, Any]] = {}
    for name, (_, method, multiplier, parameters) in configs.items():
        rows = metrics[name]
        completions = parameters["prompts_per_step"] * parameters["num_generations"]
        tokens = sum(r["completions/mean_length"] for r in rows) / len(rows) * completions
        point = {
            "method": method,
            "multiplier": multiplier,
            "parameters": parameters,
            "seconds_per_step": summarize(timed[name]),
            "generated_tokens_per_step": tokens,
        }
        if method == "uec_rl":
            hard = sum(r["uec/hard_prompts"] for r in rows)
            point["hard_prompts"] = hard
            point["exploration_seconds_per_hard_prompt"] = (
                sum(r["time/exploration"] for r in rows) / hard if hard else None
            )
        points[name] = point

    slopes = {}
    for factor in FACTORS:
        names = (["grpo x1"] if factor != "exploration_generations" else []) + [
            name for name, config in configs.items() if config[0] == factor
        ]
        key = "exploration_seconds_per_hard_prompt" if factor == "exploration_generations" else None
        usable = [n for n in names if key is None or points[n][key]]
        xs = [configs[n][2] for n in usable]
        ys = [points[n][key] if key else points[n]["seconds_per_step"]["median"] for n in usable]
        slopes[factor] = {
            "configurations": usable,
            "slope_vs_parameter": loglog_slope(xs, ys) if len(set(xs)) > 1 else None,
        }
        if key is None:
            slopes[factor]["slope_vs_generated_tokens"] = loglog_slope(
                [points[n]["generated_tokens_per_step"] for n in usable], ys
            )
    rows_out = [
        {"configuration": name, "step": i + 1 + WARMUP_STEPS, "seconds": value}
        for name, values in timed.items()
        for i, value in enumerate(values)
    ]
    record = {
        "settings": {
            "base": BASE,
            "base_exploration_generations": BASE_EXPLORATION,
            "multipliers": MULTIPLIERS,
            "steps_timed": PLAN[mode]["steps"],
            "warmup_steps": WARMUP_STEPS,
            "threads": threads,
        },
        "goal": "cost linear (log-log slope <= 1) in completions and tokens",
        "points": points,
        "slopes": slopes,
    }
    write_results(out, NAME, mode, record, rows_out)
    return record


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__.splitlines()[0], argv)
    record = measure(args.mode, args.threads, args.out)
    for factor, slope in record["slopes"].items():
        print(f"scaling {factor}: log-log slope {slope['slope_vs_parameter']}")


if __name__ == "__main__":
    main()
