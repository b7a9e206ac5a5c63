"""One training run, as the ``01_train`` notebook and the batch runner do it: load, train, evaluate, write.

>>> settings = RunSettings(method="uec_rl", steps=30, seed=0, output_dir="runs/manual/uec_rl/seed0")
>>> result = run_training(settings)

:class:`RunSettings` holds the notebook's parameters (plain values, so papermill can inject them) and is
validated on creation, including the :class:`~uec_repro.config.UECConfig` it builds, so a bad value fails
before any model is loaded. A run writes into ``output_dir``:

* ``metrics.jsonl``: one row per training step (written by :class:`~uec_repro.trainer.UECTrainer`), after a
  step-0 row with the probe of the initial policy;
* ``probe.jsonl``: the entropy probe's per-prompt values, one row per probe (see
  :class:`uec_repro.callbacks.Probe`);
* ``eval.json``: the final evaluation on held-out test prompts (Pass@k for powers of two up to
  ``eval_samples``, mean@n, maj@n, hard share, token entropy, and the per-prompt correct counts, from which
  Pass@k for every k <= n is recomputed later), plus timing and peak memory;
* ``adapter/``: the trained LoRA adapter (safetensors), unless ``save_adapter`` is off;
* ``settings.json``: these settings, so that a rerun can tell whether it continues the same run;
* ``checkpoint-<step>/``: while training, the newest resumable checkpoint (every ``checkpoint_every`` steps;
  see :mod:`uec_repro.checkpoints`); once ``eval.json`` is written, ``keep_checkpoints`` decides what stays:
  none, the newest (the default) or all of them (then none is removed during the run either). A checkpoint
  holds its adapter: ``uec-repro evaluate`` (:mod:`uec_repro.reevaluate`) evaluates it, or the run's
  ``adapter/``, again.

Rerunning an unfinished run (no ``eval.json``) with the same settings resumes it from its newest complete
checkpoint, or starts it over when it has none; a finished run, or one with other settings, is refused unless
``overwrite`` is set. Files are written atomically: an interrupted run never leaves a half-written file that
is read back as valid.

Method ``"base"`` trains nothing: it evaluates the initial policy, the reference point of every comparison.

Several processes: ``torchrun --standalone --nproc_per_node N -m uec_repro train method=uec_rl ...`` (or, on N
GPUs, ``accelerate launch --num_processes N -m uec_repro train ...``) trains data-parallel.
``prompts_per_step`` stays the global number of prompts per step (each process generates
``prompts_per_step / N`` of them), so a run's batch, B0 and results do not depend on N beyond sampling noise,
and an unfinished run resumes with any N. The main process prepares ``output_dir`` and writes the files; the
final evaluation is shared (each process evaluates every N-th prompt); the other processes return ``None``.

Importing this module loads neither torch nor TRL (the runner and the notebooks' parameter cells validate
:class:`RunSettings` in a second); the functions that need them import them where they run.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .atomic import write_text_atomic
from .layout import ADAPTER_DIR, BASE_METHOD, EVAL_FILE, METRICS_FILE, PROBE_FILE, SETTINGS_FILE
from .settings import RESUMABLE_CHANGES, TENSORBOARD_DIR, RunSettings, launched_processes
from .validation import ParameterError

__all__ = ["RunSettings", "eval_options", "eval_record", "run_training", "training_dataset"]


def training_dataset(settings: RunSettings, tokenizer: Any = None):
    """The run's training prompts: ``steps x prompts_per_step`` rows of the task's train split, cycling
    through the split (a fresh order each epoch, seeded by the run's seed) when it is shorter than that."""
    from .tasks import load_task

    n = settings.steps * settings.prompts_per_step
    return load_task(settings.task, "train", n=n, seed=settings.seed, tokenizer=tokenizer, cycle=True)


def run_training(settings: RunSettings) -> dict[str, Any] | None:
    """Train (unless ``method='base'``), evaluate on held-out test prompts, write the run's files; returns the
    content of ``eval.json`` (``None`` in the processes other than the main one of a multi-process launch)."""
    import torch
    from transformers import PrinterCallback, set_seed

    from .checkpoints import checkpoint_step, prune_checkpoints
    from .faults import install_fault_points
    from .models import LoraSettings, cast_trainable_to_fp32, load_policy
    from .rewards import accuracy_reward
    from .tasks import load_task
    from .trainer import UECTrainer

    out = Path(settings.output_dir)
    processes, rank = launched_processes(), 0
    if processes > 1:
        from accelerate import PartialState
        from accelerate.utils import broadcast_object_list

        state = PartialState(
            cpu=not torch.cuda.is_available()
        )  # the process group, before anything is written
        rank = state.process_index
        prepared: list[Any] = [None]
        if state.is_main_process:
            try:
                prepared = [_prepare_output_dir(settings, out, (METRICS_FILE, PROBE_FILE))]
            except ParameterError as error:  # every process stops with it
                prepared = [error]
        checkpoint = broadcast_object_list(prepared)[0]
        if isinstance(checkpoint, ParameterError):
            raise checkpoint
    else:
        checkpoint = _prepare_output_dir(settings, out, (METRICS_FILE, PROBE_FILE))
    resumed_from = checkpoint_step(checkpoint) if checkpoint else 0
    threads = settings.threads or int(os.environ.get("UEC_REPRO_THREADS", "0"))
    if threads:
        torch.set_num_threads(threads)
    set_seed(settings.seed)
    started = time.perf_counter()
    model, tokenizer = load_policy(
        settings.policy,
        quantization=settings.quantization,
        lora=LoraSettings(r=settings.lora_r, alpha=2 * settings.lora_r),
    )
    test = load_task(
        settings.task,
        "test",
        n=max(settings.eval_prompts, settings.validation_prompts, settings.probe_prompts),
        tokenizer=tokenizer,
    )
    train_seconds = 0.0
    if settings.method != BASE_METHOD:
        config = settings.trainer_config()
        train = training_dataset(settings, tokenizer)
        if len(set(train["id"])) < len(train) and "shuffle_dataset" not in settings.overrides:
            config.shuffle_dataset = False  # each epoch is already in a fresh order; TRL's would mix epochs
        trainer = UECTrainer(
            model=model,
            reward_funcs=[accuracy_reward],
            args=config,
            train_dataset=train,
            processing_class=tokenizer,
            validation_dataset=test.select(range(min(settings.validation_prompts, len(test)))),
            probe_dataset=test.select(range(min(settings.probe_prompts, len(test)))),
        )
        trainer.remove_callback(PrinterCallback)  # per-step rows go to metrics.jsonl
        from transformers.integrations import TensorBoardCallback

        from .callbacks import Progress

        for callback in trainer.callback_handler.callbacks:
            if isinstance(callback, TensorBoardCallback):  # report_to="tensorboard"
                callback.logging_dir = str(out / TENSORBOARD_DIR)
        if settings.show_progress():
            trainer.add_callback(Progress())
        install_fault_points(trainer)  # only with UEC_REPRO_FAULT set (tests, make stress)
        # fp32 master weights on every device: TRL casts adapters to bf16 on 4-bit bases, where small updates
        # round away (and bf16 is slow on CPU); with bf16=True HF/accelerate autocast still computes in bf16
        cast_trainable_to_fp32(trainer.model)
        train_started = time.perf_counter()
        trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
        train_seconds = time.perf_counter() - train_started
        model = trainer.model
        if settings.save_adapter and rank == 0:
            staging = out / ".adapter.tmp"
            shutil.rmtree(staging, ignore_errors=True)
            model.save_pretrained(staging)
            shutil.rmtree(out / ADAPTER_DIR, ignore_errors=True)
            staging.rename(out / ADAPTER_DIR)
    evaluation = _evaluate(
        model, tokenizer, test.select(range(min(settings.eval_prompts, len(test)))), settings, rank, processes
    )
    if rank != 0:
        return None
    result = eval_record(
        asdict(settings),
        evaluation,
        started=started,
        train_seconds=train_seconds,
        resumed_from_step=resumed_from,
        processes=processes,
    )
    write_text_atomic(out / EVAL_FILE, json.dumps(result, indent=1))
    prune_checkpoints(out, settings.keep_checkpoints)
    return result


def eval_options(samples: int, num_generations: int) -> dict[str, Any]:
    """The ``ks`` (powers of two up to ``samples``) and ``hard_group_size`` (G, at most ``samples``) of an
    evaluation with ``samples`` per prompt: which pass@k and hard share ``eval.json``'s summary holds."""
    return {
        "ks": [k for k in (1, 2, 4, 8, 16, 32, 64, 128, 256) if k <= samples],
        "hard_group_size": min(num_generations, samples),
    }


def eval_record(
    settings: dict[str, Any],
    evaluation,
    *,
    started: float,
    task: str | None = None,
    train_seconds: float = 0.0,
    resumed_from_step: int = 0,
    processes: int = 1,
) -> dict[str, Any]:
    """The content of an ``eval.json``: ``evaluation`` (an :class:`~uec_repro.evaluation.EvalResult`) of the
    run with ``settings`` (a :class:`RunSettings` as a dict) on ``task`` (default: the run's), with the
    timing of this attempt (``started``: its :func:`time.perf_counter`) and the process's peak memory. A
    setting ``settings`` lacks (an adapter evaluated without its run's settings.json) is recorded as None."""
    steps_left = settings.get("steps", 0) - resumed_from_step
    return {
        "method": settings.get("method"),
        "policy": settings.get("policy"),
        "task": task or settings.get("task"),
        "seed": settings.get("seed"),
        "summary": evaluation.summary,
        "n": evaluation.summary["samples_per_prompt"],
        "correct": [p["correct"] for p in evaluation.per_prompt],
        "difficulty": [p["difficulty"] for p in evaluation.per_prompt],
        "resumed_from_step": resumed_from_step,
        "processes": processes,
        # of this attempt: a resumed run trains the steps after its checkpoint
        "train_seconds": train_seconds,
        "seconds_per_step": train_seconds / steps_left if train_seconds and steps_left > 0 else None,
        "total_seconds": time.perf_counter() - started,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "settings": settings,
    }


def _evaluate(model, tokenizer, prompts, settings: RunSettings, rank: int, processes: int):
    """The final evaluation of ``prompts``. With several processes, each evaluates every ``processes``-th
    prompt from its ``rank`` on (sampling seeded with ``seed + rank``), and the per-prompt records come back
    in order."""
    from .evaluation import EvalResult, evaluate_policy, summarize

    options = eval_options(settings.eval_samples, settings.num_generations)
    ks, hard_group_size = options["ks"], options["hard_group_size"]
    share = prompts.select(range(rank, len(prompts), processes))
    per_prompt = (
        evaluate_policy(
            model,
            tokenizer,
            share,
            n=settings.eval_samples,
            ks=ks,
            hard_group_size=hard_group_size,
            temperature=settings.eval_temperature,
            max_new_tokens=settings.max_completion_length,
            seed=settings.seed + rank,
        ).per_prompt
        if len(share)
        else []
    )
    if processes > 1:
        from accelerate.utils import gather_object

        parts = gather_object([per_prompt])  # one list per process
        per_prompt = [parts[index % processes][index // processes] for index in range(len(prompts))]
    return EvalResult(summarize(per_prompt, ks=ks, hard_group_size=hard_group_size), per_prompt)


def _prepare_output_dir(settings: RunSettings, out: Path, step_files: tuple[str, ...]) -> Path | None:
    """Check ``output_dir`` against what it holds and get it ready; returns the checkpoint to resume from."""
    from .checkpoints import prepare_resume, remove_checkpoints

    finished = (out / EVAL_FILE).exists()
    recorded = json.loads((out / SETTINGS_FILE).read_text()) if (out / SETTINGS_FILE).exists() else None
    current = asdict(settings)
    changed = sorted(
        name
        for name in current
        if name not in RESUMABLE_CHANGES and recorded is not None and recorded.get(name) != current[name]
    )
    if settings.overwrite:
        for name in (*step_files, EVAL_FILE, SETTINGS_FILE):
            (out / name).unlink(missing_ok=True)
        remove_checkpoints(out)
    elif finished:
        raise ParameterError(
            f"output_dir={settings.output_dir!r} already holds a finished run; choose another "
            "output_dir or set overwrite=True"
        )
    elif changed or (recorded is None and (out / step_files[0]).exists()):
        raise ParameterError(
            f"output_dir={settings.output_dir!r} holds an unfinished run with other settings "
            f"({', '.join(changed) or 'unknown'}); rerun it with the same settings to resume, "
            "or set overwrite=True to start over"
        )
    out.mkdir(parents=True, exist_ok=True)
    checkpoint = (
        None
        if settings.overwrite
        else prepare_resume(out, *step_files, keep_all=settings.keep_checkpoints == "all")
    )
    write_text_atomic(out / SETTINGS_FILE, json.dumps(current, indent=1))
    return checkpoint
