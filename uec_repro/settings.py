"""The settings of one training run: :class:`RunSettings`, the ``01_train`` notebook's parameters (plain
values, so papermill can inject them), validated on creation, including the
:class:`~uec_repro.config.UECConfig` they build, so a bad value fails before any model is loaded.
Torch-free: the runner and the notebooks' parameter cells validate settings in a second;
:mod:`uec_repro.training` runs them.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field, fields
from typing import Any

from .defaults import (
    EXPLORATION_GROUP_FACTOR,
    EXPLORATION_TEMPERATURE,
    LEARNING_RATE,
    REPLAY_CAPACITY,
    REPLAY_FREQUENCY,
)
from .layout import BASE_METHOD
from .validation import ParameterError, check_bool, check_choice, check_float, check_int, check_writable_dir

# RunSettings fields that default (None) to UECConfig's value
CONFIG_DEFAULTED = (
    "exploration_generations",
    "exploration_temperature",
    "replay_capacity",
    "replay_frequency",
    "learning_rate",
)

__all__ = ["CONFIG_DEFAULTED", "RESUMABLE_CHANGES", "RunSettings", "launched_processes"]

KEEP_CHECKPOINTS = ("none", "last", "all")  # the values of RunSettings.keep_checkpoints
# settings that do not change a run's results: a rerun may differ in them and still resume
RESUMABLE_CHANGES = ("threads", "overwrite", "checkpoint_every", "keep_checkpoints", "report_to", "progress")

# live monitoring: report_to's values and the packages each needs (any one of them), how to get them
MONITORS = ("none", "tensorboard", "trackio", "wandb")
MONITOR_PACKAGES = {
    "tensorboard": ("tensorboard", "tensorboardX"),
    "trackio": ("trackio",),
    "wandb": ("wandb",),
}
MONITOR_INSTALL = {"tensorboard": "pip install -e '.[monitor]'", "trackio": "pip install -e '.[monitor]'"}
TENSORBOARD_DIR = "tensorboard"  # <output_dir>/tensorboard: the TensorBoard event files
# set by the batch runner in its child processes: progress=None (auto) means no progress bar there
BATCH_ENVIRONMENT = "UEC_REPRO_BATCH"


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
    keep_checkpoints: str = field(
        default="last",
        metadata={
            "help": "Checkpoints kept once eval.json is written: 'none', 'last' (the newest complete one) "
            "or 'all' (every one, also during the run); each holds its adapter for uec-repro evaluate."
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
    report_to: str | list[str] = field(
        default="none",
        metadata={
            "help": "Live monitoring of the per-step metrics (every logged group: reward, uec/, probe/, "
            "validation/, time/, ...): 'none' (offline: metrics.jsonl only), 'tensorboard' (event files in "
            "output_dir/tensorboard; `tensorboard --logdir <output_dir>`), 'trackio' (local dashboard: "
            "`trackio show`), 'wandb', or a list of these. tensorboard and trackio need the extra: "
            "pip install -e '.[monitor]'. HF prefixes the names with 'train/' (train/uec/hard_prompts)."
        },
    )
    progress: bool | None = field(
        default=None,
        metadata={
            "help": "A per-step progress bar on stderr (tqdm; a widget in Jupyter) showing the step's "
            "reward, probe/entropy (the last measured) and uec/hard_prompts. None: on, except in the batch "
            f"runner's runs (${BATCH_ENVIRONMENT} set); True / False: always / never."
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
        check_choice("keep_checkpoints", self.keep_checkpoints, KEEP_CHECKPOINTS)
        check_float("eval_temperature", self.eval_temperature, minimum=0.0, min_exclusive=True)
        for name in ("save_adapter", "overwrite"):
            check_bool(name, getattr(self, name))
        if self.progress is not None:
            check_bool("progress", self.progress)
        self.monitors()  # report_to's values, and their packages installed
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

    def monitors(self) -> list[str]:
        """``report_to`` as a list (empty for ``'none'``, and for ``None``: a command line parser's value when
        it is not set); a :class:`ParameterError` for a value not in :data:`MONITORS` or one whose package is
        not installed (naming what to install)."""
        from importlib.util import find_spec

        if self.report_to is None:
            return []
        allowed = f"one of {list(MONITORS)} or a list of them"
        values = [self.report_to] if isinstance(self.report_to, str) else self.report_to
        if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
            raise ParameterError(f"report_to={self.report_to!r} is not allowed; choose {allowed}")
        for value in values:
            if value not in MONITORS:
                raise ParameterError(
                    f"report_to={self.report_to!r}: {value!r} is not allowed; choose {allowed}"
                )
        if "none" in values:
            if len(values) > 1:
                raise ParameterError(f"report_to={self.report_to!r}: 'none' cannot be combined with others")
            return []
        for value in values:
            if not any(find_spec(package) for package in MONITOR_PACKAGES[value]):
                install = MONITOR_INSTALL.get(value, f"pip install {value}")
                raise ParameterError(
                    f"report_to={self.report_to!r} needs the {value} package, which is not installed; "
                    f"install it with: {install}"
                )
        return values

    def show_progress(self) -> bool:
        """Whether the run shows a progress bar: ``progress``, or for ``None`` on unless ``$UEC_REPRO_BATCH``
        is set (the batch runner's runs)."""
        return self.progress if self.progress is not None else not os.environ.get(BATCH_ENVIRONMENT)

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
                # transformers 5's name (gradient_checkpointing is the deprecated alias); an override wins
                **(
                    {}
                    if {"activation_checkpointing", "gradient_checkpointing"} & set(self.overrides)
                    else {"activation_checkpointing": False}
                ),
                **(
                    {"save_strategy": "steps", "save_steps": self.checkpoint_every}
                    if self.checkpoint_every
                    else {"save_strategy": "no"}
                ),
                "keep_all_checkpoints": self.keep_checkpoints == "all",
                # TensorBoard's folder is set on its callback in run_training (5.x has no logging_dir)
                "report_to": self.monitors() or "none",
                "disable_tqdm": True,  # one bar: callbacks.Progress (RunSettings.progress)
                **optional,
                **self.overrides,
            },
        )


def launched_processes() -> int:
    """The number of processes of this launch (``torchrun`` and ``accelerate launch`` set ``WORLD_SIZE``)."""
    return int(os.environ.get("WORLD_SIZE", "1"))
