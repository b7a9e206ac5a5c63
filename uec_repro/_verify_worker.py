"""math-verify as a separate process (see :mod:`uec_repro.rewards`): one ``[gold, prediction]`` JSON line in,
``1`` or ``0`` out. Its parent kills it when a comparison runs over the hard time limit."""

from __future__ import annotations

import json
import sys


def main() -> None:
    try:
        import resource

        limit = 4 * 1024**3  # a pathological expression may eat memory before the parent's timeout strikes
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):
        pass
    from math_verify import LatexExtractionConfig, parse, verify

    # LaTeX extraction only: math-verify's plain-expression parser calls sympy's parse_expr, which runs eval.
    extraction = [LatexExtractionConfig(boxed_match_priority=0)]
    print("ready", flush=True)
    for line in sys.stdin:
        try:
            gold, prediction = json.loads(line)
            expected = parse(f"\\boxed{{{gold}}}", extraction_config=extraction, parsing_timeout=2)
            predicted = parse(f"\\boxed{{{prediction}}}", extraction_config=extraction, parsing_timeout=2)
            result = bool(expected and predicted and verify(expected, predicted, timeout_seconds=2))
        except Exception:
            result = False
        print("1" if result else "0", flush=True)


if __name__ == "__main__":
    main()
