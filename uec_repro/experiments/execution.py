"""Running one cell: papermill in a subprocess on a pinned kernel, its process tree, timeout and peak RSS.

The kernel is pinned to this interpreter: each execution sees a kernelspec of the notebook's kernel name
whose command is ``sys.executable -m ipykernel_launcher``, put first on ``JUPYTER_PATH``. Papermill runs
under a small launcher process so that the recorded peak RSS is the run's own (see ``LAUNCHER``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import yaml

from ..atomic import write_json_atomic
from ..settings import BATCH_ENVIRONMENT
from .cells import Cell, resumable
from .grid import REPO_ROOT, kernel_name
from .provenance import new_manifest, now_iso

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "UEC_REPRO_THREADS")
ERROR_LINES = 20


def pin_kernels(kernel_names: set[str], folder: Path) -> Path:
    """Kernelspecs named ``kernel_names`` that start this interpreter; returns the folder for JUPYTER_PATH
    (first there, they hide any user or system kernelspec of the same name)."""
    for name in kernel_names:
        spec = folder / "kernels" / name
        spec.mkdir(parents=True, exist_ok=True)
        (spec / "kernel.json").write_text(
            json.dumps(
                {
                    "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                    "display_name": f"Python ({sys.executable})",
                    "language": "python",
                    "metadata": {"debugger": True},
                }
            )
        )
    return folder


def child_environment(jupyter_path: Path, threads: int | None) -> dict[str, str]:
    env = dict(os.environ)
    env["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(jupyter_path), env.get("JUPYTER_PATH")]))
    env[BATCH_ENVIRONMENT] = "1"  # a run of the batch: no per-step progress bar (RunSettings.progress=None)
    if threads:
        env.update(dict.fromkeys(THREAD_VARIABLES, str(threads)))
    return env


class ProcessTable:
    """The executions running now, so that an interrupt can stop them all (kernels included)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.running: set[int] = set()
        self.interrupted = False

    def start(self, command: list[str], **popen_args: Any) -> subprocess.Popen | None:
        """Start ``command`` unless the table was interrupted (then None)."""
        with self.lock:
            if self.interrupted:
                return None
            process = subprocess.Popen(command, start_new_session=True, **popen_args)
            self.running.add(process.pid)
            return process

    def finished(self, pid: int) -> None:
        with self.lock:
            self.running.discard(pid)

    def interrupt(self) -> None:
        with self.lock:
            self.interrupted = True
            pids = list(self.running)
        for pid in pids:
            kill_tree(pid)


def kill_tree(pid: int) -> None:
    """Kill an execution: its process group (the launcher and papermill, at once, so that nothing forked in
    between escapes), then its kernel, which runs in a session of its own: terminated, killed after 5 s. The
    launcher is left for its waiting thread to reap."""
    try:
        descendants = psutil.Process(pid).children(recursive=True)
        os.killpg(pid, signal.SIGKILL)
    except (psutil.NoSuchProcess, ProcessLookupError):
        return
    for process in descendants:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.terminate()
    _, alive = psutil.wait_procs(descendants, timeout=5)
    for process in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()


ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def log_tail(path: Path, lines: int = ERROR_LINES) -> str:
    try:
        text = ANSI_ESCAPE.sub("", path.read_text(errors="replace"))
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


@dataclass
class ExecutionContext:
    """What all executions of one :func:`run_grid` call share."""

    notebooks_dir: Path
    environment: dict[str, Any]
    child_env: dict[str, str]
    timeout: int | None
    processes: ProcessTable
    scratch: Path  # pinned kernelspecs and the launcher's RSS files; removed after the grid
    restart: bool = False


def execute(cell: Cell, previous: dict[str, Any] | None, context: ExecutionContext) -> dict[str, Any]:
    """Run one cell with papermill in a subprocess, after the attempt ``previous`` (its manifest, or None);
    returns the new final manifest (also written to disk). The caller holds the cell's lock."""
    cell.clear_outputs(resume=not context.restart and resumable(cell, previous))
    cell.folder.mkdir(parents=True, exist_ok=True)
    cell.parameters_path.write_text(yaml.safe_dump(cell.parameters, sort_keys=False))
    manifest = new_manifest(cell, previous, context.environment)
    write_json_atomic(cell.manifest_path, manifest)
    source = context.notebooks_dir / f"{cell.notebook}.ipynb"
    command = [
        sys.executable,
        "-m",
        "papermill",
        str(source),
        str(cell.executed_path),
        "-f",
        str(cell.parameters_path),
        "--cwd",
        str(REPO_ROOT),
        "-k",
        kernel_name(source),
        "--no-progress-bar",
        "--request-save-on-cell-execute",
    ]
    if context.timeout:
        command += ["--execution-timeout", str(context.timeout)]  # per cell; the wait below bounds the run
    started = time.monotonic()
    retries = 0
    while True:
        returncode, peak_rss_kib, timed_out = wait_for(command, cell.log_path, context)
        if (
            returncode == 0
            or timed_out
            or context.processes.interrupted
            or retries == KERNEL_START_RETRIES
            or not kernel_never_started(cell.log_path)
        ):
            break
        retries += 1
    manifest["kernel_start_retries"] = retries
    error = None
    if context.processes.interrupted and returncode != 0:
        error = "interrupted"
    elif timed_out:
        error = f"{log_tail(cell.log_path, ERROR_LINES - 1)}\ntimed out after {context.timeout} s"
    elif returncode != 0:
        error = log_tail(cell.log_path) or f"papermill exited with status {returncode}"
    manifest.update(
        status="failed" if error else "complete",
        finished_at=now_iso(),
        wall_seconds=round(time.monotonic() - started, 2),
        peak_rss_mb=None if peak_rss_kib is None else round(peak_rss_kib / 1024, 1),
        error=error,
    )
    write_json_atomic(cell.manifest_path, manifest)
    return manifest


# Kernels started by several papermill processes at once can lose jupyter_client's port race (the ports are
# picked free, released, then bound by the kernel: nteract/papermill#511) and never answer. No cell ran then,
# so the execution is simply started again.
KERNEL_START_RETRIES = 2
KERNEL_START_FAILURES = ("Kernel didn't respond in", "Kernel died before replying to kernel_info")


def kernel_never_started(log_path: Path) -> bool:
    """Whether papermill's log ends with a kernel that failed to start (before any cell ran)."""
    tail = log_tail(log_path)
    return any(marker in tail for marker in KERNEL_START_FAILURES)


# ``python -S -c LAUNCHER <rss file> <command...>`` forks, execs the command in the child and writes the
# child's peak RSS (KiB; it covers the child's reaped descendants, i.e. the kernel) to <rss file>. A process
# the runner started itself would report at least the runner's own peak (Linux carries it over at exec); one
# forked from this small launcher reports the run's.
LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as out:
    out.write(str(usage.ru_maxrss))
sys.exit(0 if os.waitstatus_to_exitcode(status) == 0 else 1)
"""


def wait_for(
    command: list[str], log_path: Path, context: ExecutionContext
) -> tuple[int | None, int | None, bool]:
    """Run ``command`` with its output in ``log_path``. Returns the exit code (None: never started), the
    peak RSS in KiB of the command and its descendants (None: killed) and whether it ran past the timeout."""
    descriptor, rss_file = tempfile.mkstemp(suffix=".rss", dir=context.scratch)
    os.close(descriptor)
    timed_out = threading.Event()
    with log_path.open("w") as log:
        process = context.processes.start(
            [sys.executable, "-S", "-c", LAUNCHER, rss_file, *command],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=context.child_env,
            cwd=REPO_ROOT,
        )
        if process is None:
            return None, None, False

        def stop_overdue() -> None:
            timed_out.set()
            kill_tree(process.pid)

        timer = threading.Timer(context.timeout, stop_overdue) if context.timeout else None
        if timer:
            timer.start()
        _, status, _ = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        context.processes.finished(process.pid)
        if timer:
            timer.cancel()
    peak = Path(rss_file).read_text()
    return process.returncode, int(peak) if peak else None, timed_out.is_set()
