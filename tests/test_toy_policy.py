"""The toy policy: tokenizer, worked solutions with genuine choice, deterministic cached build."""

import hashlib
import json
import random
import re

import pytest

from uec_repro.models import toy
from uec_repro.rewards import accuracy_reward
from uec_repro.tasks import arith, generate_rows, geometry
from uec_repro.tasks.procedural import split_of
from uec_repro.tasks.prompts import FORMAT_PROMPT, with_instruction

MICRO = toy.ToyRecipe(
    hidden_size=32, intermediate_size=64, num_layers=1, num_heads=2, steps=3, batch_size=8, warmup_steps=1
)


def test_tokenizer_round_trips_and_keeps_format_words_whole():
    tokenizer = toy.build_tokenizer()
    prompt = with_instruction("What is 47+38?")
    completion = "<think>47+30=77,77+8=85</think>\\boxed{85}"
    ids = tokenizer(prompt + completion, add_special_tokens=False)["input_ids"]
    tokens = tokenizer.convert_ids_to_tokens(ids)
    for word in (FORMAT_PROMPT, "<think>", "</think>", "\\boxed{"):
        assert word in tokens
    assert tokenizer.unk_token_id not in ids
    assert tokenizer.decode(ids + [tokenizer.eos_token_id], skip_special_tokens=True) == prompt + completion
    assert tokenizer.padding_side == "left" and tokenizer.chat_template is None


def _check_steps(solution: str, expected: int) -> None:
    assert solution.endswith(f"\\boxed{{{expected}}}")
    think = re.fullmatch(r"(?:<think>(.*)</think>)?\\boxed\{(-?\d+)\}", solution)
    assert think, solution
    if think.group(1):
        for step in think.group(1).split(","):
            left, right = step.split("=")
            a, op, b = re.fullmatch(r"(-?\d+)([+*-])(-?\d+)", left).groups()
            assert arith.evaluate([op, int(a), int(b)]) == int(right), step


def test_every_worked_solution_is_valid_and_styles_vary():
    rng = random.Random(0)
    rows = generate_rows("arith", "train", 300, seed=0)
    for row in rows:
        solution = toy.worked_solution(json.loads(row["meta"])["expr"], rng)
        _check_steps(solution, int(row["answer"]))
    # genuine choice: one problem has several distinct valid solutions
    styles = {toy.worked_solution(["+", 47, 38], random.Random(seed)) for seed in range(50)}
    assert {
        "\\boxed{85}",
        "<think>47+38=85</think>\\boxed{85}",
        "<think>38+47=85</think>\\boxed{85}",
        "<think>47+30=77,77+8=85</think>\\boxed{85}",
        "<think>47+8=55,55+30=85</think>\\boxed{85}",
    } <= styles


def test_training_texts_never_come_from_the_test_split():
    rng = random.Random(1)
    for _ in range(2000):
        prompt, completion = toy.sample_training_text(rng)
        question = prompt.removesuffix(" " + FORMAT_PROMPT)
        assert split_of(question) == "train"
        assert accuracy_reward([completion], [str(_answer(question))]) == [1.0]


def _answer(question: str) -> int:
    import ast

    return _eval(ast.parse(question.removeprefix("What is ").removesuffix("?"), mode="eval").body)


def _eval(node):
    import ast

    if isinstance(node, ast.Constant):
        return node.value
    op = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*"}[type(node.op)]
    return arith.evaluate([op, _eval(node.left), _eval(node.right)])


def _digest(folder) -> str:
    return hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()


def test_build_is_deterministic_and_cached(tmp_path):
    first = toy.toy_policy_dir(tmp_path / "a", MICRO, verbose=False)
    second = toy.toy_policy_dir(tmp_path / "b", MICRO, verbose=False)
    assert _digest(first) == _digest(second)
    assert first.name == f"toy-arith-{MICRO.digest()}"
    for name in ("config.json", "model.safetensors", "tokenizer.json", "toy_recipe.json"):
        assert (first / name).is_file()
    mtime = (first / "model.safetensors").stat().st_mtime_ns
    assert toy.toy_policy_dir(tmp_path / "a", MICRO) == first  # cache hit: nothing rebuilt
    assert (first / "model.safetensors").stat().st_mtime_ns == mtime
    other = toy.ToyRecipe(**{**MICRO.__dict__, "seed": 1})
    assert _digest(toy.toy_policy_dir(tmp_path / "a", other, verbose=False)) != _digest(first)


def test_interrupted_build_leaves_no_valid_looking_folder(tmp_path, monkeypatch):
    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(toy, "build_toy_policy", crash)
    with pytest.raises(KeyboardInterrupt):
        toy.toy_policy_dir(tmp_path, MICRO)
    assert not list((tmp_path / "policies").glob("toy-*"))


def test_the_build_pins_its_thread_count_and_restores_the_callers(tmp_path):
    import torch

    threads = torch.get_num_threads()
    recipe = toy.ToyRecipe(**{**MICRO.__dict__, "build_threads": threads + 1})
    record = toy.build_toy_policy(tmp_path / "policy", recipe, verbose=False)
    assert record["torch_threads"] == threads + 1 and torch.get_num_threads() == threads
    assert recipe.digest() != MICRO.digest()  # the thread count names a different policy


def test_geometry_solutions_are_rewarded_and_styles_vary():
    rng = random.Random(0)
    recipe = toy.GEOMETRY_RECIPE
    for _ in range(300):
        problem = geometry.make_problem(rng, rng.choice([1, 2, 3, 4]))
        completion = toy.geometry_solution(problem, rng, recipe)
        assert accuracy_reward([completion], [problem.answer]) == [1.0], completion
    for _ in range(300):
        question = toy.sample_training_text(rng, recipe)[0].removesuffix(" " + FORMAT_PROMPT)
        assert split_of(question) == "train"
    problem = geometry.make_problem(random.Random(3), 1)
    short = toy.computation_of(problem.solution)
    assert problem.solution.endswith(", so " + short) and short.startswith("m \\angle ")
    assert toy.computation_of("The angles sum to 180: 8x - 36 = 180, so x = 27") == "8x - 36 = 180, so x = 27"
    assert (
        toy.computation_of("The width is 42/2 - 7 = 14, so A = 98") == "The width is 42/2 - 7 = 14, so A = 98"
    )
    answer = f"\\boxed{{{problem.answer}}}"
    styles = {toy.geometry_solution(problem, random.Random(seed), recipe) for seed in range(80)}
    thoughts = {problem.solution, short, toy.stepwise(problem.solution), toy.stepwise(short)}
    assert len(thoughts) == 4 and styles == {answer, *(f"<think>{t}</think>{answer}" for t in thoughts)}


def test_stepwise_works_a_closing_integer_chain_one_operation_at_a_time():
    assert toy.stepwise("so m \\angle H = 180 - 83 - 64 = 33") == (
        "so m \\angle H = 180 - 80 = 100, 100 - 3 = 97, 97 - 60 = 37, 37 - 4 = 33"
    )
    assert toy.stepwise("m \\angle 6 = 180 - 109 = 71") == "m \\angle 6 = 180 - 100 = 80, 80 - 9 = 71"
    assert (
        toy.stepwise("x = 12 + 70 + 5 = 87") == "x = 12 + 70 = 82, 82 + 5 = 87"
    )  # round and 1-digit: as they are
    for unchanged in (
        "A = 7 \\cdot 14 = 98",
        "C = 2\\pi (5) = 10\\pi",
        "x = 4.5 + 2 = 6.5",
        "y = 2^{10} - 24 = 1000",
    ):
        assert toy.stepwise(unchanged) == unchanged


def test_geometry_tokenizer_keeps_its_frequent_words_whole():
    words = toy.GEOMETRY_RECIPE.word_tokens
    assert "\\angle " in words and "triangle " in words and not any(c.isdigit() for w in words for c in w)
    tokenizer = toy.build_tokenizer(words)
    text = with_instruction("In \\triangle ABC, m \\angle A = 50 and m \\angle B = 60. Find m \\angle C.")
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == text and tokenizer.unk_token_id not in ids
    assert len(ids) < len(text) / 2
    assert len(toy.build_tokenizer()) < len(tokenizer)  # the arith toy's vocabulary is unchanged
