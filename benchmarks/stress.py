"""Kill-and-resume check: runs killed at chosen or random points, rerun until they finish, must end exactly as
an uninterrupted run with the same seed (``make stress``; the tests run a short chain of it).

A chain is one run directory: attempt 1 is killed at the first kill point, the rerun resumes from its newest
complete checkpoint and is killed at the next point, and so on; the last rerun finishes. A kill point is
either a fault point (:mod:`uec_repro.faults`: the process sends itself SIGKILL or SIGTERM when it reaches
e.g. the update of step 5) or, last in every second chain, a wall-clock delay after which this process kills
it from outside (if the attempt finishes first, that kill is not counted). At the end the
metrics file must hold each step exactly once and equal the uninterrupted run's, value for value (wall times
and memory aside), and so must the final evaluation.

    python -m benchmarks.stress --kills 20 --out benchmarks/results/stress.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from uec_repro.faults import FAULT_POINTS
from uec_repro.validation import ParameterError, check_int

__all__ = ["Kill", "StressReport", "compare_runs", "run_chain", "stress"]

# one short uec_rl run whose steps pass every fault point: updates, replays due at steps 3 and 6,
# checkpoints every 2
STRESS_SETTINGS: dict[str, Any] = {
    "method": "uec_rl",
    "steps": 6,
    "prompts_per_step": 4,
    "num_generations": 4,
    "max_completion_length": 24,
    "replay_frequency": 3,
    "overrides": {"batch_buffer": False},
    "validation_prompts": 8,
    "validation_every": 3,
    "eval_prompts": 8,
    "eval_samples": 4,
    "checkpoint_every": 2,
    "threads": 1,
    "save_adapter": False,
}
RUN_ONE = (
    "import json, sys\nfrom uec_repro.training import RunSettings, run_training\n"
    "run_training(RunSettings(**json.loads(sys.argv[1])))"
)
VOLATILE = ("time/", "memory/", "step_time")  # columns that differ between identical runs


@dataclass(frozen=True)
class Kill:
    """Where an attempt dies: ``signal`` at fault ``point`` of ``step``, or after ``delay`` seconds."""

    signal: str = "KILL"
    point: str | None = None
    step: int | None = None
    delay: float | None = None

    def label(self) -> str:
        where = f"{self.point}@step{self.step}" if self.point else f"after {self.delay:.1f}s"
        return f"SIG{self.signal} {where}"


@dataclass
class StressReport:
    kills: int = 0
    resumes: int = 0
    lost_steps: int = 0
    duplicated_steps: int = 0
    chains: int = 0
    chains_identical: int = 0
    seconds: float = 0.0
    attempts: list[dict[str, Any]] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return self.chains == self.chains_identical

    def line(self) -> str:
        return (
            f"{self.kills} kills, {self.resumes} resumes, {self.lost_steps + self.duplicated_steps} lost or "
            f"duplicated steps, final metrics {'identical' if self.identical else 'DIFFERENT'} "
            f"({self.chains_identical}/{self.chains} runs)"
        )


def attempt(settings: dict[str, Any], kill: Kill | None) -> int:
    """Run (or resume) the run of ``settings`` in a subprocess, dying at ``kill``; returns its exit code
    (negative: the signal that ended it)."""
    env = dict(os.environ)
    env.pop("UEC_REPRO_FAULT", None)
    if kill and kill.point:
        env["UEC_REPRO_FAULT"] = f"{kill.signal}:{kill.point}:{kill.step}"
    process = subprocess.Popen(
        [sys.executable, "-c", RUN_ONE, json.dumps(settings)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    if kill and kill.delay is not None:
        try:
            process.wait(timeout=kill.delay)
        except subprocess.TimeoutExpired:
            process.send_signal(getattr(signal, f"SIG{kill.signal}"))
    _, errors = process.communicate()
    if process.returncode > 0:
        raise RuntimeError(f"run failed (exit {process.returncode}):\n{errors[-3000:]}")
    return process.returncode


def _rows(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


def compare_runs(reference: Path, resumed: Path) -> list[str]:
    """Differences between two finished runs: per-step metrics (volatile columns aside) and the evaluation."""
    differences = []
    expected, got = _rows(reference), _rows(resumed)
    for want, have in zip(expected, got, strict=False):
        for key in sorted(set(want) | set(have)):
            if not key.startswith(VOLATILE) and want.get(key) != have.get(key):
                differences.append(f"step {want['step']} {key}: {want.get(key)} != {have.get(key)}")
    if len(expected) != len(got):
        differences.append(f"{len(expected)} steps != {len(got)} steps")
    evaluations = [json.loads((folder / "eval.json").read_text()) for folder in (reference, resumed)]
    for key in ("summary", "correct"):
        if evaluations[0][key] != evaluations[1][key]:
            differences.append(f"eval.json {key} differs")
    return differences


def run_chain(
    settings: dict[str, Any], folder: Path, kills: list[Kill], reference: Path, report: StressReport
) -> None:
    """One run directory killed at each of ``kills`` in turn, then finished; adds what happened to
    ``report``."""
    settings = {**settings, "output_dir": str(folder)}
    for kill in kills:
        code = attempt(settings, kill)
        killed = code == -getattr(signal, f"SIG{kill.signal}")
        report.kills += killed
        report.attempts.append({"run": folder.name, "kill": kill.label(), "exit": code, "killed": killed})
        if killed:
            report.resumes += 1  # the next attempt resumes it
        elif (folder / "eval.json").exists():
            break  # it finished before this kill point was reached
    if not (folder / "eval.json").exists():
        attempt(settings, None)
    steps = [row["step"] for row in _rows(folder)]
    report.lost_steps += len(set(range(1, settings["steps"] + 1)) - set(steps))
    report.duplicated_steps += len(steps) - len(set(steps))
    differences = compare_runs(reference, folder)
    report.chains += 1
    report.chains_identical += not differences
    report.differences += [f"{folder.name}: {d}" for d in differences]


def reachable_points(reference: Path, checkpoint_every: int) -> dict[str, list[int]]:
    """The steps at which the reference run passed each fault point (read from its metrics; the step-0 row is
    the probe of the initial policy, before any training step)."""
    rows = [row for row in _rows(reference) if row["step"] > 0]
    return {
        "generation": [row["step"] for row in rows],
        "update": [row["step"] for row in rows if row["uec/updated"]],
        "replay": [row["step"] for row in rows if row["uec/replayed"]],
        "checkpoint": [row["step"] for row in rows if row["step"] % checkpoint_every == 0],
    }


def random_kills(
    count: int, reachable: dict[str, list[int]], rng: random.Random, seconds: float, timed: bool
) -> list[Kill]:
    """``count`` kill points for one chain: fault points at steps where the run passes them, in increasing
    order of step, then (``timed``) a last kill from outside after a random part of a run's duration."""
    points = [point for point in FAULT_POINTS if reachable[point]]
    timed = timed and count > 1
    kills = sorted(
        (
            Kill(rng.choice(["KILL", "TERM"]), point, rng.choice(reachable[point]))
            for point in (rng.choice(points) for _ in range(count - timed))
        ),
        key=lambda k: k.step,
    )
    if timed:
        kills.append(Kill(rng.choice(["KILL", "TERM"]), delay=rng.uniform(0.1, 0.5) * seconds))
    return kills


def stress(
    kills: int, out_dir: Path, *, per_run: int = 5, seed: int = 0, settings: dict[str, Any] | None = None
) -> StressReport:
    """``kills`` random kill points over chains of ``per_run``, against one uninterrupted reference run."""
    check_int("kills", kills, minimum=1)
    check_int("per_run", per_run, minimum=1)
    settings = settings or STRESS_SETTINGS
    rng = random.Random(seed)
    started = time.monotonic()
    reference = out_dir / "reference"
    attempt({**settings, "output_dir": str(reference)}, None)
    seconds = time.monotonic() - started
    reachable = reachable_points(reference, settings["checkpoint_every"])
    report = StressReport()
    for chain, first in enumerate(range(0, kills, per_run)):
        chain_kills = random_kills(min(per_run, kills - first), reachable, rng, seconds, timed=chain % 2 == 1)
        run_chain(settings, out_dir / f"run{chain}", chain_kills, reference, report)
    report.seconds = round(time.monotonic() - started, 1)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.stress",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--kills", type=int, default=20, help="Kill points in all (default 20).")
    parser.add_argument(
        "--per-run", type=int, default=5, help="Kills chained in one run directory (default 5)."
    )
    parser.add_argument("--seed", type=int, default=0, help="Seed of the random kill points.")
    parser.add_argument(
        "--work-dir", type=Path, default=Path("runs/stress"), help="Where the runs go (replaced)."
    )
    parser.add_argument(
        "--out", type=Path, default=Path("benchmarks/results/stress.json"), help="Report (JSON)."
    )
    args = parser.parse_args(argv)
    try:
        check_int("kills", args.kills, minimum=1)
        check_int("per_run", args.per_run, minimum=1)
    except ParameterError as error:
        print(f"uec-repro stress: error: {error}", file=sys.stderr)
        return 2
    shutil.rmtree(args.work_dir, ignore_errors=True)
    report = stress(args.kills, args.work_dir, per_run=args.per_run, seed=args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"summary": report.line(), "settings": STRESS_SETTINGS, **asdict(report)}, indent=1) + "\n"
    )
    print(report.line())
    for difference in report.differences[:20]:
        print("  ", difference)
    return 0 if report.identical and not report.lost_steps and not report.duplicated_steps else 1


if __name__ == "__main__":
    sys.exit(main())
