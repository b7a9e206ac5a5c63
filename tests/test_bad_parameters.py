"""Bad parameters on every surface (RunSettings, UECConfig, grid files, run_grid, the two command lines, a
notebook run by papermill): each is refused before any model is loaded, with a message that names the
parameter, the bad value and what is allowed."""

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import papermill
import pytest

import uec_repro.models
from uec_repro import cli, experiments
from uec_repro.config import method_config
from uec_repro.experiments import GridSpec, run_grid
from uec_repro.tasks.hub import DatasetUnavailableError
from uec_repro.training import RunSettings
from uec_repro.validation import ParameterError

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
BIN = Path(sys.executable).parent


@pytest.fixture(autouse=True)
def no_model_is_loaded(monkeypatch):
    """Loading or building a policy fails the test (and is recorded, in case the error is caught)."""
    calls = []

    def refuse(*args, **kwargs):
        calls.append(args)
        raise AssertionError(f"a model was loaded: {args}")

    monkeypatch.setattr(uec_repro.models, "load_policy", refuse)
    monkeypatch.setattr(uec_repro.models, "resolve_policy", refuse)
    yield
    assert calls == [], "a model was loaded before the bad parameter was refused"


# ---------------------------------------------------------------- set-ups some cases need


def a_file(monkeypatch, tmp):
    (tmp / "a_file").write_text("not a folder")


def no_bitsandbytes(monkeypatch, tmp):
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # `import bitsandbytes` raises ImportError


def bitsandbytes_without_this_device(monkeypatch, tmp):
    monkeypatch.setattr(importlib.import_module("bitsandbytes"), "supported_torch_devices", {"xpu"})


def offline_with_empty_caches(monkeypatch, tmp):
    import datasets
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp / "datasets-cache"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp / "hub-cache"))


def read_only_folder(monkeypatch, tmp):
    folder = tmp / "read-only"
    folder.mkdir()
    folder.chmod(0o500)
    if os.access(folder, os.W_OK):  # root ignores permission bits
        pytest.skip("permission bits do not stop this user from writing (root)")


def grid_file(text):
    def write(monkeypatch, tmp):
        (tmp / "grid.toml").write_text(text)

    return write


GOOD_GRID = 'experiment = "x"\n[parameters]\nsteps = 2\n[[grid]]\nmethods = ["grpo"]\nseeds = [0]\n'


def case(surface, arguments, *named, setup=None, error=ParameterError, id):
    return pytest.param(surface, arguments, named, setup, error, id=id)


# ``{tmp}`` in an argument is the test's tmp_path. ``named``: fragments the message must contain: the
# parameter with its value, then what is allowed.
CASES = [
    # RunSettings: the 01_train parameters
    case("settings", {"method": "ppo"}, "method='ppo'", "choose one of", "'uec_rl'", id="unknown method"),
    case(
        "settings",
        {"policy": "gpt5"},
        "policy='gpt5'",
        "choose one of ['toy', 'toy-geometry', 'smollm2-135m']",
        id="unknown policy",
    ),
    case("settings", {"task": "aime"}, "task='aime'", "choose one of", "'arith'", id="unknown task"),
    case("settings", {"steps": 0}, "steps=0", "must be >= 1", id="zero steps"),
    case("settings", {"steps": "30"}, "steps='30'", "must be an integer", id="steps as a string"),
    case("settings", {"prompts_per_step": -2}, "prompts_per_step=-2", "must be >= 1", id="negative prompts"),
    case("settings", {"seed": 1.5}, "seed=1.5", "must be an integer", id="float seed"),
    case("settings", {"num_generations": 1}, "num_generations=1", "must be >= 2", id="G < 2"),
    case(
        "settings", {"exploration_generations": 0}, "exploration_generations=0", "must be >= 2", id="G' < 1"
    ),
    case(
        "settings",
        {"exploration_temperature": 0.0},
        "exploration_temperature=0.0",
        "must be > 0.0",
        id="t' = 0",
    ),
    case(
        "settings",
        {"exploration_temperature": -1.0},
        "exploration_temperature=-1.0",
        "must be > 0.0",
        id="t' < 0",
    ),
    case("settings", {"replay_frequency": 0}, "replay_frequency=0", "must be >= 1", id="replay frequency 0"),
    case("settings", {"replay_capacity": 0.5}, "replay_capacity=0.5", "must be >= 1.0", id="replay capacity"),
    case("settings", {"lora_r": 0}, "lora_r=0", "must be >= 1", id="LoRA rank 0"),
    case(
        "settings",
        {"learning_rate": -1e-4},
        "learning_rate=-0.0001",
        "must be > 0.0",
        id="negative learning rate",
    ),
    case(
        "settings",
        {"eval_temperature": "hot"},
        "eval_temperature='hot'",
        "must be a number",
        id="temperature as a string",
    ),
    case("settings", {"save_adapter": "yes"}, "save_adapter='yes'", "True or False", id="bool as a string"),
    case(
        "settings",
        {"overrides": {"regular_threshold": -0.1}},
        "regular_threshold=-0.1",
        "must be >= 0.0",
        id="threshold below range",
    ),
    case(
        "settings",
        {"overrides": {"kl_cov_ratio": 1.5}},
        "kl_cov_ratio=1.5",
        "must be <= 1.0",
        id="ratio above range",
    ),
    case("settings", {"overrides": {"top_p": 1.5}}, "top_p=1.5", "must be <= 1.0", id="top_p above 1"),
    case(
        "settings",
        {"overrides": {"per_device_train_batch_size": 12}},
        "per_device_train_batch_size=12",
        "num_generations=8",
        "multiple of 8",
        id="batch not whole groups",
    ),
    case(
        "settings",
        {"overrides": [("beta", 0.0)]},
        "overrides=[('beta', 0.0)]",
        "must be a dict",
        id="overrides not a dict",
    ),
    case("settings", {"quantization": "int8"}, "quantization='int8'", "'nf4'", id="unknown quantization"),
    case(
        "settings",
        {"quantization": "nf4"},
        "quantization='nf4'",
        "needs bitsandbytes",
        "pip install bitsandbytes",
        "quantization='none'",
        setup=no_bitsandbytes,
        id="nf4 without bitsandbytes",
    ),
    case(
        "settings",
        {"quantization": "nf4"},
        "quantization='nf4'",
        "not supported on device=",
        "supported devices: ['xpu']",
        "quantization='none'",
        setup=bitsandbytes_without_this_device,
        id="nf4 on an unsupported device",
    ),
    case(
        "settings",
        {"task": "gsm8k"},
        "task='gsm8k'",
        "not available",
        "offline mode",
        "hf download openai/gsm8k",
        "data_path=",
        setup=offline_with_empty_caches,
        error=DatasetUnavailableError,
        id="hub dataset missing offline",
    ),
    case(
        "settings",
        {"task": "math500", "method": "grpo"},
        "task='math500'",
        "no 'train' split",
        "method='base'",
        "'gsm8k'",
        id="task without a train split",
    ),
    case(
        "settings",
        {"output_dir": "{tmp}/a_file/run"},
        "output_dir='{tmp}/a_file/run'",
        "is a file",
        "writable",
        setup=a_file,
        id="output_dir under a file",
    ),
    case(
        "settings",
        {"output_dir": "{tmp}/read-only/run"},
        "output_dir='{tmp}/read-only/run'",
        "is not writable",
        setup=read_only_folder,
        id="output_dir read-only",
    ),
    # UECConfig through method_config
    case(
        "config",
        {"num_generations": 4, "per_device_train_batch_size": 10},
        "per_device_train_batch_size=10",
        "num_generations=4",
        "multiple of 4 (e.g. 8 or 12)",
        id="batch of 10 in groups of 4",
    ),
    case(
        "config",
        {"num_generations": 4, "per_device_train_batch_size": 8, "generation_batch_size": 12},
        "generation_batch_size=12",
        "per_device_train_batch_size=8",
        "use None or 8",
        id="generation batch other than the train batch",
    ),
    case(
        "config",
        {"clip_cov_bounds": (1.0,)},
        "clip_cov_bounds=(1.0,)",
        "two numbers (low, high)",
        id="clip bounds not a pair",
    ),
    case(
        "config",
        {"exploration_rule": "abs>2"},
        "exploration_rule='abs>2'",
        "choose one of",
        id="unknown exploration rule",
    ),
    case(
        "config",
        {"steps_per_generation": 4},
        "steps_per_generation=4",
        "use None or 1",
        id="several steps per generation",
    ),
    # grid files (01_train's own notebook)
    case(
        "grid",
        {"grid": [{"methods": ["ppo"], "seeds": [0]}]},
        "grid[0].methods=['ppo']",
        "allowed:",
        id="grid: unknown method",
    ),
    case(
        "grid",
        {"grid": [{"methods": ["grpo"], "seeds": [-1]}]},
        "grid[0].seeds=[-1]",
        "non-negative",
        id="grid: negative seed",
    ),
    case("grid", {"jobs": 0}, "jobs=0", "must be >= 1", id="grid: zero jobs"),
    case(
        "grid",
        {"parameters": {"stepz": 3}},
        "parameters.stepz=3",
        "01_train declares no such parameter",
        id="grid: unknown parameter",
    ),
    # run_grid: every 01_train run is checked before any runs
    case(
        "run_grid",
        {"parameters": {"steps": 0}},
        "bad.toml: run grpo seed0",
        "steps=0",
        "must be >= 1",
        id="run_grid: zero steps",
    ),
    case(
        "run_grid",
        {"parameters": {"overrides": {"replay_frequency": 0}}},
        "replay_frequency=0",
        "must be >= 1",
        id="run_grid: replay frequency 0",
    ),
    case(
        "run_grid",
        {"runs_root": "{tmp}/a_file/runs"},
        "runs_root='{tmp}/a_file/runs'",
        "is a file",
        setup=a_file,
        id="run_grid: runs_root under a file",
    ),
    # command lines, in process (exit status 2, the message on stderr)
    case(
        "experiments",
        ["run", "{tmp}/grid.toml", "--jobs", "0", "--runs-root", "{tmp}/runs"],
        "jobs=0",
        "must be >= 1",
        setup=grid_file(GOOD_GRID),
        id="experiments: --jobs 0",
    ),
    case(
        "experiments",
        ["run", "no-such-preset"],
        "grid='no-such-preset'",
        "presets: [",
        id="experiments: preset",
    ),
    case(
        "experiments",
        ["run", "{tmp}/grid.toml", "--runs-root", "{tmp}/runs"],
        "grid.toml",
        "exploration_temperature=-1",
        "must be > 0.0",
        setup=grid_file(GOOD_GRID + "sweep = { exploration_temperature = [1.0, -1] }\n"),
        id="experiments: bad sweep value",
    ),
    case("uec-repro", ["grpo-demo", "--steps", "0"], "steps=0", "must be >= 1", id="uec-repro: --steps 0"),
    case(
        "uec-repro",
        ["grpo-demo", "--output-dir", "{tmp}/a_file/demo"],
        "--output-dir='{tmp}/a_file/demo'",
        "is a file",
        setup=a_file,
        id="uec-repro: unwritable --output-dir",
    ),
    case(
        "uec-repro",
        ["reproduce", "--jobs", "0", "--runs-root", "{tmp}/runs"],
        "jobs=0",
        "must be >= 1",
        id="uec-repro: reproduce --jobs 0",
    ),
    case(
        "uec-repro",
        ["grpo-demo", "--num-generations", "many"],
        "--num-generations",
        "invalid int value: 'many'",
        id="uec-repro: --num-generations not an int",
    ),
    case(
        "uec-repro",
        ["train", "stepz=3", "output_dir={tmp}/runs/x"],
        "['--stepz', '3']",
        "`uec-repro train --help` lists the flags",
        id="uec-repro train: unknown setting",
    ),
    case(
        "uec-repro",
        ["train", "steps", "output_dir={tmp}/runs/x"],
        "['steps']",
        "are not used",
        id="uec-repro train: no value",
    ),
    case(
        "uec-repro",
        ["train", "steps=0", "output_dir={tmp}/runs/x"],
        "steps=0",
        "must be >= 1",
        id="uec-repro train: zero steps",
    ),
    case(
        "uec-repro",
        ["train", "method=ppo", "output_dir={tmp}/runs/x"],
        "method='ppo'",
        "choose one of ['base', 'grpo'",
        id="uec-repro train: unknown method",
    ),
    case(
        "uec-repro",
        ["train", "--steps", "0", "--output_dir", "{tmp}/runs/x"],
        "steps=0",
        "must be >= 1",
        id="uec-repro train: --steps 0",
    ),
    case(
        "uec-repro",
        ["train", "--num_generations", "many"],
        "--num_generations",
        "invalid int value: 'many'",
        id="uec-repro train: --num_generations not an int",
    ),
    case(
        "uec-repro",
        ["train", "--replay_rule", "sometimes", "--output_dir", "{tmp}/runs/x"],
        "replay_rule='sometimes'",
        "choose one of",
        id="uec-repro train: bad UECConfig flag",
    ),
]


def fill(value, tmp):
    if isinstance(value, str):
        return value.replace("{tmp}", str(tmp))
    if isinstance(value, list):
        return [fill(item, tmp) for item in value]
    if isinstance(value, dict):
        return {key: fill(item, tmp) for key, item in value.items()}
    return value


def refusal(surface, arguments, tmp, capsys):
    """The message of the refusal, after checking its kind: ParameterError in process, exit status 2 from
    the command lines."""
    if surface in ("experiments", "uec-repro"):
        entry = experiments.main if surface == "experiments" else cli.main
        try:
            status = entry(arguments)
        except SystemExit as exit_:  # argparse's own refusals
            status = exit_.code
        assert status == 2
        return capsys.readouterr().err
    if surface == "settings":
        RunSettings(**{"output_dir": str(tmp / "run"), **arguments})
    elif surface == "config":
        method_config("uec_rl", output_dir=str(tmp / "run"), use_cpu=True, **arguments)
    elif surface == "grid":
        GridSpec.from_dict(
            {"experiment": "x", "grid": [{"methods": ["grpo"], "seeds": [0]}], **arguments},
            source="bad.toml",
            notebooks_dir=NOTEBOOKS,
        )
    elif surface == "run_grid":
        runs_root = arguments.pop("runs_root", str(tmp / "runs"))
        spec = GridSpec.from_dict(
            {"experiment": "x", "grid": [{"methods": ["grpo"], "seeds": [0]}], **arguments},
            source="bad.toml",
            notebooks_dir=NOTEBOOKS,
        )
        run_grid(spec, runs_root, progress=False)
    raise AssertionError(f"{surface} accepted {arguments}")


def test_there_are_at_least_25_cases():
    assert len(CASES) >= 25


@pytest.mark.parametrize(("surface", "arguments", "named", "setup", "error"), CASES)
def test_a_bad_parameter_is_refused_before_loading_naming_it(
    surface, arguments, named, setup, error, tmp_path, monkeypatch, capsys
):
    if setup:
        setup(monkeypatch, tmp_path)
    arguments = fill(arguments, tmp_path)
    if surface in ("experiments", "uec-repro"):
        message = refusal(surface, arguments, tmp_path, capsys)
    else:
        with pytest.raises(error) as refused:
            refusal(surface, arguments, tmp_path, capsys)
        message = str(refused.value)
    for fragment in fill(list(named), tmp_path):
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert not (tmp_path / "runs" / "x").exists(), "no run started"


def test_the_valid_baseline_of_the_cases_is_accepted(tmp_path):
    """The cases differ from accepted settings only in the bad value (or the set-up)."""
    RunSettings(output_dir=str(tmp_path / "run"))
    RunSettings(quantization="nf4", output_dir=str(tmp_path / "run"))  # bitsandbytes is installed
    RunSettings(method="base", exploration_generations=2, output_dir=str(tmp_path / "run"))
    method_config(
        "uec_rl",
        num_generations=4,
        per_device_train_batch_size=8,
        generation_batch_size=8,
        output_dir=str(tmp_path),
        use_cpu=True,
    )
    GridSpec.from_dict(
        {"experiment": "x", "grid": [{"methods": ["grpo"], "seeds": [0]}]}, notebooks_dir=NOTEBOOKS
    )


@pytest.mark.parametrize(
    ("command", "named"),
    [
        (["uec-repro", "grpo-demo", "--lora-r", "0"], "lora_r=0 must be >= 1"),
        (
            [sys.executable, "-m", "uec_repro.experiments", "run", "default", "--jobs", "-1"],
            "jobs=-1 must be >= 1",
        ),
    ],
    ids=["uec-repro", "python -m uec_repro.experiments"],
)
def test_the_installed_commands_exit_with_status_2(command, named, tmp_path):
    if command[0] == "uec-repro":
        command = [str(BIN / "uec-repro"), *command[1:]]
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 2 and named in done.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("parameters", "ename", "named"),
    [
        ({"lora_r": 0}, "ParameterError", ["lora_r=0", "must be >= 1"]),
        (
            {"task": "gsm8k", "output_dir": "{tmp}/run"},
            "DatasetUnavailableError",
            ["task='gsm8k'", "hf download"],
        ),
    ],
    ids=["lora_r=0", "hub task offline"],
)
def test_a_notebook_stops_in_its_first_cell_and_shows_why(parameters, ename, named, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the kernel inherits it
    out = tmp_path / "01_train.ipynb"
    with pytest.raises(papermill.PapermillExecutionError) as failure:
        papermill.execute_notebook(
            str(NOTEBOOKS / "01_train.ipynb"),
            str(out),
            parameters=fill(parameters, tmp_path),
            cwd=str(REPO),
            progress_bar=False,
            kernel_name="python3",
        )
    assert failure.value.ename == ename
    code = [c for c in nbformat.read(out, as_version=4).cells if c.cell_type == "code"]
    injected = next(i for i, c in enumerate(code) if "injected-parameters" in c.metadata.get("tags", []))
    errors = [(i, o) for i, c in enumerate(code) for o in c.outputs if o.get("output_type") == "error"]
    assert [i for i, _ in errors] == [injected + 1], "the cell right after the parameters fails"
    shown = errors[0][1]
    assert shown["ename"] == ename and all(fragment in shown["evalue"] for fragment in named)
    assert all(c.execution_count is None for c in code[injected + 2 :]), "nothing after it ran"
    assert not (tmp_path / "run").exists()


def test_a_refused_grid_leaves_existing_runs_as_they_were(tmp_path):
    run = tmp_path / "runs" / "y" / "grpo" / "seed0"
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"status": "failed", "attempt": 1}))
    spec = GridSpec.from_dict(
        {"experiment": "y", "parameters": {"steps": -3}, "grid": [{"methods": ["grpo"], "seeds": [0]}]},
        notebooks_dir=NOTEBOOKS,
    )
    with pytest.raises(ParameterError, match=r"steps=-3 must be >= 1"):
        run_grid(spec, tmp_path / "runs", progress=False)
    assert json.loads((run / "run.json").read_text()) == {"status": "failed", "attempt": 1}
    assert sorted(p.name for p in run.iterdir()) == ["run.json"]
