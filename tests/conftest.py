"""Shared fixtures. Nothing in the suite touches the network: the Hub is forced offline here."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def toy_policy_path():
    """The default toy policy folder (built once into the package cache, about 3 minutes, then reused)."""
    from uec_repro.models.toy import toy_policy_dir

    return toy_policy_dir()
