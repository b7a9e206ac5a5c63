"""The batch runner on tiny notebooks: grid parsing and validation, manifests, skip / restart / stale logic,
failures, parallel runs, interrupts and the command line. Each papermill execution takes ~3 s here."""

import datetime
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import nbformat
import psutil
import pytest
from filelock import FileLock

from uec_repro.experiments import GridSpec, execution, list_presets, load_grid, main, run_grid
from uec_repro.validation import ParameterError

WORK = """
import json, os, sys, time
from pathlib import Path

out = Path(output_dir)
out.mkdir(parents=True, exist_ok=True)
with open(out.parents[1] / "executions.txt", "a") as counter:
    counter.write(f"{method} {seed}\\n")
started = time.time()
(out / "pid").write_text(str(os.getpid()))
time.sleep(delay)
blob = bytearray(blob_mb * 2**20)  # resident: bytearray zero-fills
if seed == fail_seed:
    raise RuntimeError(f"seed {seed} fails on purpose")
(out / "result.json").write_text(json.dumps({
    "python": sys.executable, "threads": os.environ.get("OMP_NUM_THREADS"), "cwd": os.getcwd(),
    "started": started, "ended": time.time(), "steps": steps, "temperature": exploration_temperature}))
"""
WORK_PARAMETERS = (
    'method = "base"\nseed = 0\noutput_dir = "."\nsteps = 1\nexploration_temperature = 1.0\n'
    "delay = 0.0\nfail_seed = -1\nblob_mb = 0"
)
RESUMABLE = """
from pathlib import Path

progress = Path(output_dir) / "progress.txt"  # what earlier attempts left, like 01_train's checkpoints
done = progress.read_text().splitlines() if progress.exists() else []
progress.parent.mkdir(parents=True, exist_ok=True)
progress.write_text("".join(f"{line}\\n" for line in [*done, f"attempt {len(done) + 1}"]))
if len(done) < succeed_after:
    raise RuntimeError(f"attempt {len(done) + 1} fails on purpose")
"""
SUMMARY = """
from pathlib import Path

found = sorted(p.parent.name for p in Path(experiment_dir).glob("*/seed*/result.json"))
(Path(experiment_dir) / "summary.txt").write_text(title + ": " + " ".join(found))
"""


def write_notebook(path: Path, parameters: str, body: str, language: str = "python") -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": language}
    tagged = nbformat.v4.new_code_cell(parameters)
    tagged.metadata["tags"] = ["parameters"]
    notebook.cells = [tagged, nbformat.v4.new_code_cell(textwrap.dedent(body))]
    nbformat.write(notebook, path)


@pytest.fixture
def notebooks(tmp_path, monkeypatch):
    """A notebooks folder, used by default: ``work`` (a fake training run), ``resumable`` (fails until an
    earlier attempt left enough progress), ``summary`` and ``in_r``."""
    folder = tmp_path / "notebooks"
    folder.mkdir()
    write_notebook(folder / "work.ipynb", WORK_PARAMETERS, WORK)
    write_notebook(
        folder / "resumable.ipynb",
        'method = "base"\nseed = 0\noutput_dir = "."\nsucceed_after = 1',
        RESUMABLE,
    )
    write_notebook(folder / "summary.ipynb", 'title = "runs"\nexperiment_dir = "."', SUMMARY)
    write_notebook(folder / "in_r.ipynb", "x = 1", "print(x)", language="R")
    monkeypatch.setenv("UEC_REPRO_NOTEBOOKS", str(folder))
    return folder


def grid(**overrides):
    data = {
        "experiment": "exp",
        "parameters": {"steps": 3},
        "grid": [{"notebook": "work", "methods": ["grpo"], "seeds": [0]}],
    }
    return {**data, **overrides}


def write_toml(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "run.json").read_text())


def executions(experiment_dir: Path) -> list[str]:
    counter = experiment_dir / "executions.txt"
    return counter.read_text().splitlines() if counter.exists() else []


# ---------------------------------------------------------------- parsing, naming, validation


def test_cells_name_variants_and_run_dirs_and_layer_the_parameters(notebooks, tmp_path):
    spec = GridSpec.from_dict(
        grid(
            parameters={"steps": 3, "delay": 0.5},
            grid=[
                {
                    "notebook": "work",
                    "methods": ["base", "grpo"],
                    "seeds": [0, 2],
                    "parameters": {"steps": 5},
                },
                {
                    "notebook": "work",
                    "methods": ["uec_rl"],
                    "seeds": [1],
                    "sweep": {"exploration_temperature": [1.0, 1.5]},
                },
            ],
            notebook=[{"name": "summary", "parameters": {"title": "t"}}],
        )
    )
    cells = spec.cells(tmp_path / "runs")
    root = (tmp_path / "runs" / "exp").resolve()
    assert [(c.variant, c.seed) for c in cells] == [
        ("base", 0),
        ("base", 2),
        ("grpo", 0),
        ("grpo", 2),
        ("uec_rl--exploration_temperature=1.0", 1),
        ("uec_rl--exploration_temperature=1.5", 1),
    ]
    assert cells[3].folder == root / "grpo" / "seed2"
    assert cells[3].parameters == {
        "steps": 5,
        "delay": 0.5,
        "method": "grpo",
        "seed": 2,
        "output_dir": str(root / "grpo" / "seed2"),
    }
    assert cells[5].sweep == {"exploration_temperature": 1.5}
    assert cells[5].parameters["exploration_temperature"] == 1.5 and cells[5].parameters["steps"] == 3
    (summary,) = spec.summary_cells(tmp_path / "runs")
    assert summary.parameters == {"title": "t", "experiment_dir": str(root)}
    assert summary.executed_path == root / "notebooks" / "summary.ipynb"
    assert summary.manifest_path == root / "notebooks" / "summary.json"
    assert spec.jobs == 1 and spec.threads_per_run is None and spec.timeout is None


def test_load_grid_reads_a_file_and_a_preset_name(notebooks, tmp_path):
    path = write_toml(
        tmp_path / "g.toml",
        """
        experiment = "mine"
        jobs = 3
        threads_per_run = 2
        [parameters]
        steps = 4
        [[grid]]
        notebook = "work"
        methods = ["dapo"]
        seeds = [7]
    """,
    )
    spec = load_grid(path)
    assert (spec.experiment, spec.jobs, spec.threads_per_run, spec.source) == ("mine", 3, 2, str(path))
    assert [c.label for c in spec.cells()] == ["dapo seed7"]
    with pytest.raises(ParameterError, match="neither a file nor a preset"):
        load_grid("no-such-preset")
    assert "default" in list_presets()  # the presets ship with the package
    assert load_grid("default", notebooks_dir=Path(__file__).parents[1] / "notebooks").experiment == "default"


BAD_GRIDS = [
    ("unknown top-level key", {"experimnet": "x"}, "experimnet"),
    ("missing experiment", {"experiment": None}, "experiment"),
    ("unsafe experiment name", {"experiment": "../up"}, "experiment"),
    ("experiment not a string", {"experiment": 3}, "experiment"),
    (
        "unknown block key",
        {"grid": [{"notebook": "work", "methods": ["grpo"], "seeds": [0], "seed": 1}]},
        "grid[0].seed",
    ),
    ("missing methods", {"grid": [{"notebook": "work", "seeds": [0]}]}, "grid[0].methods"),
    ("unknown method", {"grid": [{"notebook": "work", "methods": ["grpo", "ppo"], "seeds": [0]}]}, "ppo"),
    ("empty methods", {"grid": [{"notebook": "work", "methods": [], "seeds": [0]}]}, "grid[0].methods"),
    ("negative seed", {"grid": [{"notebook": "work", "methods": ["grpo"], "seeds": [-1]}]}, "grid[0].seeds"),
    ("float seed", {"grid": [{"notebook": "work", "methods": ["grpo"], "seeds": [1.5]}]}, "grid[0].seeds"),
    ("empty seeds", {"grid": [{"notebook": "work", "methods": ["grpo"], "seeds": []}]}, "grid[0].seeds"),
    (
        "two sweep keys",
        {
            "grid": [
                {
                    "notebook": "work",
                    "methods": ["grpo"],
                    "seeds": [0],
                    "sweep": {"steps": [1], "delay": [1.0]},
                }
            ]
        },
        "grid[0].sweep",
    ),
    (
        "empty sweep values",
        {"grid": [{"notebook": "work", "methods": ["grpo"], "seeds": [0], "sweep": {"steps": []}}]},
        "grid[0].sweep.steps",
    ),
    (
        "sweep value with a slash",
        {"grid": [{"notebook": "work", "methods": ["grpo"], "seeds": [0], "sweep": {"steps": ["a/b"]}}]},
        "grid[0].sweep.steps",
    ),
    (
        "missing notebook",
        {"grid": [{"notebook": "nope", "methods": ["grpo"], "seeds": [0]}]},
        "grid[0].notebook",
    ),
    ("missing summary notebook", {"notebook": [{"name": "05_nope"}]}, "notebook[0].name"),
    ("non-Python notebook", {"notebook": [{"name": "in_r"}]}, "notebook[0].name='in_r'"),
    ("unknown summary key", {"notebook": [{"name": "summary", "params": {}}]}, "notebook[0].params"),
    ("date parameter", {"parameters": {"steps": datetime.date(2025, 1, 1)}}, "parameters.steps"),
    ("nan parameter", {"parameters": {"steps": float("nan")}}, "parameters.steps"),
    ("nested time", {"parameters": {"steps": [1, datetime.time(1)]}}, "parameters.steps[1]"),
    ("bad parameter name", {"parameters": {"not-a-name": 1}}, "parameters.not-a-name"),
    (
        "undeclared sweep",
        {"grid": [{"notebook": "work", "methods": ["grpo"], "seeds": [0], "sweep": {"temperature": [1.0]}}]},
        "grid[0].sweep.temperature",
    ),
    ("reserved parameter", {"parameters": {"output_dir": "x"}}, "parameters.output_dir"),
    ("undeclared parameter", {"parameters": {"stepz": 3}}, "parameters.stepz"),
    (
        "undeclared summary parameter",
        {"notebook": [{"name": "summary", "parameters": {"titel": "x"}}]},
        "notebook[0].parameters.titel",
    ),
    ("not a table", {"parameters": [1]}, "parameters"),
    ("zero jobs", {"jobs": 0}, "jobs"),
    ("bool threads", {"threads_per_run": True}, "threads_per_run"),
    ("float timeout", {"timeout": 1.5}, "timeout"),
    ("grid not an array", {"grid": {"methods": ["grpo"]}}, "grid"),
    (
        "a run in two blocks",
        {
            "grid": [
                {"notebook": "work", "methods": ["grpo"], "seeds": [0, 1]},
                {"notebook": "work", "methods": ["grpo"], "seeds": [1]},
            ]
        },
        "grpo seed1",
    ),
    ("nothing to run", {"grid": []}, "nothing to run"),
]


@pytest.mark.parametrize(("case", "change", "named"), BAD_GRIDS, ids=[case for case, _, _ in BAD_GRIDS])
def test_a_bad_grid_is_refused_naming_the_key(notebooks, case, change, named):
    data = {key: value for key, value in grid(**change).items() if value is not None}
    with pytest.raises(ParameterError) as refused:
        GridSpec.from_dict(data, source="bad.toml")
    assert named in str(refused.value) and "bad.toml" in str(refused.value)


def test_a_toml_syntax_error_names_the_file_and_line(notebooks, tmp_path):
    path = write_toml(tmp_path / "broken.toml", 'experiment = "x"\njobs = \n')
    with pytest.raises(ParameterError, match=r"broken\.toml.*line 2"):
        load_grid(path)


# ---------------------------------------------------------------- execution


def test_a_run_writes_its_manifest_and_notebook_and_a_rerun_skips_it(
    notebooks, tmp_path, monkeypatch, capsys
):
    decoy = tmp_path / "decoy" / "kernels" / "python3"  # a python3 kernelspec that cannot start
    decoy.mkdir(parents=True)
    (decoy / "kernel.json").write_text(
        json.dumps({"argv": ["false", "{connection_file}"], "language": "python", "display_name": "decoy"})
    )
    monkeypatch.setenv("JUPYTER_PATH", str(decoy.parents[1]))
    spec = GridSpec.from_dict(
        grid(threads_per_run=1, notebook=[{"name": "summary", "parameters": {"title": "t"}}])
    )
    report = run_grid(spec, tmp_path / "runs")

    experiment = tmp_path / "runs" / "exp"
    run_dir = experiment / "grpo" / "seed0"
    assert report.ok and [o.status for o in report.outcomes] == ["complete", "complete"]
    record = manifest(run_dir)
    assert record["status"] == "complete" and record["attempt"] == 1 and record["error"] is None
    assert (record["experiment"], record["variant"], record["method"], record["seed"], record["sweep"]) == (
        "exp",
        "grpo",
        "grpo",
        0,
        {},
    )
    assert record["parameters"] == {"steps": 3, "method": "grpo", "seed": 0, "output_dir": str(run_dir)}
    assert 0 < record["wall_seconds"] < 60
    assert 10 < record["peak_rss_mb"] < 400, "the run's peak, not the runner's (which has imported trl)"
    assert record["started_at"].endswith("+00:00") and record["finished_at"] >= record["started_at"]
    assert record["versions"]["python"] == ".".join(map(str, sys.version_info[:3]))
    assert record["versions"]["papermill"] and record["versions"]["trl"]
    if (Path(__file__).parents[1] / ".git").exists():
        assert re.fullmatch(r"[0-9a-f]{40}", record["git_commit"]) and isinstance(record["git_dirty"], bool)
    assert record["hardware"]["cpu_count"] == os.cpu_count() and record["hardware"]["ram_gb"] > 0
    executed = nbformat.read(run_dir / "work.ipynb", as_version=4)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in executed.cells)
    result = json.loads((run_dir / "result.json").read_text())
    assert result["python"] == sys.executable, "the kernel runs the runner's own interpreter"
    assert result["threads"] == "1" and result["steps"] == 3
    assert result["cwd"] == str(Path(__file__).resolve().parents[1])
    assert (experiment / "summary.txt").read_text() == "t: seed0"
    assert json.loads((experiment / "notebooks" / "summary.json").read_text())["status"] == "complete"
    assert "grpo seed0: complete" in capsys.readouterr().out

    assert (
        main(
            [
                "run",
                "--runs-root",
                str(tmp_path / "runs"),
                str(
                    write_toml(
                        tmp_path / "g.toml",
                        """
        experiment = "exp"
        threads_per_run = 1
        [parameters]
        steps = 3
        [[grid]]
        notebook = "work"
        methods = ["grpo"]
        seeds = [0]
        [[notebook]]
        name = "summary"
        parameters = { title = "again" }
    """,
                    )
                ),
            ]
        )
        == 0
    )
    assert executions(experiment) == ["grpo 0"], "the complete run was not executed again"
    assert manifest(run_dir) == record
    assert (experiment / "summary.txt").read_text() == "again: seed0", "summary notebooks always rerun"
    assert json.loads((experiment / "notebooks" / "summary.json").read_text())["attempt"] == 2
    assert "1 complete, 1 skipped, 0 failed, 0 stale" in capsys.readouterr().out  # the summary notebook ran


def test_a_failed_run_is_reported_others_continue_and_the_exit_code_is_1(notebooks, tmp_path, capsys):
    path = write_toml(
        tmp_path / "g.toml",
        """
        experiment = "exp"
        [parameters]
        fail_seed = 0
        [[grid]]
        notebook = "work"
        methods = ["grpo"]
        seeds = [0, 1]
    """,
    )
    assert main(["run", str(path), "--runs-root", str(tmp_path / "runs")]) == 1
    failed, complete = (tmp_path / "runs" / "exp" / "grpo" / f"seed{k}" for k in (0, 1))
    assert manifest(complete)["status"] == "complete"
    record = manifest(failed)
    assert record["status"] == "failed" and record["finished_at"] and record["peak_rss_mb"] > 0
    assert record["error"].splitlines()[-1] == "RuntimeError: seed 0 fails on purpose"
    assert len(record["error"].splitlines()) <= 20
    executed = nbformat.read(failed / "work.ipynb", as_version=4)
    assert any(o.get("ename") == "RuntimeError" for c in executed.cells for o in c.get("outputs", []))
    out = capsys.readouterr().out
    assert "1 complete, 0 skipped, 1 failed" in out
    assert "grpo seed0: RuntimeError: seed 0 fails on purpose" in out and str(failed / "work.ipynb") in out


@pytest.mark.parametrize("same_parameters", [True, False], ids=["same parameters", "other parameters"])
def test_an_interrupted_run_is_rerun_as_attempt_2_in_its_folder_unless_its_parameters_changed(
    notebooks, tmp_path, same_parameters
):
    spec = GridSpec.from_dict(grid())
    (cell,) = spec.cells(tmp_path / "runs")
    cell.folder.mkdir(parents=True)
    (cell.folder / "checkpoint.txt").write_text("from attempt 1")
    (cell.folder / "work.ipynb").write_text("half-written")
    parameters = cell.parameters if same_parameters else {**cell.parameters, "steps": 9}
    (cell.folder / "run.json").write_text(
        json.dumps({"status": "running", "attempt": 1, "notebook": "work", "parameters": parameters})
    )
    report = run_grid(spec, tmp_path / "runs", progress=False)
    assert report.ok
    record = manifest(cell.folder)
    assert record["status"] == "complete" and record["attempt"] == 2
    assert record["previous_attempts"] == [
        {
            "attempt": 1,
            "status": "running",
            "started_at": None,
            "finished_at": None,
            "wall_seconds": None,
            "error": None,
        }
    ]
    assert (cell.folder / "checkpoint.txt").exists() == same_parameters
    assert nbformat.read(cell.folder / "work.ipynb", as_version=4).cells, "the notebook was executed anew"
    assert executions(tmp_path / "runs" / "exp") == ["grpo 0"]


def test_a_failed_run_resumes_from_what_it_wrote_and_restart_starts_from_an_empty_folder(notebooks, tmp_path):
    spec = GridSpec.from_dict(
        grid(parameters={}, grid=[{"notebook": "resumable", "methods": ["grpo"], "seeds": [0]}])
    )
    (cell,) = spec.cells(tmp_path / "runs")
    progress = cell.folder / "progress.txt"
    assert not run_grid(spec, tmp_path / "runs", progress=False).ok
    assert manifest(cell.folder)["status"] == "failed"
    assert progress.read_text() == "attempt 1\n"

    assert run_grid(spec, tmp_path / "runs", progress=False).ok
    record = manifest(cell.folder)
    assert record["status"] == "complete" and record["attempt"] == 2
    assert progress.read_text() == "attempt 1\nattempt 2\n", "attempt 2 found attempt 1's files"
    (first,) = record["previous_attempts"]
    assert first["status"] == "failed" and first["error"].endswith("RuntimeError: attempt 1 fails on purpose")

    report = run_grid(spec, tmp_path / "runs", restart=True, progress=False)
    assert not report.ok, "from an empty folder the first attempt fails again"
    assert progress.read_text() == "attempt 1\n"
    record = manifest(cell.folder)
    assert record["attempt"] == 3 and [a["status"] for a in record["previous_attempts"]] == [
        "failed",
        "complete",
    ]


def test_stale_runs_are_reported_and_rerun_only_with_restart(notebooks, tmp_path, capsys):
    spec = GridSpec.from_dict(grid(grid=[{"notebook": "work", "methods": ["grpo", "dapo"], "seeds": [0]}]))
    stale, moved = spec.cells(tmp_path / "runs")
    for cell, parameters in (
        (stale, {**stale.parameters, "steps": 2}),  # made with other parameters
        (moved, {**moved.parameters, "output_dir": "/elsewhere/dapo/seed0"}),
    ):  # moved
        cell.folder.mkdir(parents=True)
        (cell.folder / "run.json").write_text(
            json.dumps({"status": "complete", "attempt": 1, "notebook": "work", "parameters": parameters})
        )
    report = run_grid(spec, tmp_path / "runs", progress=False)
    assert [(o.cell.label, o.status) for o in report.outcomes] == [
        ("grpo seed0", "stale"),
        ("dapo seed0", "skipped"),
    ]
    assert not report.ok and executions(tmp_path / "runs" / "exp") == []
    captured = capsys.readouterr()
    assert "--restart" in captured.out and "grpo seed0" in captured.out
    assert (
        main(
            [
                "show",
                "--runs-root",
                str(tmp_path / "runs"),
                str(
                    write_toml(
                        tmp_path / "g.toml",
                        """
        experiment = "exp"
        [parameters]
        steps = 3
        [[grid]]
        notebook = "work"
        methods = ["grpo", "dapo"]
        seeds = [0]
    """,
                    )
                ),
            ]
        )
        == 0
    )
    shown = capsys.readouterr().out
    assert re.search(r"grpo seed0\s+work\s+stale", shown)
    assert re.search(r"dapo seed0\s+work\s+complete", shown)

    spec = GridSpec.from_dict(grid())  # only the stale run
    report = run_grid(spec, tmp_path / "runs", restart=True, progress=False)
    assert report.ok and manifest(stale.folder)["attempt"] == 2
    assert manifest(stale.folder)["parameters"]["steps"] == 3


def test_two_jobs_run_two_notebooks_at_once_and_peak_memory_is_each_kernels(notebooks, tmp_path):
    spec = GridSpec.from_dict(
        grid(
            jobs=2,
            parameters={"delay": 2.0},
            grid=[
                {"notebook": "work", "methods": ["grpo"], "seeds": [0, 1], "parameters": {"blob_mb": 0}},
                {"notebook": "work", "methods": ["dapo"], "seeds": [0], "parameters": {"blob_mb": 300}},
            ],
        )
    )
    assert run_grid(spec, tmp_path / "runs", progress=False).ok
    small, other, large = spec.cells(tmp_path / "runs")
    first, second = (json.loads((c.folder / "result.json").read_text()) for c in (small, other))
    assert first["started"] < second["ended"] and second["started"] < first["ended"], "the runs overlapped"
    assert manifest(small.folder)["peak_rss_mb"] < 250 < 300 < manifest(large.folder)["peak_rss_mb"], (
        "the peak covers the kernel (which holds the 300 MB) and not the runner"
    )


def test_a_run_past_its_timeout_is_stopped_and_failed(notebooks, tmp_path):
    spec = GridSpec.from_dict(grid(timeout=4, parameters={"delay": 60.0}))
    started = time.monotonic()
    report = run_grid(spec, tmp_path / "runs", progress=False)
    assert not report.ok and time.monotonic() - started < 30
    record = manifest(spec.cells(tmp_path / "runs")[0].folder)
    assert record["status"] == "failed" and re.search(r"timed? ?out", record["error"], re.IGNORECASE)


def test_ctrl_c_stops_the_running_notebook_and_marks_it_interrupted(notebooks, tmp_path):
    path = write_toml(
        tmp_path / "g.toml",
        """
        experiment = "exp"
        [parameters]
        delay = 60.0
        [[grid]]
        notebook = "work"
        methods = ["grpo"]
        seeds = [0]
    """,
    )
    run_dir = tmp_path / "runs" / "exp" / "grpo" / "seed0"
    # as from a terminal: a shell's background job (e.g. a CI step started with `&`) inherits SIGINT ignored
    runner = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uec_repro.experiments",
            "run",
            str(path),
            "--runs-root",
            str(tmp_path / "runs"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 60
    while not (run_dir / "pid").exists() and time.monotonic() < deadline and runner.poll() is None:
        time.sleep(0.2)
    kernel = int((run_dir / "pid").read_text())
    runner.send_signal(signal.SIGINT)
    assert runner.wait(timeout=30) == 130
    record = manifest(run_dir)
    assert record["status"] == "failed" and record["error"] == "interrupted"
    assert not psutil.pid_exists(kernel) or psutil.Process(kernel).status() == psutil.STATUS_ZOMBIE


# ---------------------------------------------------------------- several runners on one runs root


def test_a_run_locked_by_another_runner_is_reported_busy_and_left_alone(notebooks, tmp_path, capsys):
    spec = GridSpec.from_dict(grid(grid=[{"notebook": "work", "methods": ["grpo"], "seeds": [0, 1]}]))
    locked, free = spec.cells(tmp_path / "runs")
    locked.folder.mkdir(parents=True)
    (locked.folder / "run.json").write_text(json.dumps({"status": "running", "attempt": 1}))
    (locked.folder / "checkpoint.txt").write_text("the other runner's")
    before = {path.name: path.read_bytes() for path in locked.folder.iterdir()}
    with FileLock(locked.lock_path):
        report = run_grid(spec, tmp_path / "runs")
    assert [(o.cell.label, o.status) for o in report.outcomes] == [
        ("grpo seed0", "busy"),
        ("grpo seed1", "complete"),
    ]
    assert report.ok
    assert {path.name: path.read_bytes() for path in locked.folder.iterdir()} == before
    assert executions(tmp_path / "runs" / "exp") == ["grpo 1"]
    out = capsys.readouterr().out
    assert (
        "grpo seed0: busy (another runner is executing it)" in out and "1 complete" in out and "1 busy" in out
    )
    assert run_grid(spec, tmp_path / "runs", progress=False).ok, "once released, the run is executed"
    assert sorted(executions(tmp_path / "runs" / "exp")) == ["grpo 0", "grpo 1"]


def test_summary_notebooks_wait_for_the_runs_another_runner_holds(notebooks, tmp_path):
    spec = GridSpec.from_dict(grid(notebook=[{"name": "summary", "parameters": {"title": "t"}}]))
    (cell,) = spec.cells(tmp_path / "runs")
    cell.lock_path.parent.mkdir(parents=True)
    lock = FileLock(cell.lock_path, thread_local=False)
    lock.acquire()
    released = []

    def release() -> None:  # the other runner finishes its run after 3 s
        lock.release()
        released.append(time.time())

    releaser = threading.Timer(3.0, release)
    releaser.start()
    try:
        report = run_grid(spec, tmp_path / "runs", progress=False)
    finally:
        releaser.join()
    assert [o.status for o in report.outcomes] == ["busy", "complete"]
    assert (tmp_path / "runs" / "exp" / "summary.txt").stat().st_mtime > released[0]


def test_two_runners_on_one_runs_root_execute_each_run_once(notebooks, tmp_path):
    path = write_toml(
        tmp_path / "g.toml",
        """
        experiment = "exp"
        [[grid]]
        notebook = "work"
        methods = ["grpo"]
        seeds = [0, 1, 2, 3]
    """,
    )
    command = [
        sys.executable,
        "-m",
        "uec_repro.experiments",
        "run",
        str(path),
        "--runs-root",
        str(tmp_path / "runs"),
    ]
    runners = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    outputs = [runner.communicate(timeout=300)[0] for runner in runners]
    assert [runner.returncode for runner in runners] == [0, 0], outputs
    experiment = tmp_path / "runs" / "exp"
    assert sorted(executions(experiment)) == [f"grpo {k}" for k in range(4)], (
        "every run executed exactly once"
    )
    for run_dir in sorted(experiment.glob("*/seed*/")):
        record = manifest(run_dir)  # one whole JSON document: never two runners' writes mixed
        assert record["status"] == "complete" and record["attempt"] == 1 and record["previous_attempts"] == []
        assert record["parameters"]["output_dir"] == str(run_dir.resolve())
    completed = [int(re.search(r"(\d+) complete", out).group(1)) for out in outputs]
    assert sum(completed) == 4, outputs


@pytest.mark.parametrize("failures, status", [(1, "complete"), (3, "failed")])
def test_a_kernel_that_never_started_is_started_again(notebooks, tmp_path, monkeypatch, failures, status):
    """Kernels started at once by several papermill processes can lose jupyter_client's port race; no cell
    ran, so the runner starts the execution again (at most twice) instead of failing the run."""
    real_wait_for, calls = execution.wait_for, []

    def losing_the_port_race(command, log_path, context):
        calls.append(command)
        if len(calls) <= failures:
            log_path.write_text("RuntimeError: Kernel didn't respond in 60 seconds\n")
            return 1, 1024, False
        return real_wait_for(command, log_path, context)

    monkeypatch.setattr(execution, "wait_for", losing_the_port_race)
    report = run_grid(GridSpec.from_dict(grid()), tmp_path / "runs", progress=False)
    assert [o.status for o in report.outcomes] == [status]
    record = manifest(tmp_path / "runs" / "exp" / "grpo" / "seed0")
    assert len(calls) == min(failures + 1, 3) and record["kernel_start_retries"] == min(failures, 2)
    assert executions(tmp_path / "runs" / "exp") == (["grpo 0"] if status == "complete" else [])


# ---------------------------------------------------------------- command line


def test_cli_exit_codes_and_listing(notebooks, tmp_path, capsys):
    bad = write_toml(
        tmp_path / "bad.toml",
        'experiment = "x"\n[[grid]]\nnotebook = "work"\nmethods = ["ppo"]\nseeds = [0]\n',
    )
    assert main(["run", str(bad), "--runs-root", str(tmp_path / "runs")]) == 2
    assert "ppo" in capsys.readouterr().err and not (tmp_path / "runs").exists()
    assert main(["show", "missing-preset"]) == 2
    assert main(["list"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in list_presets())
