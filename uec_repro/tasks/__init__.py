"""Tasks: built-in procedural families and loaders for the paper's hub datasets, one schema for all.

>>> from uec_repro.tasks import load_task
>>> train = load_task("arith", "train", n=1000, seed=0)          # offline, generated
>>> test = load_task("geometry3k", "test")                       # needs the hub or a local copy

Every loader returns a ``datasets.Dataset`` whose rows follow :mod:`uec_repro.tasks.schema`; the
``prompt`` column is built by :func:`uec_repro.tasks.prompts.build_prompt` for the given tokenizer.
"""

from __future__ import annotations

import importlib
import random
from typing import Any

from ..validation import ParameterError, check_choice, check_int
from .prompts import FORMAT_PROMPT, build_prompt, with_instruction
from .schema import FIELDS, OPTIONAL_FIELDS, BadExampleError, make_example, validate_example

BUILTIN_TASKS = {"arith": "uec_repro.tasks.arith", "geometry": "uec_repro.tasks.geometry"}
HUB_TASKS = ("geometry3k", "math12k", "math500", "gsm8k")
TASKS = (*BUILTIN_TASKS, *HUB_TASKS)
DEFAULT_SIZES = {"train": 2000, "test": 200}

__all__ = [
    "BUILTIN_TASKS",
    "DEFAULT_SIZES",
    "FIELDS",
    "FORMAT_PROMPT",
    "OPTIONAL_FIELDS",
    "HUB_TASKS",
    "TASKS",
    "BadExampleError",
    "build_prompt",
    "epoch_order",
    "generate_rows",
    "load_task",
    "make_example",
    "validate_example",
    "with_instruction",
]


def generate_rows(
    name: str,
    split: str = "train",
    n: int | None = None,
    *,
    seed: int = 0,
    difficulties: list[int] | None = None,
) -> list[dict[str, Any]]:
    """Schema rows of a built-in family (``prompt`` = bare question). Cheap, offline, deterministic."""
    check_choice("task", name, BUILTIN_TASKS)
    family = importlib.import_module(BUILTIN_TASKS[name])
    n = DEFAULT_SIZES.get(split, 0) if n is None else n
    return family.generate(split=split, n=n, seed=seed, difficulties=difficulties)


def load_task(
    name: str,
    split: str = "train",
    n: int | None = None,
    *,
    seed: int = 0,
    difficulties: list[int] | None = None,
    tokenizer: Any = None,
    data_path: str | None = None,
    cache_dir: str | None = None,
    cycle: bool = False,
):
    """Load task ``name`` as a ``datasets.Dataset`` with TRL-ready prompts.

    Args:
        name: one of :data:`TASKS`.
        split: ``"train"`` or ``"test"`` for built-in tasks; the hub split names for hub tasks.
        n: number of examples (built-in default: :data:`DEFAULT_SIZES`; hub default: the whole split).
        seed: sampling seed (built-in: which problems; hub: which ``n`` rows when ``n`` is given).
        difficulties: restrict built-in tasks to these tiers.
        tokenizer: prompts become chat messages when it has a chat template (or is ``None``), plain text
            otherwise.
        data_path: hub tasks only: a local copy (folder or parquet/json file) to read instead of the hub.
        cache_dir: hub tasks only: the ``datasets`` cache directory.
        cycle: ``n`` may be more than the split has (a training run's ``steps x prompts_per_step``): the
            rows go through the whole split epoch after epoch, each epoch in a fresh order seeded by ``seed``
            and the epoch, so every row is used once per epoch (see :func:`epoch_order`). When the split
            has ``n`` rows the result is the rows of ``cycle=False`` (the first epoch is the usual draw),
            so a short run sees exactly what it saw before.

    Bad data never reaches a trainer: malformed hub rows (missing or empty problem or answer, a broken or
    missing image...) are skipped and counted in one :class:`~uec_repro.tasks.hub.MalformedRowsWarning`, a
    split without a valid row is a :class:`ParameterError`, and a generated row that breaks the schema raises
    :class:`BadExampleError` naming its id.
    """
    import datasets

    check_choice("task", name, TASKS)
    if n is not None:
        check_int("n", n, minimum=1)
    if name in BUILTIN_TASKS:
        if data_path is not None:
            raise ParameterError(
                f"data_path={data_path!r} applies to hub tasks {list(HUB_TASKS)} only, not {name!r}"
            )
        family = importlib.import_module(BUILTIN_TASKS[name]) if cycle and n is not None else None
        if family is not None:  # as many distinct problems as the split has, up to n
            rows = family.generate(split=split, n=n, seed=seed, difficulties=difficulties, at_most=True)
        else:
            rows = generate_rows(name, split, n, seed=seed, difficulties=difficulties)
    else:
        if difficulties is not None:
            raise ParameterError(
                f"difficulties={difficulties!r} applies to built-in tasks {list(BUILTIN_TASKS)} only"
            )
        from .hub import load_hub_rows

        if cycle and n is not None:  # the whole split, in the order of load_hub_rows(n=len(split), seed)
            rows = load_hub_rows(name, split, None, seed=seed, data_path=data_path, cache_dir=cache_dir)
            random.Random(seed).shuffle(rows)
        else:
            rows = load_hub_rows(name, split, n, seed=seed, data_path=data_path, cache_dir=cache_dir)
    for row in rows:
        row["prompt"] = build_prompt(row["question"], tokenizer, image=row.get("image") is not None)
    dataset = datasets.Dataset.from_list(rows)
    if cycle and n is not None and n != len(dataset):  # an index mapping: no row is copied
        dataset = dataset.select(epoch_order(len(dataset), n, seed=seed, key=f"{name}/{split}"))
    return dataset


def epoch_order(size: int, n: int, *, seed: int = 0, key: str = "") -> list[int]:
    """``n`` indices into a split of ``size`` rows, epoch after epoch: the first epoch in the split's own
    order (``0 .. size-1``), each later epoch ``e`` a fresh permutation drawn with
    ``random.Random(f"{key}/{seed}/epoch{e}")``, so every row appears once per epoch, the order differs
    between epochs and the whole sequence depends only on ``(key, seed, size, n)``."""
    check_int("size", size, minimum=1)
    check_int("n", n, minimum=1)
    order: list[int] = []
    epoch = 0
    while len(order) < n:
        indices = list(range(size))
        if epoch:
            random.Random(f"{key}/{seed}/epoch{epoch}").shuffle(indices)
        order.extend(indices[: n - len(order)])
        epoch += 1
    return order
