"""Generation efficiency: the trainer's rollout path (``UECTrainer._generate``: TRL's tokenisation,
generation, decoding and metrics) against a bare ``model.generate`` loop on the same policy, batch (the
default preset's 8 prompts x 8), generation config and lengths, in generated tokens per second. Interleaved,
order alternating; each pair starts from the same random seed, so both sample the same tokens. Goal: >= 0.9 of
the bare loop.

    python -m benchmarks.generation --mode quick
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from .common import parse_args, run_settings, uec_trainer, write_results
from .profiling import paired_ratios, summarize

NAME = "generation"
PLAN = {"quick": {"repetitions": 6}, "full": {"repetitions": 12}}
GOAL = 0.9


def completion_tokens(completions: Any, eos_ids: list[int]) -> int:
    """Tokens generated per row up to and including the first EOS, summed (rows are lists or a tensor)."""
    total = 0
    for row in completions:
        tokens = row.tolist() if hasattr(row, "tolist") else list(row)
        ends = [i for i, token in enumerate(tokens) if token in eos_ids]
        total += ends[0] + 1 if ends else len(tokens)
    return total


def measure(mode: str, threads: int, out: str | Path) -> dict[str, Any]:
    import time

    import torch
    from trl.trainer.utils import pad

    repetitions = PLAN[mode]["repetitions"]
    with tempfile.TemporaryDirectory() as tmp:
        trainer = uec_trainer(run_settings("grpo", 1, Path(tmp) / "run"))
        batch = next(iter(trainer.get_train_dataloader()))
        prompts = [row["prompt"] for row in batch]
        model, tokenizer = trainer.model, trainer.processing_class
        model.train()  # as in training (dropout is off)
        prompt_ids = trainer._tokenize_prompts(prompts)[0]
        tensors = [torch.tensor(ids) for ids in prompt_ids]
        inputs = {
            "input_ids": pad(tensors, padding_value=tokenizer.pad_token_id, padding_side="left"),
            "attention_mask": pad(
                [torch.ones_like(t) for t in tensors], padding_value=0, padding_side="left"
            ),
        }
        inputs = {key: value.to(model.device) for key, value in inputs.items()}
        eos = list(trainer.eos_token_ids)

        def trainer_path() -> int:
            return completion_tokens(trainer._generate(prompts)[1], eos)

        def bare_loop() -> int:
            with torch.no_grad():
                output = model.generate(**inputs, generation_config=trainer.generation_config)
            return completion_tokens(output[:, inputs["input_ids"].size(1) :], eos)

        calls = {"trainer": trainer_path, "bare": bare_loop}
        seconds: dict[str, list[float]] = {name: [] for name in calls}
        tokens: dict[str, list[int]] = {name: [] for name in calls}
        for repetition in range(repetitions):
            for name in calls if repetition % 2 == 0 else list(calls)[::-1]:
                torch.manual_seed(1000 + repetition)
                started = time.perf_counter()
                tokens[name].append(calls[name]())
                seconds[name].append(time.perf_counter() - started)
    rates = {name: [t / s for t, s in zip(tokens[name], seconds[name], strict=True)] for name in calls}
    ratios = paired_ratios(rates["trainer"], rates["bare"])
    rows = [
        {"variant": name, "repetition": i, "seconds": s, "tokens": t, "tokens_per_second": t / s}
        for name in calls
        for i, (s, t) in enumerate(zip(seconds[name], tokens[name], strict=True))
    ]
    record = {
        "settings": {
            "prompts": len(prompts),
            "max_completion_length": trainer.max_completion_length,
            "temperature": trainer.generation_config.temperature,
            "top_p": trainer.generation_config.top_p,
            "repetitions": repetitions,
            "threads": threads,
        },
        "goal": f"trainer tokens/s >= {GOAL} x bare model.generate",
        "tokens_per_second": {name: summarize(values) for name, values in rates.items()},
        "same_tokens_sampled": sum(a == b for a, b in zip(tokens["trainer"], tokens["bare"], strict=True)),
        "ratio": summarize(ratios),
        "meets_goal": summarize(ratios)["median"] >= GOAL,
    }
    write_results(out, NAME, mode, record, rows)
    return record


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__.splitlines()[0], argv)
    record = measure(args.mode, args.threads, args.out)
    ratio = record["ratio"]
    print(
        f"generation: trainer / bare tokens/s {ratio['median']:.3f} [IQR {ratio['q1']:.3f}-{ratio['q3']:.3f}]"
    )


if __name__ == "__main__":
    main()
