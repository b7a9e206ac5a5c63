"""Grid files: the TOML schema and its checks, :class:`GridSpec` and its cells, presets.

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
"""

from __future__ import annotations

import ast
import json
import keyword
import math
import os
import re
import tomllib
from collections import Counter
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..layout import BASE_METHOD, run_folder, variant_name
from ..methods import METHODS
from ..training import RunSettings
from ..validation import ParameterError, check_choice, check_int
from .cells import SUMMARY_FOLDER, Cell

REPO_ROOT = Path(__file__).resolve().parents[2]
PRESETS_DIR = Path(__file__).parent / "presets"
NOTEBOOKS_ENV = "UEC_REPRO_NOTEBOOKS"
DEFAULT_NOTEBOOK = "01_train"

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
        allowed = [BASE_METHOD, *METHODS]
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


def kernel_name(notebook: Path) -> str:
    """The notebook's kernelspec name (``python3`` if it has none); a non-Python kernel is refused."""
    spec = json.loads(notebook.read_text()).get("metadata", {}).get("kernelspec", {})
    if spec.get("language", "python") != "python":
        raise ParameterError(
            f"{notebook}: kernelspec language={spec['language']!r} is not allowed; the "
            "runner executes Python notebooks"
        )
    return spec.get("name", "python3")


def training_grid(
    experiment_dir: str,
    methods: list[str],
    seeds: list[int],
    parameters: dict[str, Any],
    *,
    sweeps: dict[str, list[Any]] | None = None,
    sweep_method: str = "uec_rl",
    sweep_seeds: list[int] | None = None,
) -> dict[str, Any]:
    """A grid for :func:`uec_repro.experiments.run_grid` over ``01_train``: ``methods`` x ``seeds``, plus one
    block per swept setting (``sweep_method`` at each value, over ``sweep_seeds``). Every combination is
    checked as :class:`RunSettings` here, so a bad method, parameter or value fails before the first run
    starts."""
    sweeps = sweeps or {}
    if not isinstance(parameters, dict):
        raise ParameterError(f"parameters={parameters!r} must be a dict of RunSettings fields")
    names = {f.name for f in fields(RunSettings)}
    reserved = {"method", "seed", "output_dir"} & set(parameters)
    unknown = sorted(set(parameters) - names) + sorted(set(sweeps) - names)
    if unknown or reserved:
        raise ParameterError(
            f"unknown or reserved run parameter(s) {unknown + sorted(reserved)}; allowed: "
            f"{sorted(names - {'method', 'seed', 'output_dir'})}"
        )
    if not isinstance(methods, list) or not methods:
        raise ParameterError(f"methods={methods!r} must be a non-empty list of method names")
    if not isinstance(seeds, list) or not seeds:
        raise ParameterError(f"seeds={seeds!r} must be a non-empty list of seeds")
    for method in methods:
        check_choice("methods", method, [BASE_METHOD, *METHODS])
    for seed in [*seeds, *(sweep_seeds or [])]:
        check_int("seeds", seed, minimum=0)
    for method in methods:
        RunSettings(method=method, **parameters)
    for name, values in sweeps.items():
        for value in values:
            RunSettings(method=sweep_method, **{**parameters, name: value})
    blocks = [{"methods": list(methods), "seeds": list(seeds)}]
    blocks += [
        {"methods": [sweep_method], "seeds": list(sweep_seeds or seeds), "sweep": {name: list(values)}}
        for name, values in sweeps.items()
    ]
    path = Path(experiment_dir)
    return {"experiment": path.name, "parameters": dict(parameters), "grid": blocks}
