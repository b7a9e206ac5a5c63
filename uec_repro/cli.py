"""Command line: ``uec-repro reproduce | train | grpo-demo | build-toy | export-reference`` (also ``python -m
uec_repro``).

``reproduce`` is the main job: the batch runner on the ``default`` preset (every method over seeds on the toy
policy, then every figure), the same as ``python -m uec_repro.experiments run default``.

``train`` is one run (:func:`uec_repro.training.run_training`) from ``name=value`` settings, e.g.
``uec-repro train method=grpo steps=10 output_dir=runs/manual/grpo``; values are Python literals (numbers,
``True``, ``{'beta': 0.0}``) or plain text. Under ``torchrun --standalone --nproc_per_node N -m uec_repro train
...`` (or, on N GPUs, ``accelerate launch --num_processes N -m uec_repro train ...``) it trains with N processes.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from .validation import ParameterError, check_writable_dir

REFERENCE_FILES = ("run.json", "metrics.jsonl", "probe.jsonl", "eval.json")


def export_reference(experiment_dir: Path, destination: Path) -> int:
    """Copy the results of a finished experiment (manifests, metrics, probes, evaluations; no weights, no notebooks)
    to ``destination``, replacing what was there; returns the number of runs copied."""
    runs = sorted(p.parent for p in experiment_dir.glob("*/seed*/run.json"))
    if not runs:
        raise ParameterError(f"experiment_dir={str(experiment_dir)!r} holds no runs (<variant>/seed<k>/run.json)")
    shutil.rmtree(destination, ignore_errors=True)
    for run in runs:
        target = destination / run.relative_to(experiment_dir)
        target.mkdir(parents=True)
        for name in REFERENCE_FILES:
            if (run / name).exists():
                shutil.copy2(run / name, target / name)
    return len(runs)


def parse_settings(pairs: list[str]) -> dict[str, Any]:
    """``["method=grpo", "steps=10"]`` -> ``{"method": "grpo", "steps": 10}``; names must be RunSettings fields."""
    from .training import RunSettings

    names = [f.name for f in dataclasses.fields(RunSettings)]
    settings = {}
    for pair in pairs:
        name, equals, text = pair.partition("=")
        if not equals or name not in names:
            raise ParameterError(f"setting {pair!r} must be name=value with a name of {names}")
        try:
            settings[name] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            settings[name] = text
    return settings


def main(argv: list[str] | None = None) -> int:
    from .grpo_demo import GRPODemoConfig

    parser = argparse.ArgumentParser(prog="uec-repro", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    reproduce = commands.add_parser("reproduce", help="The main job: the default preset, then every figure.")
    reproduce.add_argument("--runs-root", default="runs", help="Where runs go (<runs-root>/default/...).")
    reproduce.add_argument("--jobs", type=int, default=None, help="Runs in parallel (default: the preset's).")
    train = commands.add_parser("train", help="One training run (uec_repro.training.RunSettings as name=value); "
                                              "under torchrun or accelerate launch, with several processes.")
    train.add_argument("settings", nargs="*", metavar="name=value", help="A RunSettings field and its value.")
    demo = commands.add_parser("grpo-demo", help="A short run of TRL's stock GRPOTrainer (no UEC-RL code).")
    for f in dataclasses.fields(GRPODemoConfig):
        demo.add_argument(f"--{f.name.replace('_', '-')}", type=type(f.default), default=f.default, help=f.metadata["help"])
    commands.add_parser("build-toy", help="Build (or find in the cache) the toy policy and print its folder.")
    export = commands.add_parser("export-reference", help="Copy a finished experiment's results (no weights) to "
                                                          "data/reference/<experiment> for 05_paper_figures.")
    export.add_argument("experiment_dir", type=Path)
    export.add_argument("--to", type=Path, default=None, help="Destination (default data/reference/<name>).")
    args = parser.parse_args(argv)
    try:
        if args.command == "build-toy":
            from .models.toy import toy_policy_dir

            print(toy_policy_dir())
        elif args.command == "grpo-demo":
            from .grpo_demo import format_summary, run_grpo_demo

            options = {f.name: getattr(args, f.name) for f in dataclasses.fields(GRPODemoConfig)}
            config = GRPODemoConfig(**options)
            check_writable_dir("--output-dir", config.output_dir)
            print(format_summary(run_grpo_demo(config)))
        elif args.command == "train":
            from .training import RunSettings, run_training

            result = run_training(RunSettings(**parse_settings(args.settings)))
            if result is not None:
                print(json.dumps(result["summary"], indent=1))
        elif args.command == "export-reference":
            destination = args.to or Path("data/reference") / args.experiment_dir.name
            check_writable_dir("--to", destination)
            count = export_reference(args.experiment_dir, destination)
            print(f"copied {count} runs to {destination}")
        else:
            from .experiments import load_grid, run_grid

            report = run_grid(load_grid("default"), runs_root=args.runs_root, jobs=args.jobs)
            figures = Path(__file__).resolve().parents[1] / "figures"  # the preset's figures_dir, from the repo root
            print(f"figures: {figures}/  summary table: {figures / 'summary.md'}")
            print((figures / "summary.md").read_text() if (figures / "summary.md").exists() else "")
            return 0 if report.ok else 1
    except ParameterError as error:
        print(f"uec-repro: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
