"""Malformed dataset rows: skipped and counted by the hub loaders (local copies, offline), rejected with the
row id by the schema; a training run's data never holds a row the reward or the trainer cannot use."""

from __future__ import annotations

import io
import json
import math
import warnings

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from uec_repro.rewards import accuracy_reward
from uec_repro.tasks import BadExampleError, load_task, make_example, validate_example
from uec_repro.tasks.hub import MalformedRowsWarning, load_hub_rows
from uec_repro.validation import ParameterError


def png(size=(9, 7)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, "red").save(buffer, format="PNG")
    return buffer.getvalue()


def load_counting(*args, **kwargs):
    """The rows and the skipped rows' reasons (row id -> reason) of one load."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rows = load_hub_rows(*args, **kwargs)
    malformed = [w.message for w in caught if issubclass(w.category, MalformedRowsWarning)]
    assert len(malformed) <= 1  # one warning per load
    return rows, (malformed[0].reasons if malformed else {})


def assert_usable(rows):
    for row in rows:
        validate_example(row)
        assert row["question"].strip() and row["answer"].strip()


# --------------------------------------------------------------------------------------------------
# text datasets: math12k (parquet), MATH-500 (jsonl), gsm8k (json array)
# --------------------------------------------------------------------------------------------------
TEXT_ROWS = [  # (problem, answer, expected reason or None)
    ("What is 1+1?", "2", None),
    ("What is 2+2?", None, "missing or empty answer"),
    ("What is 3+3?", "", "missing or empty answer"),
    ("What is 4+4?", "   ", "missing or empty answer"),
    ("", "5", "missing or empty problem"),
    ("  \n ", "6", "missing or empty problem"),
    (None, "7", "missing or empty problem"),
    ("What is 5+5?", "10", None),
]


def test_math12k_parquet_rows_are_skipped_and_counted(tmp_path):
    problems, answers, _ = zip(*TEXT_ROWS, strict=True)
    pq.write_table(pa.table({"problem": list(problems), "answer": list(answers)}), tmp_path / "test.parquet")
    rows, reasons = load_counting("math12k", "test", data_path=tmp_path / "test.parquet")
    assert [r["id"] for r in rows] == ["math12k-test-00000", "math12k-test-00007"]
    assert reasons == {f"math12k-test-{i:05d}": why for i, (_, _, why) in enumerate(TEXT_ROWS) if why}
    assert_usable(rows)


def test_math500_jsonl_with_odd_value_types(tmp_path):
    """JSON lines where one answer is a number, NaN or a list: one odd value must not break the file."""
    records = [
        {
            "problem": p,
            "answer": a,
            "level": i + 1,
            "solution": "",
            "subject": "Algebra",
            "unique_id": f"test/{i}.json",
        }
        for i, (p, a, _) in enumerate(TEXT_ROWS)
    ]
    records += [
        {"problem": "Twice 6?", "answer": 12, "level": 1},
        {"problem": "Half of nothing?", "answer": math.nan},
        {"problem": "Which?", "answer": ["1", "2"]},
        {"problem": 7, "answer": "7"},
        {"answer": "8"},
    ]
    (tmp_path / "test.jsonl").write_text("\n".join(json.dumps(r) for r in records))
    rows, reasons = load_counting("math500", "test", data_path=tmp_path)
    assert [(r["id"], r["answer"]) for r in rows] == [
        ("math500-test-00000", "2"),
        ("math500-test-00007", "10"),
        ("math500-test-00008", "12"),
        ("math500-test-00011", "7"),
    ]
    assert (
        reasons["math500-test-00009"] == reasons["math500-test-00010"] == "missing or empty answer"
    )  # NaN, list
    assert reasons["math500-test-00012"] == "missing or empty problem"  # no problem key at all
    assert len(reasons) == 6 + 3
    assert_usable(rows)


def test_gsm8k_json_rows_without_final_answer(tmp_path):
    records = [
        {"question": "Q0?", "answer": "2 + 2 = 4\n#### 4"},
        {"question": "Q1?", "answer": "no separator"},
        {"question": "Q2?", "answer": "#### "},
        {"question": "", "answer": "#### 3"},
        {"question": "Q4?", "answer": None},
        {"question": "Q5?", "answer": "#### 1,250"},
    ]
    (tmp_path / "gsm8k.json").write_text(json.dumps(records))
    rows, reasons = load_counting("gsm8k", "test", data_path=tmp_path / "gsm8k.json")
    assert [(r["id"], r["answer"]) for r in rows] == [("gsm8k-test-00000", "4"), ("gsm8k-test-00005", "1250")]
    assert reasons == {
        "gsm8k-test-00001": "answer without '####'",
        "gsm8k-test-00002": "missing or empty answer",
        "gsm8k-test-00003": "missing or empty problem",
        "gsm8k-test-00004": "missing or empty answer",
    }


def test_mixed_types_in_another_column_are_a_clear_error(tmp_path):
    (tmp_path / "test.jsonl").write_text(
        '{"problem": "p", "answer": "1", "level": 1}\n{"problem": "q", "answer": "2", "level": "Level 2"}\n'
    )
    with pytest.raises(ParameterError, match=r"test\.jsonl.*mixes value types"):
        load_hub_rows("math500", "test", data_path=tmp_path / "test.jsonl")


def test_a_split_without_valid_rows_is_an_error_not_an_empty_dataset(tmp_path):
    pq.write_table(pa.table({"problem": ["", "p"], "answer": ["1", None]}), tmp_path / "train.parquet")
    with (
        pytest.warns(MalformedRowsWarning),
        pytest.raises(
            ParameterError,
            match=r"math12k split 'train' has no valid row \(after skipping 2 malformed rows\)",
        ),
    ):
        load_task("math12k", "train", data_path=str(tmp_path))


# --------------------------------------------------------------------------------------------------
# geometry3k: image rows
# --------------------------------------------------------------------------------------------------
IMAGE_TYPE = pa.list_(pa.struct([("bytes", pa.binary()), ("path", pa.string())]))
GOOD = [{"bytes": png(), "path": None}]
G3K_ROWS = [  # (images, problem, answer, expected reason or None)
    (GOOD, "<image>Find x.", "8", None),
    ([], "<image>Find y.", "9", "no image"),
    (None, "<image>Find y.", "9", "no image"),
    ([{"bytes": b"not an image", "path": None}], "<image>Find z.", "3", "image cannot be decoded"),
    (
        [{"bytes": png()[:40], "path": None}],
        "<image>Find w.",
        "4",
        "image cannot be decoded",
    ),  # truncated PNG
    ([{"bytes": None, "path": "/nowhere/figure.png"}], "<image>Find v.", "5", "image cannot be decoded"),
    ([None], "<image>Find u.", "6", "image cannot be decoded"),
    (GOOD, "<image>", "7", "missing or empty problem"),
    (GOOD, "<image>Find t.", "", "missing or empty answer"),
    (GOOD, "<image>Find s.", "10", None),
]


@pytest.fixture
def g3k_file(tmp_path):
    images, problems, answers, _ = zip(*G3K_ROWS, strict=True)
    table = pa.table(
        {
            "images": pa.array(list(images), type=IMAGE_TYPE),
            "problem": list(problems),
            "answer": list(answers),
        }
    )
    pq.write_table(table, tmp_path / "test-00000-of-00001.parquet")
    return tmp_path / "test-00000-of-00001.parquet"


def test_geometry3k_broken_images_are_skipped_and_counted(g3k_file):
    rows, reasons = load_counting("geometry3k", "test", data_path=g3k_file)
    assert [r["id"] for r in rows] == ["geometry3k-test-00000", "geometry3k-test-00009"]
    assert all(isinstance(r["image"], Image.Image) and r["image"].size == (9, 7) for r in rows)
    expected = {f"geometry3k-test-{i:05d}": why for i, (*_, why) in enumerate(G3K_ROWS) if why}
    assert set(reasons) == set(expected)
    for row_id, why in expected.items():
        assert reasons[row_id].startswith(why), (row_id, reasons[row_id])
    assert_usable(rows)


def test_geometry3k_with_n_replaces_an_undecodable_row_by_the_next_valid_one(g3k_file):
    # seed 0 shuffles the rows that pass the cheap checks to 6, 4, 3, 0, 9, 5: three undecodable ones come
    # first
    (one,), reasons = load_counting("geometry3k", "test", 1, seed=0, data_path=g3k_file)
    assert one["id"] == "geometry3k-test-00000"
    decoded = {row_id for row_id, why in reasons.items() if why.startswith("image cannot be decoded")}
    assert decoded == {
        "geometry3k-test-00006",
        "geometry3k-test-00004",
        "geometry3k-test-00003",
    }  # 00005 not drawn
    two, _ = load_counting("geometry3k", "test", 2, seed=0, data_path=g3k_file)
    assert two[0] == one and two[1]["id"] == "geometry3k-test-00009"  # a smaller n is still a prefix
    with (
        pytest.warns(MalformedRowsWarning),
        pytest.raises(
            ParameterError,
            match=r"n=3 is more than the 2 rows of geometry3k split 'test' \(after skipping 8 malformed",
        ),
    ):
        load_hub_rows("geometry3k", "test", 3, data_path=g3k_file)


def test_geometry3k_datasets_image_feature_with_broken_bytes(tmp_path):
    features = datasets.Features(
        {
            "images": datasets.Sequence(datasets.Image()),
            "problem": datasets.Value("string"),
            "answer": datasets.Value("string"),
        }
    )
    ds = datasets.Dataset.from_dict(
        {
            "images": [[{"bytes": png(), "path": None}], [{"bytes": b"GIF89a broken", "path": None}]],
            "problem": ["<image>A?", "<image>B?"],
            "answer": ["1", "2"],
        },
        features=features,
    )
    ds.to_parquet(str(tmp_path / "test.parquet"))
    with pytest.warns(MalformedRowsWarning, match=r"geometry3k-test-00001 \(image cannot be decoded"):
        ds_task = load_task("geometry3k", "test", data_path=str(tmp_path / "test.parquet"))
    assert len(ds_task) == 1 and ds_task[0]["answer"] == "1" and isinstance(ds_task[0]["image"], Image.Image)


# --------------------------------------------------------------------------------------------------
# the schema (built-in tasks build their rows with it) and what reaches the reward
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"answer": ""}, r"example 'arith-1-x': field 'answer' must be a non-empty string, got ''"),
        ({"answer": None}, r"field 'answer' must be a non-empty string, got None"),
        ({"question": "  "}, r"field 'question' must be a non-empty string"),
        ({"id": ""}, r"example '': field 'id' must be a non-empty string"),
    ],
)
def test_schema_rejects_a_malformed_row_naming_its_id(fields, message):
    with pytest.raises(BadExampleError, match=message):
        make_example(
            **{"id": "arith-1-x", "question": "What is 1+1?", "answer": "2", "source": "arith", **fields}
        )


def test_schema_rejects_a_row_missing_a_field():
    row = make_example(id="arith-1-x", question="What is 1+1?", answer="2", source="arith")
    del row["answer"]
    with pytest.raises(BadExampleError, match=r"example 'arith-1-x': missing field 'answer'"):
        validate_example(row)


def test_loaded_rows_give_the_trainer_prompts_and_answers_it_can_use(g3k_file, tmp_path):
    problems, answers, _ = zip(*TEXT_ROWS, strict=True)
    pq.write_table(pa.table({"problem": list(problems), "answer": list(answers)}), tmp_path / "train.parquet")
    for name, path in (("math12k", tmp_path / "train.parquet"), ("geometry3k", g3k_file)):
        split = "train" if name == "math12k" else "test"
        with pytest.warns(MalformedRowsWarning):
            ds = load_task(name, split, data_path=str(path))
        assert len(ds) == 2
        for row in ds:
            text = row["prompt"][0]["content"]
            text = text if isinstance(text, str) else text[-1]["text"]
            assert text.strip() and row["answer"].strip()
            assert accuracy_reward(
                [f"\\boxed{{{row['answer']}}}", "\\boxed{wrong}"], [row["answer"]] * 2
            ) == [1.0, 0.0]


def test_the_reward_tolerates_a_bad_reference_answer():
    """A dataset built by hand, without the loaders, may hold bad answers: they score 0, never crash."""
    assert accuracy_reward(["\\boxed{1}"] * 5, [None, "", "   ", 1, float("nan")]) == [0.0] * 5
