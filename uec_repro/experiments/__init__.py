"""Batch runner: execute notebooks with papermill over a grid of methods x seeds (x one swept value).

A grid is a small TOML file (a preset in ``presets/`` or a file of your own, see :func:`load_grid`)::

    experiment = "default"                 # runs go to <runs_root>/<experiment>/
    jobs = 2                               # parallel runs (``--jobs`` overrides)
    threads_per_run = 1                    # OMP/MKL/UEC_REPRO threads of each run's kernel
    timeout = 1800                         # seconds per run
    [parameters]                           # shared by every training run
    steps = 30
    [[grid]]                               # methods x seeds (x sweep values) of one notebook
    methods = ["grpo", "uec_rl"]
    seeds = [0, 1, 2]
    sweep = { exploration_temperature = [1.0, 1.5] }
    [[notebook]]                           # summary notebooks, run after the grid, in order
    name = "05_paper_figures"

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

The kernel is pinned to this interpreter: each execution sees a kernelspec of the notebook's kernel name
whose command is ``sys.executable -m ipykernel_launcher``, put first on ``JUPYTER_PATH``. Papermill runs
under a small launcher process so that the recorded peak RSS is the run's own (see ``LAUNCHER``).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import importlib.metadata
import json
import keyword
import math
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import yaml
from filelock import FileLock, Timeout
from tqdm import tqdm

from ..atomic import write_json_atomic
from ..layout import MANIFEST_FILE, run_folder, variant_name
from ..validation import ParameterError, check_int, check_writable_dir

__all__ = ["Cell", "GridReport", "GridSpec", "RunOutcome", "list_presets", "load_grid", "main", "run_grid"]

REPO_ROOT = Path(__file__).resolve().parents[2]
PRESETS_DIR = Path(__file__).parent / "presets"
NOTEBOOKS_ENV = "UEC_REPRO_NOTEBOOKS"
DEFAULT_NOTEBOOK = "01_train"
SUMMARY_FOLDER = "notebooks"
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "UEC_REPRO_THREADS")
VERSIONED_PACKAGES = {  # manifest key -> distribution
    "python": None,
    "uec_repro": "uec-repro",
    "torch": "torch",
    "transformers": "transformers",
    "trl": "trl",
    "peft": "peft",
    "bitsandbytes": "bitsandbytes",
    "papermill": "papermill",
    "accelerate": "accelerate",
    "datasets": "datasets",
}
ERROR_LINES = 20
LOCK_POLL_SECONDS = 0.5

TOP_KEYS = (
    "experiment",
    "description",
    "jobs",
    "threads_per_run",
    "timeout",
    "parameters",
    "grid",
    "notebook",
)
GRID_KEYS = ("notebook", "methods", "seeds", "parameters", "sweep")
NOTEBOOK_KEYS = ("name", "parameters")
RUN_RESERVED = ("method", "seed", "output_dir")  # set by the runner for each training run
SUMMARY_RESERVED = ("experiment_dir",)  # set by the runner for each summary notebook
PATH_PARAMETERS = ("output_dir", "experiment_dir")  # left out when deciding whether a run is stale
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+=-]*")
SAFE_VALUE = re.compile(r"[^\s/\\]+")  # a sweep value as it appears in a folder name


# ---------------------------------------------------------------- locations and presets


def notebooks_folder(notebooks_dir: str | Path | None = None) -> Path:
    """``notebooks_dir``, else ``$UEC_REPRO_NOTEBOOKS``, else the repository's ``notebooks/``."""
    return Path(notebooks_dir or os.environ.get(NOTEBOOKS_ENV) or REPO_ROOT / "notebooks").resolve()


def list_presets() -> dict[str, str]:
    """The shipped presets: name -> description (read without validating them)."""
    presets = {}
    for path in sorted(PRESETS_DIR.glob("*.toml")):
        try:
            presets[path.stem] = str(tomllib.loads(path.read_text()).get("description", ""))
        except tomllib.TOMLDecodeError as error:
            presets[path.stem] = f"(invalid TOML: {error})"
    return presets


def load_grid(grid: str | Path, notebooks_dir: str | Path | None = None) -> GridSpec:
    """A :class:`GridSpec` from a TOML file path or the name of a preset (``list_presets()``)."""
    path = Path(grid)
    if not path.is_file():
        if str(grid) not in list_presets():
            raise ParameterError(
                f"grid={str(grid)!r} is neither a file nor a preset; presets: {list(list_presets())}"
            )
        path = PRESETS_DIR / f"{grid}.toml"
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ParameterError(f"{path}: invalid TOML: {error}") from None
    return GridSpec.from_dict(data, source=str(path), notebooks_dir=notebooks_dir)


# ---------------------------------------------------------------- the grid


@dataclass(frozen=True)
class GridBlock:
    """One ``[[grid]]`` table: ``notebook`` for every method x seed (x value of the one swept parameter)."""

    methods: list[str]
    seeds: list[int]
    notebook: str = DEFAULT_NOTEBOOK
    parameters: dict[str, Any] = field(default_factory=dict)
    sweep: dict[str, list[Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class SummaryNotebook:
    """One ``[[notebook]]`` table: a notebook executed once, after the grid."""

    name: str
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Cell:
    """One notebook execution: a training run of the grid (``method`` set) or a summary notebook."""

    experiment: str
    notebook: str
    parameters: dict[str, Any]
    folder: Path
    method: str | None = None
    seed: int | None = None
    sweep: dict[str, Any] = field(default_factory=dict)

    @property
    def is_run(self) -> bool:
        return self.method is not None

    @property
    def variant(self) -> str | None:
        return variant_name(self.method, self.sweep) if self.is_run else None

    @property
    def label(self) -> str:
        return f"{self.variant} seed{self.seed}" if self.is_run else f"{SUMMARY_FOLDER}/{self.notebook}"

    @property
    def executed_path(self) -> Path:
        return self.folder / f"{self.notebook}.ipynb"

    @property
    def manifest_path(self) -> Path:
        return self.folder / (MANIFEST_FILE if self.is_run else f"{self.notebook}.json")

    @property
    def parameters_path(self) -> Path:
        return self.folder / ("parameters.yaml" if self.is_run else f"{self.notebook}.parameters.yaml")

    @property
    def log_path(self) -> Path:
        return self.folder / ("papermill.log" if self.is_run else f"{self.notebook}.log")

    @property
    def lock_path(self) -> Path:
        """Held while the cell executes: beside a run folder (which may be cleared), in a summary's folder."""
        if self.is_run:
            return self.folder.with_name(f"{self.folder.name}.lock")
        return self.folder / f".{self.notebook}.lock"

    def clear_outputs(self, resume: bool = False) -> None:
        """Before a new attempt: remove the whole run folder, or (``resume``, and for summary notebooks) only
        the files the attempt rewrites, so that a resumed run keeps its checkpoints."""
        if self.is_run and not resume:
            shutil.rmtree(self.folder, ignore_errors=True)
        else:
            for path in (self.executed_path, self.parameters_path, self.log_path):
                path.unlink(missing_ok=True)


@dataclass
class GridSpec:
    """A validated grid: build it with :meth:`from_dict` or :func:`load_grid`."""

    experiment: str
    blocks: list[GridBlock]
    notebooks: list[SummaryNotebook] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    jobs: int = 1
    threads_per_run: int | None = None
    timeout: int | None = None
    source: str = "<dict>"
    notebooks_dir: Path = field(default_factory=notebooks_folder)

    @classmethod
    def from_dict(
        cls, data: dict[str, Any], source: str = "<dict>", notebooks_dir: str | Path | None = None
    ) -> GridSpec:
        """Check every key and value (a :class:`ParameterError` naming it) and build the spec."""
        return _parse_grid(data, source, notebooks_folder(notebooks_dir))

    def cells(self, runs_root: str | Path = "runs") -> list[Cell]:
        """The training runs, block by block: methods x sweep values x seeds."""
        experiment_dir = Path(runs_root).resolve() / self.experiment
        cells = []
        for block in self.blocks:
            sweep_name, sweep_values = next(iter(block.sweep.items()), (None, [None]))
            for method in block.methods:
                for value in sweep_values:
                    sweep = {sweep_name: value} if sweep_name else {}
                    for seed in block.seeds:
                        folder = run_folder(experiment_dir, variant_name(method, sweep), seed)
                        parameters = {
                            **self.parameters,
                            **block.parameters,
                            "method": method,
                            "seed": seed,
                            **sweep,
                            "output_dir": str(folder),
                        }
                        cells.append(
                            Cell(self.experiment, block.notebook, parameters, folder, method, seed, sweep)
                        )
        return cells

    def summary_cells(self, runs_root: str | Path = "runs") -> list[Cell]:
        """The ``[[notebook]]`` executions, in order, saved to ``<experiment>/notebooks/``."""
        experiment_dir = Path(runs_root).resolve() / self.experiment
        return [
            Cell(
                self.experiment,
                step.name,
                {**step.parameters, "experiment_dir": str(experiment_dir)},
                experiment_dir / SUMMARY_FOLDER,
            )
            for step in self.notebooks
        ]


def _parse_grid(data: dict[str, Any], source: str, notebooks_dir: Path) -> GridSpec:
    check = _Checker(source, notebooks_dir)
    check.keys("", data, TOP_KEYS)
    if "experiment" not in data:
        raise ParameterError(
            f'{source}: experiment is missing; give the folder name of the runs, e.g. experiment = "default"'
        )
    spec = GridSpec(
        experiment=check.name("experiment", data["experiment"]),
        blocks=[check.block(f"grid[{i}]", table) for i, table in enumerate(check.tables("grid", data))],
        notebooks=[
            check.summary(f"notebook[{i}]", table) for i, table in enumerate(check.tables("notebook", data))
        ],
        parameters=check.parameters("parameters", data.get("parameters", {}), RUN_RESERVED),
        description=check.string("description", data.get("description", "")),
        jobs=check.positive("jobs", data.get("jobs", 1)),
        threads_per_run=check.positive("threads_per_run", data.get("threads_per_run")),
        timeout=check.positive("timeout", data.get("timeout")),
        source=source,
        notebooks_dir=notebooks_dir,
    )
    if not spec.blocks and not spec.notebooks:
        raise ParameterError(f"{source}: nothing to run; add a [[grid]] or a [[notebook]] table")
    for i, block in enumerate(spec.blocks):
        check.declared(block.notebook, "parameters", spec.parameters)
        check.declared(block.notebook, f"grid[{i}].parameters", block.parameters)
        check.declared(block.notebook, f"grid[{i}].sweep", block.sweep)
    for i, step in enumerate(spec.notebooks):
        check.declared(step.name, f"notebook[{i}].parameters", step.parameters)
    check.unique_runs(spec.cells())
    return spec


class _Checker:
    """Checks of a grid's tables; each failure names the source, the key, the value and what is allowed."""

    def __init__(self, source: str, notebooks_dir: Path):
        self.source = source
        self.notebooks_dir = notebooks_dir

    def fail(self, key: str, value: Any, allowed: str) -> ParameterError:
        return ParameterError(f"{self.source}: {key}={value!r} is not allowed; {allowed}")

    def keys(self, where: str, table: Any, allowed: tuple[str, ...]) -> None:
        if not isinstance(table, dict):
            raise self.fail(where.rstrip(".") or "<grid>", table, "expected a table")
        for key in table:
            if key not in allowed:
                raise self.fail(f"{where}{key}", table[key], f"unknown key; allowed keys: {list(allowed)}")

    def tables(self, key: str, data: dict[str, Any]) -> list[dict[str, Any]]:
        tables = data.get(key, [])
        if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
            raise self.fail(key, tables, f"expected an array of tables, [[{key}]]")
        return tables

    def name(self, key: str, value: Any) -> str:
        if not isinstance(value, str) or not SAFE_NAME.fullmatch(value):
            raise self.fail(
                key,
                value,
                "expected a folder name of letters, digits and . _ + = - (starting with a letter or digit)",
            )
        return value

    def string(self, key: str, value: Any) -> str:
        if not isinstance(value, str):
            raise self.fail(key, value, "expected a string")
        return value

    def positive(self, key: str, value: Any) -> int | None:
        if value is None:
            return None
        try:
            return check_int(key, value, minimum=1)
        except ParameterError as error:
            raise ParameterError(f"{self.source}: {error}") from None

    def nonempty_list(self, key: str, value: Any) -> list[Any]:
        if not isinstance(value, list) or not value:
            raise self.fail(key, value, "expected a non-empty list")
        return value

    def notebook(self, key: str, name: Any) -> str:
        self.name(key, name)
        path = self.notebooks_dir / f"{name}.ipynb"
        if not path.is_file():
            available = sorted(p.stem for p in self.notebooks_dir.glob("*.ipynb"))
            raise self.fail(key, name, f"no such notebook in {self.notebooks_dir}; available: {available}")
        try:
            kernel_name(path)
        except ParameterError as error:
            raise ParameterError(f"{self.source}: {key}={name!r}: {error}") from None
        return name

    def plain(self, key: str, value: Any) -> Any:
        """A value papermill can inject: string, bool, int, finite float, or a list / table of those."""
        if isinstance(value, list):
            return [self.plain(f"{key}[{i}]", item) for i, item in enumerate(value)]
        if isinstance(value, dict):
            return {k: self.plain(f"{key}.{k}", v) for k, v in value.items()}
        if isinstance(value, str | bool | int) or (isinstance(value, float) and math.isfinite(value)):
            return value
        raise self.fail(
            key,
            value,
            "parameters are strings, booleans, integers, finite floats, or lists and tables of those",
        )

    def parameters(self, key: str, table: Any, reserved: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(table, dict):
            raise self.fail(key, table, "expected a table of parameter = value")
        for name in table:
            if not name.isidentifier() or keyword.iskeyword(name):
                raise self.fail(f"{key}.{name}", table[name], "a parameter name is a Python identifier")
            if name in reserved:
                raise self.fail(f"{key}.{name}", table[name], f"{list(reserved)} are set by the runner")
        return {name: self.plain(f"{key}.{name}", value) for name, value in table.items()}

    def methods(self, key: str, value: Any) -> list[str]:
        from ..config import METHODS

        allowed = ["base", *METHODS]
        for method in self.nonempty_list(key, value):
            if method not in allowed:
                raise self.fail(key, value, f"{method!r} is not a method; allowed: {allowed}")
        return value

    def seeds(self, key: str, value: Any) -> list[int]:
        for seed in self.nonempty_list(key, value):
            if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
                raise self.fail(key, value, f"{seed!r} is not a seed; seeds are non-negative integers")
        return value

    def sweep(self, key: str, table: Any) -> dict[str, list[Any]]:
        sweep = self.parameters(key, table, RUN_RESERVED)
        if len(sweep) != 1:
            raise self.fail(key, table, "a sweep has one parameter (one [[grid]] per swept parameter)")
        name, values = next(iter(sweep.items()))
        for value in self.nonempty_list(f"{key}.{name}", values):
            if isinstance(value, list | dict) or not SAFE_VALUE.fullmatch(str(value)):
                raise self.fail(
                    f"{key}.{name}",
                    values,
                    f"{value!r} cannot name a folder; swept values are scalars without spaces or slashes",
                )
        return sweep

    def block(self, where: str, table: dict[str, Any]) -> GridBlock:
        self.keys(f"{where}.", table, GRID_KEYS)
        for required in ("methods", "seeds"):
            if required not in table:
                raise ParameterError(f"{self.source}: {where}.{required} is missing")
        return GridBlock(
            methods=self.methods(f"{where}.methods", table["methods"]),
            seeds=self.seeds(f"{where}.seeds", table["seeds"]),
            notebook=self.notebook(f"{where}.notebook", table.get("notebook", DEFAULT_NOTEBOOK)),
            parameters=self.parameters(f"{where}.parameters", table.get("parameters", {}), RUN_RESERVED),
            sweep=self.sweep(f"{where}.sweep", table["sweep"]) if "sweep" in table else {},
        )

    def summary(self, where: str, table: dict[str, Any]) -> SummaryNotebook:
        self.keys(f"{where}.", table, NOTEBOOK_KEYS)
        if "name" not in table:
            raise ParameterError(f"{self.source}: {where}.name is missing")
        parameters = self.parameters(f"{where}.parameters", table.get("parameters", {}), SUMMARY_RESERVED)
        return SummaryNotebook(self.notebook(f"{where}.name", table["name"]), parameters)

    def declared(self, notebook: str, key: str, parameters: dict[str, Any]) -> None:
        """Parameters that the notebook's ``parameters`` cell (if it has one) does not declare are typos."""
        declared = declared_parameters(self.notebooks_dir / f"{notebook}.ipynb")
        unknown = sorted(set(parameters) - declared)
        if declared and unknown:
            raise self.fail(
                f"{key}.{unknown[0]}",
                parameters[unknown[0]],
                f"{notebook} declares no such parameter; it has {sorted(declared)}",
            )

    def unique_runs(self, cells: list[Cell]) -> None:
        seen = Counter(cell.folder for cell in cells)
        repeated = [cell.label for cell in cells if seen[cell.folder] > 1]
        if repeated:
            raise self.fail("grid", sorted(set(repeated)), "each run (variant and seed) may appear only once")


def declared_parameters(notebook: Path) -> set[str]:
    """Names assigned in the cell tagged ``parameters`` (empty if there is none or it is not plain Python).

    Parsed with :mod:`ast`: ``papermill.inspect_notebook`` misses assignments whose comment holds an ``=``."""
    cells = json.loads(notebook.read_text()).get("cells", [])
    for cell in cells:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
            try:
                tree = ast.parse(source)
            except SyntaxError:
                return set()
            return {
                target.id
                for node in tree.body
                if isinstance(node, ast.Assign | ast.AnnAssign)
                for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
                if isinstance(target, ast.Name)
            }
    return set()


# ---------------------------------------------------------------- manifests and run state


def read_manifest(cell: Cell) -> dict[str, Any] | None:
    """The cell's manifest, or None if there is none (or it cannot be read)."""
    try:
        return json.loads(cell.manifest_path.read_text())
    except (OSError, ValueError):
        return None


def _comparable(parameters: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in parameters.items() if k not in PATH_PARAMETERS}, sort_keys=True)


def run_state(cell: Cell) -> str:
    """``pending``, ``complete``, ``stale`` (complete, other parameters), ``interrupted`` or ``failed``."""
    manifest = read_manifest(cell)
    if manifest is None:
        return "failed" if cell.manifest_path.exists() else "pending"
    if manifest.get("status") == "complete":
        same = manifest.get("notebook") == cell.notebook and _comparable(
            manifest.get("parameters", {})
        ) == _comparable(cell.parameters)
        return "complete" if same else "stale"
    return "interrupted" if manifest.get("status") == "running" else "failed"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def package_versions() -> dict[str, str | None]:
    versions = {}
    for key, distribution in VERSIONED_PACKAGES.items():
        try:
            versions[key] = (
                platform.python_version()
                if distribution is None
                else importlib.metadata.version(distribution)
            )
        except importlib.metadata.PackageNotFoundError:
            versions[key] = None
    return versions


def git_state(repo: Path = REPO_ROOT) -> dict[str, Any]:
    """``git_commit`` (None outside a git checkout) and ``git_dirty`` (uncommitted or untracked files)."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
        ).stdout

    try:
        return {
            "git_commit": git("rev-parse", "HEAD").strip(),
            "git_dirty": bool(git("status", "--porcelain")),
        }
    except (OSError, subprocess.CalledProcessError):
        return {"git_commit": None, "git_dirty": None}


def hardware() -> dict[str, Any]:
    cpu_model = None
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        cpu_model = next(
            (
                line.split(":", 1)[1].strip()
                for line in cpuinfo.read_text().splitlines()
                if line.startswith("model name")
            ),
            None,
        )
    import torch  # only here: the runner itself does not need it

    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model,
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def environment_record() -> dict[str, Any]:
    """What every manifest of one :func:`run_grid` call shares: versions, git state, hardware."""
    return {"versions": package_versions(), **git_state(), "hardware": hardware()}


HISTORY_KEYS = ("attempt", "status", "started_at", "finished_at", "wall_seconds", "error")


def new_manifest(cell: Cell, previous: dict[str, Any] | None, environment: dict[str, Any]) -> dict[str, Any]:
    """The manifest of the next attempt; earlier attempts are kept, in short, in ``previous_attempts``."""
    history = (
        []
        if previous is None
        else [*previous.get("previous_attempts", []), {key: previous.get(key) for key in HISTORY_KEYS}]
    )
    return {
        "experiment": cell.experiment,
        "variant": cell.variant,
        "method": cell.method,
        "seed": cell.seed,
        "sweep": cell.sweep,
        "notebook": cell.notebook,
        "parameters": cell.parameters,
        "status": "running",
        "attempt": int((previous or {}).get("attempt") or 0) + 1,
        "started_at": now_iso(),
        "finished_at": None,
        "wall_seconds": None,
        "peak_rss_mb": None,
        "error": None,
        "previous_attempts": history,
        **environment,
    }


def resumable(cell: Cell, previous: dict[str, Any] | None) -> bool:
    """An unfinished attempt of this very run (same notebook and parameters) whose files a rerun may keep."""
    return (
        cell.is_run
        and previous is not None
        and previous.get("status") in ("running", "failed")
        and previous.get("notebook") == cell.notebook
        and _comparable(previous.get("parameters", {})) == _comparable(cell.parameters)
    )


# ---------------------------------------------------------------- execution


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


def kernel_name(notebook: Path) -> str:
    """The notebook's kernelspec name (``python3`` if it has none); a non-Python kernel is refused."""
    spec = json.loads(notebook.read_text()).get("metadata", {}).get("kernelspec", {})
    if spec.get("language", "python") != "python":
        raise ParameterError(
            f"{notebook}: kernelspec language={spec['language']!r} is not allowed; the "
            "runner executes Python notebooks"
        )
    return spec.get("name", "python3")


def child_environment(jupyter_path: Path, threads: int | None) -> dict[str, str]:
    env = dict(os.environ)
    env["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(jupyter_path), env.get("JUPYTER_PATH")]))
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


# ---------------------------------------------------------------- the grid run and its report


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
    from ..training import RunSettings

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


# ---------------------------------------------------------------- command line


def show(spec: GridSpec, runs_root: str | Path = "runs") -> str:
    """A table of the grid's cells and their state on disk; runs nothing."""
    rows = [(cell.label, cell.notebook, run_state(cell), str(cell.folder)) for cell in spec.cells(runs_root)]
    rows += [
        (cell.label, cell.notebook, "always rerun", str(cell.executed_path))
        for cell in spec.summary_cells(runs_root)
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    counts = Counter(row[2] for row in rows)
    lines = [
        f"{spec.experiment} ({spec.source}): {len(rows)} notebook executions, "
        + ", ".join(f"{n} {state}" for state, n in counts.items())
    ]
    lines += [
        "  ".join(value.ljust(width) for value, width in zip(row, [*widths, 0], strict=True)) for row in rows
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m uec_repro.experiments run | list | show``. Exit status: 0 all complete, 1 failed or stale
    runs, 2 a bad grid or argument, 130 interrupted."""
    parser = argparse.ArgumentParser(
        prog="python -m uec_repro.experiments", description="Run notebooks over a grid with papermill."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run a grid (complete runs are skipped)")
    run.add_argument("grid", help="a preset name (see `list`) or a TOML grid file")
    run.add_argument(
        "--runs-root", default="runs", help="runs go to <runs-root>/<experiment>/ (default: %(default)s)"
    )
    run.add_argument("--jobs", type=int, help="runs executed in parallel (default: the grid's jobs)")
    run.add_argument("--restart", action="store_true", help="rerun every run, complete ones included")
    run.add_argument("--skip-notebooks", action="store_true", help="do not run the [[notebook]] summaries")
    commands.add_parser("list", help="list the presets")
    show_parser = commands.add_parser("show", help="list the grid's runs and their state; run nothing")
    show_parser.add_argument("grid", help="a preset name or a TOML grid file")
    show_parser.add_argument("--runs-root", default="runs", help="where the runs are (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            for name, description in list_presets().items():
                print(f"{name:20} {description}")
            return 0
        spec = load_grid(args.grid)
        if args.command == "show":
            print(show(spec, args.runs_root))
            return 0
        report = run_grid(
            spec, args.runs_root, jobs=args.jobs, restart=args.restart, skip_notebooks=args.skip_notebooks
        )
    except ParameterError as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0 if report.ok else 1
