"""Fault injection for the kill-and-resume tests and ``make stress``.

``UEC_REPRO_FAULT=<SIGNAL>:<point>:<step>`` (e.g. ``KILL:update:3``) makes the training process send itself
``SIG<SIGNAL>`` when it reaches ``point`` during training step ``step`` (1-based). The points, in the order a
step passes them: ``generation``, ``update``, ``replay``, ``checkpoint`` (after the weights, optimizer and RNG
files are written, before the checkpoint is marked complete). Unset, :func:`fault_point` does nothing.
"""

from __future__ import annotations

import os
import signal

__all__ = ["FAULT_POINTS", "fault_point"]

FAULT_POINTS = ("generation", "update", "replay", "checkpoint")


def fault_point(point: str, step: int) -> None:
    spec = os.environ.get("UEC_REPRO_FAULT")
    if not spec:
        return
    name, where, at = spec.split(":")
    if where == point and int(at) == step:
        os.kill(os.getpid(), getattr(signal, f"SIG{name}"))
