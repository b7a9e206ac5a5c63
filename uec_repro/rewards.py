"""Answer checking: reward functions with TRL's signature, usable directly as ``reward_funcs``.

>>> accuracy_reward(["<think>7*6=42</think>\\boxed{42}", "\\boxed{41}"], answer=["42", "42"])
[1.0, 0.0]

How a completion is scored (the authors' code: reward = accuracy of the last ``\\boxed{}``, no format term):

1. :func:`extract_boxed` takes the content of the *last* ``\\boxed{...}`` (or ``\\fbox{...}``), nested braces
   allowed. No box, or a last box left unclosed (a truncated completion), scores 0.
   An answer longer than :data:`MAX_ANSWER_CHARS` (either side) is compared as a whitespace-free string only:
   never cleaned, parsed or handed to math-verify.
2. Both sides are cleaned by :func:`clean_answer` (``$``, ``\\dfrac``, ``\\left``, ``\\text{}`` units,
   degrees, ``x =``, thousands separators, ``\\%``...). Equal compact strings score 1; two plain numbers
   (integers, decimals, ``a/b``, ``\\frac{a}{b}``) are compared exactly as fractions.
3. Anything else goes to math-verify (LaTeX extraction only: its plain-expression parser calls sympy's
   ``parse_expr``, which evaluates Python, so it is never used on model output; no path here calls ``eval``,
   ``exec``, ``sympify`` or ``parse_expr`` on completion text). math-verify runs in a separate worker process
   (:mod:`uec_repro._verify_worker`) with a budget of :data:`MATH_VERIFY_TIMEOUT_S` per comparison, enforced
   there by ``SIGALRM``; work a signal cannot interrupt is ended by killing the worker when no reply comes
   :data:`KILL_MARGIN_S` later (a fresh worker is started at once). A comparison over the limit scores 0.
   This works from any thread, unlike math-verify's own ``signal.alarm`` timeout (main thread only).

Nothing here raises on model output or runs code from it: whatever the completion holds (1 MB of text,
10,000 nested braces, ``10^{10^{10}}``, unicode, Python source) the result is 0.0 or 1.0, within about
``MATH_VERIFY_TIMEOUT_S + KILL_MARGIN_S`` (2 s) per completion; ``benchmarks/answer_checker_fuzz.py`` measures
it.
"""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import threading
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import numpy as np

__all__ = [
    "KILL_MARGIN_S",
    "MATH_VERIFY_TIMEOUT_S",
    "MAX_ANSWER_CHARS",
    "accuracy_reward",
    "answers_match",
    "clean_answer",
    "completion_text",
    "extract_boxed",
    "format_reward",
]

MATH_VERIFY_TIMEOUT_S = 1.5  # budget of one math-verify comparison (parse both sides + verify), in the worker
KILL_MARGIN_S = 0.5  # no reply this long after the budget: the worker is stuck in C code and is killed
WORKER_START_TIMEOUT_S = 60.0  # importing math-verify and sympy in a fresh worker
MAX_ANSWER_CHARS = (
    1_000  # longer answers are compared as whitespace-free strings only, never cleaned or parsed
)
_MAX_NUMBER_CHARS = 60  # longer digit strings are not turned into numbers (no huge-integer arithmetic)


# --------------------------------------------------------------------------------------------------
# Reading completions
# --------------------------------------------------------------------------------------------------
def completion_text(completion: Any) -> str:
    """The text of one completion: a string as is; for chat messages, the last message's content."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list | tuple) and completion:
        content = completion[-1].get("content", "") if isinstance(completion[-1], dict) else completion[-1]
        if isinstance(content, list):  # multimodal content parts
            return "".join(
                part["text"]
                for part in content
                if isinstance(part, dict) and isinstance(part.get("text"), str)
            )
        return content if isinstance(content, str) else ""
    return ""


_BOX_OPENERS = ("\\boxed{", "\\fbox{")


def extract_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` / ``\\fbox{...}`` (nested braces allowed), or None.

    A last box whose braces never close (truncated output) gives None. Linear in the text's length.
    """
    if not isinstance(text, str):
        return None
    start = max(text.rfind(opener) + len(opener) if opener in text else -1 for opener in _BOX_OPENERS)
    if start < 0:
        return None
    # brace depth after each character, vectorised (a Python loop takes ~1 s on 1 MB of braces); UTF-32 keeps
    # one code unit per character, so array positions are string positions
    codes = np.frombuffer(text[start:].encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    depth = 1 + np.cumsum((codes == ord("{")).astype(np.int32) - (codes == ord("}")))
    closing = np.flatnonzero(depth == 0)
    return text[start : start + int(closing[0])].strip() if closing.size else None


# --------------------------------------------------------------------------------------------------
# Normalising answers
# --------------------------------------------------------------------------------------------------
_UNITS = (
    "cm|mm|km|m|meters?|centimeters?|millimeters?|kilometers?|in|inch|inches|ft|feet|foot|yd|yards?|miles?|"
    "units?|sq|square|cubic|degrees?|deg|radians?|rad|dollars?|cents?|hours?|minutes?|seconds?|days?|weeks?|years?"
)
# One way to match each unit run: the exponent's leading space belongs to the exponent (two adjacent ``\s*``
# made "1 cm cm cm ... x" backtrack exponentially: 7 s for 22 units).
_TRAILING_UNIT = re.compile(rf"(?<=[\d}}.)])\s*(?:(?:{_UNITS})\b(?:\s*(?:\^\s*\{{?[23]\}}?|[23²³]))?\s*)+$")
_TEXT_COMMAND = re.compile(r"\\(?:text|textbf|textit|mathrm|mathbf|mbox|operatorname)\s*\{([^{}]*)\}")
_DEGREES = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|\\circ|\\degree|°")
_ASSIGNMENT = re.compile(r"^\s*\\?[A-Za-z]+(?:_\{?\w+\}?)?\s*=\s*(?=[^=]*$)")
_THOUSANDS = re.compile(r"^-?\d{1,3}(?:(?:,|\{,\})\d{3})+(?:\.\d+)?$")
_DECIMAL = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)$")
_SLASH_FRACTION = re.compile(r"^([+-]?\d+)/([+-]?\d+)$")
_LATEX_FRACTION = re.compile(r"^([+-]?)\\frac\{([+-]?\d+)\}\{([+-]?\d+)\}$")
_FRAC_SHORTHAND = re.compile(r"\\frac\s*(\d|\{[^{}]*\})\s*(\d|\{[^{}]*\})")


def clean_answer(answer: str) -> str:
    """A LaTeX-preserving normal form of a final answer (spaces kept, so ``\\pi r`` stays ``\\pi r``).

    Removes ``$`` (and ``\\$``), spacing commands, ``\\left``/``\\right``, ``\\displaystyle``, trailing units
    (``\\text{ cm}^2``, ``units``), degree marks, a leading ``x =``, a trailing period, ``\\%``; rewrites
    ``\\dfrac``/``\\tfrac`` as ``\\frac``, ``\\frac12`` as ``\\frac{1}{2}``, unwraps ``\\text{...}``; drops
    thousands separators.
    """
    text = answer.strip().replace("\u2212", "-").replace("\\$", "").replace("$", "")
    for old, new in (
        ("\\dfrac", "\\frac"),
        ("\\tfrac", "\\frac"),
        ("\\left", ""),
        ("\\right", ""),
        ("\\displaystyle", ""),
        ("\\!", ""),
        ("\\,", " "),
        ("\\;", " "),
        ("\\:", " "),
        ("~", " "),
        ("\\%", ""),
        ("%", ""),
    ):
        text = text.replace(old, new)
    text = _DEGREES.sub("", text)
    text = _TEXT_COMMAND.sub(lambda m: f" {m.group(1).strip()} ", text).strip()
    text = _TRAILING_UNIT.sub("", text).strip()
    text = _ASSIGNMENT.sub("", text).strip()
    text = _FRAC_SHORTHAND.sub(
        lambda m: f"\\frac{{{m.group(1).strip('{}')}}}{{{m.group(2).strip('{}')}}}", text
    )
    text = text.rstrip(".").strip()
    if _THOUSANDS.match(text.replace(" ", "")):
        text = text.replace(" ", "").replace("{,}", "").replace(",", "")
    return text


def _compact(text: str) -> str:
    return "".join(text.split())


def _as_number(compact: str) -> Fraction | None:
    """An exact value for plain numbers (``-12``, ``0.5``, ``.5``, ``3/4``, ``\\frac{3}{4}``), else None."""
    if len(compact) > _MAX_NUMBER_CHARS:
        return None
    try:
        if _DECIMAL.match(compact):
            return Fraction(compact)
        if match := _SLASH_FRACTION.match(compact):
            return Fraction(int(match.group(1)), int(match.group(2)))
        if match := _LATEX_FRACTION.match(compact):
            value = Fraction(int(match.group(2)), int(match.group(3)))
            return -value if match.group(1) == "-" else value
    except (ValueError, ZeroDivisionError):
        return None
    return None


def answers_match(prediction: str, gold: str) -> bool:
    """Whether ``prediction`` (a final answer, e.g. a boxed content) equals ``gold``. Never raises."""
    try:
        if not isinstance(prediction, str) or not isinstance(gold, str):
            return False
        if len(prediction) > MAX_ANSWER_CHARS or len(gold) > MAX_ANSWER_CHARS:
            return bool(_compact(prediction)) and _compact(prediction) == _compact(gold)
        predicted, expected = clean_answer(prediction), clean_answer(gold)
        if not predicted or not expected:
            return False
        if _compact(predicted) == _compact(expected):
            return True
        predicted_value, expected_value = _as_number(_compact(predicted)), _as_number(_compact(expected))
        if predicted_value is not None and expected_value is not None:
            return predicted_value == expected_value
        return _VERIFIER.verify(expected, predicted)
    except Exception:  # model output must never crash a training step
        return False


# --------------------------------------------------------------------------------------------------
# math-verify in a worker process with a hard timeout
# --------------------------------------------------------------------------------------------------
class _MathVerifyWorker:
    """One long-lived ``python -m uec_repro._verify_worker`` process per parent process, shared by threads.

    Requests and replies are JSON lines over pipes. The worker says ``ready`` once its imports are done
    (:data:`WORKER_START_TIMEOUT_S`). Each comparison has a budget of ``timeout_s``, enforced in the worker
    (it replies ``t``); when no reply comes within ``timeout_s + kill_margin_s`` the worker is killed (the
    comparison scores 0) and a fresh one is started at once, loading while the caller moves on. Started
    lazily: runs whose answers are all plain numbers never start it. A forked child (e.g. a data-loader
    worker) starts its own.
    """

    def __init__(
        self, timeout_s: float = MATH_VERIFY_TIMEOUT_S, kill_margin_s: float = KILL_MARGIN_S
    ) -> None:
        self.timeout_s = timeout_s
        self.kill_margin_s = kill_margin_s
        self.timeouts = 0  # comparisons cut off by the time limit (scored 0), for diagnostics
        self.kills = 0  # of those, the ones the worker could not interrupt itself: it was killed
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._owner_pid = -1
        self._ready = False

    def _running(self) -> subprocess.Popen | None:
        alive = self._process is not None and self._owner_pid == os.getpid() and self._process.poll() is None
        return self._process if alive else None

    def _spawn(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "uec_repro._verify_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
        self._owner_pid = os.getpid()
        self._ready = False

    def _ready_process(self) -> subprocess.Popen | None:
        if self._running() is None:
            self._spawn()
        if not self._ready:
            self._ready = self._reply(WORKER_START_TIMEOUT_S) == "ready"
            if not self._ready:  # math-verify cannot be imported: no symbolic comparison
                self._stop()
        return self._running()

    def _stop(self) -> None:
        if self._process is not None and self._owner_pid == os.getpid():
            self._process.kill()
            self._process.wait()
        self._process = None

    def _reply(self, timeout_s: float) -> str | None:
        """The next line from the worker ("" when it died), or None when none came within ``timeout_s``."""
        ready, _, _ = select.select([self._process.stdout], [], [], timeout_s)
        return self._process.stdout.readline().strip() if ready else None

    def verify(self, gold: str, prediction: str) -> bool:
        with self._lock:
            try:
                process = self._ready_process()
                if process is None:
                    return False
                process.stdin.write(json.dumps([gold, prediction, self.timeout_s]) + "\n")
                process.stdin.flush()
                reply = self._reply(self.timeout_s + self.kill_margin_s)
            except (OSError, ValueError):
                reply = ""
            if reply in (None, "t"):
                self.timeouts += 1
            if (
                reply is None or reply == ""
            ):  # stuck past the budget, or died (e.g. the memory limit): replace it
                self.kills += reply is None
                self._stop()
                self._spawn()
            return reply == "1"


_VERIFIER = _MathVerifyWorker()


# --------------------------------------------------------------------------------------------------
# Reward functions (TRL signature: completions plus dataset columns as keyword arguments)
# --------------------------------------------------------------------------------------------------
def accuracy_reward(completions: Sequence[Any], answer: Sequence[str], **kwargs: Any) -> list[float]:
    """1.0 where the completion's last ``\\boxed{}`` equals the reference ``answer``, else 0.0.

    ``completions``: strings or chat message lists (TRL passes the latter for conversational prompts).
    ``answer``: the dataset's ``answer`` column, aligned with ``completions``. Other columns are ignored.
    """
    if len(completions) != len(answer):
        raise ValueError(f"accuracy_reward: {len(completions)} completions but {len(answer)} answers")
    scores = []
    for completion, gold in zip(completions, answer, strict=True):
        boxed = extract_boxed(completion_text(completion))
        scores.append(float(boxed is not None and answers_match(boxed, gold)))
    return scores


def format_reward(completions: Sequence[Any], **kwargs: Any) -> list[float]:
    """1.0 where the completion is ``<think>...</think>`` followed by a ``\\boxed{...}``, else 0.0.

    The authors' format check (``<think>.*</think>.*\\boxed{.*}.*`` as a full match), written as a linear scan
    so adversarial text cannot make a regex backtrack. Not part of the default reward, as in the authors'
    code.
    """
    scores = []
    for completion in completions:
        text = completion_text(completion)
        think_end = text.find("</think>", len("<think>")) if text.startswith("<think>") else -1
        box = text.find("\\boxed{", think_end + len("</think>")) if think_end >= 0 else -1
        closed = box >= 0 and text.find("}", box + len("\\boxed{")) >= 0
        scores.append(float(closed))
    return scores
