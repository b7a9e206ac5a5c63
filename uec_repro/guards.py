"""The training run's guards: non-finite values skip a step (and stop a run after too many in a row), and a
checkpoint is never written from non-finite weights or onto a disk short of space."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import torch

from .checkpoints import complete_checkpoints, directory_bytes

__all__ = ["InsufficientDiskError", "NonFiniteError", "NonFiniteGuard", "check_checkpoint"]


class NonFiniteError(RuntimeError):
    """NaN or inf in rewards, advantages, loss or gradients on more consecutive steps than allowed, or in the
    weights about to be checkpointed."""


class InsufficientDiskError(OSError):
    """Not enough free disk space to write the next checkpoint; the run stops and keeps what it has."""


class NonFiniteGuard:
    """What was non-finite in the current step, and how many steps in a row had something non-finite.
    With several processes, ``accelerator`` makes a process-local check agree across them."""

    def __init__(self, patience: int, accelerator=None) -> None:
        self.patience = patience
        self.accelerator = accelerator if accelerator is not None and accelerator.num_processes > 1 else None
        self.faults: list[str] = []
        self.streak = 0

    def finite(self, what: str, values: torch.Tensor | list, every_process: bool = False) -> bool:
        """False, and ``what`` recorded as this step's fault, if ``values`` (a tensor, floats or tensors) hold
        a NaN or inf; with ``every_process``, if they do in any process (so that all processes skip
        together)."""
        items = values if isinstance(values, list) else [values]
        finite = all(bool(torch.isfinite(torch.as_tensor(v)).all()) for v in items)
        if every_process and self.accelerator is not None:
            flags = torch.tensor([float(finite)], device=self.accelerator.device)
            finite = bool(self.accelerator.gather(flags).all())
        if not finite:
            self.faults.append(what)
        return finite

    def end_step(self, step: int) -> float:
        """1.0 if step ``step`` was skipped, else 0.0 (for ``faults/skipped_step``); raises NonFiniteError
        after more than ``patience`` skipped steps in a row, and starts the next step's record."""
        faults, self.faults = self.faults, []
        if not faults:
            self.streak = 0
            return 0.0
        self.streak += 1
        message = f"step {step}: non-finite {', '.join(dict.fromkeys(faults))}; the step makes no update"
        if self.streak > self.patience:
            raise NonFiniteError(
                f"{message}, and {self.streak} step(s) in a row had non-finite values "
                f"(nonfinite_patience={self.patience}): the run stops; its last complete checkpoint and "
                "metrics are kept"
            )
        warnings.warn(message, RuntimeWarning, stacklevel=3)
        return 1.0


def check_checkpoint(model: torch.nn.Module, run_dir: Path, step: int, min_free_disk_mb: float) -> None:
    """Refuse to write ``checkpoint-<step>`` from non-finite trainable weights (NonFiniteError) or without
    room for one more checkpoint (the last one's size, or four times the trainable weights before the first)
    plus ``min_free_disk_mb`` (InsufficientDiskError)."""
    bad = [name for name, p in model.named_parameters() if p.requires_grad and not torch.isfinite(p).all()]
    if bad:
        raise NonFiniteError(
            f"checkpoint-{step} not written: non-finite weights in {len(bad)} tensor(s), e.g. {bad[0]}; the "
            "previous checkpoint is kept"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    previous = complete_checkpoints(run_dir)
    trainable = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    needed = (directory_bytes(previous[-1]) if previous else 4 * trainable) + min_free_disk_mb * 2**20
    free = shutil.disk_usage(run_dir).free
    if free < needed:
        raise InsufficientDiskError(
            f"checkpoint-{step} not written: {free / 2**20:.0f} MB free in {run_dir}, {needed / 2**20:.0f} "
            f"MB needed (one checkpoint + min_free_disk_mb={min_free_disk_mb}); the run stops, its earlier "
            "checkpoints and metrics are kept: free space and rerun to resume"
        )
