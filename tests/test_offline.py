"""The one Hub offline check (uec_repro.offline), shared by the dataset loaders and the policy zoo."""

import datasets
import pytest
from huggingface_hub import constants

from uec_repro import models, offline
from uec_repro.tasks import hub


@pytest.fixture
def online(monkeypatch):
    """No offline variable set, and both libraries imported online."""
    for var in offline.OFFLINE_ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)


def test_online_when_nothing_says_offline(online):
    assert offline.offline_mode() is False


@pytest.mark.parametrize("var", offline.OFFLINE_ENV_VARS)
@pytest.mark.parametrize("value", ["1", "ON", " true ", "yes"])
def test_each_variable_is_read_at_call_time(online, monkeypatch, var, value):
    monkeypatch.setenv(var, value)
    assert offline.offline_mode() is True


@pytest.mark.parametrize("value", ["0", "", "off", "no"])
def test_false_values_keep_it_online(online, monkeypatch, value):
    monkeypatch.setenv("HF_HUB_OFFLINE", value)
    assert offline.offline_mode() is False


def test_the_libraries_offline_constants_count(online, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert offline.offline_mode() is True
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    assert offline.offline_mode() is True


def test_loaders_and_zoo_use_the_same_check():
    assert hub.offline_mode is offline.offline_mode
    assert models.offline_mode is offline.offline_mode
