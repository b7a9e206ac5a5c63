"""Evaluate a trained adapter again: ``uec-repro evaluate PATH [--task T] [--n N] [--samples S] ...``.

``PATH`` is a run folder (its ``adapter/`` and ``settings.json``), an ``adapter/`` folder or a
``checkpoint-<step>/`` folder (kept by ``RunSettings.keep_checkpoints``). The base policy, its quantization
and the test prompts' selection come from the run's ``settings.json`` (``policy`` overrides or, for an adapter
outside a run folder, supplies the policy); every other option defaults to the run's final evaluation, so
``uec-repro evaluate <run>`` repeats it: the same base, the same adapter weights and the same sampling seed
give the same ``correct`` counts as the run's ``eval.json`` (on the same machine and thread count).

The result has the format of the run's ``eval.json`` (:func:`uec_repro.training.eval_record`): ``task`` and
``n`` are the evaluation's, ``settings`` the run's (what trained the adapter), and an ``evaluated`` block
adds what was evaluated and how (path, adapter, checkpoint step, prompts, samples, temperature, tokens,
seed). It is written to ``<PATH>/eval-<task>-T<temperature>.json`` unless ``out`` names another file; the
run's own ``eval.json`` is only replaced when ``out`` names it.

Every argument is checked before a model is loaded; a :class:`ParameterError` names the option.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from .atomic import write_text_atomic
from .layout import ADAPTER_DIR, SETTINGS_FILE
from .validation import ParameterError, check_choice, check_float, check_int, check_writable_dir

__all__ = ["EvaluationPlan", "plan_evaluation", "reevaluate"]

ADAPTER_CONFIG = "adapter_config.json"  # peft's file: a folder with it (and its weights) is an adapter
ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")
CHECKPOINT_PREFIX = "checkpoint-"  # checkpoints.PREFIX (that module loads torch)
CHECKPOINT_STATE = "uec_state.json"  # checkpoints.STATE_FILE: written last, marks a checkpoint complete


@dataclass(frozen=True)
class EvaluationPlan:
    """What :func:`reevaluate` loads, evaluates and writes (all checked, nothing loaded yet)."""

    path: Path  # PATH as given
    adapter: Path
    run_dir: Path | None  # the run folder that holds settings.json, when there is one
    checkpoint_step: int | None
    settings: dict[str, Any]  # the run's settings.json ({} without one)
    policy: str
    quantization: str
    lora_r: int
    task: str
    prompts: int
    samples: int
    temperature: float
    max_new_tokens: int
    seed: int
    num_generations: int  # G of the run: the hard share's group size, as in its eval.json
    loaded_prompts: int  # test prompts loaded before the first ``prompts`` are taken, as run_training does
    threads: int
    out: Path


def _adapter_folder(path: Path) -> bool:
    return (path / ADAPTER_CONFIG).is_file() and any((path / name).is_file() for name in ADAPTER_WEIGHTS)


def _find_adapter(path: Path) -> tuple[Path, Path | None, int | None]:
    """(adapter folder, run folder or None, checkpoint step or None) for ``PATH``."""
    if not path.exists():
        raise ParameterError(
            f"PATH={str(path)!r} does not exist; give a run folder, its adapter/ or a checkpoint"
        )
    if not path.is_dir():
        raise ParameterError(
            f"PATH={str(path)!r} is not a folder; give a run folder, its adapter/ or a checkpoint"
        )
    step = None
    name = path.name
    if name.startswith(CHECKPOINT_PREFIX) and name[len(CHECKPOINT_PREFIX) :].isdigit():
        step = int(name[len(CHECKPOINT_PREFIX) :])
        if not (path / CHECKPOINT_STATE).is_file():
            raise ParameterError(
                f"PATH={str(path)!r} is a checkpoint that was cut off while being written (no "
                f"{CHECKPOINT_STATE}); evaluate a complete one"
            )
    if _adapter_folder(path):
        run_dir = path.parent if (path.parent / SETTINGS_FILE).is_file() else None
        return path, run_dir, step
    if _adapter_folder(path / ADAPTER_DIR):
        return path / ADAPTER_DIR, path, None
    checkpoints = sorted(p.name for p in path.glob(f"{CHECKPOINT_PREFIX}*") if _adapter_folder(p))
    hint = (
        f"; evaluate one of its checkpoints ({', '.join(checkpoints)})"
        if checkpoints
        else " (a run with save_adapter=False or method='base' has none)"
    )
    raise ParameterError(
        f"PATH={str(path)!r} holds no adapter (no {ADAPTER_DIR}/{ADAPTER_CONFIG} or {ADAPTER_CONFIG} with "
        f"its weights){hint}"
    )


def plan_evaluation(
    path: str | os.PathLike,
    *,
    task: str | None = None,
    n: int | None = None,
    samples: int | None = None,
    temperature: float | None = None,
    max_new_tokens: int | None = None,
    seed: int | None = None,
    policy: str | None = None,
    out: str | os.PathLike | None = None,
) -> EvaluationPlan:
    """Check ``uec-repro evaluate``'s arguments (``None``: the run's value) without loading anything."""
    from .models import LoraSettings, validate_policy_args
    from .tasks import HUB_TASKS, TASKS
    from .training import RunSettings

    adapter, run_dir, step = _find_adapter(Path(path))
    recorded: dict[str, Any] = {}
    if run_dir is not None:
        try:
            recorded = json.loads((run_dir / SETTINGS_FILE).read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise ParameterError(
                f"PATH={str(path)!r}: its run's {SETTINGS_FILE} cannot be read ({error})"
            ) from None
    defaults = {f.name: f.default for f in fields(RunSettings) if isinstance(f.default, str | int | float)}
    run = {**defaults, **recorded}  # a settings.json from before a field existed: that field's default
    if policy is None and "policy" not in recorded:
        raise ParameterError(
            f"--policy is needed: PATH={str(path)!r} is not in a run folder with a {SETTINGS_FILE}, so the "
            "base policy is unknown"
        )
    policy = run["policy"] if policy is None else policy
    if not isinstance(policy, str) or not policy.strip():
        raise ParameterError(f"--policy={policy!r} must be a zoo name, a folder or a hub id")
    task = check_choice("--task", run["task"] if task is None else task, TASKS)
    prompts = check_int("--n", run["eval_prompts"] if n is None else n, minimum=1)
    samples = check_int("--samples", run["eval_samples"] if samples is None else samples, minimum=1)
    temperature = check_float(
        "--temperature",
        run["eval_temperature"] if temperature is None else temperature,
        minimum=0.0,
        min_exclusive=True,
    )
    max_new_tokens = check_int(
        "--max-new-tokens",
        run["max_completion_length"] if max_new_tokens is None else max_new_tokens,
        minimum=1,
    )
    seed = check_int("--seed", run["seed"] if seed is None else seed, minimum=0)
    lora_r = check_int("lora_r", run["lora_r"], minimum=1)
    try:  # the policy's name or folder and what nf4 needs, as RunSettings checks them; nothing is loaded
        validate_policy_args(
            policy, quantization=run["quantization"], lora=LoraSettings(r=lora_r, alpha=2 * lora_r)
        )
    except ParameterError as error:
        raise ParameterError(str(error).replace("name_or_path=", "--policy=", 1)) from None
    if task in HUB_TASKS:
        from .tasks.hub import HUB_DATASETS, load_hub_rows, offline_mode

        splits = list(HUB_DATASETS[task].splits)
        if "test" not in splits:
            allowed = [t for t in TASKS if t not in HUB_TASKS or "test" in HUB_DATASETS[t].splits]
            raise ParameterError(f"--task={task!r} has no 'test' split (only {splits}); use one of {allowed}")
        if offline_mode():  # reads the cache only; DatasetUnavailableError says how to get the data
            load_hub_rows(task, "test", n=1)
    target = Path(out) if out is not None else Path(path) / f"eval-{task}-T{temperature:g}.json"
    if target.is_dir():
        raise ParameterError(f"--out={str(target)!r} is a folder; give a file name")
    check_writable_dir("--out", target.parent)
    return EvaluationPlan(
        path=Path(path),
        adapter=adapter,
        run_dir=run_dir,
        checkpoint_step=step,
        settings=recorded,
        policy=policy,
        quantization=run["quantization"],
        lora_r=lora_r,
        task=task,
        prompts=prompts,
        samples=samples,
        temperature=temperature,
        max_new_tokens=max_new_tokens,
        seed=seed,
        num_generations=run["num_generations"],
        loaded_prompts=max(prompts, run["validation_prompts"], run["probe_prompts"]),
        threads=run["threads"] or int(os.environ.get("UEC_REPRO_THREADS", "0")),
        out=target,
    )


def reevaluate(plan: EvaluationPlan) -> dict[str, Any]:
    """Load the base policy, apply the adapter, evaluate and write ``plan.out``; returns what was written."""
    import torch
    from peft import PeftModel
    from transformers import set_seed

    from .evaluation import evaluate_policy
    from .models import LoraSettings, load_policy
    from .tasks import load_task
    from .training import eval_options, eval_record

    started = time.perf_counter()
    if plan.threads:
        torch.set_num_threads(plan.threads)
    set_seed(plan.seed)
    # nf4 needs the k-bit preparation training had, which load_policy does only with an adapter: that fresh
    # adapter is taken off again (unload) before the trained one goes on
    lora = None if plan.quantization == "none" else LoraSettings(r=plan.lora_r, alpha=2 * plan.lora_r)
    model, tokenizer = load_policy(plan.policy, quantization=plan.quantization, lora=lora)
    if lora is not None:
        model = model.unload()
    model = PeftModel.from_pretrained(model, str(plan.adapter), is_trainable=False)
    test = load_task(plan.task, "test", n=plan.loaded_prompts, tokenizer=tokenizer)
    evaluation = evaluate_policy(
        model,
        tokenizer,
        test.select(range(min(plan.prompts, len(test)))),
        n=plan.samples,
        **eval_options(plan.samples, plan.num_generations),
        temperature=plan.temperature,
        max_new_tokens=plan.max_new_tokens,
        seed=plan.seed,
    )
    record = eval_record(
        plan.settings or {"policy": plan.policy}, evaluation, started=started, task=plan.task
    )
    record["evaluated"] = {
        "path": str(plan.path),
        "adapter": str(plan.adapter),
        "checkpoint_step": plan.checkpoint_step,
        "policy": plan.policy,
        "prompts": plan.prompts,
        "samples": plan.samples,
        "temperature": plan.temperature,
        "max_new_tokens": plan.max_new_tokens,
        "seed": plan.seed,
    }
    plan.out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(plan.out, json.dumps(record, indent=1))
    return record
