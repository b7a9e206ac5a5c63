"""math-verify as a separate process (see :mod:`uec_repro.rewards`).

Protocol, one JSON line per comparison: ``[gold, prediction, budget_s]`` in; ``1`` (equal), ``0`` (not equal
or unparsable) or ``t`` (over ``budget_s``) out. The budget covers both parses and the comparison and is
enforced here with ``SIGALRM`` (this process is single-threaded, so the signal always works); work that a
signal cannot interrupt (one long C call, e.g. a huge integer power) is ended by the parent, which kills this
process when no reply comes shortly after the budget. Only math-verify's LaTeX parser is used: its
plain-expression parser calls sympy's ``parse_expr``, which evaluates Python.
"""

from __future__ import annotations

import json
import logging
import signal
import sys

MEMORY_LIMIT_BYTES = 4 * 1024**3  # a pathological expression may eat memory before any time limit strikes


class BudgetExceeded(BaseException):  # noqa: N818 - a BaseException, so math-verify's `except Exception` cannot swallow it
    """The comparison ran over its budget."""


def _over_budget(signum, frame):
    raise BudgetExceeded


def main() -> None:
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, MEMORY_LIMIT_BYTES))
    except (ImportError, ValueError, OSError):
        pass
    from math_verify import LatexExtractionConfig, parse, verify

    logging.getLogger("math_verify").setLevel(
        logging.ERROR
    )  # its "timeout is disabled" warning, once per call
    extraction = [LatexExtractionConfig(boxed_match_priority=0)]

    def compare(gold: str, prediction: str) -> bool:
        # parsing_timeout / timeout_seconds None: math-verify's own SIGALRM timers would cancel ours
        expected = parse(f"\\boxed{{{gold}}}", extraction_config=extraction, parsing_timeout=None)
        predicted = parse(f"\\boxed{{{prediction}}}", extraction_config=extraction, parsing_timeout=None)
        return bool(expected and predicted and verify(expected, predicted, timeout_seconds=None))

    compare("\\frac{1}{2}", "0.5")  # warm sympy's lazy imports and caches before the first timed comparison
    signal.signal(signal.SIGALRM, _over_budget)
    print("ready", flush=True)
    for line in sys.stdin:
        try:
            gold, prediction, budget_s = json.loads(line)
            signal.setitimer(signal.ITIMER_REAL, float(budget_s))
            try:
                reply = "1" if compare(gold, prediction) else "0"
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        except BudgetExceeded:
            reply = "t"
        except Exception:
            reply = "0"
        print(reply, flush=True)


if __name__ == "__main__":
    main()
