"""Adversarial completions: the answer checker never runs code from model output, never hangs, never raises.

Side effects are detected with sentinel files under ``tmp_path``; a control shows the same payload does write
its file when handed to sympy's ``parse_expr`` (the path the checker must never take). "Never hangs" is a
generous hard bound (``HANG_BOUND_S``) on cases that took minutes or forever before the fixes; the measured
worst case is written by ``benchmarks/answer_checker_fuzz.py``.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from benchmarks.answer_checker_fuzz import NASTY
from uec_repro import rewards
from uec_repro.rewards import (
    KILL_MARGIN_S,
    MATH_VERIFY_TIMEOUT_S,
    accuracy_reward,
    answers_match,
    completion_text,
    extract_boxed,
    format_reward,
)

HANG_BOUND_S = 10.0  # per completion; the checker's own bound is MATH_VERIFY_TIMEOUT_S + KILL_MARGIN_S (2 s)


def payloads(sentinel: str) -> list[str]:
    """Boxed contents that write ``sentinel`` if anything evaluates them as Python."""
    path = repr(sentinel)
    write = f"__import__('pathlib').Path({path}).write_text('1')"
    return [
        write,
        f"__import__('os').system('touch {sentinel}')",
        f'__import__("os").system("touch {sentinel}")',
        f"exec(\"open({path}, 'w').write('1')\")",
        f"eval(\"open({path}, 'w').write('1')\")",
        f"(lambda: {write})()",
        f"Symbol('x').__class__.__mro__[-1].__subclasses__() and {write}",
        f"Integer(1).__class__.__init__.__globals__['__builtins__']['exec'](\"{write}\")",
        f"\\text{{{write}}}",
        f"\\operatorname{{exec}}({write})",
        f"x = {write}",
        f"{write} + 1",
        f"\\frac{{{write}}}{{2}}",
        f"[{write} for _ in (1,)]",
    ]


def test_control_the_payload_runs_when_parsed_as_a_sympy_expression(tmp_path):
    from sympy.parsing.sympy_parser import parse_expr

    sentinel = tmp_path / "control"
    parse_expr(f"__import__('pathlib').Path({str(sentinel)!r}).write_text('1')")
    assert sentinel.exists()  # the sentinel mechanism detects code execution


@pytest.mark.parametrize("side", ["prediction", "gold"])
def test_no_code_from_a_completion_or_an_answer_runs(tmp_path, side):
    sentinel = tmp_path / f"pwned-{side}"
    for payload in payloads(str(sentinel)):
        completion, gold = (
            (f"<think>x</think>\\boxed{{{payload}}}", "5")
            if side == "prediction"
            else ("\\boxed{5}", payload)
        )
        assert accuracy_reward([completion], [gold]) == [0.0], payload
        assert format_reward([completion])[0] in (0.0, 1.0)
        # straight through math-verify's LaTeX parser in the worker, without the checker's shortcuts
        assert rewards._VERIFIER.verify(gold, extract_boxed(completion)) is False, payload
    assert not sentinel.exists()


def timed_scores(completions: dict[str, str]) -> dict[str, tuple[float, float]]:
    results = {}
    for name, completion in completions.items():
        started = time.perf_counter()
        (score,) = accuracy_reward([completion], ["5"])
        results[name] = (score, time.perf_counter() - started)
    return results


def test_nasty_completions_score_zero_within_the_bound_off_the_main_thread():
    rewards._VERIFIER.verify("1", "1")  # worker start-up is not a per-completion cost
    with ThreadPoolExecutor(max_workers=1) as pool:  # as TRL may call reward functions
        results = pool.submit(timed_scores, NASTY).result()
    slow = {name: seconds for name, (_, seconds) in results.items() if seconds > HANG_BOUND_S}
    assert not slow
    assert {name: score for name, (score, _) in results.items()} == dict.fromkeys(NASTY, 0.0)


def test_a_stuck_worker_is_killed_from_another_thread_and_replaced():
    """A worker that stops responding (as one stuck in a long C call, where its own SIGALRM cannot act) is
    killed after budget + margin; the comparison scores 0 and a fresh worker serves the next one."""
    worker = rewards._MathVerifyWorker(timeout_s=0.5, kill_margin_s=0.5)
    try:
        assert worker.verify("2", "\\sqrt{4}")
        stuck = worker._process
        os.kill(stuck.pid, signal.SIGSTOP)
        outcome = {}

        def compare():
            started = time.perf_counter()
            outcome["result"] = worker.verify("\\frac{1}{2}", "0.5")
            outcome["seconds"] = time.perf_counter() - started

        thread = threading.Thread(target=compare)
        thread.start()
        thread.join(HANG_BOUND_S)
        assert not thread.is_alive()
        assert outcome["result"] is False and 1.0 <= outcome["seconds"] < 1.0 + 2.0
        assert stuck.poll() is not None  # killed
        assert (worker.timeouts, worker.kills) == (1, 1)
        assert worker.verify("\\frac{1}{2}", "0.5")  # the replacement answers
        assert worker._process.pid != stuck.pid
    finally:
        worker._stop()


def test_the_default_bound_is_two_seconds():
    assert MATH_VERIFY_TIMEOUT_S + KILL_MARGIN_S <= 2.0


# --------------------------------------------------------------------------------------------------
# fuzzing: every entry point, never raising, always 0.0 or 1.0, never hanging
# --------------------------------------------------------------------------------------------------
LATEX_TOKENS = [
    "\\boxed{",
    "\\fbox{",
    "{",
    "}",
    "\\frac",
    "\\dfrac",
    "\\sqrt",
    "^",
    "_",
    "!",
    "\\pi",
    "\\infty",
    "\\left(",
    "\\right)",
    "(",
    ")",
    "[",
    "]",
    ",",
    ".",
    "=",
    "x",
    "y",
    " ",
    "\\text{",
    "cm",
    " cm",
    "^\\circ",
    "\\%",
    "$",
    "-",
    "+",
    "*",
    "/",
    "1",
    "2",
    "9",
    "10",
    "0",
    "\\cdot",
    "\\le",
    "\\cup",
    "\\begin{pmatrix}",
    "\\end{pmatrix}",
    "&",
    "\\\\",
    "\\mathrm{",
    "\\operatorname{",
    "\\log",
    "\\sin",
    "__import__",
    "'os'",
    "lambda",
    "exec(",
    "\u2212",
    "\u00b0",
    "\ud7ff",
    "\x00",
    "\n",
]
GOLDS = ["5", "\\frac{1}{2}", "2\\sqrt{3}", "x^2+1", "(1,2)", "\\pi", "60", "1,000"]


def assert_well_behaved(completion, gold) -> None:
    started = time.perf_counter()
    assert accuracy_reward([completion], [gold])[0] in (0.0, 1.0)
    assert format_reward([completion])[0] in (0.0, 1.0)
    assert isinstance(completion_text(completion), str)
    assert extract_boxed(completion_text(completion)) is None or isinstance(
        extract_boxed(completion_text(completion)), str
    )
    assert time.perf_counter() - started < HANG_BOUND_S


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=2_000), st.sampled_from(GOLDS), st.booleans())
@example("\\boxed{" + "\U0010ffff\u202e\ufeff" * 1000 + "}", "5", False)
def test_fuzz_random_unicode(text, gold, boxed):
    assert_well_behaved(f"\\boxed{{{text}}}" if boxed else text, gold)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(LATEX_TOKENS), max_size=80).map("".join), st.sampled_from(GOLDS))
@example("\\boxed{9^{9^{9^9}}}", "5")
@example("\\boxed{1" + " cm" * 40 + " x}", "1")
def test_fuzz_latex_like_completions(text, gold):
    assert_well_behaved(text, gold)
    assert_well_behaved(f"\\boxed{{{text}}}", gold)


@settings(max_examples=20, deadline=None)
@given(
    st.integers(0, 20_000), st.sampled_from(["{", "\\frac{1}{", "\\sqrt{", "^{", "\\boxed{"]), st.booleans()
)
@example(10_000, "{", True)
@example(1_000, "\\frac{1}{", True)
def test_fuzz_deep_nesting(depth, opener, closed):
    assert_well_behaved(
        "\\boxed{" + opener * depth + "1" + "}" * (depth if closed else depth // 2) + "}", "1"
    )


@settings(max_examples=8, deadline=None)
@given(
    st.sampled_from([100_000, 1_000_000]), st.sampled_from(["9", "x", "{", "}", " cm", "\\frac{1}{2}", "é"])
)
def test_fuzz_huge_strings(size, unit):
    body = unit * (size // len(unit))
    for completion in (body, f"\\boxed{{{body}}}", f"<think>{body}</think>\\boxed{{5}}"):
        assert_well_behaved(completion, "5")


chat_values = st.recursive(
    st.none() | st.integers() | st.text(max_size=50),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["role", "content", "text", "type"]), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=60, deadline=None)
@given(chat_values, st.one_of(st.none(), st.integers(), st.text(max_size=20)))
def test_fuzz_malformed_chat_completions_and_answers(completion, gold):
    assert_well_behaved(completion, gold)
    assert answers_match(completion, gold) in (True, False)
