"""The toy policy: a model organism this package builds itself, offline, in about two minutes.

Why it exists: RL on real LMs costs seconds per step even for 135M parameters on a CPU, and the Hub
is not always reachable. The toy is a tiny Llama (a regular ``transformers`` architecture, so TRL,
peft and bitsandbytes treat it like any model) with a character-level tokenizer, warm-started by
supervised training on a built-in task to *partial* competence, so that RL has something to improve
and something for exploration to find. Two organisms are built from the same code: ``toy`` on ``arith``
(:data:`DEFAULT_RECIPE`) and ``toy-geometry`` on the text ``geometry`` task (:data:`GEOMETRY_RECIPE`),
one each so that each task's runs start from a policy of the same measured kind (see
``benchmarks/toy_policy.py``) and a figure labelled geometry is fed by a policy that never saw arithmetic
drills.

What makes it a fair stand-in for a reasoning LM:

* It reads the paper's exact prompt (question + format instruction; the instruction is one token)
  and answers in the paper's format, ``<think>...</think>\\boxed{...}``, checked by the same reward.
* Its supervised data contains *genuine choice*: each problem has several valid worked solutions
  (answer directly or think first, operand order, decomposing a step into tens and units, which
  sub-expression to evaluate first). Those styles differ in how often the small model gets them
  right, so RL can shift mass between them and the policy's entropy can collapse, as real LMs' do.
* Only train-split problems are ever seen; the test split is held out by construction.

The build is deterministic for a given :class:`ToyRecipe`, which pins the build's CPU thread count (float sums
depend on how the work is split: the same arith recipe built with 1 and with 2 threads gave final losses of
0.323 and 0.249 and test pass@1 of 0.18 and 0.35), and cached as a normal HF folder
(``config.json``, ``model.safetensors``, tokenizer files, ``toy_recipe.json``) under
``cache_dir()/policies/toy-<recipe hash>``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import random
import re
import shutil
import string
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..paths import cache_dir
from ..tasks import arith, geometry
from ..tasks.procedural import split_of
from ..tasks.prompts import FORMAT_PROMPT, with_instruction

THINK_OPEN, THINK_CLOSE, BOXED_OPEN = "<think>", "</think>", "\\boxed{"
SPECIAL_TOKENS = {"pad_token": "<pad>", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}
# Multi-character strings the tokenizer keeps whole, as a real tokenizer keeps frequent words:
# the format instruction costs one token, and so does the question stem of ``arith``.
WORD_TOKENS = (FORMAT_PROMPT, THINK_OPEN, THINK_CLOSE, BOXED_OPEN, "What is ")


@dataclass(frozen=True)
class ToyRecipe:
    """Everything that determines the toy policy; its hash names the cache folder."""

    task: str = field(
        default="arith", metadata={"help": "Built-in task of the supervised data: 'arith' or 'geometry'."}
    )
    seed: int = field(default=0, metadata={"help": "Seed for data, initialisation and training order."})
    build_threads: int = field(
        default=1,
        metadata={"help": "CPU threads of the build (pinned: the weights depend on the thread count)."},
    )
    word_tokens: tuple[str, ...] = field(
        default=(),
        metadata={"help": "Words the tokenizer keeps whole besides the format words (frequent task words)."},
    )
    hidden_size: int = field(default=128, metadata={"help": "Transformer width."})
    intermediate_size: int = field(default=384, metadata={"help": "MLP width."})
    num_layers: int = field(default=4, metadata={"help": "Decoder layers."})
    num_heads: int = field(default=4, metadata={"help": "Attention heads."})
    max_positions: int = field(default=128, metadata={"help": "Context length (prompt + completion tokens)."})
    steps: int = field(default=650, metadata={"help": "Supervised optimizer steps."})
    batch_size: int = field(default=128, metadata={"help": "Sequences per supervised step."})
    learning_rate: float = field(default=3e-3, metadata={"help": "Peak AdamW learning rate."})
    warmup_steps: int = field(default=60, metadata={"help": "Linear warm-up steps, then cosine decay."})
    final_lr_ratio: float = field(
        default=0.1, metadata={"help": "Learning rate at the end, as a share of the peak."}
    )
    tier_weights: tuple[float, ...] = field(
        default=(0.25, 0.30, 0.30, 0.15),
        metadata={"help": "Share of the task's tiers 1-4 in the supervised data."},
    )
    easy_first_steps: int = field(
        default=280,
        metadata={"help": "Curriculum: the first steps draw only tiers 1-2, where arithmetic is learned."},
    )
    p_no_think: float = field(
        default=0.2, metadata={"help": "Share of solutions that answer without thinking."}
    )
    p_swap: float = field(
        default=0.5, metadata={"help": "Chance to write a commutative step with operands swapped."}
    )
    p_decompose: float = field(
        default=0.5, metadata={"help": "Chance to split a multi-digit step into tens and units."}
    )
    p_units_first: float = field(
        default=0.5, metadata={"help": "Chance that a split step handles the units before the tens."}
    )
    p_short_think: float = field(
        default=0.5,
        metadata={"help": "geometry: chance that a thought keeps only its computation, not the reason."},
    )

    def digest(self) -> str:
        payload = json.dumps(dataclasses.asdict(self), sort_keys=True) + TOY_FORMAT_VERSION
        return hashlib.sha256(payload.encode()).hexdigest()[:12]


TOY_FORMAT_VERSION = "2"
TASKS = {"arith": arith, "geometry": geometry}
DEFAULT_RECIPE = ToyRecipe()


def frequent_words(task: str = "geometry", problems: int = 4000, min_count: int = 60) -> tuple[str, ...]:
    """Words (with the space or punctuation after them) that occur at least ``min_count`` times in the
    questions and solutions of ``problems`` train problems: a crude BPE, so a prompt costs about 40 tokens,
    not 100."""
    rng, counts = random.Random(0), Counter()
    module = TASKS[task]
    for _ in range(problems):
        problem = module.make_problem(
            rng, rng.choices(sorted(module.TIER_WEIGHTS), module.TIER_WEIGHTS.values())[0]
        )
        counts.update(
            re.findall(r"\\[A-Za-z]+ ?|[A-Za-z]{2,}[ .,]?", f"{problem.question} {problem.solution}")
        )
    return tuple(sorted(word for word, count in counts.items() if count >= min_count and len(word) >= 3))


GEOMETRY_RECIPE = ToyRecipe(
    task="geometry",
    word_tokens=frequent_words(),
    max_positions=256,
    steps=1500,
    batch_size=64,
    easy_first_steps=300,
    tier_weights=(0.30, 0.35, 0.20, 0.15),
)
RECIPES = {"toy": DEFAULT_RECIPE, "toy-geometry": GEOMETRY_RECIPE}


# --------------------------------------------------------------------------------------------------
# Tokenizer
# --------------------------------------------------------------------------------------------------
def build_tokenizer(word_tokens: tuple[str, ...] = ()):
    """Character-level tokenizer over printable ASCII, plus the format words above and ``word_tokens``, as a
    fast HF tokenizer."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    characters = [c for c in string.printable if c.isprintable()]
    vocab = {token: i for i, token in enumerate([*SPECIAL_TOKENS.values(), *characters])}
    core = Tokenizer(models.WordLevel(vocab, unk_token=SPECIAL_TOKENS["unk_token"]))
    core.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    core.decoder = decoders.Fuse()
    core.add_tokens([AddedToken(word, normalized=False) for word in (*WORD_TOKENS, *word_tokens)])
    return PreTrainedTokenizerFast(tokenizer_object=core, padding_side="left", **SPECIAL_TOKENS)


# --------------------------------------------------------------------------------------------------
# Worked solutions with genuine choice
# --------------------------------------------------------------------------------------------------
def worked_solution(expr: arith.Expr, rng: random.Random, recipe: ToyRecipe = DEFAULT_RECIPE) -> str:
    """One valid solution of ``expr`` in the paper's format, drawn from several valid styles."""
    value = arith.evaluate(expr)
    if rng.random() < recipe.p_no_think:
        return f"{BOXED_OPEN}{value}}}"
    steps: list[str] = []
    _reduce(expr, rng, recipe, steps)
    return f"{THINK_OPEN}{','.join(steps)}{THINK_CLOSE}{BOXED_OPEN}{value}}}"


def _reduce(expr: arith.Expr, rng: random.Random, recipe: ToyRecipe, steps: list[str]) -> int:
    if isinstance(expr, int):
        return expr
    op, left, right = expr
    if not isinstance(left, int) and not isinstance(right, int) and rng.random() < 0.5:
        b = _reduce(right, rng, recipe, steps)  # independent sub-expressions: either order is valid
        a = _reduce(left, rng, recipe, steps)
    else:
        a = _reduce(left, rng, recipe, steps)
        b = _reduce(right, rng, recipe, steps)
    steps.extend(_step(op, a, b, rng, recipe))
    return arith.evaluate([op, a, b])


def _step(op: str, a: int, b: int, rng: random.Random, recipe: ToyRecipe) -> list[str]:
    if op in "+*" and rng.random() < recipe.p_swap:
        a, b = b, a
    result = arith.evaluate([op, a, b])
    if rng.random() < recipe.p_decompose:
        units_first = rng.random() < recipe.p_units_first
        if op in "+-" and b >= 10 and b % 10:
            parts = [b % 10, b - b % 10] if units_first else [b - b % 10, b % 10]
            partial = arith.evaluate([op, a, parts[0]])
            return [f"{a}{op}{parts[0]}={partial}", f"{partial}{op}{parts[1]}={result}"]
        if op == "*" and 10 <= max(a, b) <= 99 and min(a, b) < 10 and max(a, b) % 10:
            big, small = max(a, b), min(a, b)
            parts = [big % 10, big - big % 10] if units_first else [big - big % 10, big % 10]
            products = [part * small for part in parts]
            return [
                f"{parts[0]}*{small}={products[0]}",
                f"{parts[1]}*{small}={products[1]}",
                f"{products[0]}+{products[1]}={result}",
            ]
    return [f"{a}{op}{b}={result}"]


def geometry_solution(problem, rng: random.Random, recipe: ToyRecipe = GEOMETRY_RECIPE) -> str:
    """One solution of a ``geometry`` problem: the answer alone, the worked solution as the thought, or
    (chance ``p_short_think``) only its computation (:func:`computation_of`); a thought's closing integer
    chain is worked one step at a time with chance ``p_decompose`` (:func:`stepwise`)."""
    answer = f"{BOXED_OPEN}{problem.answer}}}"
    if rng.random() < recipe.p_no_think:
        return answer
    thought = computation_of(problem.solution) if rng.random() < recipe.p_short_think else problem.solution
    if rng.random() < recipe.p_decompose:
        thought = stepwise(thought)
    return f"{THINK_OPEN}{thought}{THINK_CLOSE}{answer}"


CHAIN = re.compile(r"(?<![\d.^{(])(\d+(?: [-+] \d+)+) = (-?\d+)$")


def stepwise(thought: str) -> str:
    """A thought whose closing integer chain (``180 - 83 - 64 = 33``) is worked one operation at a time, each
    operand of two or more digits taken as its leading part, then the rest (``180 - 80 = 100, 100 - 3 = 97,
    97 - 60 = 37, 37 - 4 = 33``), as the arith toy splits tens and units; other thoughts are returned as they
    are."""
    match = CHAIN.search(thought)
    if not match:
        return thought
    tokens = match.group(1).split(" ")
    value, steps = int(tokens[0]), []
    for op, text in zip(tokens[1::2], tokens[2::2], strict=True):
        number = int(text)
        lead = int(text[0]) * 10 ** (len(text) - 1)
        for part in (lead, number - lead) if number >= 10 and number != lead else (number,):
            result = value + part if op == "+" else value - part
            steps.append(f"{value} {op} {part} = {result}")
            value = result
    return thought[: match.start()] + ", ".join(steps)


def computation_of(solution: str) -> str:
    """A worked solution from its first clause with an ``=`` on: the reason in front
    (``The angles of a triangle sum to 180, so``) is left out."""
    parts = re.split(r"(, so |: |, )", solution)
    first = next((i for i in range(0, len(parts), 2) if "=" in parts[i]), 0)
    return "".join(parts[first:])


def sample_training_text(
    rng: random.Random, recipe: ToyRecipe = DEFAULT_RECIPE, *, easy_only: bool = False
) -> tuple[str, str]:
    """(prompt, completion) of one supervised example from the *train* split of ``recipe.task``."""
    module = TASKS[recipe.task]
    tiers = sorted(module.TIER_WEIGHTS)[: 2 if easy_only else None]
    while True:
        problem = module.make_problem(rng, rng.choices(tiers, recipe.tier_weights[: len(tiers)])[0])
        if split_of(problem.question) == "train":
            if recipe.task == "arith":
                return with_instruction(problem.question), worked_solution(problem.meta["expr"], rng, recipe)
            return with_instruction(problem.question), geometry_solution(problem, rng, recipe)


# --------------------------------------------------------------------------------------------------
# Build
# --------------------------------------------------------------------------------------------------
def toy_policy_dir(
    cache: Path | None = None, recipe: ToyRecipe = DEFAULT_RECIPE, *, verbose: bool = True
) -> Path:
    """The folder of the toy policy for ``recipe``, building it first if it is not cached."""
    target = (cache or cache_dir()) / "policies" / f"toy-{recipe.task}-{recipe.digest()}"
    if (target / "toy_recipe.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".building-") as tmp:
        build_toy_policy(Path(tmp) / "policy", recipe, verbose=verbose)
        try:
            (Path(tmp) / "policy").rename(target)  # atomic: a killed build never looks finished
        except OSError:
            if not (target / "toy_recipe.json").exists():  # lost a race with a concurrent build: fine
                raise
    return target


def build_toy_policy(
    out: Path, recipe: ToyRecipe = DEFAULT_RECIPE, *, verbose: bool = True
) -> dict[str, Any]:
    """Train the toy policy from scratch into ``out``; returns the build record (also in toy_recipe.json)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(recipe.build_threads)
    try:
        return _build(out, recipe, verbose=verbose)
    finally:
        torch.set_num_threads(threads)


def _build(out: Path, recipe: ToyRecipe, *, verbose: bool) -> dict[str, Any]:
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    start = time.perf_counter()
    torch.manual_seed(recipe.seed)
    rng = random.Random(recipe.seed)
    tokenizer = build_tokenizer(recipe.word_tokens)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=recipe.hidden_size,
        intermediate_size=recipe.intermediate_size,
        num_hidden_layers=recipe.num_layers,
        num_attention_heads=recipe.num_heads,
        num_key_value_heads=recipe.num_heads,
        max_position_embeddings=recipe.max_positions,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    model = LlamaForCausalLM(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.learning_rate, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: _lr_factor(step, recipe))
    model.train()
    losses = []
    batches = _training_batches(tokenizer, rng, recipe)
    for step in range(recipe.steps):
        loss = _accumulate_gradient(model, *next(batches))
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss)
        if verbose and (step % 100 == 0 or step == recipe.steps - 1):
            print(
                f"[toy policy] step {step:4d}/{recipe.steps}  loss {loss:.3f}  "
                f"{time.perf_counter() - start:.0f}s",
                flush=True,
            )
    model.eval()
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    record = {
        "recipe": dataclasses.asdict(recipe),
        "recipe_digest": recipe.digest(),
        "parameters": sum(p.numel() for p in model.parameters()),
        "final_loss": sum(losses[-20:]) / len(losses[-20:]),
        "build_seconds": round(time.perf_counter() - start, 1),
        "torch_threads": torch.get_num_threads(),
    }
    (out / "toy_recipe.json").write_text(json.dumps(record, indent=2))
    return record


MICRO_BATCHES = 4


def _accumulate_gradient(model, input_ids, labels, attention_mask) -> float:
    """Backward of one i.i.d. batch as length-sorted micro-batches; returns the batch's token-mean loss.

    Each micro-batch is cut to its own longest sequence, which halves the padded tokens (real length about 28
    of 59) and the step time (0.43 s -> 0.23 s measured), while the gradient stays that of the whole batch:
    ``num_items_in_batch`` makes every micro-batch loss a sum over its tokens divided by the batch's count.
    """
    lengths = attention_mask.sum(1)
    label_tokens = (labels[:, 1:] != -100).sum()  # what the causal-LM loss counts, after its shift
    total = 0.0
    for rows in lengths.argsort().chunk(MICRO_BATCHES):
        width = int(lengths[rows].max())
        loss = model(
            input_ids=input_ids[rows, :width],
            attention_mask=attention_mask[rows, :width],
            labels=labels[rows, :width],
            num_items_in_batch=label_tokens,
        ).loss
        loss.backward()
        total += loss.item()
    return total


def _lr_factor(step: int, recipe: ToyRecipe) -> float:
    if step < recipe.warmup_steps:
        return (step + 1) / recipe.warmup_steps
    progress = (step - recipe.warmup_steps) / max(1, recipe.steps - recipe.warmup_steps)
    return recipe.final_lr_ratio + (1 - recipe.final_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def _training_batches(tokenizer, rng: random.Random, recipe: ToyRecipe):
    """Endless right-padded i.i.d. batches; the loss covers completion tokens and EOS only, not the prompt.

    Optimizer steps are not grouped by length: that would save padding but make each step see one kind of
    problem, and at this learning rate such correlated steps stop the model from learning arithmetic
    (measured: pass@1 0.03 with steps drawn from 8-batch length buckets vs 0.45 with i.i.d. batches, same
    recipe otherwise). Padding is saved inside a step instead (:func:`_accumulate_gradient`).
    """
    step = 0
    while True:
        easy_only = step < recipe.easy_first_steps
        pairs = [sample_training_text(rng, recipe, easy_only=easy_only) for _ in range(recipe.batch_size)]
        prompts = tokenizer([p for p, _ in pairs], add_special_tokens=False)["input_ids"]
        completions = tokenizer([c for _, c in pairs], add_special_tokens=False)["input_ids"]
        step += 1
        yield _pad(
            [(p, p + c + [tokenizer.eos_token_id]) for p, c in zip(prompts, completions, strict=True)],
            tokenizer.pad_token_id,
            recipe.max_positions,
        )


def _pad(chunk: list[tuple[list[int], list[int]]], pad_id: int, max_positions: int):
    import torch

    length = max(len(sequence) for _, sequence in chunk)
    if length > max_positions:
        raise ValueError(f"a training sequence has {length} tokens > max_positions={max_positions}")
    input_ids = torch.full((len(chunk), length), pad_id)
    labels = torch.full((len(chunk), length), -100)
    attention_mask = torch.zeros((len(chunk), length), dtype=torch.long)
    for row, (prompt, sequence) in enumerate(chunk):
        input_ids[row, : len(sequence)] = torch.tensor(sequence)
        labels[row, len(prompt) : len(sequence)] = torch.tensor(sequence[len(prompt) :])
        attention_mask[row, : len(sequence)] = 1
    return input_ids, labels, attention_mask


def clear_toy_cache(cache: Path | None = None) -> None:
    """Remove every cached toy policy (they rebuild on demand)."""
    for folder in ((cache or cache_dir()) / "policies").glob("toy-*"):
        shutil.rmtree(folder)
