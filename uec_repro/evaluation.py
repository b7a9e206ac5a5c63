"""Sampling-based evaluation: Pass@k (unbiased), mean@n, maj@n, hard-prompt share and token entropy.

``pass_at_k`` is the unbiased estimator of Chen et al. (2021): with ``n`` samples of which ``c`` are
correct, ``pass@k = 1 - C(n-c, k) / C(n, k)``; averaged over problems. The *hard share* at group size
``G`` is the expected fraction of problems for which a group of ``G`` samples has no correct answer,
``mean(1 - pass@G)`` -- the prompts UEC-RL sends to targeted exploration.

Token entropy is the entropy of the full next-token distribution at the sampling temperature,
averaged over generated tokens (the quantity TRL logs as ``entropy``).
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .rewards import accuracy_reward, extract_boxed
from .validation import ParameterError, check_float, check_int


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one problem with ``c`` correct among ``n`` samples (requires ``k <= n``)."""
    if not 0 <= c <= n:
        raise ParameterError(f"c={c} must be between 0 and n={n}")
    if not 1 <= k <= n:
        raise ParameterError(f"k={k} must be between 1 and n={n} (draw at least k samples per problem)")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod((n - c - i) / (n - i) for i in range(k))


@dataclass
class Samples:
    """Completions for each prompt, with per-completion statistics."""

    completions: list[list[str]]  # [prompt][sample]
    mean_entropy: list[list[float]]  # mean token entropy of each completion (nats)
    mean_nll: list[list[float]]  # mean -log p of each completion's sampled tokens (nats)
    lengths: list[list[int]]  # generated tokens, EOS included
    truncated: list[list[bool]]  # hit max_new_tokens without EOS


@dataclass
class EvalResult:
    summary: dict[str, float]
    per_prompt: list[dict[str, Any]] = field(repr=False)


def prompt_texts(tokenizer, prompts: Sequence[str | list[dict[str, Any]]]) -> list[str]:
    """Render TRL-style prompts to text: chat messages through the chat template, strings as they are."""
    return [
        p
        if isinstance(p, str)
        else tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True)
        for p in prompts
    ]


def sample(
    model,
    tokenizer,
    prompts: Sequence[str | list[dict[str, Any]]],
    *,
    n: int,
    temperature: float = 1.0,
    top_p: float = 1.0,
    max_new_tokens: int = 64,
    batch_size: int = 256,
    seed: int = 0,
    images: Sequence[list[Any] | None] | None = None,
) -> Samples:
    """Draw ``n`` completions per prompt; ``batch_size`` counts sequences (prompts x samples) per call.
    ``images``: the images of each prompt, for a vision-language model (``tokenizer`` is then its
    processor)."""
    import torch

    check_int("n", n, minimum=1)
    check_float("temperature", temperature, minimum=0.0, min_exclusive=True)
    check_float("top_p", top_p, minimum=0.0, maximum=1.0, min_exclusive=True)
    check_int("max_new_tokens", max_new_tokens, minimum=1)
    check_int("batch_size", batch_size, minimum=1)
    texts = prompt_texts(tokenizer, prompts)
    text_tokenizer = getattr(tokenizer, "tokenizer", tokenizer)  # a processor's, or the tokenizer itself
    prompts_per_call = max(1, batch_size // n)
    padding_side, text_tokenizer.padding_side = text_tokenizer.padding_side, "left"
    was_training = model.training
    model.eval()  # no dropout, and no gradient checkpointing, which disables the KV cache
    out = Samples([], [], [], [], [])
    torch.manual_seed(seed)
    try:
        for start in range(0, len(texts), prompts_per_call):
            chunk = texts[start : start + prompts_per_call]
            pictures = {} if images is None else {"images": list(images[start : start + prompts_per_call])}
            enc = tokenizer(
                text=chunk, **pictures, return_tensors="pt", padding=True, add_special_tokens=False
            ).to(model.device)
            with torch.no_grad():
                gen = model.generate(
                    **enc,
                    do_sample=True,
                    temperature=temperature,
                    top_p=top_p,
                    top_k=0,
                    max_new_tokens=max_new_tokens,
                    num_return_sequences=n,
                    return_dict_in_generate=True,
                    output_logits=True,
                    pad_token_id=text_tokenizer.pad_token_id,
                    eos_token_id=text_tokenizer.eos_token_id,
                )
            new_tokens = gen.sequences[:, enc["input_ids"].shape[1] :]
            logps = (torch.stack(gen.logits, dim=1).float() / temperature).log_softmax(
                -1
            )  # (rows, steps, vocab)
            entropy = -(logps.exp() * logps).sum(-1)
            nll = -logps.gather(-1, new_tokens.unsqueeze(-1)).squeeze(-1)
            is_eos = new_tokens == text_tokenizer.eos_token_id
            # valid = up to and including the first EOS
            valid = (is_eos.long().cumsum(1) - is_eos.long()) == 0
            lengths = valid.sum(1)
            decoded = tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
            for i in range(len(chunk)):
                rows = range(i * n, (i + 1) * n)
                out.completions.append([decoded[r] for r in rows])
                out.lengths.append([int(lengths[r]) for r in rows])
                out.truncated.append([not bool(is_eos[r].any()) for r in rows])
                out.mean_entropy.append(
                    [float(entropy[r][valid[r]].mean()) if lengths[r] else 0.0 for r in rows]
                )
                out.mean_nll.append([float(nll[r][valid[r]].mean()) if lengths[r] else 0.0 for r in rows])
    finally:
        text_tokenizer.padding_side = padding_side
        model.train(was_training)
    return out


def majority_answer(completions: Sequence[str]) -> str | None:
    """The most common extracted final answer (ties broken by first occurrence), or None."""
    answers = [a for a in map(extract_boxed, completions) if a]
    return Counter(answers).most_common(1)[0][0] if answers else None


def evaluate_policy(
    model,
    tokenizer,
    dataset,
    *,
    n: int = 16,
    ks: Sequence[int] = (1, 4, 16),
    hard_group_size: int = 4,
    temperature: float = 1.0,
    top_p: float = 1.0,
    max_new_tokens: int = 64,
    batch_size: int = 256,
    seed: int = 0,
    limit: int | None = None,
) -> EvalResult:
    """Pass@k for each k in ``ks``, mean@n, maj@n, hard share and mean token entropy on ``dataset``.

    ``dataset`` has ``prompt`` and ``answer`` columns (any :func:`uec_repro.tasks.load_task` result), and an
    ``image`` column for a vision-language model, whose processor is then ``tokenizer``.
    """
    for k in ks:
        check_int("ks", k, minimum=1, maximum=n)
    check_int("hard_group_size", hard_group_size, minimum=1, maximum=n)
    rows = list(dataset) if limit is None else list(dataset.select(range(min(limit, len(dataset)))))
    images = [[r["image"]] if r.get("image") is not None else [] for r in rows]
    samples = sample(
        model,
        tokenizer,
        [r["prompt"] for r in rows],
        n=n,
        temperature=temperature,
        top_p=top_p,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        seed=seed,
        images=images if any(images) else None,
    )
    per_prompt = []
    for row, completions, entropy, nll, lengths, truncated in zip(
        rows,
        samples.completions,
        samples.mean_entropy,
        samples.mean_nll,
        samples.lengths,
        samples.truncated,
        strict=True,
    ):
        rewards = accuracy_reward(completions, [row["answer"]] * n)
        majority = majority_answer(completions)
        per_prompt.append(
            {
                "id": row["id"],
                "difficulty": row.get("difficulty", 0),
                "correct": int(sum(rewards)),
                "n": n,
                "maj_correct": float(
                    majority is not None and accuracy_reward([f"\\boxed{{{majority}}}"], [row["answer"]])[0]
                ),
                "entropy": sum(entropy) / n,
                # token-weighted sums over the n completions (the probe's measures are ratios of these)
                "entropy_sum": sum(e * t for e, t in zip(entropy, lengths, strict=True)),
                "nll_sum": sum(e * t for e, t in zip(nll, lengths, strict=True)),
                "tokens": sum(lengths),
                "length": sum(lengths) / n,
                "truncated": sum(truncated) / n,
                "example": random.Random(seed).choice(completions),
            }
        )
    return EvalResult(summarize(per_prompt, ks=ks, hard_group_size=hard_group_size), per_prompt)


def summarize(
    per_prompt: Sequence[dict[str, Any]], *, ks: Sequence[int], hard_group_size: int
) -> dict[str, float]:
    """The summary of :func:`evaluate_policy` from its per-prompt records (e.g. those of several processes,
    each of which evaluated a share of the prompts)."""
    m, n = len(per_prompt), per_prompt[0]["n"]
    summary = {f"pass@{k}": sum(pass_at_k(n, p["correct"], k) for p in per_prompt) / m for k in ks}
    summary.update(
        {
            f"mean@{n}": sum(p["correct"] for p in per_prompt) / (n * m),
            f"maj@{n}": sum(p["maj_correct"] for p in per_prompt) / m,
            f"hard_share@{hard_group_size}": sum(
                1 - pass_at_k(n, p["correct"], hard_group_size) for p in per_prompt
            )
            / m,
            "token_entropy": sum(p["entropy"] for p in per_prompt) / m,
            "completion_length": sum(p["length"] for p in per_prompt) / m,
            "truncated_share": sum(p["truncated"] for p in per_prompt) / m,
            "prompts": m,
            "samples_per_prompt": n,
        }
    )
    return summary
