"""``uec-repro train``: one run from TRL-style flags and YAML recipes, parsed by TRL's ``TrlParser``.

Every :class:`~uec_repro.training.RunSettings` field is a flag (``--method uec_rl --steps 150``), and so is
every other :class:`~uec_repro.config.UECConfig` / ``GRPOConfig`` field (``--beta 0.0 --replay_rule
positive``): those become the run's ``overrides`` of the method's configuration. ``--config`` sets any of
them from a YAML recipe, or from a preset of the batch runner (``--config paper``, or a TOML grid file: its
shared ``[parameters]``, so a preset is the one source of a recipe); flags on the command line win over
it. ``--help`` lists them all with their help text. The older ``name=value`` form (``uec-repro train
method=grpo steps=10``) is read as ``--name value`` by the same parser.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import typing
from pathlib import Path
from typing import Any

from trl import TrlParser

from .config import UECConfig
from .experiments import load_grid
from .training import RunSettings, run_training
from .validation import ParameterError

__all__ = ["DERIVED_FIELDS", "main", "parse_train_args"]

# UECConfig fields that RunSettings.trainer_config() derives from the run's settings: not flags of their own
DERIVED_FIELDS = (
    "output_dir",
    "max_steps",
    "per_device_train_batch_size",
    "seed",
    "use_cpu",
    "save_strategy",
    "save_steps",
    "disable_tqdm",
    "keep_all_checkpoints",  # from RunSettings.keep_checkpoints
)


def _run_options() -> type:
    """RunSettings' fields as plain parser options (``overrides`` is filled from the UECConfig flags)."""
    hints = typing.get_type_hints(RunSettings)
    return dataclasses.make_dataclass(
        "RunOptions",
        [
            (f.name, hints[f.name], dataclasses.field(default=f.default, metadata=dict(f.metadata)))
            for f in dataclasses.fields(RunSettings)
            if f.name != "overrides"  # the only field with a default factory
        ],
        namespace={"_argument_group_name": "run settings (uec_repro.training.RunSettings)"},
    )


def _trainer_options() -> type:
    """Every other UECConfig field, defaulting to None: only the flags given become overrides. Tuples are
    read as lists (``--clip_cov_bounds 1 5``)."""
    hints = typing.get_type_hints(UECConfig)
    taken = {f.name for f in dataclasses.fields(RunSettings)} | set(DERIVED_FIELDS)
    options = []
    for f in dataclasses.fields(UECConfig):
        if f.name in taken or not f.init:
            continue
        hint = hints[f.name]
        if typing.get_origin(hint) is tuple:
            hint = list[typing.get_args(hint)[0]]
        help_text = f.metadata.get("help", "")
        options.append((f.name, hint, dataclasses.field(default=None, metadata={"help": help_text})))
    return dataclasses.make_dataclass(
        "TrainerOptions",
        options,
        namespace={"_argument_group_name": "trainer options (UECConfig / GRPOConfig; default: the method's)"},
    )


DESCRIPTION = (
    "One training run. Every RunSettings field and every other UECConfig / GRPOConfig field is a flag; the "
    "latter become the run's overrides of the method's configuration. --config sets any of them from a YAML "
    "recipe or from a runner preset (--config paper: its [parameters]); flags win over it. name=value is "
    "read as --name value."
)


def _parser() -> TrlParser:
    return TrlParser((_run_options(), _trainer_options()), prog="uec-repro train", description=DESCRIPTION)


def _flags(argv: list[str]) -> list[str]:
    """``name=value`` tokens as ``--name value`` (the older form); everything else as it is."""
    out = []
    for token in argv:
        name, equals, value = token.partition("=")
        out += [f"--{name}", value] if equals and not token.startswith("-") else [token]
    return out


def parse_train_args(argv: list[str]) -> RunSettings:
    """The RunSettings of a ``uec-repro train`` command line (flags, ``name=value`` and ``--config``);
    ParameterError for an unknown flag or a bad value (validated before anything is loaded)."""
    parser, argv = _parser(), _flags(argv)
    if "--config" in argv[:-1] and Path(argv[argv.index("--config") + 1]).suffix not in (".yaml", ".yml"):
        at = argv.index("--config")  # a preset or TOML grid: its shared [parameters] are the recipe
        preset = load_grid(argv[at + 1]).parameters
        recipe = {name: value for name, value in preset.items() if name != "overrides"}
        unused = parser.set_defaults_with_config(**recipe, **preset.get("overrides", {}))
        if unused:
            raise ParameterError(f"--config {argv[at + 1]}: no flag for {unused[::2]}")
        argv = argv[:at] + argv[at + 2 :]
    try:
        run, trainer = parser.parse_args_and_config(argv)
    except ValueError as error:  # unknown flags, here or in the recipe
        raise ParameterError(f"{error}; `uec-repro train --help` lists the flags") from None
    hints = typing.get_type_hints(UECConfig)
    overrides = {
        name: tuple(value) if typing.get_origin(hints[name]) is tuple else value
        for name, value in dataclasses.asdict(trainer).items()
        if value is not None
    }
    values = dataclasses.asdict(run)
    for f in dataclasses.fields(RunSettings):  # the parser reads str | list[str] fields as lists
        value = values.get(f.name)
        if value is None and isinstance(f.default, str):
            values[f.name] = f.default
        elif isinstance(value, list) and len(value) == 1 and isinstance(f.default, str):
            values[f.name] = value[0]
    return RunSettings(**values, overrides=overrides)


def main(argv: list[str]) -> int:
    """Run ``uec-repro train``; prints the evaluation summary. Exit code 2 for bad input."""
    try:
        settings = parse_train_args(argv)
    except ParameterError as error:
        print(f"uec-repro train: error: {error}", file=sys.stderr)
        return 2
    result: dict[str, Any] | None = run_training(settings)
    if result is not None:
        print(json.dumps(result["summary"], indent=1))
    return 0
