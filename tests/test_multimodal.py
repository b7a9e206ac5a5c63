"""Vision-language batches in UECTrainer: per-sample image inputs are cut out of TRL's packed batch and packed
again for any subset and order, so a sample's log-probs are the same in either batch; a short UEC-RL run on a
tiny Qwen2.5-VL trains, explores and validates with images."""

import json

import pytest
import torch

from uec_repro.checkpoints import BUFFERS_FILE, load_samples
from uec_repro.config import method_config
from uec_repro.layout import METRICS_FILE
from uec_repro.multimodal import collate_images, split_images
from uec_repro.trainer import Sample, UECTrainer
from uec_repro.validation import ParameterError


def packed_batch():
    """Three samples with 1, 2 and 1 images of 4, 2 + 6 and 4 patch rows; prompts of 3, 4 and 2 tokens
    left-padded to 4, completions of width 2. Pixel row r holds the value r, so every row is traceable."""
    grid = torch.tensor([[1, 2, 2], [1, 1, 2], [1, 2, 3], [1, 1, 4]])
    prompt_mask = torch.tensor([[0, 1, 1, 1], [1, 1, 1, 1], [0, 0, 1, 1]])
    types = torch.tensor([[0, 1, 0, 0, 0, 0], [1, 0, 1, 1, 0, 0], [0, 0, 1, 0, 0, 0]])
    output = {
        "pixel_values": torch.arange(16.0).unsqueeze(1).repeat(1, 3),
        "image_grid_thw": grid,
        "num_images": [1, 2, 1],
        "mm_token_type_ids": types,
    }
    return output, prompt_mask


def test_split_gives_each_sample_its_own_pixel_rows_grids_and_prompt_token_types():
    output, prompt_mask = packed_batch()
    first, second, third = split_images(output, prompt_mask)
    assert first["pixel_values"][:, 0].tolist() == [0, 1, 2, 3]
    assert second["pixel_values"][:, 0].tolist() == list(range(4, 12))  # 2 + 6 rows of its two images
    assert third["pixel_values"][:, 0].tolist() == [12, 13, 14, 15]
    assert second["image_grid_thw"].tolist() == [[1, 1, 2], [1, 2, 3]]
    assert [r["mm_token_type_ids"].tolist() for r in (first, second, third)] == [
        [1, 0, 0],
        [1, 0, 1, 1],
        [1, 0],
    ]


def test_collate_packs_any_subset_in_its_order_with_left_padded_prompts():
    output, prompt_mask = packed_batch()
    records = split_images(output, prompt_mask)
    batch = collate_images([records[2], records[0]], prompt_lengths=[2, 3], completion_width=2)
    assert batch["pixel_values"][:, 0].tolist() == [12, 13, 14, 15, 0, 1, 2, 3]
    assert batch["image_grid_thw"].tolist() == [[1, 1, 4], [1, 2, 2]]
    assert batch["num_images"] == [1, 1]
    assert batch["mm_token_type_ids"].tolist() == [[0, 1, 0, 0, 0], [1, 0, 0, 0, 0]]
    # a sample without images packs as zero images; a text-only batch has no image inputs at all
    mixed = collate_images([None, records[0]], prompt_lengths=[2, 3], completion_width=1)
    assert mixed["num_images"] == [0, 1] and mixed["pixel_values"].size(0) == 4
    assert mixed["mm_token_type_ids"].tolist() == [[0, 0, 0, 0], [1, 0, 0, 0]]
    assert collate_images([None, None], prompt_lengths=[2, 3], completion_width=2) == {}
    assert split_images({}, prompt_mask) == [None, None, None]


def test_other_image_layouts_and_inconsistent_inputs_are_refused():
    output, prompt_mask = packed_batch()
    with pytest.raises(ParameterError, match=r"Qwen-VL.*\['image_sizes'\]"):
        split_images({**output, "image_sizes": torch.ones(4, 2)}, prompt_mask)
    with pytest.raises(ValueError, match="inconsistent image inputs"):
        split_images({**output, "num_images": [1, 1, 1]}, prompt_mask)


def vlm_trainer(toy_policy_path, tmp_path, **overrides):
    from tiny_vlm import image_task, seven_reward, tiny_vlm

    model, processor = tiny_vlm(toy_policy_path)
    data = image_task(processor, 16)
    config = method_config(
        "uec_rl",
        **{
            "output_dir": str(tmp_path / "run"),
            "use_cpu": True,
            "max_steps": 2,
            "per_device_train_batch_size": 8,
            "num_generations": 4,
            "max_completion_length": 12,
            "seed": 0,
            "report_to": "none",
            "disable_tqdm": True,
            "gradient_checkpointing": False,
            "learning_rate": 1e-3,
            **overrides,
        },
    )
    trainer = UECTrainer(
        model=model,
        reward_funcs=[seven_reward],
        args=config,
        train_dataset=data,
        processing_class=processor,
        validation_dataset=data.select(range(4)),
    )
    return trainer, data


@pytest.mark.slow
def test_a_sample_has_the_same_log_probs_in_trls_batch_and_in_any_rebatching(toy_policy_path, tmp_path):
    trainer, data = vlm_trainer(toy_policy_path, tmp_path, save_strategy="no")
    inputs = [
        data[i] for i in range(4) for _ in range(2)
    ]  # 4 prompts, images of 16, 24, 24 and 36 patch rows
    output = trainer._generate_and_score_completions(inputs)
    model = trainer.model
    samples = trainer._samples(output, exploration=False)
    order = [7, 2, 4, 1, 6]  # a subset in another order; images of 36, 24, 24, 16 and 36 patch rows
    batch = trainer.collate([samples[i] for i in order], with_old_logps=False)
    # the check can fail: exchanging the pixel rows of the two samples whose images are 24 rows each changes
    # scores
    rows = batch["pixel_values"]
    swapped = {**batch, "pixel_values": torch.cat([rows[:36], rows[60:84], rows[36:60], rows[84:]])}
    with torch.no_grad():
        packed, _, _ = trainer._get_per_token_logps_and_entropies(model, **trainer.model_inputs(output))
        rebatched, _, _ = trainer._get_per_token_logps_and_entropies(model, **trainer.model_inputs(batch))
        mixed_up, _, _ = trainer._get_per_token_logps_and_entropies(model, **trainer.model_inputs(swapped))
    for position, index in enumerate(order):
        length = len(samples[index].completion_ids)
        torch.testing.assert_close(rebatched[position, :length], packed[index, :length], rtol=1e-4, atol=1e-4)
    assert (mixed_up[1] - rebatched[1]).abs().max() > 1e-3


@pytest.mark.slow
def test_uec_rl_on_a_vision_language_model_explores_trains_and_validates_with_images(
    toy_policy_path, tmp_path
):
    trainer, _ = vlm_trainer(
        toy_policy_path, tmp_path, batch_buffer=False, validation_every=2, save_strategy="steps", save_steps=2
    )
    before = {name: p.detach().clone() for name, p in trainer.model.named_parameters() if p.requires_grad}
    trainer.train()
    rows = [json.loads(line) for line in (tmp_path / "run" / METRICS_FILE).read_text().splitlines()]
    assert sum(row["uec/exploration_generated"] for row in rows) > 0
    assert sum(row["uec/update_exploration_samples"] for row in rows) > 0
    assert "validation/accuracy" in rows[1]
    unchanged = [
        name
        for name, p in trainer.model.named_parameters()
        if p.requires_grad and torch.equal(p.detach(), before[name])
    ]
    assert not unchanged, unchanged[:3]
    assert any("visual" in name for name in before)  # the vision tower's adapters are among those trained
    groups, _ = load_samples(tmp_path / "run" / "checkpoint-2" / BUFFERS_FILE, Sample)
    assert groups["replay"] and all(
        s.images["pixel_values"].size(0) in (16, 24, 36) for s in groups["replay"]
    )
