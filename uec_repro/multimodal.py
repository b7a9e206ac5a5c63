"""Per-sample image inputs of vision-language batches.

TRL packs a batch's images together; UEC-RL keeps, buffers, replays and re-batches every sample on its own, so
:func:`split_images` cuts TRL's packed inputs into one record per sample and :func:`collate_images` packs any
list of such records again, in the layout TRL's loss reads.

Supported is the Qwen-VL layout (Qwen2-VL, Qwen2.5-VL, Qwen3-VL; the paper's Geometry3K model):
``pixel_values`` holds the patch rows of all images one after another, ``image_grid_thw`` one (t, h, w) row
per image (an image has t x h x w patch rows), ``num_images`` the number of images of each sample, and
``mm_token_type_ids`` one row per sample over prompt and completion (1 at image tokens, which are all in the
prompt). Other layouts (tiles, one pixel tensor per image, ``token_type_ids``) raise a :class:`ParameterError`
naming their keys.
"""

from __future__ import annotations

from typing import Any

import torch
from trl.trainer.utils import pad

from .validation import ParameterError

__all__ = ["IMAGE_KEYS", "collate_images", "split_images"]

IMAGE_KEYS = ("pixel_values", "image_grid_thw", "num_images", "mm_token_type_ids")
OTHER_LAYOUTS = (
    "pixel_attention_mask",
    "spatial_shapes",
    "num_tiles",
    "image_sizes",
    "token_type_ids",
    "image_position_ids",
)


def split_images(output: dict[str, Any], prompt_mask: torch.Tensor) -> list[dict[str, torch.Tensor] | None]:
    """One record per row of TRL's batch ``output``: the sample's ``pixel_values`` rows, its
    ``image_grid_thw`` rows and the ``mm_token_type_ids`` of its prompt tokens (unpadded, aligned with its
    prompt ids). ``None`` for every row of a batch without images (a text task, or one whose images TRL
    dropped for truncated image tokens). ``prompt_mask`` is the batch's left-padded prompt mask."""
    other = [key for key in OTHER_LAYOUTS if key in output]
    if other:
        raise ParameterError(
            f"UECTrainer splits the image inputs of Qwen-VL models ({', '.join(IMAGE_KEYS)}); "
            f"this model's batches also have {other}, a layout it does not support yet"
        )
    rows = prompt_mask.size(0)
    if "pixel_values" not in output:
        return [None] * rows
    grid, counts = output["image_grid_thw"].cpu(), list(output["num_images"])
    pixels = output["pixel_values"].cpu()
    if len(counts) != rows or sum(counts) != grid.size(0) or int(grid.prod(dim=-1).sum()) != pixels.size(0):
        raise ValueError(
            f"inconsistent image inputs: {rows} samples, num_images={counts}, {grid.size(0)} grid rows, "
            f"{pixels.size(0)} pixel rows"
        )
    prompt_types = output["mm_token_type_ids"][:, : prompt_mask.size(1)].cpu()
    prompt_mask = prompt_mask.cpu().bool()
    grids = torch.split(grid, counts)
    pixel_rows = torch.split(pixels, [int(g.prod(dim=-1).sum()) for g in grids])
    return [
        {
            "pixel_values": pixel_rows[row],
            "image_grid_thw": grids[row],
            "mm_token_type_ids": prompt_types[row][prompt_mask[row]],
        }
        for row in range(rows)
    ]


def collate_images(
    images: list[dict[str, torch.Tensor] | None], prompt_lengths: list[int], completion_width: int
) -> dict[str, Any]:
    """The image inputs of a batch of samples in TRL's layout, prompts left-padded to the longest of
    ``prompt_lengths`` and completions right-padded to ``completion_width``; ``{}`` when no sample has images
    (a sample with ``None`` counts as one without images)."""
    if all(record is None for record in images):
        return {}
    grids = [r["image_grid_thw"] if r else torch.zeros(0, 3, dtype=torch.long) for r in images]
    prompt_types = pad(
        [
            r["mm_token_type_ids"] if r else torch.zeros(length, dtype=torch.long)
            for r, length in zip(images, prompt_lengths, strict=True)
        ],
        padding_value=0,
        padding_side="left",
    )
    return {
        "pixel_values": torch.cat([r["pixel_values"] for r in images if r]),
        "image_grid_thw": torch.cat(grids),
        "num_images": [len(grid) for grid in grids],
        "mm_token_type_ids": torch.cat(
            [prompt_types, prompt_types.new_zeros(len(images), completion_width)], dim=1
        ),
    }
