"""Scheduling a grid: parallel runs under file locks, skip / resume / stale decisions and the report.

Each training run is ``<runs_root>/<experiment>/<variant>/seed<k>/`` (variant: ``method`` or
``method--param=value``) with the executed notebook, its ``parameters.yaml``, ``papermill.log`` and
``run.json`` (status, attempt, ``previous_attempts``, timings, peak memory, versions, git commit, hardware).
Complete runs are skipped. Interrupted and failed runs are rerun in their folder, which keeps what they
wrote, so ``01_train`` resumes from the last checkpoint; only the executed notebook, its parameters file and
log are replaced. ``restart=True``, or a run whose notebook or parameters changed, starts from an empty
folder. Complete runs whose parameters changed (paths aside) are reported as stale and kept until
``restart=True``; a stale run, like a failed one, makes the report not ``ok``. Summary notebooks go to
``<runs_root>/<experiment>/notebooks/`` and always rerun.

Before anything runs, ``runs_root`` must be writable and each ``01_train`` run's parameters must make valid
:class:`~uec_repro.training.RunSettings`, so a bad value stops the whole grid at once (exit status 2).

Several runners may share one ``runs_root``: a run executes only while its runner holds ``<run folder>.lock``
(a ``filelock`` lock, released by the OS if the runner dies). A runner that finds a run locked reports it
``busy`` and leaves its files alone; one that finds a run executed by another runner since it looked takes
that runner's result. Summary notebooks wait for their lock, and for the busy runs to finish, so they see
every run.
"""

from __future__ import annotations

import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout
from tqdm import tqdm

from ..validation import ParameterError, check_int, check_writable_dir
from .cells import Cell, read_manifest, run_state
from .execution import ExecutionContext, ProcessTable, child_environment, execute, pin_kernels
from .grid import DEFAULT_NOTEBOOK, GridSpec, kernel_name, notebooks_folder
from .provenance import environment_record

LOCK_POLL_SECONDS = 0.5


@dataclass
class RunOutcome:
    """What happened to a cell: ``complete`` (ran now), ``skipped``, ``failed``, ``stale`` (not rerun) or
    ``busy`` (another runner was executing it)."""

    cell: Cell
    status: str
    attempt: int | None = None
    wall_seconds: float | None = None
    error: str | None = None

    def line(self) -> str:
        wall = f" ({self.wall_seconds:.1f} s)" if self.wall_seconds is not None else ""
        busy = " (another runner is executing it)" if self.status == "busy" else ""
        return f"{self.cell.label}: {self.status}{wall}{busy}"


@dataclass
class GridReport:
    """The outcome of every cell of a :func:`run_grid` call; ``ok`` when none failed or is stale (busy runs
    are the other runner's to report)."""

    experiment_dir: Path
    outcomes: list[RunOutcome] = field(default_factory=list)

    def with_status(self, status: str) -> list[RunOutcome]:
        return [outcome for outcome in self.outcomes if outcome.status == status]

    @property
    def ok(self) -> bool:
        return not self.with_status("failed") and not self.with_status("stale")

    def summary(self) -> str:
        counts = ", ".join(
            f"{len(self.with_status(status))} {status}"
            for status in ("complete", "skipped", "failed", "stale", "busy")
        )
        lines = [f"{self.experiment_dir}: {counts}"]
        if self.with_status("failed"):
            lines.append("failed:")
            for outcome in self.with_status("failed"):
                last = (outcome.error or "").strip().splitlines()[-1:] or ["(no error recorded)"]
                lines += [f"  {outcome.cell.label}: {last[0]}", f"    see {outcome.cell.executed_path}"]
        if self.with_status("stale"):
            lines.append(
                "stale (complete, but with other parameters than the grid gives now; not rerun -- "
                "rerun with --restart / restart=True to replace them):"
            )
            lines += [
                f"  {outcome.cell.label}: {outcome.cell.folder}" for outcome in self.with_status("stale")
            ]
        return "\n".join(lines)


def run_grid(
    spec: GridSpec,
    runs_root: str | Path = "runs",
    jobs: int | None = None,
    restart: bool = False,
    skip_notebooks: bool = False,
    notebooks_dir: str | Path | None = None,
    progress: bool = True,
) -> GridReport:
    """Execute the grid's training runs (``jobs`` at a time), then its summary notebooks; print a summary.

    Complete runs are skipped, stale ones reported (``restart=True`` reruns everything from empty folders),
    interrupted and failed ones rerun in their folders (``01_train`` resumes from its last checkpoint). A
    failed run does not stop the others; runs that another runner holds are reported ``busy``. On Ctrl-C the
    running notebooks are killed, recorded as failed with error ``interrupted``, and KeyboardInterrupt is
    re-raised. A bad ``jobs``, an unwritable ``runs_root`` or bad ``01_train`` parameters raise
    :class:`ParameterError` before anything runs.
    """
    jobs = check_int("jobs", spec.jobs if jobs is None else jobs, minimum=1)
    check_writable_dir("runs_root", runs_root)
    cells = spec.cells(runs_root)
    states = {cell.folder: "pending" if restart else run_state(cell) for cell in cells}
    check_training_runs(spec, [cell for cell in cells if states[cell.folder] not in ("complete", "stale")])
    summaries = [] if skip_notebooks else spec.summary_cells(runs_root)
    report = GridReport(Path(runs_root).resolve() / spec.experiment)
    bar = tqdm(
        total=len(cells) + len(summaries),
        unit="run",
        desc=spec.experiment,
        file=sys.stderr,
        disable=not progress,
    )

    def record(outcome: RunOutcome) -> None:
        report.outcomes.append(outcome)
        bar.update()
        if progress:
            bar.write(outcome.line())

    to_run = []  # (cell, its manifest as planned on)
    for cell in cells:
        state = states[cell.folder]
        if state in ("complete", "stale"):
            record(RunOutcome(cell, "skipped" if state == "complete" else state))
        else:
            to_run.append((cell, read_manifest(cell)))
    if report.with_status("stale"):
        bar.write(
            f"{len(report.with_status('stale'))} complete run(s) have other parameters than this grid "
            "gives them now; they are kept and not rerun: use --restart (restart=True) to rerun them"
        )
    notebooks_dir = notebooks_folder(notebooks_dir or spec.notebooks_dir)
    with (
        tempfile.TemporaryDirectory(prefix="uec-runner-") as scratch,
        ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="papermill") as pool,
    ):
        names = {
            kernel_name(notebooks_dir / f"{cell.notebook}.ipynb")
            for cell in [cell for cell, _ in to_run] + summaries
        }
        jupyter_path = pin_kernels(names, Path(scratch) / "jupyter")
        context = ExecutionContext(
            notebooks_dir,
            environment_record() if to_run or summaries else {},
            child_environment(jupyter_path, spec.threads_per_run),
            spec.timeout,
            ProcessTable(),
            Path(scratch),
            restart,
        )
        futures = []
        try:
            futures += [pool.submit(_execute_one, cell, planned, context) for cell, planned in to_run]
            for future in as_completed(futures):
                record(future.result())
            if summaries and report.with_status("busy"):
                bar.write(
                    f"waiting for {len(report.with_status('busy'))} run(s) of another runner before the "
                    "summary notebooks"
                )
                for outcome in report.with_status("busy"):
                    lock = FileLock(outcome.cell.lock_path)
                    take_lock(lock, context.processes, wait=True)
                    lock.release()
            for cell in summaries:  # in order, one at a time
                futures.append(pool.submit(_execute_one, cell, read_manifest(cell), context))
                record(futures[-1].result())
        except KeyboardInterrupt:
            for future in futures:
                future.cancel()
            context.processes.interrupt()
            bar.close()
            print(
                f"{report.summary()}\ninterrupted: the running notebooks were stopped and marked failed",
                file=sys.stderr,
            )
            raise
    bar.close()
    print(report.summary())
    return report


def check_training_runs(spec: GridSpec, cells: list[Cell]) -> None:
    """Each ``01_train`` run's parameters as :class:`~uec_repro.training.RunSettings` (what its first cell
    does), so that a bad value stops the grid before any run starts."""
    runs = [cell for cell in cells if cell.notebook == DEFAULT_NOTEBOOK]
    if not runs:
        return
    from ..training import RunSettings  # here: it imports torch and trl, only needed for 01_train

    for cell in runs:
        try:
            RunSettings.from_namespace(cell.parameters)
        except ParameterError as error:
            raise type(error)(f"{spec.source}: run {cell.label}: {error}") from None


def take_lock(lock: FileLock, processes: ProcessTable, wait: bool) -> bool:
    """Acquire ``lock`` now, or (``wait``) once it is free; False when it is held elsewhere and not waited
    for, or the grid was interrupted while waiting."""
    while True:
        try:
            lock.acquire(timeout=LOCK_POLL_SECONDS if wait else 0)
            return True
        except Timeout:
            if not wait or processes.interrupted:
                return False


def _execute_one(cell: Cell, planned: dict[str, Any] | None, context: ExecutionContext) -> RunOutcome:
    """Execute a cell as its next attempt while holding its lock; ``planned`` is its manifest when the grid
    was planned. A run locked by another runner is ``busy``; one that another runner finished or failed since
    then keeps that result. A runner error (e.g. a full disk) fails the cell, not the grid."""
    lock = FileLock(cell.lock_path)
    try:
        cell.lock_path.parent.mkdir(parents=True, exist_ok=True)
        if not take_lock(lock, context.processes, wait=not cell.is_run):
            return (
                RunOutcome(cell, "busy", error=f"{cell.lock_path} is held")
                if cell.is_run
                else RunOutcome(cell, "failed", error="interrupted")
            )
    except OSError as error:
        return RunOutcome(cell, "failed", error=f"cannot lock {cell.lock_path}: {error}")
    try:
        previous, state = read_manifest(cell), run_state(cell)
        if cell.is_run and previous not in (None, planned) and state in ("complete", "stale", "failed"):
            return RunOutcome(
                cell,
                "skipped" if state == "complete" else state,
                previous.get("attempt"),
                error=previous.get("error") if state == "failed" else None,
            )
        manifest = execute(cell, previous, context)
    except Exception as error:
        return RunOutcome(cell, "failed", error=f"{type(error).__name__}: {error}")
    finally:
        lock.release()
    return RunOutcome(
        cell, manifest["status"], manifest["attempt"], manifest["wall_seconds"], manifest["error"]
    )
