"""Answer checking on real-benchmark-style answers, garbage input, threads and the hard timeout."""

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from uec_repro import rewards
from uec_repro.rewards import accuracy_reward, answers_match, clean_answer, extract_boxed, format_reward

# (prediction, gold): the same value written another way must score 1.
EQUIVALENT = [
    # MATH-style LaTeX
    ("0.5", "\\frac{1}{2}"),
    ("\\dfrac{1}{2}", "\\frac{1}{2}"),
    ("\\tfrac{3}{4}", "0.75"),
    ("\\frac12", "\\frac{1}{2}"),
    ("1/2", "\\frac{1}{2}"),
    ("-\\frac{2}{3}", "\\frac{-2}{3}"),
    ("\\frac{\\sqrt{3}}{2}", "\\dfrac{\\sqrt3}{2}"),
    ("2\\sqrt{3}", "\\sqrt{12}"),
    ("\\sqrt{4}", "2"),
    ("4\\pi", "4 \\pi"),
    ("x^2+1", "1+x^2"),
    ("(1, 2)", "(1,2)"),
    ("\\left( 3, \\frac{\\pi}{2} \\right)", "\\left( 3, \\frac{\\pi}{2} \\right)"),
    ("\\$18.90", "18.90"),
    ("50\\%", "50"),
    ("x = 3", "3"),
    ("y=-\\frac{1}{2}", "-\\frac12"),
    ("\\text{(C)}", "\\text{(C)}"),
    ("10.", "10"),
    ("$5$", "5"),
    # GSM8K integers (thousands separators, units, signs)
    ("1,000", "1000"),
    ("1{,}234", "1234"),
    ("12,345,678", "12345678"),
    ("18 dollars", "18"),
    ("018", "18"),
    ("+7", "7"),
    ("\u22125", "-5"),
    # Geometry3K-style values
    ("60^\\circ", "60"),
    ("60^{\\circ}", "60"),
    ("60\u00b0", "60"),
    ("30 degrees", "30"),
    ("5 \\text{ cm}", "5"),
    ("12\\text{ cm}^2", "12"),
    ("24 units^2", "24"),
    ("7.20", "7.2"),
    ("2\\sqrt{221}", "2 \\sqrt { 221 }"),
    ("8\\pi", "8 \\pi"),
    ("\\frac{25\\sqrt{3}}{2}", "\\frac{25}{2}\\sqrt{3}"),
]

DIFFERENT = [
    ("3", "4"),
    ("0.33", "\\frac{1}{3}"),
    ("3.14", "\\pi"),
    ("12.57", "4\\pi"),
    ("\\sqrt{3}", "3"),
    ("-5", "5"),
    ("1,001", "1000"),
    ("[1, 2)", "[1, 2]"),
    ("60", "120"),
    ("2\\sqrt{3}", "3\\sqrt{2}"),
    ("\\frac{1}{2}", "\\frac{2}{1}"),
    ("x^2-1", "x^2+1"),
    ("", "5"),
    ("5", ""),
]


@pytest.mark.parametrize(("prediction", "gold"), EQUIVALENT)
def test_equivalent_answers_score_one(prediction, gold):
    assert answers_match(prediction, gold), (prediction, gold)
    assert accuracy_reward([f"<think>...</think>\\boxed{{{prediction}}}"], [gold]) == [1.0]


@pytest.mark.parametrize(("prediction", "gold"), DIFFERENT)
def test_different_answers_score_zero(prediction, gold):
    assert not answers_match(prediction, gold), (prediction, gold)
    assert accuracy_reward([f"\\boxed{{{prediction}}}"], [gold]) == [0.0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("so \\boxed{42}.", "42"),
        ("\\boxed{1} then \\boxed{2}", "2"),  # the last box counts
        ("\\boxed{\\frac{1}{\\sqrt{2}}}", "\\frac{1}{\\sqrt{2}}"),  # nested braces
        ("\\fbox{7}", "7"),
        ("\\boxed{ 3 }", "3"),
        ("no box here", None),
        ("\\boxed{3", None),  # truncated: the last box never closes
        ("\\boxed{1} and \\boxed{2", None),
        ("}}}{{{\\boxed{}", ""),
        ("\\boxed{\U0001f600{\u00e9}\ud800} tail", "\U0001f600{\u00e9}\ud800"),  # astral and lone surrogate
    ],
)
def test_extract_boxed(text, expected):
    assert extract_boxed(text) == expected


def reference_extract_boxed(text: str) -> str | None:
    """The plain character loop extract_boxed vectorises."""
    start = max(text.rfind(o) + len(o) if o in text else -1 for o in ("\\boxed{", "\\fbox{"))
    if start < 0:
        return None
    depth = 1
    for position in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[position], 0)
        if depth == 0:
            return text[start:position].strip()
    return None


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(["{", "}", "\\boxed{", "\\fbox{", "x", " ", "\U0001f600", "\ud800", "\u00e9"]),
        max_size=40,
    ).map("".join)
)
def test_extract_boxed_matches_the_character_loop(text):
    assert extract_boxed(text) == reference_extract_boxed(text)


def test_completions_as_chat_messages_and_multimodal_parts():
    messages = [
        [{"role": "assistant", "content": "<think>x</think>\\boxed{9}"}],
        [{"role": "assistant", "content": [{"type": "text", "text": "\\boxed{8}"}]}],
    ]
    assert accuracy_reward(messages, ["9", "9"]) == [1.0, 0.0]


def test_unboxed_or_truncated_answers_score_zero():
    assert accuracy_reward(["The answer is 42", "\\boxed{42", "<think>\\boxed{42}"], ["42"] * 3) == [
        0.0,
        0.0,
        1.0,
    ]


def test_misaligned_columns_are_an_error():
    with pytest.raises(ValueError, match="2 completions but 1 answers"):
        accuracy_reward(["\\boxed{1}", "\\boxed{2}"], ["1"])


def test_format_reward_follows_the_authors_pattern():
    assert format_reward(
        [
            "<think>7*6=42</think>\\boxed{42}",
            "<think>a</think> so the answer is \\boxed{x} done",
            "\\boxed{42}",  # no thinking
            "<think>7*6=42\\boxed{42}",  # thinking never closed
            "<think>a</think> 42",  # no box
            " <think>a</think>\\boxed{1}",  # must start with <think>, as in the authors' full match
            "<think>a</think>\\boxed{",  # box never closed
        ]
    ) == [1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("\\dfrac{1}{2}", "\\frac{1}{2}"),
        ("x = 3", "3"),
        ("5 \\text{ cm}", "5"),
        ("1,000", "1000"),
        ("60^\\circ", "60"),
        ("\\pi r", "\\pi r"),
        ("\\text{(A)}", "(A)"),
        ("\\left(1,2\\right)", "(1,2)"),
    ],
)
def test_clean_answer(raw, clean):
    assert clean_answer(raw) == clean


GARBAGE = [
    "",
    "\\boxed{",
    "}" * 10_000,
    "{" * 10_000 + "\\boxed{1" + "}" * 5,
    "\\boxed{" + "{" * 5_000 + "}" * 5_000 + "}",
    "\\boxed{" + "9" * 100_000 + "}",
    "\\boxed{10^{10^{10^{10}}}}",
    "\\boxed{" + "x" * 100_000 + "}",
    "\\boxed{\u2603\u0000\ud7ff}",
    "\\boxed{__import__('os').system('touch /tmp/uec_repro_pwned')}",
    "\\boxed{\\frac{1}{0}}",
    "\\boxed{1/0}",
    "\\boxed{" + "\\sqrt{" * 300 + "2" + "}" * 300 + "}",
    None,
    12,
]


def test_garbage_never_raises_and_scores_zero():
    started = time.perf_counter()
    scores = accuracy_reward(GARBAGE, ["5"] * len(GARBAGE))
    assert scores == [0.0] * len(GARBAGE)
    assert time.perf_counter() - started < 60
    assert not os.path.exists("/tmp/uec_repro_pwned")


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=300), st.text(max_size=30))
def test_fuzzed_completions_never_raise(text, gold):
    for completion in (text, f"\\boxed{{{text}}}", f"<think>{text}</think>\\boxed{{{gold}}}"):
        assert accuracy_reward([completion], [gold])[0] in (0.0, 1.0)
        assert format_reward([completion])[0] in (0.0, 1.0)


def test_results_are_the_same_from_many_threads():
    completions = [f"\\boxed{{{p}}}" for p, _ in EQUIVALENT + DIFFERENT]
    golds = [g for _, g in EQUIVALENT + DIFFERENT]
    serial = accuracy_reward(completions, golds)
    with ThreadPoolExecutor(max_workers=8) as pool:
        parallel = list(pool.map(lambda _: accuracy_reward(completions, golds), range(8)))
    assert all(result == serial for result in parallel)
    assert sum(serial) == len(EQUIVALENT)


# Injected into the math-verify worker (a sitecustomize on its PYTHONPATH) to test the time budget and the
# kill without depending on how fast this machine is: parsing a text that holds
#   SLOWCHECK sleeps ten minutes in plain Python (the worker's own SIGALRM budget interrupts it),
#   STUCK     blocks SIGALRM first (as a long C call would), so only the parent's kill can end it,
#   CRASH     ends the worker at once (as the memory limit would),
#   INJECTED  parses as 10 (so a test can tell that the worker runs the patched parse).
INJECTED_PARSE = """
import os
import signal
import time

import math_verify

_parse = math_verify.parse


def parse(text, *args, **kwargs):
    if "SLOWCHECK" in text:
        time.sleep(600)
    if "STUCK" in text:
        signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGALRM])
        time.sleep(600)
    if "CRASH" in text:
        os._exit(3)
    return _parse("\\\\boxed{10}" if "INJECTED" in text else text, *args, **kwargs)


math_verify.parse = parse
"""


@pytest.fixture
def injected_worker(tmp_path, monkeypatch):
    """A fresh worker (budget 0.5 s) whose math-verify parse knows the markers above; ``kill_margin_s`` to
    set."""
    (tmp_path / "sitecustomize.py").write_text(INJECTED_PARSE)
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))
    )
    workers = []

    def make(kill_margin_s: float) -> rewards._MathVerifyWorker:
        worker = rewards._MathVerifyWorker(timeout_s=0.5, kill_margin_s=kill_margin_s)
        workers.append(worker)
        assert worker.verify("2", "\\sqrt{4}")  # starts the worker; unmarked comparisons are untouched
        assert worker.verify("10", "INJECTED")  # the worker runs the patched parse
        return worker

    yield make
    for worker in workers:
        worker._stop()


def timed_verify_in_a_thread(worker, gold, prediction) -> tuple[bool, float]:
    """verify() from a thread other than the main one (as TRL may call reward functions): (result,
    seconds)."""
    outcome = {}

    def compare():
        started = time.perf_counter()
        outcome["result"] = worker.verify(gold, prediction)
        outcome["seconds"] = time.perf_counter() - started

    thread = threading.Thread(target=compare)
    thread.start()
    thread.join(timeout=120)
    assert not thread.is_alive()
    return outcome["result"], outcome["seconds"]


def test_time_budget_works_off_the_main_thread_and_the_worker_survives(injected_worker):
    """A comparison that would take ten minutes is cut off by the worker's own budget: it scores 0, counts as
    a timeout but not a kill, and the same worker answers the next comparison. The kill margin (30 s) is so
    long that only the worker's own timer can end the comparison in time; no reply can come before the 0.5 s
    budget."""
    worker = injected_worker(kill_margin_s=30.0)
    pid = worker._process.pid
    result, seconds = timed_verify_in_a_thread(worker, "10", "SLOWCHECK")
    assert result is False
    assert 0.5 <= seconds < 30.0  # the whole budget, then the worker's own "t", long before a kill
    assert (worker.timeouts, worker.kills) == (1, 0)  # the worker interrupted itself: no kill, no restart
    assert worker.verify("\\frac{1}{2}", "0.5") and worker._process.pid == pid
    assert (worker.timeouts, worker.kills) == (1, 0)


def test_a_worker_deaf_to_its_alarm_is_killed_after_budget_plus_margin_and_replaced(injected_worker):
    worker = injected_worker(kill_margin_s=0.5)
    stuck = worker._process
    result, seconds = timed_verify_in_a_thread(worker, "10", "STUCK")
    assert result is False
    assert seconds >= 1.0  # budget + margin waited for, however fast the machine
    assert stuck.poll() is not None  # killed
    assert (worker.timeouts, worker.kills) == (1, 1)
    assert worker.verify("10", "INJECTED")  # the replacement answers
    assert worker._process.pid != stuck.pid and (worker.timeouts, worker.kills) == (1, 1)


def test_a_worker_that_dies_is_replaced_without_counting_a_timeout(injected_worker):
    worker = injected_worker(kill_margin_s=30.0)
    dead = worker._process
    result, seconds = timed_verify_in_a_thread(worker, "10", "CRASH")
    assert result is False and seconds < 30.0  # the parent sees the pipe close: no waiting for the margin
    assert dead.poll() == 3
    assert (worker.timeouts, worker.kills) == (0, 0)
    assert worker.verify("10", "INJECTED") and worker._process.pid != dead.pid


def test_stop_ends_the_worker_and_may_be_called_twice(injected_worker):
    worker = injected_worker(kill_margin_s=30.0)
    process = worker._process
    worker._stop()
    assert process.poll() is not None and worker._process is None
    worker._stop()
    assert worker._process is None


def test_without_math_verify_symbolic_answers_score_zero(tmp_path, monkeypatch):
    (tmp_path / "sitecustomize.py").write_text(
        "import sys\nsys.modules['math_verify'] = None  # import fails\n"
    )
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))
    )
    worker = rewards._MathVerifyWorker()
    try:
        assert worker.verify("2", "\\sqrt{4}") is False
        assert worker._process is None and (worker.timeouts, worker.kills) == (0, 0)
    finally:
        worker._stop()


def test_an_exception_while_checking_scores_zero(monkeypatch):
    class Broken:
        def verify(self, gold, prediction):
            raise RuntimeError("checker bug")

    monkeypatch.setattr(rewards, "_VERIFIER", Broken())
    assert answers_match("\\sqrt{4}", "2") is False  # would go to math-verify
    assert answers_match("0.5", "\\frac{1}{2}") is True  # plain numbers never do


def test_what_never_reaches_math_verify(monkeypatch):
    class AlwaysEqual:
        def verify(self, gold, prediction):
            return True

    monkeypatch.setattr(rewards, "_VERIFIER", AlwaysEqual())
    assert answers_match("\\sqrt{4}", "2")  # this one does
    assert not answers_match("", "5") and not answers_match("5", "$ $")  # empty after cleaning
    assert not answers_match("0.5", "0.6") and not answers_match("1/3", "0.33")  # two plain numbers
    assert not answers_match("x" * 1001, "y" * 1001)  # over the length cap


def test_non_string_answers_score_zero():
    assert answers_match(None, "5") is False and answers_match("5", None) is False
    assert answers_match(5, "5") is False


def test_the_length_cap_is_1000_characters_either_side():
    # at the cap an answer is still cleaned ("y = " dropped); one more character and it is compared as a
    # string
    for width in (996, 997):
        prediction, gold = "y = " + "x" * width, "x" * width
        assert answers_match(prediction, gold) == (len(prediction) <= rewards.MAX_ANSWER_CHARS == 1000)
        assert answers_match(gold, prediction) == (len(prediction) <= 1000)
    padded = "y = 5" + " " * 996  # 1001 characters: only one side is long, and that is enough
    assert not answers_match(padded, "5") and not answers_match("5", padded)
    assert answers_match("y = 5" + " " * 995, "5")


def test_plain_numbers_are_parsed_up_to_60_characters():
    assert rewards._as_number("0." + "5" * 58) == Fraction("0." + "5" * 58)  # 60 characters
    assert rewards._as_number("0." + "5" * 59) is None  # 61
    assert rewards._as_number("3/4") == Fraction(3, 4) and rewards._as_number("-\\frac{3}{4}") == Fraction(
        -3, 4
    )
    assert rewards._as_number("\\frac{-3}{4}") == Fraction(-3, 4) and rewards._as_number("1/0") is None


@pytest.mark.parametrize(
    ("completion", "text"),
    [
        (
            [
                {"role": "user", "content": "q"},
                {"role": "assistant", "content": "a"},
                {"role": "assistant", "content": "last"},
            ],
            "last",
        ),
        (("x", "y", "z"), "z"),
        (["stray", {"role": "assistant", "content": "last"}], "last"),  # the last message's type decides
        ([{"role": "user", "content": "q"}, "last"], "last"),
        (["x", "y", "z"], "z"),
        ([], ""),
        (
            [
                {
                    "role": "assistant",
                    "content": [
                        {"type": "image"},
                        {"type": "text", "text": "a"},
                        "stray",
                        {"type": "text", "text": "b"},
                    ],
                }
            ],
            "ab",
        ),
        ([{"role": "assistant", "content": None}], ""),
        (None, ""),
    ],
)
def test_completion_text_takes_the_last_message(completion, text):
    assert rewards.completion_text(completion) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("no box }", None),
        ("a}b", None),
        ("\\boxed{a}{b}", "a"),
        ("\\boxed{a}}", "a"),
        ("\\fbox{1} \\boxed{2}", "2"),
        ("\\boxed{1} \\fbox{2}", "2"),
    ],
)
def test_extract_boxed_edges(text, expected):
    assert extract_boxed(text) == expected


def test_format_reward_edges():
    assert format_reward(
        [
            "<think>a\\boxed{</think> }",  # the box must come after </think>
            "<think>a</think>}\\boxed{",  # a closing brace before the box does not close it
            "<think>a}</think> 42",  # no box
            "x</think>\\boxed{1}",  # no <think> at the start
            "<think></think>\\boxed{}",  # empty thinking and answer: still the pattern
        ]
    ) == [0.0, 0.0, 0.0, 0.0, 1.0]


def test_answers_over_the_length_cap_are_compared_as_strings_only():
    long = "+".join(["x"] * 600)
    assert len(long) > rewards.MAX_ANSWER_CHARS
    assert answers_match(long, long.replace("+", " + "))  # whitespace still does not matter
    assert not answers_match(f"y = {long}", long)  # never cleaned: `y =` is not dropped
    assert answers_match("y = x+x", "x+x")  # as it is below the cap
