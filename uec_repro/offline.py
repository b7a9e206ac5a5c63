"""Whether the Hugging Face Hub is in offline mode: one check for the dataset loaders and the policy zoo."""

from __future__ import annotations

import os

TRUE_VALUES = {"1", "ON", "YES", "TRUE"}
OFFLINE_ENV_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")


def offline_mode() -> bool:
    """True when any of :data:`OFFLINE_ENV_VARS` is set now, or huggingface_hub or datasets were imported in
    offline mode (both read these variables once, at import)."""
    # imported when a check runs, not with this module: datasets is heavy (pyarrow, pandas)
    import datasets
    from huggingface_hub import constants

    env = any(os.environ.get(var, "").strip().upper() in TRUE_VALUES for var in OFFLINE_ENV_VARS)
    return env or bool(constants.HF_HUB_OFFLINE) or bool(datasets.config.HF_HUB_OFFLINE)
