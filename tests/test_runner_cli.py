"""The batch runner's commands on the main command line: ``uec-repro run | list | show`` are
``python -m uec_repro.experiments run | list | show`` (offline, nothing runs)."""

import subprocess
import sys
from pathlib import Path

from uec_repro.experiments import list_presets

UEC_REPRO = Path(sys.executable).parent / "uec-repro"
EXPERIMENTS = [sys.executable, "-m", "uec_repro.experiments"]


def command(arguments, cwd):
    done = subprocess.run(arguments, capture_output=True, text=True, cwd=cwd, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_uec_repro_run_help_names_the_runner_options(tmp_path):
    out = command([str(UEC_REPRO), "run", "--help"], tmp_path)
    assert out.startswith("usage: uec-repro run")
    for option in ("--jobs", "--runs-root", "--restart", "--skip-notebooks"):
        assert option in out


def test_uec_repro_list_lists_the_presets(tmp_path):
    out = command([str(UEC_REPRO), "list"], tmp_path)
    assert [line.split()[0] for line in out.splitlines()] == list(list_presets())


def test_uec_repro_show_prints_what_python_m_experiments_shows(tmp_path):
    shown = command([str(UEC_REPRO), "show", "default"], tmp_path)
    assert shown == command([*EXPERIMENTS, "show", "default"], tmp_path)
    assert shown.startswith("default (") and "pending" in shown
    assert not (tmp_path / "runs").exists(), "show runs nothing"
