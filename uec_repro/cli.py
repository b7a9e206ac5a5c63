"""Command line: ``uec-repro reproduce | build-toy`` (also ``python -m uec_repro``)."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from .validation import ParameterError


def main(argv: list[str] | None = None) -> int:
    from .grpo_demo import GRPODemoConfig

    parser = argparse.ArgumentParser(prog="uec-repro", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("reproduce", help="The main job: build the toy policy if needed, run a short GRPO, report.")
    for f in dataclasses.fields(GRPODemoConfig):
        demo.add_argument(f"--{f.name.replace('_', '-')}", type=type(f.default), default=f.default, help=f.metadata["help"])
    commands.add_parser("build-toy", help="Build (or find in the cache) the toy policy and print its folder.")
    args = parser.parse_args(argv)
    try:
        if args.command == "build-toy":
            from .models.toy import toy_policy_dir

            print(toy_policy_dir())
        else:
            from .grpo_demo import format_summary, run_grpo_demo

            options = {f.name: getattr(args, f.name) for f in dataclasses.fields(GRPODemoConfig)}
            print(format_summary(run_grpo_demo(GRPODemoConfig(**options))))
    except ParameterError as error:
        print(f"uec-repro: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
