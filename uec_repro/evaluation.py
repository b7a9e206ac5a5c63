"""Sampling-based evaluation: Pass@k (unbiased), mean@n, maj@n, hard-prompt share and token entropy.

``pass_at_k`` is the unbiased estimator of Chen et al. (2021): with ``n`` samples of which ``c`` are
correct, ``pass@k = 1 - C(n-c, k) / C(n, k)``; averaged over problems. The *hard share* at group size
``G`` is the expected fraction of problems for which a group of ``G`` samples has no correct answer,
``mean(1 - pass@G)`` -- the prompts UEC-RL sends to targeted exploration.

Token entropy is the entropy of the full next-token distribution at the sampling temperature (the model's
logits / T, before top-p), averaged over generated tokens (the quantity TRL logs as ``entropy``).
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .models import stop_token_ids
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


class _TokenMeasures:
    """Each decoding step's token entropy and the sampled token's -log p, computed as ``generate`` goes, from
    the model's raw next-token logits at ``temperature`` (before top-p and before any processor of the
    model's generation config): only (rows, steps) floats are kept, never (rows, steps, vocabulary).

    A forward hook on the model that ``generate`` runs keeps the last position's logits of each forward pass;
    the logits processor, which ``generate`` calls once per step right after that pass, turns them into the
    step's entropy, and gathers the previous step's sampled token (the last column of its ``input_ids``)
    from the previous step's log-probabilities. It passes the scores on unchanged, so sampling is as without
    it. :meth:`finish` gathers the last step's token."""

    def __init__(self, temperature: float) -> None:
        self.temperature = temperature
        self.entropy: list[Any] = []  # one (rows,) tensor per step
        self.nll: list[Any] = []
        self._logits = None  # the last forward pass's last-position logits
        self._logps = None  # the last step's log-probabilities, until its token is known

    def capture(self, module, args, output) -> None:
        logits = output.logits if hasattr(output, "logits") else output[0]
        self._logits = logits[:, -1]

    def __call__(self, input_ids, scores):
        if self._logits is None:
            raise RuntimeError(
                "sample() could not observe the model's logits: no forward pass of the hooked model ran "
                "before this decoding step"
            )
        if self._logps is not None:
            self.nll.append(-self._logps.gather(-1, input_ids[:, -1:]).squeeze(-1))
        logits = self._logits.to(input_ids.device).float()  # as generate's own float32 copy
        self._logits = None
        logps = (logits / self.temperature).log_softmax(-1)
        self.entropy.append(-(logps.exp() * logps).sum(-1))
        self._logps = logps
        return scores

    def finish(self, new_tokens):
        """(rows, steps) entropies and -log p of the sampled tokens ``new_tokens`` (rows, steps)."""
        import torch

        if self._logps is not None:
            self.nll.append(-self._logps.gather(-1, new_tokens[:, -1:]).squeeze(-1))
            self._logps = None
        if len(self.entropy) != new_tokens.shape[1] or len(self.nll) != new_tokens.shape[1]:
            raise RuntimeError(
                f"sample() measured {len(self.entropy)} decoding steps for {new_tokens.shape[1]} new tokens"
            )
        return torch.stack(self.entropy, dim=1), torch.stack(self.nll, dim=1)


def _generating_module(model):
    """The module whose forward ``model.generate`` runs (a PEFT model's base model, else the model)."""
    base = getattr(model, "get_base_model", None)
    return base() if callable(base) else model


def _calls(count: int, n: int, batch_size: int) -> list[tuple[list[int], int]]:
    """The generate calls of :func:`sample`: (prompt indices, samples per prompt), at most ``batch_size``
    rows each. ``n <= batch_size``: ``batch_size // n`` prompts per call with all their samples; else each
    prompt's samples in calls of ``batch_size`` (the last one the rest)."""
    if n <= batch_size:
        per_call = batch_size // n
        return [(list(range(s, min(s + per_call, count))), n) for s in range(0, count, per_call)]
    return [([i], min(batch_size, n - s)) for i in range(count) for s in range(0, n, batch_size)]


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
    """Draw ``n`` completions per prompt; ``batch_size`` is the most sequences (prompts x samples) one
    ``generate`` call makes: whole prompts per call while ``n <= batch_size``, else one prompt's samples split
    over several calls. ``images``: the images of each prompt, for a vision-language model (``tokenizer`` is
    then its processor).

    Token entropy and -log p are measured while generating (:class:`_TokenMeasures`): memory holds one step's
    next-token distribution, not every step's."""
    import torch
    from transformers import LogitsProcessorList

    check_int("n", n, minimum=1)
    check_float("temperature", temperature, minimum=0.0, min_exclusive=True)
    check_float("top_p", top_p, minimum=0.0, maximum=1.0, min_exclusive=True)
    check_int("max_new_tokens", max_new_tokens, minimum=1)
    check_int("batch_size", batch_size, minimum=1)
    texts = prompt_texts(tokenizer, prompts)
    text_tokenizer = getattr(tokenizer, "tokenizer", tokenizer)  # a processor's, or the tokenizer itself
    # eos and the chat template's end of turn, as the policy's generation config has them (load_policy)
    stops = stop_token_ids(text_tokenizer, getattr(model.generation_config, "eos_token_id", None))
    padding_side, text_tokenizer.padding_side = text_tokenizer.padding_side, "left"
    was_training = model.training
    model.eval()  # no dropout, and no gradient checkpointing, which disables the KV cache
    per_prompt: list[dict[str, list]] = [
        {"completions": [], "lengths": [], "truncated": [], "entropy": [], "nll": []} for _ in texts
    ]
    torch.manual_seed(seed)
    try:
        for indices, samples in _calls(len(texts), n, batch_size):
            chunk = [texts[i] for i in indices]
            pictures = {} if images is None else {"images": [images[i] for i in indices]}
            enc = tokenizer(
                text=chunk, **pictures, return_tensors="pt", padding=True, add_special_tokens=False
            ).to(model.device)
            measures = _TokenMeasures(temperature)
            hook = _generating_module(model).register_forward_hook(measures.capture)
            try:
                with torch.no_grad():
                    gen = model.generate(
                        **enc,
                        do_sample=True,
                        temperature=temperature,
                        top_p=top_p,
                        top_k=0,
                        max_new_tokens=max_new_tokens,
                        num_return_sequences=samples,
                        return_dict_in_generate=True,
                        logits_processor=LogitsProcessorList([measures]),
                        pad_token_id=text_tokenizer.pad_token_id,
                        eos_token_id=stops,
                    )
            finally:
                hook.remove()
            new_tokens = gen.sequences[:, enc["input_ids"].shape[1] :]
            entropy, nll = measures.finish(new_tokens)  # (rows, steps)
            del measures
            is_eos = torch.isin(new_tokens, torch.tensor(stops, device=new_tokens.device))
            # valid = up to and including the first EOS
            valid = (is_eos.long().cumsum(1) - is_eos.long()) == 0
            lengths = valid.sum(1)
            decoded = tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
            for position, i in enumerate(indices):
                rows = range(position * samples, (position + 1) * samples)
                record = per_prompt[i]
                record["completions"] += [decoded[r] for r in rows]
                record["lengths"] += [int(lengths[r]) for r in rows]
                record["truncated"] += [not bool(is_eos[r].any()) for r in rows]
                record["entropy"] += [float(entropy[r][valid[r]].mean()) if lengths[r] else 0.0 for r in rows]
                record["nll"] += [float(nll[r][valid[r]].mean()) if lengths[r] else 0.0 for r in rows]
    finally:
        text_tokenizer.padding_side = padding_side
        model.train(was_training)
    return Samples(
        completions=[r["completions"] for r in per_prompt],
        mean_entropy=[r["entropy"] for r in per_prompt],
        mean_nll=[r["nll"] for r in per_prompt],
        lengths=[r["lengths"] for r in per_prompt],
        truncated=[r["truncated"] for r in per_prompt],
    )


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
