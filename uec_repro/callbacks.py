"""The measurements around a training step, as HF ``TrainerCallback``s that
:class:`~uec_repro.trainer.UECTrainer` installs: the entropy probe, in-training validation, time and memory,
and the ``metrics.jsonl`` writer.

Each step's values are recorded with ``trainer.record`` and reach the step's row through TRL's ``log``. The
probe and validation run after the step's last optimizer step (``on_step_end``), so step s's values measure
the policy after update s; the probe of the initial policy is the step-0 row. :class:`Progress`, the
per-step progress bar, is installed by :func:`uec_repro.training.run_training` (``RunSettings.progress``).
"""

from __future__ import annotations

import contextlib
import json
import random
import resource
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm
from transformers import TrainerCallback

from .evaluation import evaluate_policy
from .layout import METRICS_FILE, PROBE_FILE

__all__ = ["MetricsFile", "Probe", "Progress", "StepResources", "Validation", "append_row"]

TIMED_PHASES = ("generation", "scoring", "exploration", "update", "replay", "validation", "probe")


@contextlib.contextmanager
def isolated_rng() -> Iterator[None]:
    """Every random state the measurements may touch, restored on exit, so that training draws as if they had
    not run: torch's CPU generator and every CUDA device's (``evaluate_policy`` seeds them all with
    ``torch.manual_seed``; the devices are named, so ``fork_rng`` does not warn on multi-GPU machines), and
    Python's and NumPy's global generators."""
    import numpy as np

    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=devices, device_type="cuda"):
            yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)


def append_row(path: Path, row: dict[str, Any]) -> None:
    """Append one JSON row to ``path`` (kept if the run is interrupted)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        handle.write(json.dumps(row) + "\n")


class MetricsFile(TrainerCallback):
    """Every step's logged row, appended to ``<output_dir>/metrics.jsonl`` by the main process (HF's step rows
    carry ``loss``; the end-of-training summary does not)."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs and state.is_world_process_zero:
            append_row(Path(args.output_dir) / METRICS_FILE, {"step": state.global_step, **logs})


class Probe(TrainerCallback):
    """The entropy probe: the policy measured on fixed prompts (the same draws for every method and seed) at
    step 0, every ``probe_every`` steps and at the last step, in the main process."""

    def __init__(self, trainer, dataset) -> None:
        self.trainer, self.dataset = trainer, dataset

    def due(self, step: int) -> bool:
        every = self.trainer.args.probe_every
        return (
            every > 0
            and self.trainer.accelerator.is_main_process
            and (step % every == 0 or step == self.trainer.state.max_steps)
        )

    def on_step_begin(self, args, state, control, **kwargs):
        if state.global_step == 0 and self.due(0):  # a fresh run: the initial policy is the step-0 row
            started = time.perf_counter()
            values = self.measure(0)
            row = {"step": 0, **values, "time/probe": time.perf_counter() - started}
            append_row(Path(args.output_dir) / METRICS_FILE, row)

    def on_step_end(self, args, state, control, **kwargs):
        if self.due(state.global_step):
            with self.trainer.timed("probe"):
                for name, value in self.measure(state.global_step).items():
                    self.trainer.record(name, value)

    def measure(self, step: int) -> dict[str, float]:
        """``probe_samples`` completions of every probe prompt at T = 1 and the run's top-p, drawn with
        ``probe_seed`` inside a forked random state (training continues as if no probe had run). Appends the
        per-prompt sums to ``probe.jsonl`` and returns the token-weighted means: ``probe/entropy``
        (full-distribution token entropy), ``probe/sampled_nll`` (-log p of the sampled tokens),
        ``probe/accuracy`` and ``probe/mean_length``."""
        trainer, samples = self.trainer, self.trainer.args.probe_samples
        with isolated_rng():
            records = evaluate_policy(
                trainer.model,
                trainer.processing_class,
                self.dataset,
                n=samples,
                ks=(1,),
                hard_group_size=1,
                temperature=1.0,
                top_p=trainer.args.top_p,
                max_new_tokens=trainer.max_completion_length,
                seed=trainer.args.probe_seed,
            ).per_prompt
        columns = {
            name: [p[name] for p in records] for name in ("entropy_sum", "nll_sum", "tokens", "correct")
        }
        row = {"step": step, "samples": samples, "prompt_ids": [p["id"] for p in records], **columns}
        append_row(Path(trainer.args.output_dir) / PROBE_FILE, row)
        tokens, completions = max(sum(columns["tokens"]), 1), samples * len(records)
        return {
            "probe/entropy": sum(columns["entropy_sum"]) / tokens,
            "probe/sampled_nll": sum(columns["nll_sum"]) / tokens,
            "probe/accuracy": sum(columns["correct"]) / completions,
            "probe/mean_length": sum(columns["tokens"]) / completions,
        }


class Validation(TrainerCallback):
    """Every ``validation_every`` steps, accuracy with one sample per prompt at ``validation_temperature``, as
    in the authors' code, in the main process."""

    def __init__(self, trainer, dataset) -> None:
        self.trainer, self.dataset = trainer, dataset

    def on_step_end(self, args, state, control, **kwargs):
        every = args.validation_every
        if not every or state.global_step % every or not self.trainer.accelerator.is_main_process:
            return
        with self.trainer.timed("validation"), isolated_rng():  # training keeps its draws
            result = evaluate_policy(
                self.trainer.model,
                self.trainer.processing_class,
                self.dataset,
                n=1,
                ks=(1,),
                hard_group_size=1,
                temperature=args.validation_temperature,
                max_new_tokens=self.trainer.max_completion_length,
                seed=args.seed,
            )
        self.trainer.record("validation/accuracy", result.summary["pass@1"])
        self.trainer.record("validation/token_entropy", result.summary["token_entropy"])


class StepResources(TrainerCallback):
    """``time/`` (the step's phases, the whole step and the generation throughput) and ``memory/`` (peak RSS,
    and CUDA) for every step; installed after the other measurements, so their time counts."""

    def __init__(self, trainer) -> None:
        self.trainer, self.started = trainer, 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        self.trainer.timers.clear()
        self.started = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        timers, record = self.trainer.timers, self.trainer.record
        for name in TIMED_PHASES:
            record(f"time/{name}", timers[name])
        record("time/step", time.perf_counter() - self.started)
        if timers["generation"] > 0:
            record("time/tokens_per_second", timers["generated_tokens"] / timers["generation"])
        record("memory/peak_rss_mb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        if torch.cuda.is_available():
            record("memory/peak_cuda_mb", torch.cuda.max_memory_allocated() / 2**20)


class Progress(TrainerCallback):
    """A progress bar over the run's steps (``tqdm.auto``: stderr, or a widget in Jupyter), main process only.
    Its postfix shows, from each logged row, the step's ``reward`` (the mean over its completions),
    ``probe/entropy`` (the latest measured: every ``probe_every`` steps and the last) and ``uec/hard_prompts``
    (out of ``uec/prompts``)."""

    def __init__(self, **tqdm_args: Any) -> None:
        self.bar, self.shown, self.tqdm_args = None, 0, tqdm_args
        self.postfix: dict[str, str] = {}

    def on_step_begin(self, args, state, control, **kwargs):
        # created at the first step, not in on_train_begin: HF loads a resumed run's state after that, and a
        # resumed run's bar starts at its checkpoint's step
        if self.bar is None and state.is_world_process_zero:
            self.bar = tqdm(
                total=state.max_steps,
                initial=state.global_step,
                desc="training",
                unit="step",
                dynamic_ncols=True,
                **self.tqdm_args,
            )
            self.shown = state.global_step

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update(state.global_step - self.shown)
            self.shown = state.global_step

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.bar is None or not logs:
            return
        for name in ("reward", "probe/entropy"):
            if _is_number(logs.get(name)):
                self.postfix[name] = f"{logs[name]:.3f}"
        hard, prompts = logs.get("uec/hard_prompts"), logs.get("uec/prompts")
        if _is_number(hard):
            self.postfix["hard_prompts"] = f"{hard:g}/{prompts:g}" if _is_number(prompts) else f"{hard:g}"
        order = ("reward", "probe/entropy", "hard_prompts")
        if self.postfix:
            self.bar.set_postfix({name: self.postfix[name] for name in order if name in self.postfix})

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
