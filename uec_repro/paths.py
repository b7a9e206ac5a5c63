"""Where the package keeps what it builds (policies, converted models): outside git, one place."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "UEC_REPRO_CACHE"


def cache_dir() -> Path:
    """``$UEC_REPRO_CACHE`` if set, else ``~/.cache/uec_repro``; created on first use."""
    path = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "uec_repro").expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path
