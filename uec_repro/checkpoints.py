"""Resumable checkpoints of a training run, on top of Hugging Face's.

HF's ``Trainer`` writes ``<output_dir>/checkpoint-<step>/`` with the adapter (safetensors), optimizer,
scheduler, RNG states and trainer state, and reads them back with ``torch.load(weights_only=True)``, which
refuses arbitrary pickled objects. :class:`~uec_repro.trainer.UECTrainer` adds what UEC-RL needs on top: the
batch and replay buffers (safetensors, with their scalar fields as JSON metadata) and its own random states.
Its state file, :data:`STATE_FILE`, is written last and atomically, so a checkpoint without it was cut off and
is never resumed from.

After a crash, :func:`prepare_resume` picks the newest complete checkpoint and cuts ``metrics.jsonl`` and
``probe.jsonl`` back to the steps that checkpoint had finished, so the resumed run appends each later step
exactly once.
"""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from .atomic import write_json_atomic, write_text_atomic
from .validation import ParameterError, check_choice

__all__ = [
    "BUFFERS_FILE",
    "PREFIX",
    "STATE_FILE",
    "checkpoint_step",
    "complete_checkpoints",
    "directory_bytes",
    "load_samples",
    "load_uec_state",
    "prepare_resume",
    "prune_checkpoints",
    "remove_checkpoints",
    "save_samples",
    "save_uec_state",
]

STATE_FILE = "uec_state.json"
BUFFERS_FILE = "uec_buffers.safetensors"
PREFIX = "checkpoint-"


def save_samples(
    path: str | Path, groups: dict[str, list[Any]], extra: dict[str, torch.Tensor] | None = None
) -> None:
    """Save lists of sample dataclasses (fields: tensors, dicts of tensors, ``None`` or JSON scalars) and
    ``extra`` tensors."""
    tensors: dict[str, torch.Tensor] = {f"extra.{name}": t.contiguous() for name, t in (extra or {}).items()}
    scalars: dict[str, list[dict[str, Any]]] = {}
    for group, samples in groups.items():
        scalars[group] = []
        for index, sample in enumerate(samples):
            record = {}
            for f in fields(sample):
                value = getattr(sample, f.name)
                if isinstance(value, torch.Tensor):
                    tensors[f"{group}.{index}.{f.name}"] = value.detach().cpu().contiguous()
                elif isinstance(value, dict):
                    for key, tensor in value.items():
                        tensors[f"{group}.{index}.{f.name}.{key}"] = tensor.detach().cpu().contiguous()
                    record[f.name] = {"tensors": list(value)}
                else:
                    record[f.name] = value
            scalars[group].append(record)
    save_file(tensors, str(path), metadata={"samples": json.dumps(scalars)})


def load_samples(
    path: str | Path, factory: Callable[..., Any]
) -> tuple[dict[str, list[Any]], dict[str, torch.Tensor]]:
    """The groups and extra tensors written by :func:`save_samples`, samples rebuilt with
    ``factory(**fields)``."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        scalars = json.loads(handle.metadata()["samples"])
    tensors = load_file(str(path))
    groups = {}
    for group, records in scalars.items():
        groups[group] = []
        for index, record in enumerate(records):
            prefix = f"{group}.{index}."
            own = {key[len(prefix) :]: t for key, t in tensors.items() if key.startswith(prefix)}
            for name, value in record.items():
                if isinstance(value, dict):  # a dict of tensors
                    record[name] = {key: own.pop(f"{name}.{key}") for key in value["tensors"]}
            groups[group].append(factory(**record, **own))
    extra = {key[len("extra.") :]: t for key, t in tensors.items() if key.startswith("extra.")}
    return groups, extra


def save_uec_state(folder: Path, trainer) -> None:
    """What a :class:`~uec_repro.trainer.UECTrainer` adds to HF's checkpoint in ``folder``: its buffers and
    Clip-Cov generators (one per process) in :data:`BUFFERS_FILE`, then its Python random state, the batch
    buffer's drop count and the non-finite streak in :data:`STATE_FILE`, written last: it marks the checkpoint
    complete. Called in every process; the main one writes (the buffers and random state are the same in
    all)."""
    generators = trainer.gathered([trainer._clip_cov_generator.get_state()])
    if not trainer.accelerator.is_main_process:
        return
    batch, replay = trainer.batch_buffer, trainer.replay_buffer
    buffers = {
        "batch": batch.contents() if batch is not None else [],
        "replay": replay.contents() if replay is not None else [],
    }
    save_samples(
        folder / BUFFERS_FILE, buffers, extra={f"clip_cov_generator.{r}": g for r, g in enumerate(generators)}
    )
    state = {
        "step": trainer.state.global_step,
        "python_random": trainer._rng.getstate(),
        "batch_buffer_dropped": batch.dropped if batch is not None else 0,
        "nonfinite_streak": trainer.guard.streak,
    }
    write_json_atomic(folder / STATE_FILE, state)


def load_uec_state(folder: Path, trainer) -> None:
    """Restore what :func:`save_uec_state` wrote into ``trainer`` (HF restores the rest); a ParameterError for
    a checkpoint without its state file (cut off while being written)."""
    if not (folder / STATE_FILE).is_file():
        raise ParameterError(
            f"resume_from_checkpoint={str(folder)!r} is not a complete checkpoint (no {STATE_FILE}: it was "
            "cut off while being written)"
        )
    state = json.loads((folder / STATE_FILE).read_text())
    groups, extra = load_samples(folder / BUFFERS_FILE, trainer.sample_type)
    if trainer.batch_buffer is not None:
        trainer.batch_buffer.restore(groups["batch"], state["batch_buffer_dropped"])
    if trainer.replay_buffer is not None:
        trainer.replay_buffer.restore(groups["replay"])
    version, internal, gauss = state["python_random"]
    trainer._rng.setstate((version, tuple(internal), gauss))
    generator = extra.get(f"clip_cov_generator.{trainer.process_index}")
    if generator is None:
        writers = sum(k.startswith("clip_cov_generator.") for k in extra)
        warnings.warn(
            f"{folder} was written by {writers} process(es), this is process {trainer.process_index}: its "
            "Clip-Cov draws start afresh",
            RuntimeWarning,
            stacklevel=3,
        )
    else:
        trainer._clip_cov_generator.set_state(generator)
    trainer.guard.streak = state["nonfinite_streak"]


def checkpoint_step(folder: Path) -> int:
    """The training step of a ``checkpoint-<step>`` folder."""
    return int(folder.name[len(PREFIX) :])


def complete_checkpoints(output_dir: str | Path) -> list[Path]:
    """The checkpoints of a run that were written to the end (their state file exists), oldest first."""
    folders = [p for p in Path(output_dir).glob(f"{PREFIX}*") if p.name[len(PREFIX) :].isdigit()]
    return sorted((p for p in folders if (p / STATE_FILE).is_file()), key=checkpoint_step)


def remove_checkpoints(
    output_dir: str | Path, keep: Path | None = None, *, keep_complete: bool = False
) -> None:
    """Remove every checkpoint folder of a run (complete or not) except ``keep`` and, with ``keep_complete``,
    except every complete one (then only cut-off checkpoints go)."""
    complete = set(complete_checkpoints(output_dir)) if keep_complete else set()
    for folder in Path(output_dir).glob(f"{PREFIX}*"):
        if folder != keep and folder not in complete:
            shutil.rmtree(folder, ignore_errors=True)


def prune_checkpoints(output_dir: str | Path, keep: str) -> list[Path]:
    """At the end of a run (``RunSettings.keep_checkpoints``): keep no checkpoint (``'none'``), the newest
    complete one (``'last'``) or every complete one (``'all'``); cut-off checkpoints always go. Returns the
    checkpoints kept, oldest first."""
    complete = complete_checkpoints(output_dir)
    choices = {"none": [], "last": complete[-1:], "all": complete}
    kept = choices[check_choice("keep_checkpoints", keep, choices)]
    remove_checkpoints(output_dir, keep=kept[-1] if kept else None, keep_complete=keep == "all")
    return kept


def directory_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def prepare_resume(output_dir: str | Path, *step_files: str, keep_all: bool = False) -> Path | None:
    """Get an unfinished run ready to resume: returns its newest complete checkpoint (None: start over),
    removes the other checkpoints (with ``keep_all``, only the cut-off ones) and cuts each of ``step_files``
    (one JSON row per step, e.g. ``metrics.jsonl`` and ``probe.jsonl``) back to the rows of steps that
    checkpoint includes (a half-written last row is dropped too). With no checkpoint the step files are
    removed."""
    output_dir = Path(output_dir)
    checkpoints = complete_checkpoints(output_dir)
    latest = checkpoints[-1] if checkpoints else None
    remove_checkpoints(output_dir, keep=latest, keep_complete=keep_all)
    for name in step_files:
        path = output_dir / name
        if latest is None:
            path.unlink(missing_ok=True)
        elif path.exists():
            done = checkpoint_step(latest)
            kept = []
            for line in path.read_text().splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if row.get("step", done + 1) <= done:
                    kept.append(line)
            write_text_atomic(path, "".join(f"{line}\n" for line in kept))
    return latest
