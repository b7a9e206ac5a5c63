"""What every benchmark shares: its command line, trainers built like the ``default`` preset's runs, the
interleaved runner that times several trainers in one process, and the result files.

Result files (``benchmarks/results/<name>.json`` and ``<name>.csv``): the JSON holds the mode, the settings,
the environment (hardware, versions, torch threads, CUDA or "no CUDA"), the summaries (median, quartiles,
min, max over repetitions) and the goal; the CSV holds one row per raw measurement.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import threading
import time
import tomllib
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

from .profiling import measurement_environment

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_PRESET = ROOT / "uec_repro" / "experiments" / "presets" / "default.toml"
MODES = ("quick", "full")
# run settings of the default preset that shape a training step (evaluation and validation are not timed)
STEP_SETTINGS = ("policy", "task", "prompts_per_step", "num_generations", "max_completion_length")


class BenchmarkError(ValueError):
    """A benchmark's command line or inputs are invalid; the message names the parameter."""


def parse_args(
    description: str,
    argv: list[str] | None = None,
    extra: Callable[[argparse.ArgumentParser], None] | None = None,
) -> argparse.Namespace:
    """``--mode quick|full``, ``--threads N`` (torch CPU threads, set here before torch is imported) and
    ``--out FOLDER``; checked before any compute."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--mode", default="quick", help=f"one of {', '.join(MODES)} (default quick)")
    parser.add_argument("--threads", default="1", help="torch CPU threads, an integer >= 1 (default 1)")
    parser.add_argument("--out", default=str(RESULTS_DIR), help="folder for the result files")
    if extra is not None:
        extra(parser)
    args = parser.parse_args(argv)
    check_common(args)
    return args


def check_common(args: argparse.Namespace) -> None:
    if args.mode not in MODES:
        raise BenchmarkError(f"--mode={args.mode!r} is not allowed; choose one of {', '.join(MODES)}")
    try:
        threads = int(args.threads)
    except ValueError:
        threads = 0
    if threads < 1:
        raise BenchmarkError(f"--threads={args.threads!r} must be an integer >= 1")
    args.threads = threads
    os.environ["OMP_NUM_THREADS"] = str(threads)  # before torch is imported, so every thread it starts agrees
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    import torch

    torch.set_num_threads(threads)


def preset_parameters(preset: Path = DEFAULT_PRESET) -> dict[str, Any]:
    """The step-shaping run parameters of a preset (``policy``, ``task``, prompts per step, G, length)."""
    parameters = tomllib.loads(preset.read_text())["parameters"]
    return {name: parameters[name] for name in STEP_SETTINGS}


# --------------------------------------------------------------------------------------------------
# Trainers
# --------------------------------------------------------------------------------------------------
def load_model(policy: str = "toy", seed: int = 0, quantization: str = "none", lora_r: int = 16):
    """A policy with a fresh LoRA adapter, initialised from ``seed`` (same seed, same adapter)."""
    from transformers import set_seed

    from uec_repro.models import LoraSettings, load_policy

    set_seed(seed)
    return load_policy(policy, quantization=quantization, lora=LoraSettings(r=lora_r, alpha=2 * lora_r))


def run_settings(
    method: str, steps: int, output_dir: Path, *, seed: int = 0, quantization: str = "none", **parameters: Any
):
    """The :class:`~uec_repro.training.RunSettings` of a timed run: the default preset's step settings unless
    ``parameters`` say otherwise, no validation, no checkpoints, no adapter saved."""
    from uec_repro.training import RunSettings

    known = {f.name for f in fields(RunSettings)}
    unknown = sorted(set(parameters) - known)
    if unknown:
        raise BenchmarkError(f"unknown run parameter(s) {unknown}; allowed: {sorted(known)}")
    return RunSettings(
        **{
            **preset_parameters(),
            "validation_every": 0,
            "checkpoint_every": 0,
            **parameters,
            "method": method,
            "steps": steps,
            "seed": seed,
            "quantization": quantization,
            "output_dir": str(output_dir),
            "overwrite": True,
            "save_adapter": False,
        }
    )


def _policy_and_data(settings: Any):
    from uec_repro.tasks import load_task

    model, tokenizer = load_model(settings.policy, settings.seed, settings.quantization, settings.lora_r)
    train = load_task(
        settings.task,
        "train",
        n=settings.steps * settings.prompts_per_step,
        seed=settings.seed,
        tokenizer=tokenizer,
    )
    return model, tokenizer, train


def _ready(trainer: Any) -> Any:
    import torch
    from transformers import PrinterCallback

    from uec_repro.models import cast_trainable_to_fp32

    trainer.remove_callback(PrinterCallback)
    if not torch.cuda.is_available():
        cast_trainable_to_fp32(trainer.model)  # as run_training does
    return trainer


def uec_trainer(settings: Any, trainer_class: type | None = None, *, probe: bool = False):
    """A ``UECTrainer`` (or ``trainer_class``, a subclass) built as ``01_train`` builds it; with ``probe``,
    with the entropy probe on ``settings.probe_prompts`` test prompts (as ``run_training``), else without."""
    from uec_repro.rewards import accuracy_reward
    from uec_repro.tasks import load_task
    from uec_repro.trainer import UECTrainer

    model, tokenizer, train = _policy_and_data(settings)
    probe_dataset = (
        load_task(settings.task, "test", n=settings.probe_prompts, tokenizer=tokenizer) if probe else None
    )
    return _ready(
        (trainer_class or UECTrainer)(
            model=model,
            reward_funcs=[accuracy_reward],
            args=settings.trainer_config(),
            train_dataset=train,
            processing_class=tokenizer,
            probe_dataset=probe_dataset,
        )
    )


# fields GRPOConfig derives from others in __post_init__, or that name files; set for the stock step structure
DERIVED_FIELDS = (
    "output_dir",
    "logging_dir",
    "generation_batch_size",
    "steps_per_generation",
    "per_device_train_batch_size",
    "max_steps",
)


def stock_config(uec_config: Any, output_dir: Path):
    """TRL's ``GRPOConfig`` with every value of ``uec_config`` (a ``UECConfig``) that TRL knows, and TRL's own
    step structure for the same work: a UEC step of B0 completions and ``updates_per_batch`` optimizer steps
    is TRL's generation batch of B0 split into ``updates_per_batch`` steps (``steps_per_generation``). Raises
    when any shared field would differ."""
    from trl import GRPOConfig

    names = [f.name for f in fields(GRPOConfig) if f.init and f.name not in (*DERIVED_FIELDS, "use_cpu")]
    reference = GRPOConfig(output_dir=str(output_dir), use_cpu=uec_config.use_cpu)
    values = {
        name: getattr(uec_config, name)
        for name in names
        if getattr(uec_config, name) != getattr(reference, name)
    }
    updates = uec_config.updates_per_batch
    config = GRPOConfig(
        output_dir=str(output_dir),
        use_cpu=uec_config.use_cpu,
        **values,
        per_device_train_batch_size=uec_config.per_device_train_batch_size // updates,
        steps_per_generation=updates,
        max_steps=uec_config.max_steps * updates,
    )
    different = [name for name in names if getattr(config, name) != getattr(uec_config, name)]
    if different:
        raise BenchmarkError(f"stock GRPOConfig differs from the UECConfig in {different}")
    return config


def stock_trainer(settings: Any, output_dir: Path):
    """TRL's stock ``GRPOTrainer`` on the same policy (a fresh copy with the same adapter seed), data and
    config as :func:`uec_trainer` builds from ``settings``."""
    from trl import GRPOTrainer

    from uec_repro.rewards import accuracy_reward

    model, tokenizer, train = _policy_and_data(settings)
    return _ready(
        GRPOTrainer(
            model=model,
            reward_funcs=[accuracy_reward],
            args=stock_config(settings.trainer_config(), output_dir),
            train_dataset=train,
            processing_class=tokenizer,
        )
    )


# --------------------------------------------------------------------------------------------------
# Interleaved timing
# --------------------------------------------------------------------------------------------------
class Interleaver:
    """Turns for named workers, in a fixed rotation: one runs while the others wait; a finished worker leaves
    the rotation. Records the wall time of every turn."""

    def __init__(self, order: list[str]) -> None:
        self.order = list(order)
        self.durations: dict[str, list[float]] = {name: [] for name in order}
        self._turn = 0
        self._finished: set[str] = set()
        self._started: dict[str, float] = {}
        self._condition = threading.Condition()

    def begin(self, name: str) -> None:
        """End ``name``'s current turn if it holds one, then wait for its next turn and start timing it."""
        self.end(name)
        with self._condition:
            self._condition.wait_for(lambda: self.order[self._turn] == name)
        self._started[name] = time.perf_counter()

    def end(self, name: str) -> None:
        started = self._started.pop(name, None)
        if started is None:
            return
        self.durations[name].append(time.perf_counter() - started)
        with self._condition:
            self._advance()

    def finish(self, name: str) -> None:
        self.end(name)
        with self._condition:
            self._finished.add(name)
            if self.order[self._turn] == name:
                self._advance()

    def _advance(self) -> None:
        for _ in self.order:
            self._turn = (self._turn + 1) % len(self.order)
            if self.order[self._turn] not in self._finished:
                break
        self._condition.notify_all()


def run_interleaved(
    trainers: dict[str, Any], steps_per_turn: dict[str, int] | None = None
) -> dict[str, list[float]]:
    """Train every trainer (``trainer.train()``, each in a thread), one turn at a time in rotation: a turn is
    ``steps_per_turn[name]`` of its HF steps (default 1), timed from the start of its first step to the start
    of the next turn (so it includes the loop's logging), the last turn to the end of training.
    Returns each trainer's turn times, in order."""
    import torch
    from transformers import TrainerCallback

    steps_per_turn = steps_per_turn or {}
    interleaver = Interleaver(list(trainers))

    class Turns(TrainerCallback):
        def __init__(self, name: str) -> None:
            self.name, self.every = name, steps_per_turn.get(name, 1)

        def on_step_begin(self, args, state, control, **kwargs):
            if state.global_step % self.every == 0:
                interleaver.begin(self.name)

        def on_train_end(self, args, state, control, **kwargs):
            interleaver.finish(self.name)

    errors: dict[str, BaseException] = {}
    threads_setting = torch.get_num_threads()

    def work(name: str, trainer: Any) -> None:
        torch.set_num_threads(threads_setting)  # a thread's own setting starts at the default
        try:
            trainer.train()
        except BaseException as error:  # noqa: BLE001 - re-raised in the caller's thread
            errors[name] = error
        finally:
            interleaver.finish(name)

    for name, trainer in trainers.items():
        trainer.add_callback(Turns(name))
    workers = [threading.Thread(target=work, args=item, name=f"bench-{item[0]}") for item in trainers.items()]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if errors:
        name, error = next(iter(errors.items()))
        raise RuntimeError(f"trainer {name!r} failed during the interleaved run") from error
    return interleaver.durations


def interleave_calls(calls: dict[str, Callable[[], Any]], repetitions: int) -> dict[str, list[float]]:
    """Time each call ``repetitions`` times, interleaved; the order alternates (A B, B A, ...) so that neither
    always runs first."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    names = list(calls)
    for repetition in range(repetitions):
        for name in names if repetition % 2 == 0 else names[::-1]:
            started = time.perf_counter()
            calls[name]()
            times[name].append(time.perf_counter() - started)
    return times


def read_metrics(trainer: Any) -> list[dict[str, Any]]:
    """The rows a ``UECTrainer`` wrote to its ``metrics.jsonl``."""
    from uec_repro.layout import METRICS_FILE

    return [
        json.loads(line) for line in (Path(trainer.args.output_dir) / METRICS_FILE).read_text().splitlines()
    ]


# --------------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------------
def relative_record(record: Any) -> Any:
    """``record`` with every absolute path under the repository made relative (a committed record holds no
    machine path)."""
    from uec_repro.cli import relative_paths

    return relative_paths(record, ROOT)


def write_results(
    out: str | Path, name: str, mode: str, record: dict[str, Any], rows: list[dict[str, Any]]
) -> Path:
    """``<out>/<name>.json`` (``record`` plus name, mode, command and environment) and ``<out>/<name>.csv``
    (``rows``, one raw measurement each). Returns the JSON path."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    from uec_repro.cli import relative_paths

    document = {
        "benchmark": name,
        "mode": mode,
        "command": " ".join([Path(sys.argv[0]).name, *relative_paths(sys.argv[1:], ROOT)]),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "environment": measurement_environment(),
        **record,
    }
    document = relative_paths(document, ROOT)  # a committed record holds no machine path
    path = folder / f"{name}.json"
    path.write_text(json.dumps(document, indent=1, default=str) + "\n")
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with (folder / f"{name}.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path
