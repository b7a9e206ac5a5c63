"""Everything :class:`~uec_repro.trainer.UECTrainer` takes from TRL's ``GRPOTrainer`` internals, in one place.

TRL's methods are wrapped, never copied: rollouts come from ``_generate_and_score_completions`` (with G' and
t' swapped in for exploration), losses from ``compute_loss``. The private names relied on here are pinned to
:data:`TRL_VERSION` by the contract test ``tests/test_trl_hooks.py``; a TRL upgrade starts there.
"""

from __future__ import annotations

import math
from collections import defaultdict
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from time import perf_counter
from typing import Any

import torch
from accelerate.utils import gather_object
from trl import GRPOTrainer
from trl.models.utils import disable_gradient_checkpointing
from trl.trainer.utils import pad, use_adapter

from .multimodal import IMAGE_KEYS, collate_images, split_images

__all__ = ["SEQUENCE_MEAN_LOSSES", "TRL_VERSION", "Sample", "TRLHooks"]

TRL_VERSION = "1.16.0"  # the version whose internals this module is written against
# TRL's names of the loss-side measures, which see only the samples a method trains on -> our names
UPDATE_BATCH_METRICS = {"entropy": "entropy/update_batch"}
# TRL loss types that average per-sequence means (the others average over tokens)
SEQUENCE_MEAN_LOSSES = ("grpo", "sapo", "dr_grpo", "luspo")


@dataclass
class Sample:
    """One completion as the buffers keep it: unpadded token ids and its per-sample training data."""

    prompt_ids: torch.Tensor
    completion_ids: torch.Tensor
    advantage: float
    reward: float
    truncated: bool
    exploration: bool
    ref_logps: torch.Tensor | None = None
    old_logps: torch.Tensor | None = None  # set when the sample is first trained on; replay keeps it
    token_advantages: torch.Tensor | None = None  # Entropy-Adv's per-token advantages
    images: dict[str, torch.Tensor] | None = None  # its image inputs (vision-language models; see multimodal)


class TRLHooks(GRPOTrainer):
    """``GRPOTrainer`` with the entry points UEC-RL needs: rollouts as :class:`Sample` lists (G' rollouts at
    t' on request), the rewards TRL does not return, batches collated back into TRL's loss format, a per-token
    hook inside TRL's loss (:meth:`_loss_terms`), and the KL term's reference pass deferred to the samples
    trained on. ``timers`` accumulates this step's generation and scoring seconds."""

    # Class switch, so that benchmarks/ can time TRL's eager reference pass against the deferred one.
    defer_reference_logps = True
    sample_type = Sample  # what rollouts and saved buffers are made of

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.num_processes = self.accelerator.num_processes
        self.process_index = self.accelerator.process_index
        self.timers: dict[str, float] = defaultdict(float)
        self._last_rewards: torch.Tensor | None = None  # TRL's rewards of the last scoring, all processes
        self._loss_inputs: dict[str, Any] | None = None  # the mini-batch whose loss is being computed
        self._extra_loss: torch.Tensor | None = None  # a term :meth:`_loss_terms` adds to TRL's loss
        self._skip_reference_pass = False  # set from the end of a generation to its scoring

    def record(self, name: str, value: float) -> None:
        """One value of metric ``name`` for this step's row (TRL averages a step's values when it logs)."""
        self._metrics["train"][name].append(value)

    def gathered(self, items: list) -> list:
        """``items`` of every process, in process order (the list itself in one process)."""
        return gather_object(items) if self.num_processes > 1 else items

    def fill_in_turns(self, chunks: list[list[Sample]], compute) -> None:
        """Set the per-sample values ``compute`` makes for one chunk at a time; the chunks are shared out
        among the processes in turn, and every process gets every sample's values."""
        done = [
            (c, compute(chunk))
            for c, chunk in enumerate(chunks)
            if c % self.num_processes == self.process_index
        ]
        for c, values in self.gathered(done):
            for sample, fields in zip(chunks[c], values, strict=True):
                for name, value in fields.items():
                    setattr(sample, name, value)

    def local_batch(self, samples: list[Sample]) -> tuple[dict[str, Any], float]:
        """This process's part of a mini-batch, collated, and its loss weight: the number of processes times
        its share of the mini-batch's tokens (rows, for sequence-mean losses). Every part has ceil(len /
        processes) rows (TRL gathers per-row metrics): a short part gets a copy of a sample with its
        completion masked."""
        local = samples[self.process_index :: self.num_processes]
        padding = math.ceil(len(samples) / self.num_processes) - len(local)
        batch = self.collate(local + samples[:padding])
        if padding:
            batch["completion_mask"][len(local) :] = 0
            batch["num_items_in_batch"] = batch["completion_mask"].sum() * self.num_processes
        if self.loss_type in SEQUENCE_MEAN_LOSSES:  # TRL divides by the rows, padding included
            return batch, self.num_processes * (len(local) + padding) / len(samples)
        tokens = sum(len(s.completion_ids) for s in local)
        return batch, self.num_processes * tokens / sum(len(s.completion_ids) for s in samples)

    # ---- rollouts ----------------------------------------------------------------------------------------
    def rollouts(
        self, inputs: list[dict[str, Any]], exploration: bool = False, max_rows: int | None = None
    ) -> list[Sample]:
        """Generate, score and compute advantages with TRL for this process's ``inputs``; returns the samples
        of every process, in process order (the global batch). Exploration rollouts are sampled with
        ``num_generations`` G' at t' (see :meth:`_exploration_sampling`).

        ``max_rows``: the most of this process's rows one TRL call generates (e.g. ``generation_batch_size //
        num_processes``, the size of a standard rollout). The rows of every process then go through TRL in
        chunks of whole groups of ``num_generations`` (one group at least), each chunk shared out among the
        processes as one call would share them, and the samples come back in the same order. None (the
        default), or rows that fit in one chunk: one TRL call, as before. Several chunks draw other samples
        than one call would (each call consumes the random stream on its own)."""
        with self._exploration_sampling() if exploration else nullcontext():
            if max_rows is None or len(inputs) <= max_rows:
                output = super()._generate_and_score_completions(inputs)
                return self.gathered(self._samples(output, exploration))
            everyone = self.gathered(inputs)
            unit = math.lcm(self.num_generations, self.num_processes)  # whole groups, equal shares
            per_call = max(1, max_rows * self.num_processes // unit) * unit
            samples: list[Sample] = []
            for start in range(0, len(everyone), per_call):
                chunk = everyone[start : start + per_call]
                share = len(chunk) // self.num_processes
                part = chunk[self.process_index * share : (self.process_index + 1) * share]
                output = super()._generate_and_score_completions(part)
                samples += self.gathered(self._samples(output, exploration))
            return samples

    def _samples(self, output: dict[str, Any], exploration: bool) -> list[Sample]:
        """Split TRL's padded batch of this process into per-sample records (rewards from the stash of
        ``_calculate_rewards``, which holds those of all processes)."""
        images = split_images(output, output["prompt_mask"])
        prompt_ids, prompt_mask = output["prompt_ids"].cpu(), output["prompt_mask"].cpu().bool()
        completion_ids = output["completion_ids"].cpu()
        completion_mask = output["completion_mask"].cpu().bool()
        advantages = output["advantages"].cpu()
        ref = None if self._defers_reference() else output.get("ref_per_token_logps")
        eos = set(self.eos_token_ids)
        offset = self.process_index * prompt_ids.size(0)  # TRL's process slice
        samples = []
        for row in range(prompt_ids.size(0)):
            completion = completion_ids[row][completion_mask[row]]
            samples.append(
                Sample(
                    prompt_ids=prompt_ids[row][prompt_mask[row]],
                    completion_ids=completion,
                    advantage=float(advantages[row]),
                    reward=float(self._last_rewards[offset + row]),
                    truncated=bool(len(completion) == 0 or int(completion[-1]) not in eos),
                    exploration=exploration,
                    ref_logps=ref[row][: len(completion)].cpu() if ref is not None else None,
                    images=images[row],
                )
            )
        return samples

    @contextmanager
    def _exploration_sampling(self):
        """Sample G' completions per prompt at t'; TRL's metrics of these rollouts go under ``exploration/``,
        and their generation time (part of ``time/generation``) is ``time/exploration_generation``."""
        temperature = self.args.exploration_temperature
        saved = (
            self.num_generations,
            self.generation_config.temperature,
            self.generation_kwargs.get("temperature"),
        )
        metrics = self._metrics["train"]
        before = {key: len(values) for key, values in metrics.items()}
        generation_before = self.timers["generation"]
        self.num_generations = self.args.exploration_group_size
        self.generation_config.temperature = self.generation_kwargs["temperature"] = temperature
        try:
            yield
        finally:
            self.num_generations, self.generation_config.temperature = saved[:2]
            self.generation_kwargs["temperature"] = saved[2]
            for key in list(metrics):
                if key.startswith("exploration/") or key == "num_tokens":
                    continue
                added = metrics[key][before.get(key, 0) :]
                if added:
                    del metrics[key][before.get(key, 0) :]
                    metrics[f"exploration/{key}"].extend(added)
            self.record("time/exploration_generation", self.timers["generation"] - generation_before)

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        """TRL's rewards (of all processes: TRL gathers them), kept for hard-prompt detection (TRL returns
        only advantages)."""
        self._skip_reference_pass = False
        with self.timed("scoring"):
            rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
            weights = self.reward_weights.to(rewards_per_func.device)
            rewards = (rewards_per_func * weights.unsqueeze(0)).nansum(dim=1)
            # a completion that no reward function scored (all NaN) is a fault, not a reward of 0
            self._last_rewards = torch.where(rewards_per_func.isnan().all(dim=1), torch.nan, rewards).cpu()
        return rewards_per_func

    def _generate(self, prompts: list):
        with self.timed("generation"):
            result = super()._generate(prompts)
        self.timers["generated_tokens"] += sum(len(ids) for ids in result[1])
        self._skip_reference_pass = self._defers_reference()
        return result

    def _defers_reference(self) -> bool:
        """Whether the KL term's reference log-probs are computed when a sample is first trained on, instead
        of for every rollout in TRL's scoring. The values are the same (the reference policy never changes);
        rollouts that selection drops cost no reference pass. Not with vLLM's importance-sampling
        correction."""
        return (
            self.defer_reference_logps
            and self.beta != 0.0
            and not (self.use_vllm and self.vllm_importance_sampling_correction)
        )

    @contextmanager
    def timed(self, name: str):
        """Add the wall time of the block to ``timers[name]``."""
        started = perf_counter()
        try:
            yield
        finally:
            self.timers[name] += perf_counter() - started

    # ---- losses and log-probs ----------------------------------------------------------------------------
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """TRL's loss, plus the extra term :meth:`_loss_terms` returned for this mini-batch (KL-Cov's)."""
        self._loss_inputs, self._extra_loss = inputs, None
        try:
            loss = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        finally:
            self._loss_inputs = None
        return loss if self._extra_loss is None else loss + self._extra_loss

    def _get_per_token_logps_and_entropies(
        self, model, input_ids, attention_mask, logits_to_keep, *args, **kwargs
    ):
        """TRL's log-probs, passed through :meth:`_loss_terms` inside a training loss. TRL's reference pass
        over fresh rollouts is skipped (zeros, never read) when it is deferred."""
        if self._skip_reference_pass and not torch.is_grad_enabled():
            return torch.zeros(input_ids.size(0), logits_to_keep, device=input_ids.device), None, None
        logps, entropies, aux = super()._get_per_token_logps_and_entropies(
            model, input_ids, attention_mask, logits_to_keep, *args, **kwargs
        )
        if self._loss_inputs is not None and torch.is_grad_enabled():
            logps, self._extra_loss = self._loss_terms(logps, self._loss_inputs)
        return logps, entropies, aux

    def _loss_terms(self, logps: torch.Tensor, inputs: dict[str, Any]) -> tuple[torch.Tensor, Any]:
        """Inside TRL's loss: the log-probs TRL goes on with, and an extra loss term (or None). ``inputs`` is
        the mini-batch; TRL reads its ``ref_per_token_logps`` after this hook."""
        return logps, None

    def policy_logps(self, batch: dict[str, Any], compute_entropy: bool = False):
        """Per-token log-probs (and entropies) of a collated batch under the current policy, as TRL's
        rollout."""
        with disable_gradient_checkpointing(self.model, self.args.gradient_checkpointing_kwargs):
            logps, entropies, _ = self._get_per_token_logps_and_entropies(
                self.model, **self.model_inputs(batch), compute_entropy=compute_entropy
            )
        return logps, entropies

    def reference_logps(self, batch: dict[str, Any]) -> torch.Tensor:
        """Per-token log-probs under the reference policy, as TRL's rollout computes them: the reference
        model, or the policy with its adapter off (or its frozen 'ref' adapter when one is loaded)."""
        inputs = self.model_inputs(batch)
        with disable_gradient_checkpointing(self.model, self.args.gradient_checkpointing_kwargs):
            if self.ref_model is not None:
                return self._get_per_token_logps_and_entropies(self.ref_model, **inputs)[0]
            model = self.accelerator.unwrap_model(self.model)
            with use_adapter(model, adapter_name="ref" if "ref" in model.peft_config else None):
                return self._get_per_token_logps_and_entropies(self.model, **inputs)[0]

    @staticmethod
    def model_inputs(batch: dict[str, Any]) -> dict[str, Any]:
        """The arguments of ``_get_per_token_logps_and_entropies`` for a collated batch: ids, attention mask,
        ``logits_to_keep`` and any image inputs."""
        return {
            "input_ids": torch.cat([batch["prompt_ids"], batch["completion_ids"]], dim=1),
            "attention_mask": torch.cat([batch["prompt_mask"], batch["completion_mask"]], dim=1),
            "logits_to_keep": batch["completion_ids"].size(1),
            **{key: batch[key] for key in IMAGE_KEYS if key in batch},
        }

    def collate(self, samples: list[Sample], with_old_logps: bool = True) -> dict[str, Any]:
        """Pad samples into the batch dict TRL's loss reads (prompts left-padded, completions right-padded);
        ``with_old_logps=False`` leaves out the old and the reference log-probs (for the passes that make
        them)."""
        device = self.accelerator.device

        def padded(tensors: list[torch.Tensor], value: float, side: str) -> torch.Tensor:
            return pad(tensors, padding_value=value, padding_side=side).to(device)

        prompts = [s.prompt_ids for s in samples]
        completions = [s.completion_ids for s in samples]
        batch: dict[str, Any] = {
            "prompt_ids": padded(prompts, self._tokenizer.pad_token_id, "left"),
            "prompt_mask": padded([torch.ones_like(p) for p in prompts], 0, "left"),
            "completion_ids": padded(completions, self._tokenizer.pad_token_id, "right"),
            "completion_mask": padded([torch.ones_like(c) for c in completions], 0, "right"),
        }
        images = collate_images(
            [s.images for s in samples], [len(p) for p in prompts], batch["completion_ids"].size(1)
        )
        batch.update({k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in images.items()})
        # TRL's token-sum losses ("dapo", ...) divide by num_items_in_batch / number of processes: the local
        # count
        batch["num_items_in_batch"] = batch["completion_mask"].sum() * self.num_processes
        if samples[0].token_advantages is not None:
            batch["advantages"] = padded([s.token_advantages for s in samples], 0.0, "right")
        else:
            batch["advantages"] = torch.tensor(
                [s.advantage for s in samples], dtype=torch.float32, device=device
            )
        if with_old_logps:
            batch["old_per_token_logps"] = padded([s.old_logps for s in samples], 0.0, "right")
            if self.beta != 0.0:
                batch["ref_per_token_logps"] = padded([s.ref_logps for s in samples], 0.0, "right")
        return batch

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """TRL's logging, with TRL's loss-side entropy renamed ``entropy/update_batch`` (it measures the
        samples a method trains on, not the policy)."""
        metrics = self._metrics["train"]
        for trl_name, name in UPDATE_BATCH_METRICS.items():  # TRL adds these to ``logs`` in its ``log``
            if trl_name in metrics:
                metrics[name] = metrics.pop(trl_name)
        super().log(logs, start_time)
