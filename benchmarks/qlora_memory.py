"""QLoRA memory: NF4 QLoRA against plain LoRA (fp32 base on CPU, bf16 on CUDA) for the toy policy and for
SmolLM2-135M, each configuration training ``grpo`` steps in its own process (memory peaks are per process),
LoRA and QLoRA alternating. Reported: the base weights' bytes as stored (4-bit weights packed, with their
quantisation state), the RSS the loaded model adds, the whole-process peak RSS, the peak RSS during the
training steps and, on CUDA, max allocated and reserved memory. The whole-process peak includes loading
(transformers reads the full-precision weights before quantising them); the training peak is the peak RSS from
after loading to the end of the steps. Goal: QLoRA's weight memory <= 0.35 x the unquantised base.

    python -m benchmarks.qlora_memory --mode quick
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .common import parse_args, write_results
from .profiling import paired_ratios, summarize

NAME = "qlora_memory"
GOAL = 0.35
POLICIES = {
    # steps, prompts, completions per prompt, completion length, repetitions
    # (SmolLM2: ~15-20 s per 8 completions)
    "toy": {"quick": (2, 8, 8, 48, 1), "full": (3, 8, 8, 48, 2)},
    "smollm2-135m": {"quick": (1, 2, 4, 32, 1), "full": (2, 2, 4, 32, 1)},
}
QUANTIZATIONS = ("none", "nf4")


def measure(
    mode: str, threads: int, out: str | Path, policies: tuple[str, ...] = tuple(POLICIES)
) -> dict[str, Any]:
    from .probe import probe

    if "smollm2-135m" in policies:
        from uec_repro.models.smollm2 import smollm2_policy_dir

        smollm2_policy_dir()  # the one-time GGUF conversion, outside every measurement
    results: dict[str, Any] = {}
    rows = []
    for policy in policies:
        steps, prompts, generations, length, repetitions = POLICIES[policy][mode]
        records: dict[str, list[dict[str, Any]]] = {q: [] for q in QUANTIZATIONS}
        for repetition in range(repetitions):
            for quantization in QUANTIZATIONS if repetition % 2 == 0 else QUANTIZATIONS[::-1]:
                record = probe(
                    trainer="uec",
                    method="grpo",
                    policy=policy,
                    quantization=quantization,
                    steps=steps,
                    prompts=prompts,
                    generations=generations,
                    length=length,
                    threads=threads,
                )
                record["loaded_mb"] = record["rss_after_load_mb"] - record["rss_before_load_mb"]
                records[quantization].append(record)
                rows += [
                    {
                        "policy": policy,
                        "quantization": quantization,
                        "repetition": repetition,
                        "metric": key,
                        "value": value,
                    }
                    for key, value in record.items()
                    if key != "cuda"
                ]

        def ratio(key: str, records: dict[str, list[dict[str, Any]]] = records) -> dict[str, float]:
            return summarize(
                paired_ratios([r[key] for r in records["nf4"]], [r[key] for r in records["none"]])
            )

        results[policy] = {
            "settings": {
                "steps": steps,
                "prompts_per_step": prompts,
                "num_generations": generations,
                "max_completion_length": length,
                "repetitions": repetitions,
            },
            "weight_mb": {q: records[q][0]["weight_bytes_base"] / 2**20 for q in QUANTIZATIONS},
            "adapter_mb": records["none"][0]["weight_bytes_trainable"] / 2**20,
            "loaded_rss_mb": {q: summarize([r["loaded_mb"] for r in records[q]]) for q in QUANTIZATIONS},
            "peak_rss_mb": {q: summarize([r["peak_rss_mb"] for r in records[q]]) for q in QUANTIZATIONS},
            "train_peak_rss_mb": {
                q: summarize([r["train_peak_rss_mb"] for r in records[q]]) for q in QUANTIZATIONS
            },
            "seconds_per_step": {
                q: summarize([r["train_seconds"] / steps for r in records[q]]) for q in QUANTIZATIONS
            },
            "cuda_mb": {q: records[q][0]["cuda"] or "no CUDA" for q in QUANTIZATIONS},
            "weight_ratio": ratio("weight_bytes_base"),
            "loaded_rss_ratio": ratio("loaded_mb"),
            "peak_rss_ratio": ratio("peak_rss_mb"),
            "train_peak_rss_ratio": ratio("train_peak_rss_mb"),
            "meets_goal": ratio("weight_bytes_base")["median"] <= GOAL,
        }
    record = {
        "settings": {"method": "grpo", "base_dtype": "float32 on CPU, bfloat16 on CUDA", "threads": threads},
        "goal": f"QLoRA base weight memory <= {GOAL} x unquantised",
        "policies": results,
    }
    write_results(out, NAME, mode, record, rows)
    return record


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__.splitlines()[0], argv)
    record = measure(args.mode, args.threads, args.out)
    for policy, result in record["policies"].items():
        print(
            f"qlora {policy}: weights {result['weight_ratio']['median']:.3f}x, "
            f"peak RSS {result['peak_rss_ratio']['median']:.3f}x"
        )


if __name__ == "__main__":
    main()
