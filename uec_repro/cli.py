"""Command line: ``uec-repro reproduce | run | list | show | train | evaluate | grpo-demo | build-toy |
export-reference`` (also ``python -m uec_repro``).

``reproduce`` is the main job: the batch runner on the ``default`` preset (every method over seeds on the toy
policy, then every figure), the same as ``uec-repro run default``. ``run | list | show`` are the batch
runner's commands (:mod:`uec_repro.experiments.cli`, also ``python -m uec_repro.experiments ...``): run a
preset or a TOML grid, list the presets, show a grid's runs and their state.

``train`` is one run (:func:`uec_repro.training.run_training`) from TRL-style flags and recipes
(:mod:`uec_repro.train_cli`): ``uec-repro train --config paper --method uec_rl --seed 3`` (``--config``: a
preset or a YAML recipe).
Under ``torchrun --standalone --nproc_per_node N -m uec_repro train ...`` (or, on N GPUs,
``accelerate launch --num_processes N -m uec_repro train ...``) it trains with N processes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import shutil
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from .experiments import cli as runner
from .layout import EXPERIMENT_FILE, MANIFEST_FILE, RESULT_FILES
from .validation import ParameterError, check_writable_dir


def export_reference(experiment_dir: Path, destination: Path) -> int:
    """Copy the results of a finished experiment (manifests, metrics, probes, evaluations; no weights, no
    notebooks) to ``destination``, replacing what was there; returns the number of runs copied.

    The copies hold no machine path: a path under ``experiment_dir`` is written relative to it, any other
    absolute path as ``.../<its last part>``. ``experiment.json`` records the experiment's wall time: the
    union of its runs' attempts (``started_at`` to ``finished_at``), so idle time between invocations of the
    runner does not count, and time two runs ran side by side counts once."""
    experiment_dir = experiment_dir.resolve()
    runs = sorted(p.parent for p in experiment_dir.glob(f"*/seed*/{MANIFEST_FILE}"))
    if not runs:
        raise ParameterError(
            f"experiment_dir={str(experiment_dir)!r} holds no runs (<variant>/seed<k>/run.json)"
        )
    shutil.rmtree(destination, ignore_errors=True)
    manifests = []
    for run in runs:
        target = destination / run.relative_to(experiment_dir)
        target.mkdir(parents=True)
        for name in RESULT_FILES:
            if not (run / name).exists():
                continue
            if name.endswith(".json"):
                text = (run / name).read_text()
                record = relative_paths(json.loads(text), experiment_dir)
                indent = re.match(r"[{\[]\n( *)", text)  # keep the file's layout: a diff shows only the paths
                (target / name).write_text(
                    json.dumps(record, indent=len(indent[1]) if indent else None) + "\n"
                )
                if name == MANIFEST_FILE:
                    manifests.append(record)
            else:
                shutil.copy2(run / name, target / name)
    (destination / EXPERIMENT_FILE).write_text(json.dumps(experiment_record(manifests), indent=2) + "\n")
    return len(runs)


def relative_paths(value: Any, root: Path) -> Any:
    """``value`` (parsed JSON) with every absolute path string made relative to ``root`` (``.`` for ``root``
    itself) or, outside ``root``, shortened to ``.../<last part>``."""
    if isinstance(value, dict):
        return {key: relative_paths(item, root) for key, item in value.items()}
    if isinstance(value, list):
        return [relative_paths(item, root) for item in value]
    if isinstance(value, str) and Path(value).is_absolute():
        path = Path(value)
        return path.relative_to(root).as_posix() if path.is_relative_to(root) else f".../{path.name}"
    return value


def experiment_record(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    """Wall time of the runs behind ``manifests`` (the union of their attempts' intervals) and the sum of
    their attempts' times."""
    intervals = sorted(
        (datetime.fromisoformat(attempt["started_at"]), datetime.fromisoformat(attempt["finished_at"]))
        for manifest in manifests
        for attempt in [manifest, *manifest.get("previous_attempts", [])]
        if attempt.get("started_at") and attempt.get("finished_at")
    )
    wall, end = 0.0, None
    for start, finish in intervals:
        if end is None or start > end:
            wall += (finish - start).total_seconds()
            end = finish
        elif finish > end:
            wall += (finish - end).total_seconds()
            end = finish
    return {
        "experiment": manifests[0].get("experiment") if manifests else None,
        "runs": len(manifests),
        "wall_seconds": round(wall, 1),
        "run_seconds": round(sum((finish - start).total_seconds() for start, finish in intervals), 1),
        "first_started_at": intervals[0][0].isoformat() if intervals else None,
        "last_finished_at": max(finish for _, finish in intervals).isoformat() if intervals else None,
    }


def plain_text(rst: str) -> str:
    """``rst`` without its reStructuredText markup (``:role:`target``` and double back-ticks), for argparse's
    plain-text help; the module docstring keeps the markup for Sphinx-style reading."""
    return re.sub(r":[a-z:]+:`~?([^`]+)`", r"\1", rst).replace("``", "")


def main(argv: list[str] | None = None) -> int:
    from .grpo_demo import GRPODemoConfig

    parser = argparse.ArgumentParser(
        prog="uec-repro",
        description=plain_text(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    reproduce = commands.add_parser("reproduce", help="The main job: the default preset, then every figure.")
    reproduce.add_argument("--runs-root", default="runs", help="Where runs go (<runs-root>/default/...).")
    reproduce.add_argument("--jobs", type=int, default=None, help="Runs in parallel (default: the preset's).")
    runner.add_commands(commands)
    commands.add_parser(  # listed here; its own parser is uec_repro.train_cli's
        "train",
        add_help=False,
        help="One training run: every RunSettings and UECConfig field is a flag, --config recipe.yaml; "
        "`uec-repro train --help` lists them.",
    )
    demo = commands.add_parser("grpo-demo", help="A short run of TRL's stock GRPOTrainer (no UEC-RL code).")
    for f in dataclasses.fields(GRPODemoConfig):
        demo.add_argument(
            f"--{f.name.replace('_', '-')}", type=type(f.default), default=f.default, help=f.metadata["help"]
        )
    build = commands.add_parser(
        "build-toy", help="Build (or find in the cache) a toy policy and print its folder."
    )
    build.add_argument("--policy", default="toy", choices=("toy", "toy-geometry"), help="Which organism.")
    export = commands.add_parser(
        "export-reference",
        help="Copy a finished experiment's results (no weights) to "
        "data/reference/<experiment> for 05_paper_figures.",
    )
    export.add_argument("experiment_dir", type=Path)
    export.add_argument("--to", type=Path, default=None, help="Destination (default data/reference/<name>).")
    evaluate = commands.add_parser(
        "evaluate", help="Evaluate a run's adapter, or a checkpoint's, again (uec_repro.reevaluate)."
    )
    evaluate.add_argument("path", metavar="PATH", help="A run folder, its adapter/ or a checkpoint-<step>/.")
    for flag, kind, what in (
        ("--task", str, "test task"),
        ("--n", int, "test prompts"),
        ("--samples", int, "samples per prompt"),
        ("--temperature", float, "sampling temperature"),
        ("--max-new-tokens", int, "generation budget in tokens"),
        ("--seed", int, "sampling seed"),
        ("--policy", str, "base policy (needed for an adapter outside a run folder)"),
    ):
        evaluate.add_argument(flag, type=kind, default=None, help=f"The {what} (default: the run's).")
    evaluate.add_argument("--out", default=None, help="Output file (default <PATH>/eval-<task>-T<t>.json).")
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["train"]:
        from .train_cli import main as train

        return train(argv[1:])
    args = parser.parse_args(argv)
    if args.command in runner.COMMANDS:
        return runner.run_command(args, parser.prog)
    try:
        if args.command == "build-toy":
            from .models.toy import RECIPES, toy_policy_dir

            print(toy_policy_dir(recipe=RECIPES[args.policy]))
        elif args.command == "grpo-demo":
            from .grpo_demo import format_summary, run_grpo_demo

            options = {f.name: getattr(args, f.name) for f in dataclasses.fields(GRPODemoConfig)}
            config = GRPODemoConfig(**options)
            check_writable_dir("--output-dir", config.output_dir)
            print(format_summary(run_grpo_demo(config)))
        elif args.command == "evaluate":
            from .reevaluate import plan_evaluation, reevaluate

            options = ("task", "n", "samples", "temperature", "max_new_tokens", "seed", "policy", "out")
            plan = plan_evaluation(args.path, **{name: getattr(args, name) for name in options})
            print(json.dumps(reevaluate(plan)["summary"], indent=1))
            print(f"written to {plan.out}")
        elif args.command == "export-reference":
            destination = args.to or Path("data/reference") / args.experiment_dir.name
            check_writable_dir("--to", destination)
            count = export_reference(args.experiment_dir, destination)
            print(f"copied {count} runs to {destination}")
        else:
            from .experiments import load_grid, run_grid

            report = run_grid(load_grid("default"), runs_root=args.runs_root, jobs=args.jobs)
            figures = (
                Path(__file__).resolve().parents[1] / "figures"
            )  # the preset's figures_dir, from the repo root
            print(f"figures: {figures}/  summary table: {figures / 'summary.md'}")
            print((figures / "summary.md").read_text() if (figures / "summary.md").exists() else "")
            return 0 if report.ok else 1
    except ParameterError as error:
        print(f"uec-repro: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
