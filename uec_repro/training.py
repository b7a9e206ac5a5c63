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
  see :mod:`uec_repro.checkpoints`), removed once ``eval.json`` is written.

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
import warnings
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .atomic import write_text_atomic
from .defaults import (
    EXPLORATION_GROUP_FACTOR,
    EXPLORATION_TEMPERATURE,
    LEARNING_RATE,
    REPLAY_CAPACITY,
    REPLAY_FREQUENCY,
)
from .layout import ADAPTER_DIR, BASE_METHOD, EVAL_FILE, METRICS_FILE, PROBE_FILE, SETTINGS_FILE
from .validation import ParameterError, check_bool, check_choice, check_float, check_int, check_writable_dir

# RunSettings fields that default (None) to UECConfig's value
CONFIG_DEFAULTED = (
    "exploration_generations",
    "exploration_temperature",
    "replay_capacity",
    "replay_frequency",
    "learning_rate",
)

__all__ = ["RunSettings", "run_training"]

# settings that do not change a run's results: a rerun may differ in them and still resume
RESUMABLE_CHANGES = ("threads", "overwrite", "checkpoint_every")


@dataclass
class RunSettings:
    """Parameters of one run (field help text is the documentation; ``None`` means the method's default)."""

    method: str = field(
        default="uec_rl",
        metadata={
            "help": "A method of uec_repro.config.METHODS, or 'base' (no "
            "training: evaluate the initial policy)."
        },
    )
    policy: str = field(
        default="toy",
        metadata={
            "help": "Policy from the zoo ('toy', 'toy-geometry', 'smollm2-135m'), a local folder or a hub id."
        },
    )
    task: str = field(
        default="arith", metadata={"help": "Task of uec_repro.tasks.TASKS (train and test splits)."}
    )
    seed: int = field(
        default=0, metadata={"help": "Seed of data order, sampling and adapter initialisation."}
    )
    steps: int = field(default=30, metadata={"help": "Training steps (one rollout batch each)."})
    prompts_per_step: int = field(
        default=8, metadata={"help": "Prompts per step, over all processes; B0 = prompts x G completions."}
    )
    num_generations: int = field(default=8, metadata={"help": "G, completions per prompt."})
    max_completion_length: int = field(default=48, metadata={"help": "Generation budget in tokens."})
    exploration_generations: int | None = field(
        default=None, metadata={"help": f"G' (None: {EXPLORATION_GROUP_FACTOR} x G)."}
    )
    exploration_temperature: float | None = field(
        default=None, metadata={"help": f"t' (None: {EXPLORATION_TEMPERATURE})."}
    )
    replay_capacity: float | None = field(
        default=None, metadata={"help": f"s' as a multiple of B0 (None: {REPLAY_CAPACITY:g})."}
    )
    replay_frequency: int | None = field(
        default=None, metadata={"help": f"f_replay in steps (None: {REPLAY_FREQUENCY})."}
    )
    learning_rate: float | None = field(
        default=None, metadata={"help": f"AdamW learning rate (None: {LEARNING_RATE:g})."}
    )
    quantization: str = field(
        default="none", metadata={"help": "'none' (LoRA) or 'nf4' (QLoRA, 4-bit base)."}
    )
    lora_r: int = field(default=16, metadata={"help": "LoRA rank (alpha = 2 r)."})
    overrides: dict[str, Any] = field(
        default_factory=dict, metadata={"help": "Any other UECConfig field, e.g. {'beta': 0.0}."}
    )
    validation_prompts: int = field(default=50, metadata={"help": "Test prompts of in-training validation."})
    validation_every: int = field(default=5, metadata={"help": "Validate every this many steps (0: never)."})
    probe_prompts: int = field(
        default=64,
        metadata={
            "help": "Test prompts of the entropy probe, the same for every "
            "method and seed (how often: UECConfig.probe_every)."
        },
    )
    eval_prompts: int = field(default=100, metadata={"help": "Test prompts of the final evaluation."})
    eval_samples: int = field(
        default=16, metadata={"help": "n, samples per test prompt (Pass@k for k <= n)."}
    )
    eval_temperature: float = field(
        default=1.0, metadata={"help": "Sampling temperature of the final evaluation."}
    )
    threads: int = field(
        default=0, metadata={"help": "torch CPU threads (0: $UEC_REPRO_THREADS, else torch's default)."}
    )
    save_adapter: bool = field(
        default=True, metadata={"help": "Save the trained LoRA adapter in output_dir/adapter."}
    )
    checkpoint_every: int = field(
        default=10,
        metadata={
            "help": "Save a resumable checkpoint every this many steps "
            "(0: never); a rerun resumes from the newest."
        },
    )
    overwrite: bool = field(
        default=False,
        metadata={
            "help": "Start over in an output_dir that already holds a run "
            "(False: an unfinished run resumes, a finished one "
            "is refused)."
        },
    )
    output_dir: str = field(default="runs/manual/run", metadata={"help": "Where the run's files go."})

    def __post_init__(self) -> None:
        """Check every field before anything is loaded; a :class:`ParameterError` names the field, its value
        and what is allowed. Beyond ranges and types: the policy must be a zoo name, a model folder or a hub
        id; ``quantization='nf4'`` needs an importable bitsandbytes that supports the device the run uses
        (CUDA when available, else CPU); a hub task must have the splits the run reads and, offline
        (``HF_HUB_OFFLINE``), be in the local cache (:class:`~uec_repro.tasks.hub.DatasetUnavailableError`,
        with how to get it); ``output_dir`` must be a folder this user can create or write."""
        from .config import METHODS
        from .models import QUANTIZATIONS, LoraSettings, validate_policy_args
        from .tasks import HUB_TASKS, TASKS

        check_choice("method", self.method, [BASE_METHOD, *METHODS])
        check_choice("task", self.task, TASKS)
        check_choice("quantization", self.quantization, QUANTIZATIONS)
        if not isinstance(self.policy, str) or not self.policy.strip():
            raise ParameterError(f"policy={self.policy!r} must be a zoo name, a folder or a hub id")
        check_int("seed", self.seed, minimum=0)
        for name in (
            "steps",
            "prompts_per_step",
            "max_completion_length",
            "lora_r",
            "eval_prompts",
            "eval_samples",
            "validation_prompts",
            "probe_prompts",
        ):
            check_int(name, getattr(self, name), minimum=1)
        check_int("num_generations", self.num_generations, minimum=2)
        check_int("validation_every", self.validation_every, minimum=0)
        check_int("threads", self.threads, minimum=0)
        check_int("checkpoint_every", self.checkpoint_every, minimum=0)
        check_float("eval_temperature", self.eval_temperature, minimum=0.0, min_exclusive=True)
        for name in ("save_adapter", "overwrite"):
            check_bool(name, getattr(self, name))
        if not isinstance(self.overrides, dict):
            raise ParameterError(f"overrides={self.overrides!r} must be a dict of UECConfig fields")
        if not isinstance(self.output_dir, str) or not self.output_dir.strip():
            raise ParameterError(f"output_dir={self.output_dir!r} must be a folder path")
        check_writable_dir("output_dir", self.output_dir)
        try:  # the policy's name or folder, and what nf4 needs; nothing is loaded
            validate_policy_args(
                self.policy,
                quantization=self.quantization,
                lora=LoraSettings(r=self.lora_r, alpha=2 * self.lora_r),
            )
        except ParameterError as error:
            raise ParameterError(str(error).replace("name_or_path=", "policy=", 1)) from None
        if self.task in HUB_TASKS:
            from .tasks.hub import HUB_DATASETS, DatasetUnavailableError, load_hub_rows, offline_mode

            needed = ["test"] if self.method == BASE_METHOD else ["train", "test"]
            splits = list(HUB_DATASETS[self.task].splits)
            for split in needed:
                if split not in splits:
                    allowed = [
                        t for t in TASKS if t not in HUB_TASKS or set(needed) <= set(HUB_DATASETS[t].splits)
                    ]
                    raise ParameterError(
                        f"task={self.task!r} has no {split!r} split (only {splits}), which "
                        f"method={self.method!r} needs; use method='base' or one of {allowed}"
                    )
                if offline_mode():  # reads the cache only; DatasetUnavailableError says how to get the data
                    try:
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore")
                            load_hub_rows(self.task, split, n=1)
                    except DatasetUnavailableError as error:
                        raise DatasetUnavailableError(f"task={self.task!r}: {error}") from None
        processes = launched_processes()
        if processes > 1 and self.method == BASE_METHOD:
            raise ParameterError(
                f"method={BASE_METHOD!r} only evaluates: run it in one process, not {processes}"
            )
        if self.prompts_per_step % processes:
            raise ParameterError(
                f"prompts_per_step={self.prompts_per_step} must be a multiple of the number of "
                f"processes ({processes}): each process generates an equal share of a step's prompts"
            )
        if self.method != BASE_METHOD:
            self.trainer_config()  # UECConfig checks every field it gets (and names the bad one)

    @classmethod
    def from_namespace(cls, namespace: dict[str, Any]) -> RunSettings:
        """Settings from a notebook's variables (``globals()``): every field found there, defaults for the
        rest."""
        return cls(**{f.name: namespace[f.name] for f in fields(cls) if f.name in namespace})

    def trainer_config(self):
        """The :class:`~uec_repro.config.UECConfig` of this run (method overrides, then these settings)."""
        import torch

        from .config import method_config

        optional = {name: getattr(self, name) for name in CONFIG_DEFAULTED if getattr(self, name) is not None}
        return method_config(
            self.method,
            **{
                "output_dir": self.output_dir,
                "max_steps": self.steps,
                "per_device_train_batch_size": self.prompts_per_step
                * self.num_generations
                // launched_processes(),
                "num_generations": self.num_generations,
                "max_completion_length": self.max_completion_length,
                "seed": self.seed,
                "validation_every": self.validation_every,
                "use_cpu": not torch.cuda.is_available(),
                "gradient_checkpointing": False,
                **(
                    {"save_strategy": "steps", "save_steps": self.checkpoint_every}
                    if self.checkpoint_every
                    else {"save_strategy": "no"}
                ),
                "report_to": "none",
                "disable_tqdm": True,
                **optional,
                **self.overrides,
            },
        )


def launched_processes() -> int:
    """The number of processes of this launch (``torchrun`` and ``accelerate launch`` set ``WORLD_SIZE``)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def run_training(settings: RunSettings) -> dict[str, Any] | None:
    """Train (unless ``method='base'``), evaluate on held-out test prompts, write the run's files; returns the
    content of ``eval.json`` (``None`` in the processes other than the main one of a multi-process launch)."""
    import torch
    from transformers import PrinterCallback, set_seed

    from .checkpoints import checkpoint_step, remove_checkpoints
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
        train = load_task(
            settings.task,
            "train",
            n=settings.steps * settings.prompts_per_step,
            seed=settings.seed,
            tokenizer=tokenizer,
        )
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
        install_fault_points(trainer)  # only with UEC_REPRO_FAULT set (tests, make stress)
        if not torch.cuda.is_available():
            cast_trainable_to_fp32(trainer.model)  # TRL casts adapters to bf16 on 4-bit bases: slow on CPU
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
    result = {
        "method": settings.method,
        "policy": settings.policy,
        "task": settings.task,
        "seed": settings.seed,
        "summary": evaluation.summary,
        "n": settings.eval_samples,
        "correct": [p["correct"] for p in evaluation.per_prompt],
        "difficulty": [p["difficulty"] for p in evaluation.per_prompt],
        "resumed_from_step": resumed_from,
        "processes": processes,
        # of this attempt: a resumed run trains the steps after its checkpoint
        "train_seconds": train_seconds,
        "seconds_per_step": (
            train_seconds / (settings.steps - resumed_from)
            if train_seconds and settings.steps > resumed_from
            else None
        ),
        "total_seconds": time.perf_counter() - started,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "settings": asdict(settings),
    }
    write_text_atomic(out / EVAL_FILE, json.dumps(result, indent=1))
    remove_checkpoints(out)
    return result


def _evaluate(model, tokenizer, prompts, settings: RunSettings, rank: int, processes: int):
    """The final evaluation of ``prompts``. With several processes, each evaluates every ``processes``-th
    prompt from its ``rank`` on (sampling seeded with ``seed + rank``), and the per-prompt records come back
    in order."""
    from .evaluation import EvalResult, evaluate_policy, summarize

    ks = [k for k in (1, 2, 4, 8, 16, 32, 64, 128, 256) if k <= settings.eval_samples]
    hard_group_size = min(settings.num_generations, settings.eval_samples)
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
    checkpoint = None if settings.overwrite else prepare_resume(out, *step_files)
    write_text_atomic(out / SETTINGS_FILE, json.dumps(current, indent=1))
    return checkpoint
