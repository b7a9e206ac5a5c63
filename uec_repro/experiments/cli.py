"""The runner's command line, ``run | list | show``: ``python -m uec_repro.experiments ...``, and the same
subcommands of ``uec-repro`` (:func:`add_commands`, :func:`run_command`)."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from ..validation import ParameterError
from .cells import run_state
from .grid import GridSpec, list_presets, load_grid
from .scheduling import run_grid

COMMANDS = ("run", "list", "show")


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


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add the :data:`COMMANDS` and their arguments to a parser's subcommands."""
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


def run_command(args: argparse.Namespace, prog: str) -> int:
    """Carry out a parsed ``run``, ``list`` or ``show`` (errors are printed as ``<prog>: error: ...``). Exit
    status: 0 all complete, 1 failed or stale runs, 2 a bad grid or argument, 130 interrupted."""
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
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0 if report.ok else 1


def main(argv: list[str] | None = None) -> int:
    """``python -m uec_repro.experiments run | list | show``; see :func:`run_command`."""
    parser = argparse.ArgumentParser(
        prog="python -m uec_repro.experiments", description="Run notebooks over a grid with papermill."
    )
    add_commands(parser.add_subparsers(dest="command", required=True))
    return run_command(parser.parse_args(argv), parser.prog)
