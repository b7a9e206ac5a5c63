"""uec_repro.checkpoints and uec_repro.atomic: what a checkpoint saves comes back, cut-off writes are never
read back as valid, and resuming cuts the metrics file back to the checkpoint's steps."""

import json
import random

import pytest
import torch

from uec_repro.atomic import write_json_atomic, write_text_atomic
from uec_repro.checkpoints import (
    STATE_FILE,
    complete_checkpoints,
    load_samples,
    prepare_resume,
    save_samples,
)
from uec_repro.selection import BatchBuffer, ReplayBuffer
from uec_repro.trainer import Sample


def sample(i: int, **fields) -> Sample:
    return Sample(
        prompt_ids=torch.arange(3) + i,
        completion_ids=torch.arange(i + 1),
        advantage=i - 1.5,
        reward=float(i % 2),
        truncated=i == 2,
        exploration=i > 1,
        **fields,
    )


def test_samples_round_trip_with_tensors_image_inputs_nones_and_extra_tensors(tmp_path):
    samples = [
        sample(0),
        sample(1, old_logps=torch.tensor([-0.5, -1.0])),
        sample(
            2,
            ref_logps=torch.zeros(3),
            token_advantages=torch.tensor([0.1, 0.2, 0.3]),
            images={
                "pixel_values": torch.rand(8, 6),
                "image_grid_thw": torch.tensor([[1, 2, 4]]),
                "mm_token_type_ids": torch.tensor([0, 1, 1, 0]),
            },
        ),
    ]
    generator = torch.Generator().manual_seed(7)
    save_samples(
        tmp_path / "b.safetensors",
        {"batch": samples[:2], "replay": samples[2:], "empty": []},
        extra={"generator": generator.get_state()},
    )
    groups, extra = load_samples(tmp_path / "b.safetensors", Sample)
    assert [len(groups[g]) for g in ("batch", "replay", "empty")] == [2, 1, 0]
    for saved, loaded in zip(samples, groups["batch"] + groups["replay"], strict=True):
        for name in ("prompt_ids", "completion_ids", "ref_logps", "old_logps", "token_advantages"):
            want, got = getattr(saved, name), getattr(loaded, name)
            assert (want is None and got is None) or torch.equal(want, got), name
        if saved.images is None:
            assert loaded.images is None
        else:
            assert saved.images.keys() == loaded.images.keys()
            assert all(torch.equal(saved.images[key], loaded.images[key]) for key in saved.images)
        assert (saved.advantage, saved.reward, saved.truncated, saved.exploration) == (
            loaded.advantage,
            loaded.reward,
            loaded.truncated,
            loaded.exploration,
        )
    restored = torch.Generator()
    restored.set_state(extra["generator"])
    assert torch.equal(torch.rand(4, generator=generator), torch.rand(4, generator=restored))


def test_buffers_restore_their_content_and_refuse_more_than_capacity():
    batch = BatchBuffer(batch_size=2, capacity=4)
    batch.push(range(6))
    copy = BatchBuffer(batch_size=2, capacity=4)
    copy.restore(batch.contents(), batch.dropped)
    assert (copy.contents(), copy.dropped, copy.pop()) == ([2, 3, 4, 5], 2, batch.pop())
    replay = ReplayBuffer(batch_size=2, capacity=3)
    replay.push(range(5))
    again = ReplayBuffer(batch_size=2, capacity=3)
    again.restore(replay.contents())
    again.push([9])
    assert again.contents() == [3, 4, 9]
    assert replay.draw(random.Random(0)) == [2, 3, 4]
    with pytest.raises(ValueError, match="capacity"):
        again.restore(list(range(4)))
    with pytest.raises(ValueError, match="capacity"):
        copy.restore(list(range(5)))


def test_a_checkpoint_without_its_state_file_is_not_complete(tmp_path):
    for step in (2, 4, 10):
        (tmp_path / f"checkpoint-{step}").mkdir()
    (tmp_path / "checkpoint-2" / STATE_FILE).write_text("{}")
    (tmp_path / "checkpoint-10" / STATE_FILE).write_text("{}")
    (tmp_path / "checkpoint-x").mkdir()
    assert [p.name for p in complete_checkpoints(tmp_path)] == ["checkpoint-2", "checkpoint-10"]


def test_prepare_resume_keeps_the_newest_complete_checkpoint_and_its_steps(tmp_path):
    for step in (2, 4, 6):
        (tmp_path / f"checkpoint-{step}").mkdir()
        if step < 6:
            (tmp_path / f"checkpoint-{step}" / STATE_FILE).write_text("{}")
    rows = [json.dumps({"step": s, "loss": s / 10}) for s in range(0, 7)]
    (tmp_path / "metrics.jsonl").write_text("\n".join(rows) + '\n{"step": 7, "lo')  # killed mid-row
    (tmp_path / "probe.jsonl").write_text("".join(json.dumps({"step": s}) + "\n" for s in (0, 2, 4, 6)))
    assert prepare_resume(tmp_path, "metrics.jsonl", "probe.jsonl") == tmp_path / "checkpoint-4"
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*")) == ["checkpoint-4"]
    steps = [json.loads(line)["step"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert steps == [0, 1, 2, 3, 4]
    assert [json.loads(line)["step"] for line in (tmp_path / "probe.jsonl").read_text().splitlines()] == [
        0,
        2,
        4,
    ]


def test_prepare_resume_without_a_checkpoint_starts_over(tmp_path):
    (tmp_path / "checkpoint-2").mkdir()  # cut off: no state file
    (tmp_path / "metrics.jsonl").write_text('{"step": 1}\n')
    (tmp_path / "probe.jsonl").write_text('{"step": 0}\n')
    assert prepare_resume(tmp_path, "metrics.jsonl", "probe.jsonl") is None
    assert not (tmp_path / "metrics.jsonl").exists() and not (tmp_path / "checkpoint-2").exists()
    assert not (tmp_path / "probe.jsonl").exists()


def test_atomic_write_leaves_the_old_file_when_writing_the_new_one_fails(tmp_path, monkeypatch):
    import uec_repro.atomic

    target = tmp_path / "run.json"
    write_json_atomic(target, {"status": "running"})

    def disk_full(descriptor):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(uec_repro.atomic.os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space"):
        write_json_atomic(target, {"status": "complete"})
    assert json.loads(target.read_text()) == {"status": "running"}
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]  # no temporary left behind
    monkeypatch.undo()
    write_text_atomic(target, "{}")
    assert target.read_text() == "{}"
