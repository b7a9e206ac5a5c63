"""Fault injection for the kill-and-resume tests and ``make stress``, installed on a trainer from outside it.

``UEC_REPRO_FAULT=<SIGNAL>:<point>:<step>`` (e.g. ``KILL:update:3``) makes the training process send itself
``SIG<SIGNAL>`` when it reaches ``point`` during training step ``step`` (1-based). The points, in the order a
step passes them: ``generation``, ``update``, ``replay``, ``checkpoint`` (after the weights, optimizer and RNG
files are written, before the checkpoint is marked complete). Unset, :func:`install_fault_points` does
nothing.
"""

from __future__ import annotations

import functools
import os
import signal

__all__ = ["FAULT_POINTS", "fault_point", "install_fault_points"]

FAULT_POINTS = ("generation", "update", "replay", "checkpoint")


def fault_point(point: str, step: int) -> None:
    """Send the signal of ``UEC_REPRO_FAULT`` to this process if it names ``point`` at ``step``."""
    spec = os.environ.get("UEC_REPRO_FAULT")
    if not spec:
        return
    name, where, at = spec.split(":")
    if where == point and int(at) == step:
        os.kill(os.getpid(), getattr(signal, f"SIG{name}"))


def install_fault_points(trainer) -> None:
    """Wrap the trainer's rollout, mini-batch and checkpoint-state methods with :func:`fault_point` (only when
    ``UEC_REPRO_FAULT`` is set: otherwise the trainer is left as it is)."""
    if not os.environ.get("UEC_REPRO_FAULT"):
        return

    def before(method, point_of):
        @functools.wraps(method)
        def wrapped(*args, **kwargs):
            fault_point(point_of(*args, **kwargs), trainer.state.global_step + 1)
            return method(*args, **kwargs)

        return wrapped

    trainer._rollout = before(trainer._rollout, lambda *a, **k: "generation")
    trainer._mini_batch_update = before(trainer._mini_batch_update, lambda model, phase, samples: phase)
    save = trainer._save_uec_state
    trainer._save_uec_state = functools.wraps(save)(
        lambda folder: (fault_point("checkpoint", trainer.state.global_step), save(folder))[1]
    )
