"""The notebooks: paired with their py:percent scripts, committed without outputs, parameters validated at
once, and every one of them end to end through the batch runner with the ``smoke`` preset."""

import ast
import json
from pathlib import Path

import jupytext
import nbformat
import papermill
import pytest

NOTEBOOK_DIR = Path(__file__).parents[1] / "notebooks"
SCRIPTS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.py"))
EXPECTED = [
    "00_quickstart",
    "01_train",
    "02_ablation",
    "03_baselines",
    "04_passk",
    "05_paper_figures",
    "06_entropy_mechanics",
]


def test_the_suite_is_complete():
    assert [p.stem for p in SCRIPTS] == EXPECTED


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_notebook_matches_its_script_and_has_no_outputs(script):
    stored = nbformat.read(script.with_suffix(".ipynb"), as_version=4)
    paired = jupytext.read(script)
    assert [(c.cell_type, c.source) for c in stored.cells] == [
        (c.cell_type, c.source) for c in paired.cells
    ], f"{script.name} and its .ipynb differ: run `jupytext --sync {script}`"
    for cell in stored.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{script.stem} has outputs"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_parameters_cell_holds_plain_values_that_papermill_lists(script):
    notebook = nbformat.read(script.with_suffix(".ipynb"), as_version=4)
    tagged = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    assignments = [node for node in ast.parse(tagged[0].source).body]
    assert assignments and all(isinstance(node, ast.Assign) for node in assignments)
    for node in assignments:
        ast.literal_eval(node.value)  # plain values only: raises on anything computed
    listed = papermill.inspect_notebook(str(script.with_suffix(".ipynb")))
    assert set(listed) == {node.targets[0].id for node in assignments}
    assert all(p["help"] for p in listed.values()), "every parameter has a comment saying what it is"


FIGURES = (
    "grpo_failure_modes",
    "entropy_dynamics",
    "reward_and_validation",
    "passk_curves",
    "geometry3k_bars",
    "math_table",
    "ablation_bars",
    "sensitivity",
    "step_cost",
    "sample_categories",
)

BAD_PARAMETERS = {
    "00_quickstart": ("steps", 0),
    "01_train": ("method", "ppo"),
    "02_ablation": ("seeds", [-1]),
    "03_baselines": ("methods", ["grpo", "nope"]),
    "04_passk": ("experiment_dir", "/nonexistent/runs"),
    "05_paper_figures": ("mode", "paper"),
    "06_entropy_mechanics": ("arms", 1),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", EXPECTED)
def test_a_bad_parameter_fails_in_the_first_cells_naming_it(name, tmp_path):
    parameter, value = BAD_PARAMETERS[name]
    out = tmp_path / f"{name}.ipynb"
    with pytest.raises(papermill.PapermillExecutionError) as failure:
        papermill.execute_notebook(
            str(NOTEBOOK_DIR / f"{name}.ipynb"),
            str(out),
            parameters={parameter: value},
            cwd=str(NOTEBOOK_DIR.parent),
            progress_bar=False,
            kernel_name="python3",
        )
    assert failure.value.ename == "ParameterError"
    assert parameter in failure.value.evalue
    executed = nbformat.read(out, as_version=4)
    code = [c for c in executed.cells if c.cell_type == "code"]
    failed = next(i for i, c in enumerate(code) if any(o.get("output_type") == "error" for o in c.outputs))
    injected = next(i for i, c in enumerate(code) if "injected-parameters" in c.metadata.get("tags", []))
    assert failed <= injected + 1, "validation comes right after the parameters, before any compute"


@pytest.mark.slow
def test_smoke_preset_runs_every_notebook_and_writes_every_output(tmp_path, toy_policy_path):
    from uec_repro.experiments import load_grid, run_grid

    report = run_grid(load_grid("smoke"), runs_root=tmp_path, progress=False)
    assert report.ok
    experiment = tmp_path / "smoke"
    for variant in ("base", "grpo", "uec_rl", "uec_rl--exploration_temperature=1.5"):
        run = experiment / variant / "seed0"
        manifest = json.loads((run / "run.json").read_text())
        assert manifest["status"] == "complete" and manifest["wall_seconds"] > 0
        assert (run / "01_train.ipynb").exists() and (run / "eval.json").exists()
        if variant != "base":
            rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
            assert [row["step"] for row in rows] == [0, 1, 2]  # step 0: the probe of the initial policy
            assert {"reward", "uec/hard_prompts", "time/step", "validation/accuracy", "probe/entropy"} <= set(
                rows[-1]
            )
    for name in EXPECTED[:1] + EXPECTED[2:]:
        assert (experiment / "notebooks" / f"{name}.ipynb").exists(), name
    for name in FIGURES:
        for suffix in (".png", ".pdf", ".csv"):
            assert (experiment / "figures" / f"{name}{suffix}").stat().st_size > 0, f"{name}{suffix}"
    assert (experiment / "figures" / "summary.md").exists()
