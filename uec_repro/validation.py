"""Checks for user-facing parameters: fail early, name the parameter, the value and what is allowed."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any


class ParameterError(ValueError):
    """A user-supplied parameter has a bad value. Raised before any model or data is loaded."""


def check_choice(name: str, value: Any, allowed: Iterable[Any]) -> Any:
    allowed = list(allowed)
    if value not in allowed:
        raise ParameterError(f"{name}={value!r} is not allowed; choose one of {allowed}")
    return value


def check_int(name: str, value: Any, *, minimum: int | None = None, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParameterError(f"{name}={value!r} must be an integer (got {type(value).__name__})")
    if minimum is not None and value < minimum:
        raise ParameterError(f"{name}={value!r} must be >= {minimum}")
    if maximum is not None and value > maximum:
        raise ParameterError(f"{name}={value!r} must be <= {maximum}")
    return value


def check_float(
    name: str,
    value: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    min_exclusive: bool = False,
) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ParameterError(f"{name}={value!r} must be a number (got {type(value).__name__})")
    value = float(value)
    if value != value:
        raise ParameterError(f"{name}=nan is not allowed; give a finite number")
    if minimum is not None and (value <= minimum if min_exclusive else value < minimum):
        raise ParameterError(f"{name}={value!r} must be {'>' if min_exclusive else '>='} {minimum}")
    if maximum is not None and value > maximum:
        raise ParameterError(f"{name}={value!r} must be <= {maximum}")
    return value


def check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ParameterError(f"{name}={value!r} must be True or False")
    return value


def check_writable_dir(name: str, path: str | os.PathLike) -> Path:
    """``path`` is a folder, or can be created as one, and this process may write in it.

    Asks the nearest existing ancestor with ``os.access`` (no probe file is left in folders that may be in
    use)."""
    existing = Path(path).expanduser().absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ParameterError(
            f"{name}={str(path)!r} cannot be created: {str(existing)!r} is a file, not a folder; "
            "give a folder path that is, or can be made, writable"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ParameterError(
            f"{name}={str(path)!r} is not writable: no write permission in {str(existing)!r}; "
            "give a folder path that this user can write to"
        )
    return Path(path)
