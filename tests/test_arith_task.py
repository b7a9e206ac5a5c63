"""The built-in arith task: determinism, disjoint splits, tiers, answers re-derived from the question."""

import ast
import operator

import pytest

from uec_repro.tasks import DEFAULT_SIZES, TASKS, generate_rows, load_task
from uec_repro.tasks.arith import evaluate, render
from uec_repro.validation import ParameterError

_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}


def _safe_eval(text: str) -> int:
    """Evaluate +, -, * and brackets on integers without eval()."""

    def walk(node):
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        raise ValueError(f"unexpected syntax in {text!r}")

    return walk(ast.parse(text, mode="eval"))


def test_same_seed_same_rows_and_other_seed_differs():
    assert generate_rows("arith", "train", 300, seed=3) == generate_rows("arith", "train", 300, seed=3)
    assert generate_rows("arith", "train", 300, seed=3) != generate_rows("arith", "train", 300, seed=4)


def test_train_and_test_are_disjoint_for_any_seeds():
    train = {r["question"] for seed in (0, 1) for r in generate_rows("arith", "train", 3000, seed=seed)}
    test = {r["question"] for seed in (0, 1) for r in generate_rows("arith", "test", 300, seed=seed)}
    assert train and test and not train & test


def test_answers_rederived_from_question_text():
    for row in generate_rows("arith", "test", 400, seed=0):
        expression = row["question"].removeprefix("What is ").removesuffix("?")
        assert str(_safe_eval(expression)) == row["answer"], row


def test_every_tier_present_and_tiers_grow_harder():
    rows = generate_rows("arith", "train", 2000, seed=0)
    by_tier = {t: [r for r in rows if r["difficulty"] == t] for t in (1, 2, 3, 4)}
    assert all(by_tier.values())
    mean_digits = {t: sum(len(r["answer"].lstrip("-")) for r in rs) / len(rs) for t, rs in by_tier.items()}
    assert mean_digits[1] < mean_digits[2] < mean_digits[3]
    assert all("*" not in r["question"] for r in by_tier[1] + by_tier[2])
    assert all("*" in r["question"] for r in by_tier[3] if "+" in r["question"])


def test_difficulty_filter_and_ids_unique():
    rows = generate_rows("arith", "train", 200, seed=0, difficulties=[2])
    assert {r["difficulty"] for r in rows} == {2}
    assert len({r["id"] for r in rows}) == len(rows)


def test_render_keeps_only_needed_brackets():
    assert render(["*", ["+", 12, 9], 4]) == "(12+9)*4"
    assert render(["+", 12, ["*", 9, 4]]) == "12+9*4"
    assert render(["-", 50, ["-", 9, 4]]) == "50-(9-4)"
    assert render(["-", ["-", 50, 9], 4]) == "50-9-4"
    assert evaluate(["-", 50, ["-", 9, 4]]) == _safe_eval("50-(9-4)") == 45


def test_load_task_prompts_follow_tokenizer():
    chat = load_task("arith", "test", n=5)
    assert chat[0]["prompt"][0]["role"] == "user"
    assert chat[0]["prompt"][0]["content"].startswith(chat[0]["question"] + " You FIRST think")

    class PlainTokenizer:
        chat_template = None

    plain = load_task("arith", "test", n=5, tokenizer=PlainTokenizer())
    assert isinstance(plain[0]["prompt"], str) and "\\boxed{}" in plain[0]["prompt"]
    assert "image" not in plain.column_names  # TRL would treat an image column as multimodal
    assert len(load_task("arith", "test")) == DEFAULT_SIZES["test"]


@pytest.mark.parametrize(
    ("kwargs", "names"),
    [
        ({"name": "algebra"}, ["task", "algebra", "arith"]),
        ({"name": "arith", "split": "validation"}, ["split", "validation", "train"]),
        ({"name": "arith", "n": 0}, ["n=0", ">= 1"]),
        ({"name": "arith", "n": -5}, ["n=-5"]),
        ({"name": "arith", "n": 2.5}, ["n=2.5", "integer"]),
        ({"name": "arith", "seed": -1}, ["seed=-1"]),
        ({"name": "arith", "difficulties": [7]}, ["difficulties", "7"]),
        ({"name": "arith", "split": "test", "n": 100_000, "difficulties": [1]}, ["n=100000", "'test'"]),
        ({"name": "arith", "data_path": "/tmp/x"}, ["data_path", "hub tasks"]),
    ],
)
def test_bad_parameters_name_parameter_and_allowed_values(kwargs, names):
    with pytest.raises(ParameterError) as info:
        load_task(**kwargs)
    for name in names:
        assert name in str(info.value)


def test_registry_lists_all_tasks():
    assert set(TASKS) == {"arith", "geometry", "geometry3k", "math12k", "math500", "gsm8k"}
