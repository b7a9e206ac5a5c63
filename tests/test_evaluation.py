"""Pass@k estimator on hand-computed cases, and sampling-based evaluation of a real (toy) policy."""

import math

import pytest

from uec_repro.evaluation import evaluate_policy, majority_answer, pass_at_k
from uec_repro.validation import ParameterError


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (16, 0, 1, 0.0),
        (16, 16, 16, 1.0),
        (16, 4, 1, 0.25),
        (4, 1, 2, 0.5),  # 1 - C(3,2)/C(4,2) = 1 - 3/6
        (10, 3, 4, 1 - math.comb(7, 4) / math.comb(10, 4)),
        (5, 4, 2, 1.0),  # fewer wrong than k: every k-subset holds a correct one
        (64, 1, 64, 1.0),
    ],
)
def test_pass_at_k_matches_combinatorial_formula(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected)


def test_pass_at_k_is_monotone_in_k():
    values = [pass_at_k(32, 3, k) for k in range(1, 33)]
    assert all(a <= b for a, b in zip(values, values[1:], strict=False))


@pytest.mark.parametrize(("n", "c", "k"), [(4, 5, 1), (4, -1, 1), (4, 1, 0), (4, 1, 5)])
def test_pass_at_k_rejects_impossible_counts(n, c, k):
    with pytest.raises(ParameterError):
        pass_at_k(n, c, k)


def test_majority_answer():
    assert majority_answer(["\\boxed{3}", "\\boxed{4}", "x \\boxed{3}", "none"]) == "3"
    assert majority_answer(["no answer"]) is None


@pytest.mark.slow
def test_evaluate_policy_on_toy(toy_policy_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from uec_repro.tasks import load_task

    model = AutoModelForCausalLM.from_pretrained(toy_policy_path)
    tokenizer = AutoTokenizer.from_pretrained(toy_policy_path)
    test = load_task("arith", "test", n=24, tokenizer=tokenizer)
    result = evaluate_policy(model, tokenizer, test, n=8, ks=(1, 8), max_new_tokens=48)
    s = result.summary
    assert s["prompts"] == 24 and len(result.per_prompt) == 24
    assert 0 <= s["pass@1"] <= s["pass@8"] <= 1
    assert s["pass@1"] == pytest.approx(s["mean@8"])
    assert s["pass@1"] > 0  # partial competence: some answers are right
    assert s["token_entropy"] > 0 and 1 <= s["completion_length"] <= 48
    again = evaluate_policy(model, tokenizer, test, n=8, ks=(1, 8), max_new_tokens=48)
    assert again.summary == s  # seeded sampling
