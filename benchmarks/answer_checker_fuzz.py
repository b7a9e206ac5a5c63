"""Worst-case time of the answer checker on adversarial completions; writes
benchmarks/results/answer_checker_fuzz.json.

Every completion of a seeded fuzz corpus (random unicode, LaTeX-like token soup, deep nesting, 100 kB - 1 MB
strings) and of the explicit nasty cases (1 MB strings, 10k nested braces, ``10**10**10``, ``\\frac`` nested
1000 deep, ``9^{9^{9^9}}`` ...) is scored alone by ``accuracy_reward`` from a worker thread (as TRL may call
it) and timed. Target: every completion within ``MATH_VERIFY_TIMEOUT_S + KILL_MARGIN_S`` (2 s) plus
``SLACK_S``. The math-verify worker's start-up (once per process, and after a kill) is reported apart.

    python benchmarks/answer_checker_fuzz.py            # 1000 fuzz completions per family
    python benchmarks/answer_checker_fuzz.py --quick    # 30 per family, into benchmarks/results/quick/
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
SLACK_S = 0.5  # scanning a 1 MB completion and the pipe round trip, on a loaded machine
FULL_EXAMPLES, QUICK_EXAMPLES = 1000, 30

# Each of these took from seconds to forever before the fixes, or would with a naive checker (also a test
# case).
NASTY = {
    "1 MB of text, no box": "a" * 1_000_000,
    "1 MB boxed": "\\boxed{" + "x" * 1_000_000 + "}",
    "1 MB boxed digits": "\\boxed{" + "9" * 1_000_000 + "}",
    "10k unmatched open braces": "{" * 10_000 + "\\boxed{1" + "}" * 5,
    "10k nested braces in a box": "\\boxed{" + "{" * 10_000 + "1" + "}" * 10_000 + "}",
    "10**10**10": "\\boxed{10**10**10}",
    "10^{10^{10}}": "\\boxed{10^{10^{10}}}",
    "9^{9^{9^9}}": "\\boxed{9^{9^{9^9}}}",
    "7^{123456789}": "\\boxed{7^{123456789}}",
    "(10^{10})!": "\\boxed{(10^{10})!}",
    "\\frac nested 1000 deep": "\\boxed{" + "\\frac{1}{" * 1000 + "2" + "}" * 1000 + "}",
    "\\frac nested 50 deep": "\\boxed{" + "\\frac{1}{" * 50 + "2" + "}" * 50 + "}",
    "\\sqrt nested 300 deep": "\\boxed{" + "\\sqrt{" * 300 + "2" + "}" * 300 + "}",
    # the trailing-unit pattern backtracked exponentially on repeated units (22 units: 7 s; 300: forever)
    "300 repeated units": "\\boxed{1" + " cm" * 300 + " x}",
    "100k repeated units": "\\boxed{1" + " cm" * 100_000 + " x}",
    "python payload": "\\boxed{__import__('os').system('true')}",
}
LATEX_TOKENS = [
    "\\boxed{",
    "{",
    "}",
    "\\frac",
    "\\sqrt",
    "^",
    "_",
    "!",
    "\\pi",
    "\\left(",
    "\\right)",
    "(",
    ")",
    ",",
    ".",
    "=",
    "x",
    " ",
    "\\text{",
    " cm",
    "^\\circ",
    "\\%",
    "-",
    "+",
    "*",
    "/",
    "1",
    "2",
    "9",
    "10",
    "\\cdot",
    "\\begin{pmatrix}",
    "\\end{pmatrix}",
    "&",
    "\\\\",
    "\\log",
    "\\sin",
    "__import__",
    "lambda",
]
GOLDS = ["5", "\\frac{1}{2}", "2\\sqrt{3}", "x^2+1", "(1,2)", "\\pi", "60", "1,000"]


def fuzz_corpus(examples: int, seed: int) -> list[tuple[str, str, str]]:
    """(family, completion, gold) triples, ``examples`` per family."""
    rng = random.Random(seed)
    corpus = []
    for _ in range(examples):
        text = "".join(
            chr(rng.choice([rng.randrange(32, 127), rng.randrange(0x10FFFF)]))
            for _ in range(rng.randrange(2000))
        )
        text = text.encode("utf-8", "replace").decode("utf-8", "replace")
        corpus.append(("unicode", f"\\boxed{{{text}}}" if rng.random() < 0.5 else text, rng.choice(GOLDS)))
        soup = "".join(rng.choice(LATEX_TOKENS) for _ in range(rng.randrange(80)))
        corpus.append(("latex", f"\\boxed{{{soup}}}" if rng.random() < 0.5 else soup, rng.choice(GOLDS)))
        depth, opener = rng.randrange(20_000), rng.choice(["{", "\\frac{1}{", "\\sqrt{", "^{", "\\boxed{"])
        corpus.append(
            ("nesting", "\\boxed{" + opener * depth + "1" + "}" * rng.choice([depth, depth // 2]) + "}", "1")
        )
        unit = rng.choice(["9", "x", "{", "}", " cm", "\\frac{1}{2}", "é"])
        body = unit * (rng.choice([100_000, 1_000_000]) // len(unit))
        corpus.append(
            ("huge", rng.choice([body, f"\\boxed{{{body}}}", f"<think>{body}</think>\\boxed{{5}}"]), "5")
        )
    return corpus


def timed(cases: list[tuple[str, str, str]]) -> list[float]:
    from uec_repro.rewards import accuracy_reward

    seconds = []
    for _, completion, gold in cases:
        started = time.perf_counter()
        (score,) = accuracy_reward([completion], [gold])
        seconds.append(time.perf_counter() - started)
        if score not in (0.0, 1.0):
            raise AssertionError(f"score {score!r} outside {{0.0, 1.0}}")
    return seconds


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK_EXAMPLES} fuzz completions per family, not {FULL_EXAMPLES}",
    )
    parser.add_argument(
        "--examples", type=int, help="fuzz completions per family (overrides --quick's count)"
    )
    parser.add_argument("--seed", type=int, default=0, help="corpus seed (default 0)")
    parser.add_argument(
        "--out", type=Path, help="result file (default: benchmarks/results[/quick]/answer_checker_fuzz.json)"
    )
    args = parser.parse_args(argv)
    if args.examples is not None and args.examples < 1:
        parser.error(f"--examples={args.examples} must be an integer >= 1")
    if args.seed < 0:
        parser.error(f"--seed={args.seed} must be an integer >= 0")
    if args.out is not None and args.out.suffix != ".json":
        parser.error(f"--out={str(args.out)!r} must be a .json file")
    args.examples = args.examples or (QUICK_EXAMPLES if args.quick else FULL_EXAMPLES)
    args.out = args.out or RESULTS / ("quick" if args.quick else "") / "answer_checker_fuzz.json"
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    from uec_repro import rewards

    started = time.perf_counter()
    rewards._VERIFIER.verify("1", "1")
    startup = time.perf_counter() - started
    corpus = fuzz_corpus(args.examples, args.seed) + [("nasty", text, "5") for text in NASTY.values()]
    names = [f"{family} #{i}" for i, (family, _, _) in enumerate(corpus[: -len(NASTY)])] + list(NASTY)
    with ThreadPoolExecutor(max_workers=1) as pool:
        seconds = pool.submit(timed, corpus).result()

    worst = max(range(len(corpus)), key=seconds.__getitem__)
    bound = rewards.MATH_VERIFY_TIMEOUT_S + rewards.KILL_MARGIN_S
    by_family = {}
    for family in dict.fromkeys(family for family, _, _ in corpus):
        times = [s for (f, _, _), s in zip(corpus, seconds, strict=True) if f == family]
        by_family[family] = {
            "completions": len(times),
            "max_s": max(times),
            "median_s": statistics.median(times),
        }
    report = {
        "worst_case": {
            "seconds": seconds[worst],
            "input": names[worst],
            "chars": len(corpus[worst][1]),
            "starts": corpus[worst][1][:80],
        },
        "bound_s": bound,
        "target_s": bound + SLACK_S,
        "within_target": seconds[worst] <= bound + SLACK_S,
        "completions": len(corpus),
        "p99_s": statistics.quantiles(seconds, n=100)[98],
        "median_s": statistics.median(seconds),
        "by_family": by_family,
        "nasty_cases_s": dict(zip(NASTY, seconds[-len(NASTY) :], strict=True)),
        "math_verify_timeouts": rewards._VERIFIER.timeouts,
        "math_verify_worker_kills": rewards._VERIFIER.kills,
        "worker_startup_s": startup,
        "settings": {
            "examples_per_family": args.examples,
            "seed": args.seed,
            "quick": args.quick,
            "MATH_VERIFY_TIMEOUT_S": rewards.MATH_VERIFY_TIMEOUT_S,
            "KILL_MARGIN_S": rewards.KILL_MARGIN_S,
            "MAX_ANSWER_CHARS": rewards.MAX_ANSWER_CHARS,
        },
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=True) + "\n")
    w = report["worst_case"]
    print(
        f"worst case {w['seconds']:.3f} s on {w['input']!r} ({w['chars']} chars); bound {bound:.1f} s; "
        f"{len(corpus)} completions, p99 {report['p99_s']:.3f} s; {report['math_verify_timeouts']} timeouts, "
        f"{report['math_verify_worker_kills']} kills -> {args.out}"
    )
    return report


if __name__ == "__main__":
    sys.exit(0 if main()["within_target"] else 1)
