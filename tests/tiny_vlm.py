"""A tiny, randomly initialised Qwen2.5-VL and an image task for it, built offline in about a second: the
vision-language path of UECTrainer (the Qwen-VL layout of Geometry3K's model) without the Hub.

The processor is Qwen2.5-VL's own, with the toy policy's character tokenizer plus Qwen's vision tokens and a
chat template that writes them; its video processor is left out because it needs torchvision, which has no CPU
build (images never touch it).
"""

from pathlib import Path

import datasets
import torch
from PIL import Image
from transformers import (
    PreTrainedTokenizerFast,
    ProcessorMixin,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2_5_VLProcessor,
)
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

from uec_repro.models import LoraSettings
from uec_repro.tasks import load_task
from uec_repro.tasks.prompts import build_prompt

VISION_TOKENS = ["<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]
CHAT_TEMPLATE = (
    "{% for m in messages %}{% if m['content'] is string %}{{ m['content'] }}{% else %}"
    "{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>{% else %}{{ c['text'] }}"
    "{% endif %}"
    "{% endfor %}{% endif %}{% endfor %}"
)
IMAGE_SIZES = [(56, 56), (56, 84), (84, 56), (84, 84)]  # 16, 24, 24 and 36 patch rows of 14 x 14 pixels


class ImageOnlyProcessor(Qwen2_5_VLProcessor):
    """Qwen2.5-VL's processor without its video part (its sub-processors are the arguments of
    ``__init__``)."""

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        self.image_token, self.video_token = "<|image_pad|>", "<|video_pad|>"
        self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
        self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)
        ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template)


def tiny_vlm(toy_policy_path: Path, seed: int = 0):
    """(model with LoRA adapters on every linear layer, processor)."""
    from peft import get_peft_model

    tokenizer = PreTrainedTokenizerFast.from_pretrained(str(toy_policy_path), padding_side="left")
    tokenizer.add_special_tokens({"additional_special_tokens": VISION_TOKENS})
    processor = ImageOnlyProcessor(
        image_processor=Qwen2VLImageProcessorPil(min_pixels=56 * 56, max_pixels=84 * 84),
        tokenizer=tokenizer,
        chat_template=CHAT_TEMPLATE,
    )
    ids = tokenizer.convert_tokens_to_ids
    special = {
        "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "bos_token_id": tokenizer.bos_token_id,
    }
    config = Qwen2_5_VLConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 512,
            "tie_word_embeddings": True,
            "rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 3]},
            **special,
        },
        vision_config={
            "depth": 1,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "out_hidden_size": 64,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 56,
            "fullatt_block_indexes": [0],
        },
        image_token_id=ids("<|image_pad|>"),
        video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
        **special,
    )
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model = get_peft_model(model, LoraSettings(r=4, alpha=8, dropout=0.0).to_peft())
    return model, processor


def image_task(processor, n: int, seed: int = 0) -> datasets.Dataset:
    """``arith`` questions, each with a random image of one of :data:`IMAGE_SIZES` (the answer ignores it)."""
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for index, row in enumerate(load_task("arith", "train", n=n, seed=seed)):
        width, height = IMAGE_SIZES[index % len(IMAGE_SIZES)]
        pixels = torch.randint(0, 256, (height, width, 3), generator=generator, dtype=torch.uint8).numpy()
        rows.append(
            {
                "id": row["id"],
                "question": row["question"],
                "answer": row["answer"],
                "prompt": build_prompt(row["question"], processor, image=True),
                "image": Image.fromarray(pixels),
            }
        )
    return datasets.Dataset.from_list(rows)


def seven_reward(completions, **kwargs):
    """1 when the completion holds a '7': rare enough for the random model that many groups are all 0 (hard
    prompts), common enough that some of G' = 16 exploration rollouts succeed."""
    return [float("7" in (c if isinstance(c, str) else c[0]["content"])) for c in completions]
