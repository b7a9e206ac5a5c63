"""An experiment's run folders as tidy frames (:func:`load_runs`), its task blocks and the paper's numbers.

``runs/<experiment>/<variant>/seed<k>/`` holds, as written by the training notebook and the batch runner:

* ``run.json``: the manifest (experiment, variant, method, seed, sweep, status, parameters, wall time, peak
  memory); a sensitivity variant is ``<method>--<param>=<value>`` with ``sweep`` ``{param: value}``;
* ``metrics.jsonl``: one row per training step, and a step-0 row with the entropy probe of the initial policy;
* ``probe.jsonl``: the entropy probe's per-prompt sums, one row per probe;
* ``eval.json``: the final evaluation: ``summary``, ``n`` samples per prompt and each prompt's ``correct``
  count, from which pass@k is recomputed for every k <= n.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

import uec_repro

from ..evaluation import pass_at_k
from ..layout import BASE_METHOD, EVAL_FILE, MANIFEST_FILE, METRICS_FILE, PROBE_FILE
from ..methods import METHODS
from ..validation import ParameterError

PAPER_RESULTS_FILE = Path(uec_repro.__file__).parents[1] / "data" / "paper_results.csv"
#: Every ordering of methods (frames, tables, figures): the untrained policy, then the registry's order.
METHOD_ORDER: tuple[str, ...] = (BASE_METHOD, *METHODS)
ID_COLUMNS = ["variant", "method", "seed", "sweep_param", "sweep_value"]
#: Update-batch columns of runs made before they were renamed, and their current names.
LEGACY_COLUMNS = {
    "entropy": "entropy/update_batch",
    "entropy/sampled_nll": "entropy/update_batch_sampled_nll",
    "entropy/exploration_sampled_nll": "entropy/update_batch_exploration_sampled_nll",
}
#: A block of a grid swept over ``task`` is that task's runs (variants ``<method>--task=<t>``).
TASK_SWEEP = "task"


@dataclass
class Runs:
    """One experiment's runs as tidy frames (see :func:`load_runs` for the columns)."""

    runs: pd.DataFrame
    steps: pd.DataFrame
    evals: pd.DataFrame
    passk: pd.DataFrame
    prompts: pd.DataFrame
    probes: pd.DataFrame


def load_runs(experiment_dir: str | Path, include_incomplete: bool = False) -> Runs:
    """The runs under ``experiment_dir`` (``<variant>/seed<k>/run.json``) as six frames, ordered by method.

    Each frame starts with the id columns (:data:`ID_COLUMNS`; ``sweep_*`` None/NaN for no sweep):

    * ``runs``: one row per run: its manifest (status, policy, task, steps, wall time, memory, parameters);
    * ``steps``: one row per run and logged step (step 0: the initial policy's probe), every logged metric;
      older runs' update-batch columns renamed (:data:`LEGACY_COLUMNS`);
    * ``evals``: one row per evaluated run: ``n`` and every key of the eval summary;
    * ``passk``: ``k`` and the unbiased ``pass_at_k`` for k = 1..n, from the per-prompt correct counts;
    * ``prompts``: one row per evaluated run and test prompt: ``prompt`` (position), ``n``, ``correct``,
      ``difficulty`` (NaN where not recorded);
    * ``probes``: one row per run, probe step and prompt: ``step``, ``prompt``, ``prompt_id``,
      ``entropy_sum``, ``nll_sum``, ``tokens``, ``correct``, ``samples``.

    Only runs with status ``"complete"`` are loaded unless ``include_incomplete``.
    """
    root = Path(experiment_dir)
    if not root.is_dir():
        raise ParameterError(f"experiment_dir={str(experiment_dir)!r} is not a directory")
    manifests = sorted(root.glob(f"*/*/{MANIFEST_FILE}"))
    run_rows, step_frames, eval_rows, passk_frames, prompt_frames, probe_frames = [], [], [], [], [], []
    skipped = 0
    for manifest_path in manifests:
        manifest = _read_json(manifest_path)
        if manifest.get("status") != "complete" and not include_incomplete:
            skipped += 1
            continue
        folder = manifest_path.parent
        run = _run_row(manifest, folder)
        run_rows.append(run)
        ids = {column: run[column] for column in ID_COLUMNS}
        if (folder / METRICS_FILE).exists():
            step_frames.append(_read_steps(folder / METRICS_FILE).assign(**ids))
        if (folder / PROBE_FILE).exists():
            probe_frames.append(_read_probes(folder / PROBE_FILE).assign(**ids))
        if (folder / EVAL_FILE).exists():
            evaluation = _read_json(folder / EVAL_FILE)
            correct = evaluation["correct"]
            eval_rows.append({**ids, "n": evaluation["n"], **evaluation["summary"]})
            passk_frames.append(_passk_frame(evaluation["n"], correct).assign(**ids))
            difficulty = evaluation.get("difficulty") or [math.nan] * len(correct)
            if len(difficulty) != len(correct):
                raise ParameterError(
                    f"{folder / EVAL_FILE}: 'difficulty' has {len(difficulty)} entries and "
                    f"'correct' {len(correct)}; they must be one per test prompt"
                )
            prompt_frames.append(
                pd.DataFrame(
                    {
                        "prompt": range(len(correct)),
                        "n": evaluation["n"],
                        "correct": correct,
                        "difficulty": difficulty,
                    }
                ).assign(**ids)
            )
    if not run_rows:
        hint = f" ({skipped} incomplete skipped; include_incomplete=True loads them)" if skipped else ""
        raise ParameterError(
            f"no runs in {str(experiment_dir)!r}: expected <variant>/seed<k>/{MANIFEST_FILE}{hint}"
        )
    runs = _ordered(pd.DataFrame(run_rows))
    steps = _ordered(_concat(step_frames, [*ID_COLUMNS, "step"]), "step")
    evals = _ordered(pd.DataFrame(eval_rows) if eval_rows else pd.DataFrame(columns=[*ID_COLUMNS, "n"]))
    passk = _ordered(_concat(passk_frames, [*ID_COLUMNS, "k", "pass_at_k"]), "k")
    prompts = _ordered(
        _concat(prompt_frames, [*ID_COLUMNS, "prompt", "n", "correct", "difficulty"]), "prompt"
    )
    probe_columns = ["step", "prompt", "prompt_id", "entropy_sum", "nll_sum", "tokens", "correct", "samples"]
    probes = _ordered(_concat(probe_frames, [*ID_COLUMNS, *probe_columns]), "step", "prompt")
    steps = steps[[*ID_COLUMNS, "step", *(c for c in steps.columns if c not in {*ID_COLUMNS, "step"})]]
    return Runs(
        runs=runs,
        steps=steps,
        evals=evals,
        passk=passk[[*ID_COLUMNS, "k", "pass_at_k"]],
        prompts=prompts[[*ID_COLUMNS, "prompt", "n", "correct", "difficulty"]],
        probes=probes[[*ID_COLUMNS, *probe_columns]],
    )


def task_block(runs: Runs, task: str) -> Runs:
    """The runs of one task as if they were an experiment of their own: the unswept runs of ``task`` and its
    sensitivity sweeps, or the block swept to ``task`` (``<method>--task=<task>``, renamed to ``<method>``).
    The ``paper`` preset trains arith in its main block and geometry in a block swept to ``geometry``."""
    frame = runs.runs
    swept = (frame["sweep_param"] == TASK_SWEEP) & (frame["sweep_value"].astype(str) == task)
    own = (frame["task"] == task) & (frame["sweep_param"] != TASK_SWEEP)
    keep = frame.loc[swept | own, "variant"]
    renamed = dict(zip(frame.loc[swept, "variant"], frame.loc[swept, "method"], strict=True))

    def select(table: pd.DataFrame) -> pd.DataFrame:
        table = table[table["variant"].isin(keep)].copy()
        moved = table["variant"].isin(renamed)
        table.loc[moved, "variant"] = table.loc[moved, "variant"].map(renamed)
        table.loc[moved, "sweep_param"], table.loc[moved, "sweep_value"] = None, math.nan
        return table.reset_index(drop=True)

    return Runs(
        *(select(getattr(runs, name)) for name in ("runs", "steps", "evals", "passk", "prompts", "probes"))
    )


def run_tasks(runs: Runs) -> list[str]:
    """The tasks an experiment trained on, its main block's first."""
    frame = runs.runs
    swept = frame["sweep_param"] == TASK_SWEEP
    return list(
        dict.fromkeys([*frame.loc[~swept, "task"].dropna(), *frame.loc[swept, "sweep_value"].astype(str)])
    )


def paper_reference() -> pd.DataFrame:
    """Every number the paper (and its earlier EFRame versions) reports, as recovered in the notes.

    Columns: source, table_or_figure, model, dataset, method, metric, k, value, confidence.
    """
    return pd.read_csv(PAPER_RESULTS_FILE)


def method_rank(methods: pd.Series) -> pd.Series:
    """Position of each method in :data:`METHOD_ORDER` (unknown methods last), for sorting."""
    return methods.map({m: i for i, m in enumerate(METHOD_ORDER)}).fillna(len(METHOD_ORDER))


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ParameterError(f"{path} is not valid JSON: {error}") from error


def _run_row(manifest: dict, folder: Path) -> dict:
    sweep = manifest.get("sweep") or {}
    if len(sweep) == 1:
        ((sweep_param, sweep_value),) = sweep.items()
    else:  # no sweep, or several parameters swept together: their names and values joined
        sweep_param = ",".join(sweep) or None
        sweep_value = ",".join(map(str, sweep.values())) or math.nan
    parameters = manifest.get("parameters") or {}
    return {
        "experiment": manifest.get("experiment"),
        "variant": manifest["variant"],
        "method": manifest["method"],
        "seed": int(manifest["seed"]),
        "sweep_param": sweep_param,
        "sweep_value": sweep_value,
        "status": manifest.get("status"),
        "policy": parameters.get("policy"),
        "task": parameters.get("task"),
        "steps": parameters.get("steps"),
        "wall_seconds": manifest.get("wall_seconds", math.nan),
        "peak_rss_mb": manifest.get("peak_rss_mb", math.nan),
        "path": str(folder),
        "parameters": parameters,
    }


def _read_jsonl(path: Path) -> list[dict]:
    """Rows of a ``.jsonl`` file; a line that is not JSON (a running run's half-written row) is skipped."""
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def _read_steps(path: Path) -> pd.DataFrame:
    """Rows of ``metrics.jsonl``, the update-batch columns of older runs renamed (:data:`LEGACY_COLUMNS`)."""
    frame = pd.DataFrame(_read_jsonl(path))
    return frame.rename(columns={old: new for old, new in LEGACY_COLUMNS.items() if new not in frame})


def _read_probes(path: Path) -> pd.DataFrame:
    """``probe.jsonl`` as one row per probe step and prompt (a repeated step: its last row)."""
    frames = []
    for row in _read_jsonl(path):
        count = len(row["tokens"])
        ids = row.get("prompt_ids", row.get("id"))  # the trainer's key for the probe prompts' ids
        frames.append(
            pd.DataFrame(
                {
                    "step": row["step"],
                    "prompt": range(count),
                    "prompt_id": ids if ids is not None else range(count),
                    "entropy_sum": row["entropy_sum"],
                    "nll_sum": row["nll_sum"],
                    "tokens": row["tokens"],
                    "correct": row["correct"],
                    "samples": row["samples"],
                }
            )
        )
    frame = _concat(frames, ["step", "prompt"])
    return frame.drop_duplicates(["step", "prompt"], keep="last")


def _passk_frame(n: int, correct: Iterable[int]) -> pd.DataFrame:
    """Mean unbiased pass@k over prompts for k = 1..n (each distinct correct count is computed once)."""
    counts = Counter(correct)
    prompts = sum(counts.values())
    values = [sum(m * pass_at_k(n, c, k) for c, m in counts.items()) / prompts for k in range(1, n + 1)]
    return pd.DataFrame({"k": range(1, n + 1), "pass_at_k": values})


def _concat(frames: list[pd.DataFrame], empty_columns: list[str]) -> pd.DataFrame:
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=empty_columns)


def _ordered(frame: pd.DataFrame, *then: str) -> pd.DataFrame:
    """Sorted by method order, variant, seed and ``then``; a method's own variant before its sweeps."""
    if frame.empty:
        return frame.reset_index(drop=True)
    return (
        frame.assign(_rank=method_rank(frame["method"]), _swept=frame["sweep_param"].notna())
        .sort_values(["_rank", "_swept", "sweep_param", "variant", "seed", *then], kind="stable")
        .drop(columns=["_rank", "_swept"])
        .reset_index(drop=True)
    )


def _unswept(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of the methods' own variants, without their sensitivity sweeps."""
    return frame[frame["sweep_param"].isna()]
