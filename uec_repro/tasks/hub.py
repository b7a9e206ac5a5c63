"""Loaders for the paper's datasets on the Hugging Face Hub, returning schema rows.

==============  ===========================  ======  ==============================================
name            Hub id (config)              splits  columns used
==============  ===========================  ======  ==============================================
``geometry3k``  ``hiyouga/geometry3k``       train 2101 / validation 300 / test 601
                                                     ``images`` (first one -> ``image``), ``problem``
                                                     (``<image>`` placeholder removed), ``answer``
``math12k``     ``hiyouga/math12k``          train / test;  ``problem``, ``answer``
``math500``     ``HuggingFaceH4/MATH-500``   test 500; ``problem``, ``answer``, ``solution``, ``level``
                                                     (-> ``difficulty``), ``subject``, ``unique_id``
``gsm8k``       ``openai/gsm8k`` (``main``)  train / test; ``question``, ``answer`` (the final
                                                     answer after ``#### ``, thousands separators
                                                     removed; the reasoning before it -> ``solution``)
==============  ===========================  ======  ==============================================

Row ids are stable: ``<name>-<split>-<row index in the split, 5 digits>``, e.g. ``geometry3k-test-00017``.

Where the data comes from:

* the Hub (default): ``datasets.load_dataset(hub_id, config, split=split, cache_dir=cache_dir)``; a
  copy already in the ``datasets`` cache is used without network access. Before touching the
  network the loader checks offline mode (``HF_HUB_OFFLINE`` / ``HF_DATASETS_OFFLINE`` /
  ``TRANSFORMERS_OFFLINE``, read at call time) and otherwise makes one quick request to the Hub
  (:data:`HUB_PROBE_TIMEOUT_S`); when the Hub cannot be used the load runs in offline mode, so it
  reads the cache or fails at once with :class:`DatasetUnavailableError` instead of retrying for
  about 25 s (what ``datasets`` 5.2 does on this kind of machine);
* ``data_path``: a local copy, one of
  - a folder written by ``Dataset.save_to_disk`` or ``DatasetDict.save_to_disk``;
  - a folder of data files laid out as on the Hub: files named ``<split>-*.parquet`` /
    ``<split>.parquet`` / ``<split>.jsonl`` / ``<split>.json`` anywhere below it (e.g.
    ``data/test-00000-of-00001.parquet``; for ``gsm8k`` files under a ``main/`` folder win over
    other configs' folders);
  - a single ``.parquet``, ``.jsonl`` or ``.json`` file, taken as the requested split.

``n``: the whole split when ``None``; otherwise the split's (valid) rows are shuffled with
``random.Random(seed)`` and the first ``n`` are taken, so with one seed a smaller ``n`` is a prefix
of a larger one. ``n`` larger than the split is a :class:`ParameterError`.

Malformed rows are skipped, not loaded: a problem that is missing, not a string or empty (for
``geometry3k``: empty once ``<image>`` is removed); an answer that is missing, empty, NaN or not a string or
number; a ``gsm8k`` answer without ``####``; a ``geometry3k`` row without an image or whose first image cannot
be decoded. They are counted and named, with the reason, in one :class:`MalformedRowsWarning` (its
``reasons`` maps row id to reason), and ``n`` counts valid rows only. Images are decoded when a row is built,
so with ``n`` an undecodable image is only found (and counted) if its row is among those drawn; the next
valid row takes its place. A split with no valid row at all is a :class:`ParameterError`, so a training run
never starts on an empty or broken dataset.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import random
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..offline import offline_mode
from ..validation import ParameterError, check_choice, check_int
from .schema import BadExampleError, make_example

HUB_PROBE_TIMEOUT_S = 3.0
DATA_SUFFIXES = (".parquet", ".jsonl", ".json")


class DatasetUnavailableError(ParameterError):
    """A hub dataset is neither reachable nor in the local cache, and no ``data_path`` was given."""


class MalformedRowsWarning(UserWarning):
    """Some rows of a dataset were skipped because they do not make a valid example.

    ``reasons``: row id -> why it was skipped, for every skipped row.
    """

    def __init__(self, message: str, reasons: dict[str, str]) -> None:
        super().__init__(message)
        self.reasons = reasons


@dataclass(frozen=True)
class HubDataset:
    name: str
    hub_id: str
    config: str | None
    splits: tuple[str, ...]
    question_key: str
    answer_key: str
    extra_keys: tuple[str, ...] = ()  # further columns a valid copy must have


HUB_DATASETS = {
    "geometry3k": HubDataset(
        "geometry3k",
        "hiyouga/geometry3k",
        None,
        ("train", "validation", "test"),
        "problem",
        "answer",
        ("images",),
    ),
    "math12k": HubDataset("math12k", "hiyouga/math12k", None, ("train", "test"), "problem", "answer"),
    "math500": HubDataset("math500", "HuggingFaceH4/MATH-500", None, ("test",), "problem", "answer"),
    "gsm8k": HubDataset("gsm8k", "openai/gsm8k", "main", ("train", "test"), "question", "answer"),
}


def load_hub_rows(
    name: str,
    split: str,
    n: int | None = None,
    *,
    seed: int = 0,
    data_path: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> list[dict[str, Any]]:
    """Schema rows (``prompt`` = bare question) of split ``split`` of hub dataset ``name``.

    Raises :class:`ParameterError` for an unknown name or split, a bad ``n``/``seed`` or an unusable
    ``data_path``; :class:`DatasetUnavailableError` (a ``ParameterError``) when the Hub cannot be
    reached and the dataset is not cached. See the module docstring for sources and sampling.
    """
    check_choice("dataset", name, HUB_DATASETS)
    spec = HUB_DATASETS[name]
    if split not in spec.splits:
        raise ParameterError(
            f"split={split!r} is not a split of {name} ({spec.hub_id}); choose one of {list(spec.splits)}"
        )
    if n is not None:
        check_int("n", n, minimum=1)
    check_int("seed", seed, minimum=0)
    if data_path is not None:
        table = _read_local(spec, split, Path(data_path))
    else:
        table = _read_hub(spec, split, cache_dir)
    return _rows(spec, split, table, n, seed)


# ------------------------------------------------------------------------------------------------
# reading: every source becomes a pyarrow Table (images stay undecoded {"bytes", "path"} structs)
# ------------------------------------------------------------------------------------------------
def _dataset_to_table(ds: Any):
    """A ``datasets.Dataset`` as a pyarrow Table of its storage (no image decoding)."""
    return ds.with_format("arrow")[:]


def hub_reachable(timeout: float = HUB_PROBE_TIMEOUT_S) -> bool:
    """One quick HEAD request to the Hub endpoint (``HF_ENDPOINT``); False on any error."""
    from huggingface_hub import constants
    from huggingface_hub.utils import get_session

    try:
        get_session().head(constants.ENDPOINT, timeout=timeout)
    except Exception:
        return False
    return True


@contextlib.contextmanager
def _forced_offline() -> Iterator[None]:
    """Offline mode for ``datasets`` and ``huggingface_hub`` (cache only, no retries), then restore."""
    import datasets
    from huggingface_hub import constants

    saved = (datasets.config.HF_HUB_OFFLINE, datasets.config.HF_DATASETS_OFFLINE, constants.HF_HUB_OFFLINE)
    datasets.config.HF_HUB_OFFLINE = datasets.config.HF_DATASETS_OFFLINE = True
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE, datasets.config.HF_DATASETS_OFFLINE, constants.HF_HUB_OFFLINE = saved


def _read_hub(spec: HubDataset, split: str, cache_dir: str | os.PathLike | None):
    import datasets

    why = "offline mode is on (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE)" if offline_mode() else None
    if why is None and not hub_reachable():
        why = "the Hugging Face Hub is unreachable from here"
    cache = str(cache_dir) if cache_dir is not None else datasets.config.HF_DATASETS_CACHE
    context = _forced_offline() if why else contextlib.nullcontext()
    try:
        with context, warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            ds = datasets.load_dataset(
                spec.hub_id, spec.config, split=split, cache_dir=None if cache_dir is None else str(cache_dir)
            )
    except (OSError, ConnectionError) as exc:  # ConnectionError, FileNotFoundError, DatasetNotFoundError ...
        raise _unavailable(spec, split, why or "it could not be loaded from the Hub", cache, exc) from exc
    return _dataset_to_table(ds)


def _unavailable(
    spec: HubDataset, split: str, why: str, cache: str, exc: BaseException
) -> DatasetUnavailableError:
    config = f", {spec.config!r}" if spec.config else ""
    return DatasetUnavailableError(
        f"Dataset {spec.name!r} (Hub id "
        f"{spec.hub_id!r}{', config ' + repr(spec.config) if spec.config else ''}, split {split!r}) is not "
        f"available: {why}, and it is not in the datasets cache ({cache}). To make it available: (1) run "
        f"once with network access, e.g. `datasets.load_dataset({spec.hub_id!r}{config})` or "
        f"`load_task({spec.name!r}, {split!r})`, so it lands in the cache (pass the same cache_dir=, or set "
        f"HF_HOME / HF_DATASETS_CACHE); later runs read it from there, offline too; or (2) download it on a "
        f"machine with network access (`hf download {spec.hub_id} --repo-type dataset --local-dir DIR`, or "
        f"`load_dataset(...).save_to_disk(DIR)`), copy DIR here and pass data_path=DIR. Cause: "
        f"{type(exc).__name__}: {exc}"
    )


def _read_local(spec: HubDataset, split: str, path: Path):
    if not path.exists():
        raise ParameterError(
            f"data_path={str(path)!r} does not exist (a folder or a .parquet/.jsonl/.json file)"
        )
    if path.is_file():
        return _read_files(spec, [path])
    if (path / "dataset_dict.json").is_file() or (path / "state.json").is_file():
        return _read_saved(spec, split, path)
    return _read_files(spec, _split_files(spec, split, path))


def _read_saved(spec: HubDataset, split: str, path: Path):
    import datasets

    loaded = datasets.load_from_disk(str(path))
    if isinstance(loaded, datasets.DatasetDict):
        if split not in loaded:
            raise ParameterError(
                f"data_path={str(path)!r} (a saved DatasetDict) has no split {split!r}; it has {list(loaded)}"
            )
        loaded = loaded[split]
    elif loaded.split is not None and str(loaded.split) != split:
        raise ParameterError(
            f"data_path={str(path)!r} holds the {str(loaded.split)!r} split of a dataset, not {split!r}"
        )
    return _dataset_to_table(loaded)


def _split_files(spec: HubDataset, split: str, folder: Path) -> list[Path]:
    pattern = re.compile(rf"^{re.escape(split)}(?:[-_.].*)?$")
    found = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in DATA_SUFFIXES)
    matches = [p for p in found if pattern.match(p.stem) or pattern.match(p.name)]
    if spec.config is not None:
        in_config = [p for p in matches if spec.config in p.relative_to(folder).parts[:-1]]
        matches = in_config or matches
    if not matches:
        listed = [str(p.relative_to(folder)) for p in found[:20]]
        raise ParameterError(
            f"data_path={str(folder)!r} has no data file for split {split!r} of {spec.name} (expected e.g. "
            f"'data/{split}-00000-of-00001.parquet', '{split}.parquet' or '{split}.jsonl'); data files "
            f"found: {listed}"
        )
    for suffix in DATA_SUFFIXES:  # one format: parquet first
        chosen = [p for p in matches if p.suffix == suffix]
        if chosen:
            break
    if len({p.parent for p in chosen}) > 1:
        raise ParameterError(
            f"data_path={str(folder)!r} has files for split {split!r} in several folders: "
            f"{[str(p.relative_to(folder)) for p in chosen]}; pass the folder (or file) you mean"
        )
    return chosen


def _read_files(spec: HubDataset, files: list[Path]):
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = []
    for file in files:
        if file.suffix == ".parquet":
            tables.append(pq.read_table(file))
        elif file.suffix in (".jsonl", ".json"):
            rows = _read_json_rows(file)
            for row in rows:  # one number or list among strings would make pyarrow reject the whole file
                for key in (spec.question_key, spec.answer_key):
                    if key in row:
                        row[key] = _text(row[key])
            try:
                tables.append(pa.Table.from_pylist(rows))
            except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                raise ParameterError(f"data file {str(file)!r}: a column mixes value types: {exc}") from exc
        else:
            raise ParameterError(
                f"data file {str(file)!r}: unsupported format (use .parquet, .jsonl or .json)"
            )
    try:
        return pa.concat_tables(tables, promote_options="default") if len(tables) > 1 else tables[0]
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise ParameterError(f"data files {[str(f) for f in files]} do not share one schema: {exc}") from exc


def _read_json_rows(file: Path) -> list[dict[str, Any]]:
    text = file.read_text(encoding="utf-8")
    try:
        if text.lstrip().startswith("["):
            rows = json.loads(text)
        else:
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        raise ParameterError(f"data file {str(file)!r} is not JSON / JSON lines: {exc}") from exc
    if not all(isinstance(r, dict) for r in rows):
        raise ParameterError(f"data file {str(file)!r}: expected one JSON object per row")
    return rows


# ------------------------------------------------------------------------------------------------
# rows
# ------------------------------------------------------------------------------------------------
def _rows(spec: HubDataset, split: str, table, n: int | None, seed: int) -> list[dict[str, Any]]:
    needed = (spec.question_key, spec.answer_key, *spec.extra_keys)
    missing = [k for k in needed if k not in table.column_names]
    if missing:
        raise ParameterError(
            f"{spec.name} {split!r} data lacks column(s) {missing} (has {table.column_names}); "
            f"expected the columns of {spec.hub_id}"
        )
    questions = table.column(spec.question_key).to_pylist()
    answers = table.column(spec.answer_key).to_pylist()
    image_counts = _image_counts(table) if spec.name == "geometry3k" else [1] * len(questions)
    candidates, reasons = [], {}
    for i, (q, a, images) in enumerate(zip(questions, answers, image_counts, strict=True)):
        reason = _row_problem(spec, q, a, images)
        if reason:
            reasons[_row_id(spec, split, i)] = reason
        else:
            candidates.append(i)
    if n is not None:
        random.Random(seed).shuffle(candidates)
    wanted = len(candidates) if n is None else n
    examples, cursor = [], 0
    while len(examples) < wanted and cursor < len(
        candidates
    ):  # rows that fail to build are replaced by the next
        chunk = candidates[cursor : cursor + wanted - len(examples)]
        cursor += len(chunk)
        for i, record in zip(chunk, table.take(chunk).to_pylist(), strict=True):
            try:
                examples.append(_example(spec, split, i, record))
            except BadExampleError as exc:
                reasons[_row_id(spec, split, i)] = str(exc).split(": ", 1)[-1]
    _warn_malformed(spec, split, reasons)
    skipped = f" (after skipping {len(reasons)} malformed rows)" if reasons else ""
    if n is not None and len(examples) < n:
        raise ParameterError(
            f"n={n} is more than the {len(examples)} rows of {spec.name} split {split!r}{skipped}"
        )
    if not examples:
        raise ParameterError(f"{spec.name} split {split!r} has no valid row{skipped}")
    return examples


def _row_problem(spec: HubDataset, question: Any, answer: Any, images: int) -> str | None:
    """Why a row cannot be an example (cheap checks, no image decoding), or None."""
    if not _question(spec, question):
        return "missing or empty problem"
    if _final_answer(spec, answer) is None:
        no_separator = (
            spec.name == "gsm8k"
            and isinstance(answer, str)
            and answer.strip()
            and GSM8K_SEPARATOR not in answer
        )
        return f"answer without {GSM8K_SEPARATOR!r}" if no_separator else "missing or empty answer"
    if not images:
        return "no image"
    return None


def _warn_malformed(spec: HubDataset, split: str, reasons: dict[str, str]) -> None:
    if not reasons:
        return
    shown = ", ".join(f"{row_id} ({why})" for row_id, why in list(reasons.items())[:10])
    more = f" and {len(reasons) - 10} more" if len(reasons) > 10 else ""
    warnings.warn(
        MalformedRowsWarning(
            f"{spec.name} {split!r}: skipped {len(reasons)} malformed row(s): {shown}{more}", reasons
        ),
        stacklevel=4,
    )


def _image_counts(table) -> list[int]:
    images = table.column("images")
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_list(images.type) or pa.types.is_large_list(images.type):
        return [c or 0 for c in pc.list_value_length(images).to_pylist()]
    return [0 if v is None else 1 for v in images.to_pylist()]  # a single image per row


def _row_id(spec: HubDataset, split: str, index: int) -> str:
    return f"{spec.name}-{split}-{index:05d}"


def _text(value: Any) -> str | None:
    """A string as is, a finite number as a string (``5`` -> ``"5"``), else (None, NaN, lists) None."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return str(value)
    return None


def _question(spec: HubDataset, value: Any) -> str:
    """The problem text ("" when missing): for geometry3k without its ``<image>`` placeholder."""
    question = _text(value) or ""
    if spec.name == "geometry3k":
        question = question.replace("<image>", "")
    return question.strip()


GSM8K_SEPARATOR = "####"


def _final_answer(spec: HubDataset, answer: Any) -> str | None:
    """The reference answer string, or None when missing, empty, NaN or not a string or number."""
    answer = _text(answer)
    if answer is None:
        return None
    if spec.name == "gsm8k":
        if GSM8K_SEPARATOR not in answer:
            return None
        answer = answer.rpartition(GSM8K_SEPARATOR)[2]
        answer = re.sub(r"(?<=\d),(?=\d{3}\b)", "", answer.strip())
    answer = answer.strip()
    return answer or None


def _to_pil(value: Any):
    """A PIL image from a stored ``datasets`` Image feature: a PIL image, ``{"bytes", "path"}`` or a path."""
    from PIL import Image

    if isinstance(value, Image.Image):
        return value
    if isinstance(value, dict):
        if value.get("bytes"):
            image = Image.open(io.BytesIO(value["bytes"]))
            image.load()
            return image
        value = value.get("path")
    if isinstance(value, str | os.PathLike) and Path(value).is_file():
        image = Image.open(value)
        image.load()
        return image
    raise ValueError(f"cannot read an image from {type(value).__name__}")


def _json_safe(value: Any) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return str(value)
    return value


def _example(spec: HubDataset, split: str, index: int, record: dict[str, Any]) -> dict[str, Any]:
    row_id = _row_id(spec, split, index)
    question = _question(spec, record[spec.question_key])
    answer = _final_answer(spec, record[spec.answer_key])
    meta: dict[str, Any] = {"hub_id": spec.hub_id, "split": split, "index": index}
    image, solution, difficulty = None, "", 0
    if spec.name == "geometry3k":
        images = record["images"]
        first = images[0] if isinstance(images, list) else images
        try:
            image = _to_pil(first)
        except Exception as exc:  # PIL raises many types (OSError, ValueError, DecompressionBombError ...)
            raise BadExampleError(f"example {row_id!r}: image cannot be decoded: {exc}") from exc
        for key in ("id", "choices", "ground_truth"):
            if key in record:
                meta[key] = _json_safe(record[key])
    elif spec.name == "math500":
        solution = record.get("solution") or ""
        level = record.get("level")
        digits = re.search(r"\d+", str(level)) if level is not None else None
        difficulty = int(digits.group()) if digits else 0
        for key in ("subject", "unique_id", "level"):
            if key in record:
                meta[key] = _json_safe(record[key])
    elif spec.name == "gsm8k":
        solution = record[spec.answer_key].rpartition(GSM8K_SEPARATOR)[0].strip()
    return make_example(
        id=row_id,
        question=question,
        answer=answer,
        source=spec.name,
        difficulty=difficulty,
        image=image,
        solution=solution,
        meta=json.dumps(meta, sort_keys=True),
    )
