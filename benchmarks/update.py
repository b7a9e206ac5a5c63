"""Compute efficiency of the update phase: achieved FLOP/s of one ``grpo`` update of the default preset's
batch (64 completions: the deferred reference and old log-prob passes, then 4 mini-batches of loss, backward
and optimizer step) as a fraction of the matmul throughput torch reaches on this machine, measured in the same
run (interleaved: update, peak, update, peak, ...). FLOPs are counted by torch's FLOP counter (matrix products
and attention, forward and backward). Also reported: the share of those FLOPs spent on padding, and the
reference pass the KL term needs (none when it is off).

    python -m benchmarks.update --mode quick
"""

from __future__ import annotations

import random
import tempfile
from pathlib import Path
from typing import Any

from .common import parse_args, run_settings, uec_trainer, write_results
from .profiling import count_flops, matmul_flops_per_second, paired_ratios, summarize

NAME = "update"
PLAN = {"quick": {"repetitions": 5}, "full": {"repetitions": 8}}
PEAK_SHAPE = (1024, 1024, 1024)


def padded_tokens(chunks: list[list[tuple[int, int]]]) -> tuple[int, int]:
    """(real, padded) token counts of batches of (prompt length, completion length) samples, prompts padded to
    the longest prompt and completions to the longest completion of their batch."""
    real = padded = 0
    for chunk in chunks:
        real += sum(p + c for p, c in chunk)
        padded += len(chunk) * (max(p for p, _ in chunk) + max(c for _, c in chunk))
    return real, padded


def chunked(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def measure(mode: str, threads: int, out: str | Path) -> dict[str, Any]:
    import torch

    repetitions = PLAN[mode]["repetitions"]
    with tempfile.TemporaryDirectory() as tmp:
        trainer = uec_trainer(run_settings("grpo", 1, Path(tmp) / "run"))
        trainer.create_optimizer_and_scheduler(num_training_steps=1000)
        trainer.current_gradient_accumulation_steps = 1  # set by HF's loop, read by TRL's loss
        trainer.model.train()
        samples = trainer._samples(
            trainer._generate_and_score_completions(next(iter(trainer.get_train_dataloader()))),
            exploration=False,
        )

        def forget() -> None:
            for sample in samples:
                sample.old_logps = sample.ref_logps = sample.token_advantages = None

        def update() -> None:
            forget()
            trainer._train(trainer.model, {"update": samples, "replay": []})
            trainer.optimizer.step()  # the last optimizer step of a training step is HF's
            trainer.optimizer.zero_grad()

        _, update_flops = count_flops(update)
        forget()
        _, pass_flops = count_flops(lambda: trainer._prepare_old_logps(samples))
        beta = trainer.beta
        trainer.beta = 0.0
        _, kl_off_flops = count_flops(update)
        trainer.beta = beta

        lengths = [(len(s.prompt_ids), len(s.completion_ids)) for s in samples]
        size = trainer.mini_batch_size
        sorted_real, sorted_padded = padded_tokens(chunked(sorted(lengths), size))
        arrival_real, arrival_padded = padded_tokens(chunked(lengths, size))
        shuffled = lengths[:]
        random.Random(0).shuffle(shuffled)
        loss_real, loss_padded = padded_tokens(chunked(shuffled, size))
        one_pass_real, one_pass_padded = padded_tokens(
            [lengths]
        )  # TRL's eager reference pass: the whole batch

        mm = trainer.model.base_model.model.config
        model_shape = (
            size * (sum(p + c for p, c in lengths) // len(lengths)),
            mm.hidden_size,
            mm.intermediate_size,
        )
        update_seconds, peak, shaped = [], [], []
        for _ in range(repetitions):
            update_seconds.append(_timed(update))
            peak.append(matmul_flops_per_second(*PEAK_SHAPE))
            shaped.append(matmul_flops_per_second(*model_shape))
        device = "cuda" if torch.cuda.is_available() else "cpu"
    achieved = [update_flops / s for s in update_seconds]
    efficiency = paired_ratios(achieved, peak)
    efficiency_shaped = paired_ratios(achieved, shaped)
    rows = [
        {
            "repetition": i,
            "update_seconds": s,
            "achieved_flops": a,
            "peak_matmul_flops": p,
            "model_shape_matmul_flops": m,
        }
        for i, (s, a, p, m) in enumerate(zip(update_seconds, achieved, peak, shaped, strict=True))
    ]
    record = {
        "settings": {
            "method": "grpo",
            "samples": len(samples),
            "mini_batch_size": size,
            "beta": beta,
            "peak_matmul_shape": PEAK_SHAPE,
            "model_matmul_shape": model_shape,
            "device": device,
            "dtype": str(next(trainer.model.parameters()).dtype),
            "repetitions": repetitions,
            "threads": threads,
        },
        "flops_per_update": update_flops,
        "flops_reference_and_old_passes": pass_flops,
        "flops_per_update_kl_off": kl_off_flops,
        "update_seconds": summarize(update_seconds),
        "achieved_flops_per_second": summarize(achieved),
        "peak_matmul_flops_per_second": summarize(peak),
        "model_shape_matmul_flops_per_second": summarize(shaped),
        "efficiency_vs_peak": summarize(efficiency),
        "efficiency_vs_model_shape_matmul": summarize(efficiency_shaped),
        "padding_share": {
            "no_grad_passes_sorted_by_length": 1 - sorted_real / sorted_padded,
            "no_grad_passes_in_arrival_order": 1 - arrival_real / arrival_padded,
            "trl_eager_reference_pass_whole_batch": 1 - one_pass_real / one_pass_padded,
            "loss_mini_batches_random_partition": 1 - loss_real / loss_padded,
        },
        "forward_passes_per_sample": {
            "reference (no grad, only if beta != 0)": 1,
            "old log-probs (no grad)": 1,
            "loss (forward + backward)": 1,
        },
    }
    write_results(out, NAME, mode, record, rows)
    return record


def _timed(function) -> float:
    import time

    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__.splitlines()[0], argv)
    record = measure(args.mode, args.threads, args.out)
    eff = record["efficiency_vs_peak"]
    print(
        f"update: {record['achieved_flops_per_second']['median'] / 1e9:.2f} GFLOP/s achieved, "
        f"{eff['median']:.3f} of peak matmul [IQR {eff['q1']:.3f}-{eff['q3']:.3f}]"
    )


if __name__ == "__main__":
    main()
