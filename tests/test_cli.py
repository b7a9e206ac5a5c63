"""uec-repro export-reference: what a shipped reference holds (no weights, no machine paths) and its wall
time."""

import json

from uec_repro.cli import experiment_record, export_reference, relative_paths


def _run(root, variant, seed, started, finished, previous=()):
    folder = root / variant / f"seed{seed}"
    (folder / "adapter").mkdir(parents=True)
    (folder / "adapter" / "adapter_model.safetensors").write_bytes(b"weights")
    manifest = {
        "experiment": root.name,
        "variant": variant,
        "seed": seed,
        "started_at": started,
        "finished_at": finished,
        "previous_attempts": list(previous),
        "parameters": {"output_dir": str(folder), "policy": "/opt/models/my-policy", "steps": 3},
    }
    (folder / "run.json").write_text(json.dumps(manifest))
    (folder / "eval.json").write_text(json.dumps({"settings": {"output_dir": str(folder)}, "n": 4}))
    (folder / "metrics.jsonl").write_text('{"step": 1}\n')
    return folder


def test_export_writes_no_weights_and_no_absolute_paths(tmp_path):
    root = tmp_path / "runs" / "paper"
    _run(root, "grpo", 0, "2026-01-01T10:00:00+00:00", "2026-01-01T10:10:00+00:00")
    _run(
        root,
        "uec_rl",
        0,
        "2026-01-01T10:05:00+00:00",
        "2026-01-01T10:20:00+00:00",
        [{"started_at": "2026-01-01T09:00:00+00:00", "finished_at": "2026-01-01T09:02:00+00:00"}],
    )
    out = tmp_path / "reference"
    assert export_reference(root, out) == 2
    run = json.loads((out / "grpo" / "seed0" / "run.json").read_text())
    assert run["parameters"] == {"output_dir": "grpo/seed0", "policy": ".../my-policy", "steps": 3}
    assert (
        json.loads((out / "uec_rl" / "seed0" / "eval.json").read_text())["settings"]["output_dir"]
        == "uec_rl/seed0"
    )
    assert not list(out.rglob("*.safetensors")) and (out / "grpo" / "seed0" / "metrics.jsonl").is_file()
    for path in out.rglob("*.json*"):
        assert str(tmp_path) not in path.read_text(), path
    # 10:00-10:20 with the two runs overlapping, plus the earlier 2-minute attempt: 22 min; summed: 27 min
    record = json.loads((out / "experiment.json").read_text())
    assert (record["wall_seconds"], record["run_seconds"], record["runs"]) == (22 * 60, 27 * 60, 2)
    assert record["first_started_at"].startswith("2026-01-01T09:00")


def test_relative_paths_and_records_without_times(tmp_path):
    assert relative_paths(
        {"a": [str(tmp_path), str(tmp_path / "x" / "y")], "b": "text", "c": 3}, tmp_path
    ) == {"a": [".", "x/y"], "b": "text", "c": 3}
    assert experiment_record([{"experiment": "e", "started_at": None}])["wall_seconds"] == 0


def test_shipped_references_hold_no_absolute_paths():
    from pathlib import Path

    reference = Path(__file__).resolve().parents[1] / "data" / "reference"
    for path in reference.rglob("*.json"):
        assert '": "/' not in path.read_text(), path
