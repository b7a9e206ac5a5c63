"""Quiet by default (uec_repro.quiet): no dependency warning, bitsandbytes message or loading bar in what a
user sees, unless UEC_REPRO_VERBOSE=1; and plain-text --help."""

import logging
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import nbformat
import papermill
import pytest

from uec_repro import quiet
from uec_repro.cli import main, plain_text

ROOT = Path(__file__).resolve().parents[1]
# what a dependency's message looks like on stderr: a warning (its line, then its `warnings.warn(` source
# line), bitsandbytes' kernels-community message, transformers' bar per model load
DEPENDENCY_NOISE = re.compile(r"Warning|warn\(|kernels-community|Loading weights")
TRAIN = [
    "method=grpo",
    "steps=2",
    "prompts_per_step=2",
    "num_generations=2",
    "eval_prompts=4",
    "eval_samples=2",
    "validation_prompts=4",
    "probe_prompts=4",
    "threads=1",
]


def _environment(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != quiet.VERBOSE_ENV}
    return {**env, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", **extra}


def _train_stderr(output_dir, **env: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-m", "uec_repro", "train", *TRAIN, f"output_dir={output_dir}"],
        env=_environment(**env),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stderr.splitlines()


@pytest.mark.slow
def test_train_shows_no_dependency_message_unless_verbose(tmp_path, toy_policy_path):
    noise = [line for line in _train_stderr(tmp_path / "quiet") if DEPENDENCY_NOISE.search(line)]
    assert noise == []
    verbose = _train_stderr(tmp_path / "verbose", **{quiet.VERBOSE_ENV: "1"})
    assert any(DEPENDENCY_NOISE.search(line) for line in verbose), "the opt-out keeps every message"


@pytest.mark.slow
def test_quickstart_notebook_has_no_stderr_output(tmp_path, toy_policy_path):
    out = tmp_path / "00_quickstart.ipynb"
    papermill.execute_notebook(
        str(ROOT / "notebooks" / "00_quickstart.ipynb"),
        str(out),
        parameters={"steps": 2, "eval_prompts": 8, "eval_samples": 4, "experiment_dir": str(tmp_path)},
        cwd=str(ROOT),
        progress_bar=False,
        kernel_name="python3",
    )
    stderr = [
        output["text"]
        for cell in nbformat.read(out, as_version=4).cells
        for output in cell.get("outputs", [])
        if output.get("output_type") == "stream" and output.get("name") == "stderr"
    ]
    assert stderr == []


def test_the_bitsandbytes_filter_drops_only_the_missing_kernels_message(caplog, monkeypatch):
    """bitsandbytes 0.50.2 logs this at import on CPUs with AVX512-BF16 (not every machine has them)."""
    logger = logging.getLogger(quiet.KERNELS_LOGGER)
    monkeypatch.setattr(logger, "filters", [quiet._MissingKernelsFilter()])
    message = quiet.KERNELS_MESSAGE + ": %s. Please make sure you already `pip install kernels`"
    missing = ModuleNotFoundError("No module named 'kernels'", name="kernels")
    broken = ModuleNotFoundError("No module named 'kernels_deps'", name="kernels_deps")
    with caplog.at_level(logging.WARNING, logger=quiet.KERNELS_LOGGER):
        logger.warning(message, missing)
        logger.warning(message, broken)  # `kernels` is installed, but fails: a real error
        logger.warning(message, OSError("the Hub is unreachable"))
        logger.warning("another message")
    shown = [record.getMessage() for record in caplog.records]
    assert len(shown) == 3
    assert "No module named 'kernels_deps'" in shown[0]
    assert "the Hub is unreachable" in shown[1]
    assert shown[2] == "another message"


def _emitted(messages: list[tuple[str, type[Warning], str]]) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet._installed = False
        quiet.install()  # inside catch_warnings: its filters go at its end
        for text, category, module in messages:
            warnings.warn_explicit(text, category, f"{module.replace('.', '/')}.py", 1, module=module)
    return [str(w.message) for w in caught]


def test_the_warning_filters_are_narrow(monkeypatch):
    logger = logging.getLogger(quiet.KERNELS_LOGGER)
    monkeypatch.setattr(logger, "filters", list(logger.filters))
    monkeypatch.setattr(quiet, "_installed", True)
    monkeypatch.delenv(quiet.VERBOSE_ENV, raising=False)
    ours = "`is_gradient_checkpointing` is deprecated and will be removed in v6."
    kept = [
        (ours, DeprecationWarning, "transformers.modeling_utils"),  # another category
        (ours, FutureWarning, "uec_repro.trainer"),  # another module
        ("`gradient_checkpointing` is deprecated", FutureWarning, "transformers.training_args"),
    ]
    assert _emitted([(ours, FutureWarning, "transformers.modeling_utils"), *kept]) == [t for t, *_ in kept]
    assert any(isinstance(f, quiet._MissingKernelsFilter) for f in logger.filters)
    monkeypatch.setenv(quiet.VERBOSE_ENV, "1")
    assert len(_emitted([(ours, FutureWarning, "transformers.modeling_utils")])) == 1


@pytest.mark.parametrize("command", [[], ["reproduce"], ["grpo-demo"], ["build-toy"], ["export-reference"]])
def test_help_is_plain_text(command, capsys):
    with pytest.raises(SystemExit) as done:
        main([*command, "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert "``" not in text
    assert not re.search(r":[a-z]+:`", text)


def test_plain_text_keeps_the_words():
    assert plain_text("``train`` runs :func:`uec_repro.training.run_training` (:class:`~a.B`)") == (
        "train runs uec_repro.training.run_training (a.B)"
    )


def _checkpointing_warnings(make) -> tuple[object, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        made = make()
    return made, [str(w.message) for w in caught if "checkpointing" in str(w.message)]


def test_configs_use_transformers_5_names(tmp_path):
    """TRL 1.16 defaults the deprecated gradient_checkpointing to True; the package's configs use the new
    name, keep TRL's default, and an explicit setting of either name wins."""
    from uec_repro.config import UECConfig
    from uec_repro.training import RunSettings

    config, warned = _checkpointing_warnings(lambda: UECConfig(output_dir=str(tmp_path), use_cpu=True))
    assert (config.activation_checkpointing, config.gradient_checkpointing, warned) == (True, True, [])

    def run_config(**overrides):  # RunSettings checks its trainer_config() too
        return RunSettings(method="grpo", output_dir=str(tmp_path), overrides=overrides).trainer_config()

    config, warned = _checkpointing_warnings(run_config)
    assert (config.activation_checkpointing, warned) == (False, [])
    config, warned = _checkpointing_warnings(lambda: run_config(gradient_checkpointing=True))
    assert config.activation_checkpointing is True
    assert warned, "the deprecated name, when a user passes it, still warns (transformers' message)"
