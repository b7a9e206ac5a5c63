"""Hub loaders (uec_repro.tasks.hub) on small local copies in the Hub's formats; never touches the network.

The fixture files are written under ``tmp_path`` in the layouts the Hub uses: parquet shards under
``data/`` (geometry3k, math12k) or a config folder (gsm8k ``main/``), a ``test.jsonl`` (MATH-500),
with the same column names and types, including geometry3k's ``images`` column of real PNG bytes in
the ``{"bytes", "path"}`` struct that ``datasets``' Image feature stores.
"""

from __future__ import annotations

import glob
import io
import json
import os
import shutil
import time
import warnings
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

import uec_repro.tasks.hub as hub
from uec_repro.tasks import FORMAT_PROMPT, load_task
from uec_repro.tasks.hub import DatasetUnavailableError, MalformedRowsWarning, load_hub_rows
from uec_repro.tasks.schema import FIELDS, validate_example
from uec_repro.validation import ParameterError

OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")


def png(color: str, size=(12, 8)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


G3K_FEATURES = datasets.Features(
    {
        "images": datasets.Sequence(datasets.Image()),
        "problem": datasets.Value("string"),
        "answer": datasets.Value("string"),
        "id": datasets.Value("int64"),
        "choices": datasets.Sequence(datasets.Value("string")),
        "ground_truth": datasets.Value("string"),
    }
)


def g3k_split(split: str) -> dict[str, list]:
    """Five rows; row 3 has no image and row 4 an empty answer (both malformed)."""
    problems = [
        "<image>Find x.",
        "<image>Find the area of the figure. Round to the nearest tenth.",
        "<image>Find y.",
        "<image>Find z.",
        "<image>Find w.",
    ]
    return {
        "images": [
            [{"bytes": png(c, (10 + i, 8)), "path": None}] if i != 3 else []
            for i, c in enumerate(["red", "green", "blue", "white", "black"])
        ],
        "problem": [f"{p} ({split})" for p in problems],
        "answer": ["8\\sqrt{2}", "12.5", "\\frac{40}{3}", "3", ""],
        "id": [100 + i for i in range(5)],
        "choices": [["1", "2", "8\\sqrt{2}", "4"]] * 5,
        "ground_truth": ["C", "A", "B", "D", "A"],
    }


@pytest.fixture(scope="module")
def hub_copies(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hub")
    # geometry3k: data/<split>-00000-of-00001.parquet written by datasets (as push_to_hub does)
    for split in ("train", "validation", "test"):
        ds = datasets.Dataset.from_dict(g3k_split(split), features=G3K_FEATURES)
        (root / "geometry3k" / "data").mkdir(parents=True, exist_ok=True)
        ds.to_parquet(str(root / "geometry3k" / "data" / f"{split}-00000-of-00001.parquet"))
    # math12k: 30 train rows, 5 test rows
    for split, size in (("train", 30), ("test", 5)):
        (root / "math12k" / "data").mkdir(parents=True, exist_ok=True)
        table = pa.table(
            {
                "problem": [f"What is {i} + {i}? ({split})" for i in range(size)],
                "answer": [str(2 * i) for i in range(size)],
            }
        )
        pq.write_table(table, root / "math12k" / "data" / f"{split}-00000-of-00001.parquet")
    # MATH-500: test.jsonl at the repo root
    (root / "math500").mkdir()
    with open(root / "math500" / "test.jsonl", "w", encoding="utf-8") as f:
        for i in range(4):
            f.write(
                json.dumps(
                    {
                        "problem": f"Compute $\\frac{{{i}}}{{2}}$.",
                        "solution": f"It is $\\boxed{{\\frac{{{i}}}{{2}}}}$.",
                        "answer": f"\\frac{{{i}}}{{2}}",
                        "subject": "Algebra",
                        "level": i + 1,
                        "unique_id": f"test/algebra/{i}.json",
                    }
                )
                + "\n"
            )
    # gsm8k: main/ and socratic/ configs; the loader must read main/
    for config in ("main", "socratic"):
        (root / "gsm8k" / config).mkdir(parents=True)
        for split in ("train", "test"):
            answers = [
                "She sells 1,000 + 234 = <<1000+234=1234>>1,234 eggs.\n#### 1,234",
                "2 + 3 = <<2+3=5>>5\n#### 5",
                "No final answer here",
                "Total 1,234,567 - 7 = 1,234,560.\n#### 1,234,560",
            ]
            questions = [f"Q{i} {config} {split}?" for i in range(4)]
            pq.write_table(
                pa.table({"question": questions, "answer": answers}),
                root / "gsm8k" / config / f"{split}-00000-of-00001.parquet",
            )
    return {name: root / name for name in ("geometry3k", "math12k", "math500", "gsm8k")}


def load_quiet(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MalformedRowsWarning)
        return load_hub_rows(*args, **kwargs)


# --------------------------------------------------------------------------------------------------
# local copies
# --------------------------------------------------------------------------------------------------
def test_geometry3k_rows(hub_copies):
    with pytest.warns(
        MalformedRowsWarning,
        match=(
            r"skipped 2 malformed row.*geometry3k-test-00003 \(no image\), "
            r"geometry3k-test-00004 \(missing or empty answer\)"
        ),
    ):
        rows = load_hub_rows("geometry3k", "test", data_path=hub_copies["geometry3k"])
    assert [r["id"] for r in rows] == [
        "geometry3k-test-00000",
        "geometry3k-test-00001",
        "geometry3k-test-00002",
    ]
    assert [r["answer"] for r in rows] == ["8\\sqrt{2}", "12.5", "\\frac{40}{3}"]
    assert rows[0]["question"] == "Find x. (test)"  # <image> placeholder removed
    assert all("<image>" not in r["question"] for r in rows)
    for i, row in enumerate(rows):
        validate_example(row)
        assert set(row) == {*FIELDS, "image"}
        assert isinstance(row["image"], Image.Image) and row["image"].size == (10 + i, 8)
        assert row["source"] == "geometry3k" and row["difficulty"] == 0
    meta = json.loads(rows[2]["meta"])
    assert meta["hub_id"] == "hiyouga/geometry3k" and meta["index"] == 2 and meta["id"] == 102
    assert meta["choices"] == ["1", "2", "8\\sqrt{2}", "4"] and meta["ground_truth"] == "B"


def test_geometry3k_other_splits_and_bad_split(hub_copies):
    rows = load_quiet("geometry3k", "validation", data_path=hub_copies["geometry3k"])
    assert rows[0]["question"] == "Find x. (validation)" and rows[0]["id"] == "geometry3k-validation-00000"
    with pytest.raises(ParameterError, match=r"split='dev'.*\['train', 'validation', 'test'\]"):
        load_hub_rows("geometry3k", "dev", data_path=hub_copies["geometry3k"])
    with pytest.raises(ParameterError, match=r"\['test'\]"):
        load_hub_rows("math500", "train", data_path=hub_copies["math500"])
    with pytest.raises(ParameterError, match="dataset='mnist'"):
        load_hub_rows("mnist", "test")


def test_geometry3k_plain_pyarrow_parquet(tmp_path):
    """A parquet file without datasets' schema metadata: images are raw {bytes, path} structs."""
    image_type = pa.list_(pa.struct([("bytes", pa.binary()), ("path", pa.string())]))
    table = pa.table(
        {
            "images": pa.array([[{"bytes": png("red", (5, 7)), "path": None}]], type=image_type),
            "problem": ["<image>Find m \\angle 1."],
            "answer": ["60"],
        }
    )
    pq.write_table(table, tmp_path / "test.parquet")
    (row,) = load_hub_rows("geometry3k", "test", data_path=tmp_path / "test.parquet")
    assert row["question"] == "Find m \\angle 1." and row["answer"] == "60" and row["image"].size == (5, 7)


def test_n_and_seed(hub_copies):
    path = hub_copies["math12k"]
    full = load_hub_rows("math12k", "train", data_path=path)
    assert len(full) == 30 and [r["id"] for r in full] == [f"math12k-train-{i:05d}" for i in range(30)]
    a = load_hub_rows("math12k", "train", 10, seed=0, data_path=path)
    b = load_hub_rows("math12k", "train", 10, seed=0, data_path=path)
    c = load_hub_rows("math12k", "train", 10, seed=1, data_path=path)
    assert a == b and [r["id"] for r in a] != [r["id"] for r in c]
    assert len({r["id"] for r in a}) == 10
    smaller = load_hub_rows("math12k", "train", 4, seed=0, data_path=path)
    assert smaller == a[:4]  # shuffle with the seed, then take the first n
    for row in a:  # a row's content stays with its id
        i = int(row["id"].rsplit("-", 1)[1])
        assert row["question"] == f"What is {i} + {i}? (train)" and row["answer"] == str(2 * i)
        assert "image" not in row  # text task: no image column
    with pytest.raises(ParameterError, match=r"n=31 is more than the 30 rows of math12k split 'train'"):
        load_hub_rows("math12k", "train", 31, data_path=path)
    with pytest.raises(ParameterError, match=r"n=4 is more than the 3 rows .*after skipping 2 malformed"):
        load_quiet("geometry3k", "test", 4, data_path=hub_copies["geometry3k"])
    with pytest.raises(ParameterError, match="n=0"):
        load_hub_rows("math12k", "train", 0, data_path=path)


def test_gsm8k_final_answer_and_config_folder(hub_copies):
    with pytest.warns(MalformedRowsWarning, match="gsm8k-test-00002"):
        rows = load_hub_rows("gsm8k", "test", data_path=hub_copies["gsm8k"])
    assert [r["answer"] for r in rows] == ["1234", "5", "1234560"]
    assert [r["id"] for r in rows] == ["gsm8k-test-00000", "gsm8k-test-00001", "gsm8k-test-00003"]
    assert rows[0]["question"] == "Q0 main test?"  # main/ wins over socratic/
    assert rows[0]["solution"] == "She sells 1,000 + 234 = <<1000+234=1234>>1,234 eggs."
    assert "####" not in rows[1]["solution"]


def test_math500_jsonl(hub_copies):
    rows = load_hub_rows("math500", "test", data_path=hub_copies["math500"])
    assert [r["difficulty"] for r in rows] == [1, 2, 3, 4]
    assert rows[3]["answer"] == "\\frac{3}{2}" and rows[3]["solution"] == "It is $\\boxed{\\frac{3}{2}}$."
    meta = json.loads(rows[3]["meta"])
    assert meta["subject"] == "Algebra" and meta["unique_id"] == "test/algebra/3.json" and meta["level"] == 4


def test_save_to_disk_copies(hub_copies, tmp_path):
    ds = datasets.Dataset.from_dict(g3k_split("test"), features=G3K_FEATURES)
    datasets.DatasetDict({"test": ds, "train": ds}).save_to_disk(str(tmp_path / "dict"))
    rows = load_quiet("geometry3k", "test", data_path=tmp_path / "dict")
    assert [r["answer"] for r in rows] == ["8\\sqrt{2}", "12.5", "\\frac{40}{3}"]
    assert isinstance(rows[0]["image"], Image.Image)
    with pytest.raises(ParameterError, match=r"no split 'validation'"):
        load_quiet("geometry3k", "validation", data_path=tmp_path / "dict")
    one = datasets.Dataset.from_dict({"problem": ["p1", "p2"], "answer": ["1", "2"]}, split="test")
    one.save_to_disk(str(tmp_path / "one"))
    assert [r["answer"] for r in load_hub_rows("math12k", "test", data_path=tmp_path / "one")] == ["1", "2"]
    with pytest.raises(ParameterError, match="holds the 'test' split"):
        load_hub_rows("math12k", "train", data_path=tmp_path / "one")


def test_bad_data_paths(hub_copies, tmp_path):
    with pytest.raises(ParameterError, match="does not exist"):
        load_hub_rows("math12k", "test", data_path=tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ParameterError, match=r"no data file for split 'test'"):
        load_hub_rows("math12k", "test", data_path=tmp_path / "empty")
    pq.write_table(pa.table({"text": ["a"]}), tmp_path / "wrong.parquet")
    with pytest.raises(ParameterError, match=r"lacks column\(s\) \['problem', 'answer'\]"):
        load_hub_rows("math12k", "test", data_path=tmp_path / "wrong.parquet")


# --------------------------------------------------------------------------------------------------
# the registry
# --------------------------------------------------------------------------------------------------
def test_load_task_gsm8k_through_registry(hub_copies):
    with pytest.warns(MalformedRowsWarning):
        ds = load_task("gsm8k", "test", data_path=str(hub_copies["gsm8k"]))
    assert isinstance(ds, datasets.Dataset) and len(ds) == 3
    assert "image" not in ds.column_names
    prompt = ds[0]["prompt"]
    assert prompt == [{"role": "user", "content": f"Q0 main test? {FORMAT_PROMPT}"}]
    assert ds[0]["answer"] == "1234"


def test_load_task_geometry3k_has_image_item(hub_copies):
    ds = load_task("geometry3k", "test", n=2, seed=0, data_path=str(hub_copies["geometry3k"]))
    assert len(ds) == 2 and "image" in ds.column_names
    content = ds[0]["prompt"][0]["content"]
    assert content[0]["type"] == "image"
    assert content[1]["type"] == "text" and content[1]["text"].endswith(FORMAT_PROMPT)
    assert isinstance(ds[0]["image"], Image.Image)


# --------------------------------------------------------------------------------------------------
# the Hub path, without network
# --------------------------------------------------------------------------------------------------
def offline_flags():
    from huggingface_hub import constants

    return datasets.config.HF_HUB_OFFLINE, datasets.config.HF_DATASETS_OFFLINE, constants.HF_HUB_OFFLINE


@pytest.mark.parametrize("name, hub_id", [("geometry3k", "hiyouga/geometry3k"), ("gsm8k", "openai/gsm8k")])
def test_offline_fails_fast_with_remedy(monkeypatch, tmp_path, name, hub_id):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    flags = offline_flags()
    start = time.perf_counter()
    with pytest.raises(DatasetUnavailableError) as info:
        load_hub_rows(name, "test", cache_dir=tmp_path / "empty-cache")
    elapsed = time.perf_counter() - start
    assert elapsed < 5, elapsed
    message = str(info.value)
    assert repr(name) in message and repr(hub_id) in message
    assert "offline mode" in message and "data_path=" in message and "cache" in message
    assert "network access" in message and str(tmp_path / "empty-cache") in message
    assert isinstance(info.value, ParameterError)
    assert offline_flags() == flags  # the forced offline mode is undone


def test_unreachable_hub_fails_fast(monkeypatch, tmp_path):
    for var in OFFLINE_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(hub, "offline_mode", lambda: False)
    monkeypatch.setattr(hub, "hub_reachable", lambda timeout=hub.HUB_PROBE_TIMEOUT_S: False)
    start = time.perf_counter()
    with pytest.raises(DatasetUnavailableError, match=r"'math500'.*'HuggingFaceH4/MATH-500'.*unreachable"):
        load_hub_rows("math500", "test", cache_dir=tmp_path / "empty-cache")
    assert time.perf_counter() - start < 5


def test_hub_path_calls_load_dataset(monkeypatch, tmp_path):
    """With the Hub reachable the real call is datasets.load_dataset(hub_id, config, split=, cache_dir=)."""
    calls = []

    def fake_load_dataset(path, name=None, *, split=None, cache_dir=None, **kwargs):
        calls.append((path, name, split, cache_dir, datasets.config.HF_HUB_OFFLINE))
        return datasets.Dataset.from_dict({"question": ["Q?"], "answer": ["Work.\n#### 2,000"]}, split=split)

    monkeypatch.setattr(hub, "offline_mode", lambda: False)
    monkeypatch.setattr(hub, "hub_reachable", lambda timeout=hub.HUB_PROBE_TIMEOUT_S: True)
    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    (row,) = load_hub_rows("gsm8k", "train", cache_dir=tmp_path)
    assert calls == [("openai/gsm8k", "main", "train", str(tmp_path), datasets.config.HF_HUB_OFFLINE)]
    assert row["answer"] == "2000" and row["id"] == "gsm8k-train-00000"


def test_offline_reads_the_datasets_cache(monkeypatch, tmp_path, hub_copies):
    """A dataset already in the cache loads offline: the remedy the error message gives works.

    The cache entry is made the way datasets 5.2 lays out a Hub dataset
    (``<cache>/hiyouga___geometry3k/default/0.0.0/<hash>/geometry3k-test.arrow``), from the local parquet
    copy.
    """
    cache = tmp_path / "cache"
    monkeypatch.setattr(
        datasets.config, "HF_HUB_OFFLINE", True
    )  # building the entry must not use the network
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        datasets.load_dataset(
            "parquet",
            data_files={"test": str(hub_copies["geometry3k"] / "data" / "test-00000-of-00001.parquet")},
            cache_dir=str(cache),
        )
    (built,) = [p for p in glob.glob(str(cache / "parquet" / "*" / "*" / "*")) if os.path.isdir(p)]
    entry = cache / "hiyouga___geometry3k" / "default" / "0.0.0" / Path(built).name
    shutil.copytree(built, entry)
    (entry / "parquet-test.arrow").rename(entry / "geometry3k-test.arrow")
    info = json.loads((entry / "dataset_info.json").read_text())
    info.update(config_name="default", dataset_name="geometry3k")
    (entry / "dataset_info.json").write_text(json.dumps(info))

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    rows = load_quiet("geometry3k", "test", cache_dir=cache)
    assert [r["answer"] for r in rows] == ["8\\sqrt{2}", "12.5", "\\frac{40}{3}"]
    assert isinstance(rows[0]["image"], Image.Image)
