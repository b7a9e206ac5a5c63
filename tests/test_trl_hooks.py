"""The contract between :mod:`uec_repro.trl_hooks` and TRL's private ``GRPOTrainer`` internals: every name the
hooks call, override or read, checked against the installed TRL. A TRL upgrade that breaks one fails here, by
name, instead of deep inside a training run."""

import inspect

import trl
from trl.models import utils as model_utils
from trl.trainer import utils as trainer_utils

from uec_repro.trl_hooks import TRL_VERSION


def test_the_trl_hooks_we_wrap_are_still_there():
    """Fails loudly when TRL changes the private methods uec_repro.trl_hooks wraps (pinned: TRL_VERSION)."""
    assert trl.__version__ == TRL_VERSION
    hooks = {
        "_generate_and_score_completions": ["self", "inputs"],
        "_calculate_rewards": ["self", "inputs", "prompts", "completions", "completion_ids_list"],
        "_generate": ["self", "prompts"],
        "compute_loss": ["self", "model", "inputs", "return_outputs", "num_items_in_batch"],
        "_get_per_token_logps_and_entropies": [
            "self",
            "model",
            "input_ids",
            "attention_mask",
            "logits_to_keep",
        ],
        "training_step": ["self", "model", "inputs", "num_items_in_batch"],
        "log": ["self", "logs", "start_time"],
        "train": ["self", "resume_from_checkpoint"],
        "_save_checkpoint": ["self", "model", "trial"],
        "_get_output_dir": ["self", "trial"],
    }
    for name, parameters in hooks.items():
        signature = list(inspect.signature(getattr(trl.GRPOTrainer, name)).parameters)
        assert signature[: len(parameters)] == parameters, (name, signature)
    source = inspect.getsource(trl.GRPOTrainer._generate_and_score_completions)
    for needle in (
        '"advantages"',
        '"completion_mask"',
        '"ref_per_token_logps"',
        "self.num_generations",
        "rewards_per_func = self._calculate_rewards(",
        # several processes: TRL keeps this process's rows of the gathered advantages, in process order
        "self.accelerator.process_index * len(prompts)",
        # vision-language batches (uec_repro.multimodal)
        'output["pixel_values"]',
        'output["image_grid_thw"]',
        'output["num_images"]',
        'output["mm_token_type_ids"]',
    ):
        assert needle in source, needle
    assert "rewards_per_func = gather(rewards_per_func)" in inspect.getsource(
        trl.GRPOTrainer._calculate_rewards
    )
    logps = list(inspect.signature(trl.GRPOTrainer._get_per_token_logps_and_entropies).parameters)
    for name in ("compute_entropy", "pixel_values", "image_grid_thw", "num_images", "mm_token_type_ids"):
        assert name in logps, name
    loss = inspect.getsource(trl.GRPOTrainer._compute_loss)
    for needle in (
        'inputs["num_items_in_batch"].clamp(min=1.0) / self.accelerator.num_processes',
        "(per_token_loss * mask).sum() / mask.sum().clamp(min=1.0)",
    ):  # how _local_batch's weight works
        assert needle in loss, needle
    init = inspect.getsource(trl.GRPOTrainer.__init__)
    for attribute in (
        "self.generation_config",
        "self.generation_kwargs",
        "self.eos_token_ids",
        "self._metrics",
    ):
        assert attribute in init, attribute


def test_the_trainer_attributes_the_hooks_read_are_set_by_trl():
    source = inspect.getsource(trl.GRPOTrainer.__init__)
    for attribute in (
        "self.num_generations",
        "self.generation_config",
        "self.generation_kwargs",
        "self.eos_token_ids",
        "self.reward_weights",
        "self._metrics",
        "self.beta",
        "self.loss_type",
        "self.epsilon_low",
        "self.epsilon_high",
        "self.use_vllm",
        "self.vllm_importance_sampling_correction",
        "self.ref_model",
        "self.max_completion_length",
    ):
        assert attribute in source, attribute
    # the loss reads these keys of the batch the hooks collate
    loss_source = inspect.getsource(trl.GRPOTrainer._compute_loss)
    for key in ('"old_per_token_logps"', '"ref_per_token_logps"', '"advantages"', '"completion_mask"'):
        assert key in loss_source, key


def test_the_trl_helpers_the_hooks_import_keep_their_signatures():
    assert list(inspect.signature(trainer_utils.pad).parameters)[:3] == [
        "tensors",
        "padding_value",
        "padding_side",
    ]
    assert list(inspect.signature(trainer_utils.use_adapter).parameters)[:2] == ["model", "adapter_name"]
    assert list(inspect.signature(model_utils.disable_gradient_checkpointing).parameters)[:2] == [
        "model",
        "gradient_checkpointing_kwargs",
    ]
