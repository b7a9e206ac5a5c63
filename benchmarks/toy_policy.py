"""Measure a toy policy against its targets; writes benchmarks/results/toy_policy.json (``toy``, on arith) or
toy_geometry_policy.json (``toy-geometry``, on geometry).

Targets (issue: foundation), the same for both organisms: on their task's test split, sampling at T = 1.0,
pass@1 in [0.15, 0.60]; hard share (no correct answer in a group of 4) in [0.20, 0.60];
pass@16 >= pass@1 + 0.20; mean token entropy >= 0.3 nats; build <= 180 s on 2 CPU cores.

    python benchmarks/toy_policy.py            # builds into a fresh temporary cache, so build time is real
    python benchmarks/toy_policy.py --cached   # measures the policy in the package cache (builds if missing)
    python benchmarks/toy_policy.py --policy toy-geometry
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from collections import defaultdict
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
MAX_NEW_TOKENS = {
    "toy": 64,
    "toy-geometry": 96,
}  # the paper preset's budgets (48, 96) with room for arith's tail
TARGETS = {
    "pass@1": (0.15, 0.60),
    "hard_share@4": (0.20, 0.60),
    "pass@16 - pass@1": (0.20, 1.0),
    "token_entropy": (0.30, float("inf")),
    "build_seconds": (0.0, 180.0),
}


def main() -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from uec_repro.evaluation import evaluate_policy
    from uec_repro.models.toy import RECIPES, toy_policy_dir
    from uec_repro.tasks import load_task

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--policy", default="toy", choices=sorted(RECIPES), help="which organism")
    parser.add_argument(
        "--cached", action="store_true", help="use the package cache instead of a fresh build"
    )
    parser.add_argument("--prompts", type=int, default=400, help="held-out test prompts")
    parser.add_argument("--samples", type=int, default=16, help="samples per prompt")
    args = parser.parse_args()
    recipe = RECIPES[args.policy]
    out = RESULTS / f"{args.policy.replace('-', '_')}_policy.json"

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        folder = toy_policy_dir(None if args.cached else Path(tmp), recipe)
        wall = time.perf_counter() - started
        build = json.loads((folder / "toy_recipe.json").read_text())
        model = AutoModelForCausalLM.from_pretrained(folder)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        test = load_task(recipe.task, "test", n=args.prompts, tokenizer=tokenizer)
        started = time.perf_counter()
        result = evaluate_policy(
            model,
            tokenizer,
            test,
            n=args.samples,
            ks=(1, 4, args.samples),
            temperature=1.0,
            max_new_tokens=MAX_NEW_TOKENS[args.policy],
            batch_size=1024,
        )
        eval_seconds = time.perf_counter() - started

    s = result.summary
    by_tier = defaultdict(list)
    for p in result.per_prompt:
        by_tier[p["difficulty"]].append(p["correct"] / p["n"])
    measured = {
        "pass@1": s["pass@1"],
        "hard_share@4": s["hard_share@4"],
        "pass@16 - pass@1": s[f"pass@{args.samples}"] - s["pass@1"],
        "token_entropy": s["token_entropy"],
        "build_seconds": build["build_seconds"],
    }
    report = {
        "summary": s,
        "pass@1_by_tier": {str(t): sum(v) / len(v) for t, v in sorted(by_tier.items())},
        "targets": {
            k: {
                "value": measured[k],
                "range": TARGETS[k],
                "met": TARGETS[k][0] <= measured[k] <= TARGETS[k][1],
            }
            for k in TARGETS
        },
        "build": build,
        "build_wall_seconds_incl_cache_check": wall,
        "eval_seconds": eval_seconds,
        "examples": [p["example"] for p in result.per_prompt[:8]],
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
        },
        "recipe_digest": recipe.digest(),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    for key, target in report["targets"].items():
        print(
            f"{key:18} {target['value']:8.3f}   target {target['range']}   "
            f"{'met' if target['met'] else 'NOT MET'}"
        )
    print("pass@1 by tier:", {k: round(v, 3) for k, v in report["pass@1_by_tier"].items()})
    print(
        f"pass@{args.samples} {s[f'pass@{args.samples}']:.3f}  maj@{args.samples} "
        f"{s[f'maj@{args.samples}']:.3f}  length {s['completion_length']:.1f}  eval {eval_seconds:.0f} s"
    )
    print(f"written to {out}")


if __name__ == "__main__":
    main()
