"""``UECTrainer``: UEC-RL (and every registered baseline) on top of TRL's ``GRPOTrainer``.

One training step is one step of the paper (notes, 1.8); the rules it applies live in
:mod:`uec_repro.selection`, the baselines' loss pieces in :mod:`uec_repro.baselines`::

    standard = GRPOTrainer._generate_and_score_completions(G rollouts per prompt)       # TRL, unchanged
    hard     = prompts whose G rewards are all 0
    explore  = GRPOTrainer._generate_and_score_completions(G' rollouts per hard prompt at t')
    kept     = retention filters + overlong filter over exploration, then standard samples (the authors' order)
    update   = batch buffer: kept samples, released in whole batches of B0 (or all kept, buffer off)
    for each mini-batch of the update, in order: TRL's loss (clip, k3 KL, bnpo mean) -> backward -> optimizer step
    replay buffer <- samples of the update that pass the replay rule
    every f_replay steps: draw from the replay buffer (this step's entries included), the same update on them
    every probe_every steps: the entropy probe (the same prompts and draws for every method)

TRL's methods are called, not copied: generation, scoring and advantages come from
``_generate_and_score_completions`` (called twice when there are hard prompts, with ``num_generations`` G'
and the sampling temperature t' for the second call), the loss from ``compute_loss``. What this class adds
is the step structure: HF's loop makes one optimizer step per training step, so the first optimizer steps of
a step are made here and the last one is left to HF; a step with nothing to train on makes no backward, so
HF's optimizer step finds no gradient and changes nothing (AdamW skips parameters without a gradient).

Per step, one row of ``metrics.jsonl`` in the output directory (TRL's metrics and those below, grouped by
prefix): ``uec/`` selection counts and buffer sizes, ``exploration/`` TRL's metrics of the exploration
rollouts, ``probe/`` the policy measured on fixed probe prompts (the primary entropy, comparable between methods),
``entropy/update_batch*`` entropy measured on the samples the method trains on (TRL's full-distribution entropy
and the authors' mean -log p of the sampled tokens: a property of the method's selection as much as of the
policy), ``time/`` wall time split, ``memory/`` peak RSS (and CUDA), ``validation/`` in-training validation
accuracy, ``faults/`` steps skipped for NaN/inf. The probe also writes its per-prompt values to ``probe.jsonl``
(see :meth:`UECTrainer._probe`), and its step-0 row (the initial policy) is the first row of ``metrics.jsonl``.

Checkpoints are HF's plus the two buffers and this class's random states (:mod:`uec_repro.checkpoints`), so a
resumed run continues exactly where the checkpoint left it. A step with non-finite rewards, advantages, loss
or gradients makes no update; too many in a row stop the run (``nonfinite_patience``).

Several processes (``accelerate launch``, ``torchrun``): B0 is the global batch, ``per_device_train_batch_size``
x the number of processes. Each process generates its share of the rollouts (the standard ones by TRL's sampler,
the exploration ones as an even split of all hard prompts' G' rows); every process then gathers all samples, so
hard-prompt detection, the filters, both buffers and the replay draw see the global batch and make the same
decisions with the same random state. Each mini-batch is split across the processes and every process's loss is
weighted by its share of the mini-batch (tokens, or rows for sequence-mean losses), so that DDP's gradient
average equals the single-process gradient of the whole mini-batch. KL-Cov and Clip-Cov pick their tokens within
each process's share, as the authors' code does within each GPU's micro-batch.

Vision-language models (Qwen-VL layout): every sample keeps its own image inputs, cut out of TRL's packed batch
and packed again for each mini-batch by :mod:`uec_repro.multimodal`, so exploration, the buffers and replay carry
a sample's images with it.
"""

from __future__ import annotations

import json
import math
import random
import resource
import shutil
import time
import warnings
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from accelerate.utils import gather_object
from trl import GRPOTrainer
from trl.models.utils import disable_gradient_checkpointing
from trl.trainer.utils import pad

from .atomic import write_json_atomic
from .baselines import clip_cov_mask, entropy_shaped_advantages, kl_cov_penalty
from .checkpoints import (
    BUFFERS_FILE,
    PREFIX,
    STATE_FILE,
    complete_checkpoints,
    directory_bytes,
    load_samples,
    remove_checkpoints,
    save_samples,
)
from .config import UECConfig
from .evaluation import evaluate_policy
from .faults import fault_point
from .kl import clamped_reference_logps
from .layout import METRICS_FILE, PROBE_FILE
from .multimodal import IMAGE_KEYS, collate_images, split_images
from .selection import (
    BatchBuffer,
    ReplayBuffer,
    drop_overlong,
    hard_prompts,
    keep_exploration,
    keep_regular,
    replay_entry,
)
from .validation import ParameterError

__all__ = ["InsufficientDiskError", "NonFiniteError", "Sample", "UECTrainer"]

# TRL's names of the loss-side measures, which see only the samples a method trains on -> our names
UPDATE_BATCH_METRICS = {"entropy": "entropy/update_batch"}
# TRL loss types that average per-sequence means (the others average over tokens)
SEQUENCE_MEAN_LOSSES = ("grpo", "sapo", "dr_grpo", "luspo")


class NonFiniteError(RuntimeError):
    """NaN or inf in rewards, advantages, loss or gradients on more consecutive steps than allowed, or in the
    weights about to be checkpointed."""


class InsufficientDiskError(OSError):
    """Not enough free disk space to write the next checkpoint; the run stops and keeps what it has."""


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


class UECTrainer(GRPOTrainer):
    """``GRPOTrainer`` with UEC-RL's targeted exploration, selective retention, overlong filter, batch buffer and
    replay, plus the KL-Cov, Clip-Cov and Entropy-Adv baselines, each switched by a :class:`UECConfig` field.

    ``validation_dataset`` (``prompt`` and ``answer`` columns) is evaluated every ``validation_every`` steps at
    ``validation_temperature`` with one sample per prompt, as in the authors' code. ``probe_dataset`` (same
    columns) is the entropy probe's fixed prompt set (see :meth:`_probe`).
    """

    def __init__(
        self, *args: Any, validation_dataset: Any = None, probe_dataset: Any = None, **kwargs: Any
    ) -> None:
        config = kwargs.get("args", args[2] if len(args) > 2 else None)
        if not isinstance(config, UECConfig):
            raise ParameterError(
                f"args must be a UECConfig (see uec_repro.config.method_config), got {type(config)}"
            )
        super().__init__(*args, **kwargs)
        self.num_processes, self.process_index = (
            self.accelerator.num_processes,
            self.accelerator.process_index,
        )
        self.validation_dataset = validation_dataset
        self.probe_dataset = probe_dataset
        self.batch_size = self.args.per_device_train_batch_size * self.num_processes  # B0, the global batch
        self.mini_batch_size = math.ceil(self.batch_size / self.args.updates_per_batch)
        self.exploration_generations = self.args.exploration_group_size  # G'
        self.batch_buffer = (
            BatchBuffer(self.batch_size, int(self.args.batch_buffer_capacity * self.batch_size))
            if self.args.batch_buffer
            else None
        )
        self.replay_buffer = (
            ReplayBuffer(self.batch_size, int(self.args.replay_capacity * self.batch_size))
            if self.args.replay
            else None
        )
        self._rng = random.Random(self.args.seed)
        self._clip_cov_generator = torch.Generator().manual_seed(self.args.seed + self.process_index)
        self._last_rewards: torch.Tensor | None = None
        self._loss_inputs: dict[str, Any] | None = None  # the mini-batch whose loss is being computed
        self._kl_cov_term: torch.Tensor | None = None
        self._timers: dict[str, float] = defaultdict(float)
        self._faults: list[str] = []  # what was non-finite in the current step
        self._nonfinite_streak = 0
        self.metrics_path = Path(self.args.output_dir) / METRICS_FILE
        self.probe_path = Path(self.args.output_dir) / PROBE_FILE

    # ---------------------------------------------------------------------------------------------
    # One training step
    # ---------------------------------------------------------------------------------------------
    def training_step(self, model, inputs, num_items_in_batch=None) -> torch.Tensor:
        """Rollout, select, buffer, update, replay. ``inputs`` is the raw generation batch of TRL's sampler."""
        started = time.perf_counter()
        model.train()  # as HF's training_step (loading a checkpoint's adapter leaves the model in eval mode)
        self._timers.clear()
        self._faults = []
        if self.state.global_step == 0:
            self._probe_initial_policy()
        kept = self._rollout(inputs)
        update = self._take_update(kept)
        before_entry = self._enter_replay(update)
        replay = self._draw_replay()
        loss = self._train(model, {"update": update, "replay": replay})
        if self._faults and before_entry is not None:  # the update was not made: its samples do not enter
            self.replay_buffer.restore(before_entry)
        self._log("uec/replay_buffer_size", float(len(self.replay_buffer or ())))
        self._log("uec/batch_buffer_size", float(len(self.batch_buffer or ())))
        self._count_faults()
        self._validate_if_due()
        self._probe_if_due()
        self._log_step_resources(time.perf_counter() - started)
        return loss

    def _rollout(self, inputs: list[dict[str, Any]]) -> list[Sample]:
        """Standard rollouts, then exploration of hard prompts; returns the samples that pass the filters."""
        group = self.num_generations
        fault_point("generation", self.state.global_step + 1)
        standard = self._all_samples(super()._generate_and_score_completions(inputs), exploration=False)
        rewards = torch.tensor([s.reward for s in standard])
        if not self._finite("rewards", rewards) or not self._finite(
            "advantages", [s.advantage for s in standard]
        ):
            standard = []  # none of this step's rollouts is trained on or buffered
            rewards = torch.zeros(0)
        hard = hard_prompts(rewards, group)
        self._log("uec/hard_prompts", float(hard.sum()))
        self._log("uec/prompts", float(hard.numel()))
        explored: list[Sample] = []
        if self.args.exploration and hard.any():
            started = time.perf_counter()
            all_inputs = self._gathered(inputs)
            hard_inputs = [all_inputs[g * group] for g in hard.nonzero().flatten().tolist()]
            repeated = [row for row in hard_inputs for _ in range(self.exploration_generations)]
            share = len(repeated) // self.num_processes  # this process's contiguous share, in process order
            with self._exploration_sampling():
                output = super()._generate_and_score_completions(
                    repeated[self.process_index * share : (self.process_index + 1) * share]
                )
                explored = self._all_samples(output, exploration=True)
            if not self._finite("exploration rewards", [s.reward for s in explored]) or not self._finite(
                "exploration advantages", [s.advantage for s in explored]
            ):
                explored = []
            self._timers["exploration"] += time.perf_counter() - started
        self._log("uec/exploration_generated", float(len(explored)))
        self._log(
            "uec/exploration_solved_prompts",
            float(
                sum(
                    any(s.reward > 0 for s in explored[i : i + self.exploration_generations])
                    for i in range(0, len(explored), self.exploration_generations)
                )
            ),
        )
        return self._select(standard, explored)

    def _select(self, standard: list[Sample], explored: list[Sample]) -> list[Sample]:
        """Selective retention and the overlong filter (notes 1.4-1.5), with their counts logged."""

        def advantages(samples: list[Sample]) -> torch.Tensor:
            return torch.tensor([s.advantage for s in samples], dtype=torch.float32)

        explored_advantages = advantages(explored)
        keep_standard = torch.ones(len(standard), dtype=torch.bool)
        keep_explored = torch.ones(len(explored), dtype=torch.bool)
        if self.args.retention:
            keep_standard = keep_regular(advantages(standard), self.args.regular_threshold)
            keep_explored = keep_exploration(explored_advantages, self.args.exploration_rule)
        self._log("uec/regular_kept", float(keep_standard.sum()))
        positive = explored_advantages > 0
        self._log("uec/exploration_kept_positive", float((keep_explored & positive).sum()))
        self._log("uec/exploration_kept_negative", float((keep_explored & ~positive).sum()))
        # exploration samples first, as the authors concatenate them: the order decides what waits in the batch
        # buffer and what its overflow drops
        kept = [s for s, k in zip(explored, keep_explored.tolist(), strict=True) if k]
        kept += [s for s, k in zip(standard, keep_standard.tolist(), strict=True) if k]
        truncated = torch.tensor([s.truncated for s in kept], dtype=torch.bool)
        self._log("uec/truncated_kept", float(truncated.sum()))
        keep = torch.ones(len(kept), dtype=torch.bool)
        if self.args.overlong_filter and kept:
            keep = drop_overlong(advantages(kept), truncated)
        self._log("uec/overlong_dropped", float((~keep).sum()))
        return [s for s, k in zip(kept, keep.tolist(), strict=True) if k]

    def _enter_replay(self, update: list[Sample]) -> list[Sample] | None:
        """Put the update's samples that pass the replay rule into the replay buffer, before this step's draw, as
        the authors do; returns the buffer's content before (to undo the entry if the update fails)."""
        if self.replay_buffer is None or not update or self._faults:
            return None
        before = self.replay_buffer.contents()
        advantages = torch.tensor([s.advantage for s in update])
        entering = replay_entry(advantages, self.args.replay_rule, self.args.replay_threshold)
        self.replay_buffer.push(s for s, keep in zip(update, entering.tolist(), strict=True) if keep)
        return before

    def _draw_replay(self) -> list[Sample]:
        """Every ``replay_frequency`` steps, the samples to replay (none while the buffer holds less than B0)."""
        due = (
            self.replay_buffer is not None and (self.state.global_step + 1) % self.args.replay_frequency == 0
        )
        replay = self.replay_buffer.draw(self._rng) if due else []
        self._log("uec/replayed", float(bool(replay)))
        self._log("uec/replay_samples", float(len(replay)))
        return replay

    def _take_update(self, kept: list[Sample]) -> list[Sample]:
        """The samples to train on now: whole batches from the batch buffer, or everything kept (buffer off)."""
        if self.batch_buffer is None:
            update = kept
        else:
            self.batch_buffer.push(kept)
            update = self.batch_buffer.pop()
        self._log("uec/updated", float(bool(update)))
        self._log("uec/update_samples", float(len(update)))
        self._log("uec/update_exploration_samples", float(sum(s.exploration for s in update)))
        return update

    # ---------------------------------------------------------------------------------------------
    # Updates
    # ---------------------------------------------------------------------------------------------
    def _train(self, model, phases: dict[str, list[Sample]]) -> torch.Tensor:
        """Mini-batch updates over each phase's samples (update, then replay); every optimizer step but the last is
        made here, the last by HF's loop. A phase's old log-probs are prepared just before its first mini-batch, so
        replay's fresh ones (``replay_fresh_logprobs``) come from the weights after the update. Returns the mean
        loss (0, with no backward, when there is nothing)."""
        mini_batches = [
            (phase, batch) for phase, samples in phases.items() for batch in self._mini_batches(samples)
        ]
        self._log("uec/optimizer_steps", float(len(mini_batches)))
        losses = []
        for position, (phase, samples) in enumerate(mini_batches):
            started = time.perf_counter()
            if position == 0 or mini_batches[position - 1][0] != phase:
                self._prepare_phase(phase, phases[phase])
            fault_point(phase, self.state.global_step + 1)
            inputs, weight = self._local_batch(samples)
            with self.compute_loss_context_manager():
                loss = self.compute_loss(model, inputs) * weight
            if not self._finite("loss", loss.detach(), every_process=True):
                break
            self.accelerator.backward(loss)  # DDP's all-reduce: every process checks the same gradients
            if not self._finite("gradients", [p.grad for p in model.parameters() if p.grad is not None]):
                break
            losses.append(loss.detach())
            if position < len(mini_batches) - 1:
                self._optimizer_step(model)
            self._timers[phase] += time.perf_counter() - started
        if self._faults:
            self.optimizer.zero_grad(set_to_none=True)  # HF's optimizer step then changes nothing
        if not losses:
            return torch.zeros((), device=self.accelerator.device)
        return torch.stack(losses).mean()

    def _mini_batches(self, samples: list[Sample]) -> list[list[Sample]]:
        """The mini-batches of one phase: in order, ``mini_batch_size`` samples each (the last may be smaller), as
        the authors split; with ``shuffle_mini_batches``, shuffled into near-equal parts, as TRL does."""
        if not self.args.shuffle_mini_batches:
            return self._chunks(samples)
        order = list(range(len(samples)))
        self._rng.shuffle(order)
        parts = math.ceil(len(samples) / self.mini_batch_size)  # sizes differ by at most one; none is empty
        return [[samples[i] for i in order[part::parts]] for part in range(parts)]

    def _prepare_phase(self, phase: str, samples: list[Sample]) -> None:
        """Old (and reference) log-probs of a phase's samples, computed now; replay with ``replay_fresh_logprobs``
        recomputes them from each sample's own advantage (Entropy-Adv's shaping is never applied twice)."""
        started = time.perf_counter()
        if phase == "replay" and self.args.replay_fresh_logprobs:
            for sample in samples:
                sample.old_logps = sample.token_advantages = None
        self._prepare_old_logps(samples)
        self._timers[phase] += time.perf_counter() - started

    def _local_batch(self, samples: list[Sample]) -> tuple[dict[str, Any], float]:
        """This process's part of a mini-batch, collated, and the weight of its loss: the number of processes times
        its share of the mini-batch's tokens (of its rows, for sequence-mean losses). TRL's loss is a mean over the
        local part and DDP averages the processes' gradients, so the weighted result is the gradient of the whole
        mini-batch's loss (weight 1 in one process).

        Every process's part has ceil(len / processes) rows, because TRL gathers per-row metrics across processes
        (and every process must take part in DDP's backward): a part that is one sample short gets a copy of one
        with its completion mask zeroed, which adds nothing to the loss, the gradient or the token metrics."""
        local = samples[self.process_index :: self.num_processes]
        padding = math.ceil(len(samples) / self.num_processes) - len(local)
        batch = self._collate(local + samples[:padding])
        if padding:
            batch["completion_mask"][len(local) :] = 0
            batch["num_items_in_batch"] = batch["completion_mask"].sum() * self.num_processes

        if self.loss_type in SEQUENCE_MEAN_LOSSES:  # TRL divides by the rows, padding included
            return batch, self.num_processes * (len(local) + padding) / len(samples)
        return batch, self.num_processes * sum(len(s.completion_ids) for s in local) / sum(
            len(s.completion_ids) for s in samples
        )

    def _optimizer_step(self, model) -> None:
        if self.args.max_grad_norm and self.args.max_grad_norm > 0:
            norm = self.accelerator.clip_grad_norm_(model.parameters(), self.args.max_grad_norm)
            self._log("uec/inner_grad_norm", float(norm))
        self.optimizer.step()
        self.optimizer.zero_grad()

    @torch.no_grad()
    def _prepare_old_logps(self, samples: list[Sample]) -> None:
        """Old log-probs (and Entropy-Adv's shaped advantages) for samples that have none yet, at the training
        temperature, as the authors compute them when a batch leaves the batch buffer; and, when the KL term is on,
        the reference log-probs of samples that have none (deferred from the rollout: see ``_defers_reference``).

        Samples go through these no-grad passes sorted by length, in chunks of one mini-batch, so that little of
        each chunk is padding; a sample's values do not depend on its chunk (up to float rounding)."""
        if self.beta != 0.0:

            def reference(chunk: list[Sample]) -> list[dict[str, torch.Tensor]]:
                logps = self._reference_logps(self._model_inputs(self._collate(chunk, with_old_logps=False)))
                return [
                    {"ref_logps": logps[row, : len(s.completion_ids)].cpu()} for row, s in enumerate(chunk)
                ]

            self._fill(self._by_length([s for s in samples if s.ref_logps is None]), reference)
        fresh = self._by_length([s for s in samples if s.old_logps is None])
        if not fresh:
            return
        entropy_adv = self.args.entropy_adv_alpha > 0

        def old(chunk: list[Sample]) -> list[dict[str, torch.Tensor]]:
            batch = self._collate(chunk, with_old_logps=False)
            with disable_gradient_checkpointing(self.model, self.args.gradient_checkpointing_kwargs):
                logps, entropies, _ = self._get_per_token_logps_and_entropies(
                    self.model,
                    **self._model_inputs(batch),
                    compute_entropy=entropy_adv,
                )
            if entropy_adv:
                shaped = entropy_shaped_advantages(
                    batch["advantages"],
                    entropies,
                    batch["completion_mask"],
                    self.args.entropy_adv_alpha,
                    self.args.entropy_adv_kappa,
                )
            values = []
            for row, sample in enumerate(chunk):
                length = len(sample.completion_ids)
                values.append(
                    {"old_logps": logps[row, :length].cpu()}
                    | ({"token_advantages": shaped[row, :length].cpu()} if entropy_adv else {})
                )
            return values

        self._fill(fresh, old)
        self._log("entropy/update_batch_sampled_nll", self._mean_nll(fresh))
        explored = [s for s in fresh if s.exploration]
        if explored:
            self._log("entropy/update_batch_exploration_sampled_nll", self._mean_nll(explored))

    def _fill(self, samples: list[Sample], compute) -> None:
        """Set per-sample values that ``compute`` makes for one chunk (a mini-batch) of ``samples`` at a time; the
        chunks are shared out among the processes in turn, and every process gets every sample's values."""
        chunks = self._chunks(samples)
        done = [
            (c, compute(chunk))
            for c, chunk in enumerate(chunks)
            if c % self.num_processes == self.process_index
        ]
        for c, values in self._gathered(done):
            for sample, fields in zip(chunks[c], values, strict=True):
                for name, value in fields.items():
                    setattr(sample, name, value)

    @staticmethod
    def _mean_nll(samples: list[Sample]) -> float:
        """The authors' entropy estimate: mean -log p of the sampled tokens, over all tokens of ``samples``."""
        return -sum(float(s.old_logps.sum()) for s in samples) / max(
            sum(len(s.completion_ids) for s in samples), 1
        )

    def _gathered(self, items: list) -> list:
        """``items`` of every process, in process order (the list itself in one process)."""
        return gather_object(items) if self.num_processes > 1 else items

    @staticmethod
    def _by_length(samples: list[Sample]) -> list[Sample]:
        return sorted(samples, key=lambda s: (len(s.prompt_ids), len(s.completion_ids)))

    def _chunks(self, samples: list[Sample]) -> list[list[Sample]]:
        return [
            samples[start : start + self.mini_batch_size]
            for start in range(0, len(samples), self.mini_batch_size)
        ]

    @staticmethod
    def _model_inputs(batch: dict[str, Any]) -> dict[str, Any]:
        """The arguments of ``_get_per_token_logps_and_entropies`` for a collated batch: ids, attention mask,
        ``logits_to_keep`` and any image inputs."""
        return {
            "input_ids": torch.cat([batch["prompt_ids"], batch["completion_ids"]], dim=1),
            "attention_mask": torch.cat([batch["prompt_mask"], batch["completion_mask"]], dim=1),
            "logits_to_keep": batch["completion_ids"].size(1),
            **{key: batch[key] for key in IMAGE_KEYS if key in batch},
        }

    def _reference_logps(self, inputs: dict[str, Any]):
        """Per-token log-probs under the reference policy, as TRL's rollout computes them: the reference model, or
        the policy with its adapter off (or its frozen 'ref' adapter when one is loaded)."""
        from trl.trainer.utils import use_adapter

        with disable_gradient_checkpointing(self.model, self.args.gradient_checkpointing_kwargs):
            if self.ref_model is not None:
                return self._get_per_token_logps_and_entropies(self.ref_model, **inputs)[0]
            model = self.accelerator.unwrap_model(self.model)
            with use_adapter(model, adapter_name="ref" if "ref" in model.peft_config else None):
                return self._get_per_token_logps_and_entropies(self.model, **inputs)[0]

    def _collate(self, samples: list[Sample], with_old_logps: bool = True) -> dict[str, Any]:
        """Pad samples into the batch dict TRL's loss reads (prompts left-padded, completions right-padded);
        ``with_old_logps=False`` leaves out the old and the reference log-probs (for the passes that make them)."""
        device = self.accelerator.device
        pad_id = self._tokenizer.pad_token_id

        def padded(tensors: list[torch.Tensor], value: float, side: str) -> torch.Tensor:
            return pad(tensors, padding_value=value, padding_side=side).to(device)

        prompts = [s.prompt_ids for s in samples]
        completions = [s.completion_ids for s in samples]
        batch: dict[str, Any] = {
            "prompt_ids": padded(prompts, pad_id, "left"),
            "prompt_mask": padded([torch.ones_like(p) for p in prompts], 0, "left"),
            "completion_ids": padded(completions, pad_id, "right"),
            "completion_mask": padded([torch.ones_like(c) for c in completions], 0, "right"),
        }
        images = collate_images(
            [s.images for s in samples], [len(p) for p in prompts], batch["completion_ids"].size(1)
        )
        batch.update(
            {
                key: value.to(device) if isinstance(value, torch.Tensor) else value
                for key, value in images.items()
            }
        )
        # TRL's token-sum losses ("dapo", ...) divide by num_items_in_batch / number of processes: the local count
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

    # ---------------------------------------------------------------------------------------------
    # Faults and checkpoints
    # ---------------------------------------------------------------------------------------------
    def _finite(self, what: str, values: torch.Tensor | list, every_process: bool = False) -> bool:
        """False, and ``what`` recorded as this step's fault, if ``values`` (a tensor, or floats, or tensors)
        hold a NaN or inf; with ``every_process``, if they do in any process (for process-local values, so that
        all processes skip together)."""
        items = values if isinstance(values, list) else [values]
        finite = all(bool(torch.isfinite(torch.as_tensor(v)).all()) for v in items)
        if every_process and self.num_processes > 1:
            flags = torch.tensor([float(finite)], device=self.accelerator.device)
            finite = bool(self.accelerator.gather(flags).all())
        if not finite:
            self._faults.append(what)
        return finite

    def _count_faults(self) -> None:
        """Log whether this step was skipped for non-finite values; stop after too many such steps in a row."""
        self._log("faults/skipped_step", float(bool(self._faults)))
        if not self._faults:
            self._nonfinite_streak = 0
            return
        self._nonfinite_streak += 1
        step, faults = self.state.global_step + 1, ", ".join(dict.fromkeys(self._faults))
        message = f"step {step}: non-finite {faults}; the step makes no update"
        if self._nonfinite_streak > self.args.nonfinite_patience:
            raise NonFiniteError(
                f"{message}, and {self._nonfinite_streak} step(s) in a row had non-finite values "
                f"(nonfinite_patience={self.args.nonfinite_patience}): the run stops; its last "
                "complete checkpoint and metrics are kept"
            )
        warnings.warn(message, RuntimeWarning, stacklevel=2)

    def train(self, resume_from_checkpoint: str | bool | None = None, *args: Any, **kwargs: Any):
        """HF's ``train``; resuming also restores the buffers and random states this class keeps.
        ``resume_from_checkpoint=True`` takes the newest complete checkpoint in ``output_dir``."""
        if resume_from_checkpoint is True:
            complete = complete_checkpoints(self.args.output_dir)
            if not complete:
                raise ParameterError(
                    f"resume_from_checkpoint=True, but output_dir={self.args.output_dir!r} holds no "
                    f"complete checkpoint (a checkpoint-<step> folder with {STATE_FILE})"
                )
            resume_from_checkpoint = str(complete[-1])
        if resume_from_checkpoint:
            self._load_state(Path(resume_from_checkpoint))
        return super().train(resume_from_checkpoint, *args, **kwargs)

    def _save_checkpoint(self, model, trial) -> None:
        """HF's checkpoint, then the buffers and random states, then the state file that marks it complete;
        older checkpoints are removed once it is. Refuses non-finite weights and a disk short of space."""
        step = self.state.global_step
        bad = [
            name for name, p in model.named_parameters() if p.requires_grad and not torch.isfinite(p).all()
        ]
        if bad:
            raise NonFiniteError(
                f"checkpoint-{step} not written: non-finite weights in {len(bad)} tensor(s), e.g. "
                f"{bad[0]}; the previous checkpoint is kept"
            )
        run_dir = Path(self._get_output_dir(trial))
        folder = run_dir / f"{PREFIX}{step}"
        self._check_disk(run_dir)
        super()._save_checkpoint(model, trial)
        fault_point("checkpoint", step)
        generators = self._gathered([self._clip_cov_generator.get_state()])  # one per process
        if self.accelerator.is_main_process:  # the buffers and the Python random state are the same in all
            save_samples(
                folder / BUFFERS_FILE,
                {
                    "batch": self.batch_buffer.contents() if self.batch_buffer is not None else [],
                    "replay": self.replay_buffer.contents() if self.replay_buffer is not None else [],
                },
                extra={f"clip_cov_generator.{rank}": state for rank, state in enumerate(generators)},
            )
            write_json_atomic(
                folder / STATE_FILE,
                {
                    "step": step,
                    "python_random": self._rng.getstate(),
                    "batch_buffer_dropped": self.batch_buffer.dropped if self.batch_buffer is not None else 0,
                    "nonfinite_streak": self._nonfinite_streak,
                },
            )
            remove_checkpoints(run_dir, keep=folder)
        self.accelerator.wait_for_everyone()

    def _check_disk(self, run_dir: Path) -> None:
        """Enough free space for one more checkpoint (the last one's size, or four times the trainable weights
        before the first) plus ``min_free_disk_mb``, else InsufficientDiskError."""
        run_dir.mkdir(parents=True, exist_ok=True)
        previous = complete_checkpoints(run_dir)
        trainable = sum(p.numel() * p.element_size() for p in self.model.parameters() if p.requires_grad)
        needed = (
            directory_bytes(previous[-1]) if previous else 4 * trainable
        ) + self.args.min_free_disk_mb * 2**20
        free = shutil.disk_usage(run_dir).free
        if free < needed:
            raise InsufficientDiskError(
                f"checkpoint-{self.state.global_step} not written: {free / 2**20:.0f} MB free in {run_dir}, "
                f"{needed / 2**20:.0f} MB needed (one checkpoint + min_free_disk_mb={self.args.min_free_disk_mb}); "
                "the run stops, its earlier checkpoints and metrics are kept: free space and rerun to resume"
            )

    def _load_state(self, folder: Path) -> None:
        """The buffers and random states saved by :meth:`_save_checkpoint` (HF restores the rest)."""
        if not (folder / STATE_FILE).is_file():
            raise ParameterError(
                f"resume_from_checkpoint={str(folder)!r} is not a complete checkpoint (no "
                f"{STATE_FILE}: it was cut off while being written)"
            )
        state = json.loads((folder / STATE_FILE).read_text())
        groups, extra = load_samples(folder / BUFFERS_FILE, Sample)
        if self.batch_buffer is not None:
            self.batch_buffer.restore(groups["batch"], state["batch_buffer_dropped"])
        if self.replay_buffer is not None:
            self.replay_buffer.restore(groups["replay"])
        version, internal, gauss = state["python_random"]
        self._rng.setstate((version, tuple(internal), gauss))
        generator = extra.get(f"clip_cov_generator.{self.process_index}")
        if generator is None:
            warnings.warn(
                f"{folder} was written by {sum(k.startswith('clip_cov_generator.') for k in extra)} "
                f"process(es), this is process {self.process_index}: its Clip-Cov draws start afresh",
                RuntimeWarning,
                stacklevel=2,
            )
        else:
            self._clip_cov_generator.set_state(generator)
        self._nonfinite_streak = state["nonfinite_streak"]

    # ---------------------------------------------------------------------------------------------
    # Hooks into TRL (wrapped, never copied)
    # ---------------------------------------------------------------------------------------------
    # Set from the end of a rollout's generation to its scoring: TRL's forward passes then are its reference pass.
    _skip_reference_pass = False
    # Class switch, so that benchmarks/ can time TRL's eager reference pass against the deferred one.
    defer_reference_logps = True

    def _defers_reference(self) -> bool:
        """Whether the KL term's reference log-probs are computed for the samples trained on, when they are first
        trained on (:meth:`_prepare_old_logps`), instead of for every rollout in TRL's scoring. The values are the
        same (the reference policy never changes); rollouts that selection drops, most exploration rollouts among
        them, cost no reference pass. Not with vLLM's importance-sampling correction, whose own pass comes there."""
        return (
            self.defer_reference_logps
            and self.beta != 0.0
            and not (self.use_vllm and self.vllm_importance_sampling_correction)
        )

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        """TRL's rewards (of all processes: TRL gathers them), kept for hard-prompt detection (TRL returns only
        advantages)."""
        self._skip_reference_pass = False
        started = time.perf_counter()
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        weights = self.reward_weights.to(rewards_per_func.device)
        rewards = (rewards_per_func * weights.unsqueeze(0)).nansum(dim=1)
        # a completion that no reward function scored (all NaN) is a fault, not a reward of 0
        self._last_rewards = torch.where(rewards_per_func.isnan().all(dim=1), torch.nan, rewards).cpu()
        self._timers["scoring"] += time.perf_counter() - started
        return rewards_per_func

    def _generate(self, prompts: list):
        started = time.perf_counter()
        result = super()._generate(prompts)
        self._timers["generation"] += time.perf_counter() - started
        self._timers["generated_tokens"] += sum(len(ids) for ids in result[1])
        self._skip_reference_pass = self._defers_reference()
        return result

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """TRL's loss, plus KL-Cov's penalty on the selected tokens of this mini-batch when it is on."""
        self._loss_inputs, self._kl_cov_term = inputs, None
        try:
            loss = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        finally:
            self._loss_inputs = None
        if self._kl_cov_term is not None:
            loss = loss + self._kl_cov_term
        return loss

    def _get_per_token_logps_and_entropies(
        self, model, input_ids, attention_mask, logits_to_keep, *args, **kwargs
    ):
        """TRL's log-probs; inside a training loss, Clip-Cov detaches its chosen tokens, KL-Cov keeps its term and the
        reference log-probs are adjusted so that TRL's k3 is clamped at ``kl_clamp`` (:mod:`uec_repro.kl`).
        TRL's reference pass over fresh rollouts is skipped (zeros, never read) when it is deferred."""
        if self._skip_reference_pass and not torch.is_grad_enabled():
            return torch.zeros(input_ids.size(0), logits_to_keep, device=input_ids.device), None, None
        logps, entropies, aux = super()._get_per_token_logps_and_entropies(
            model, input_ids, attention_mask, logits_to_keep, *args, **kwargs
        )
        inputs = self._loss_inputs
        if inputs is None or not torch.is_grad_enabled():
            return logps, entropies, aux
        mask, advantages, old = inputs["completion_mask"], inputs["advantages"], inputs["old_per_token_logps"]
        if self.args.clip_cov_ratio > 0:
            ratio = torch.exp(logps.detach() - old)
            per_token = advantages if advantages.dim() == 2 else advantages.unsqueeze(1)
            clipped = ((ratio > 1 + self.epsilon_high) & (per_token > 0)) | (
                (ratio < 1 - self.epsilon_low) & (per_token < 0)
            )
            low, high = self.args.clip_cov_bounds
            chosen = clip_cov_mask(
                logps,
                advantages,
                mask,
                self.args.clip_cov_ratio,
                low,
                high,
                clipped,
                self._clip_cov_generator,
            )
            logps = torch.where(chosen, logps.detach(), logps)
            self._log("baselines/clip_cov_tokens", float(chosen.sum()))
        if self.args.kl_cov_ratio > 0:
            penalty, selected = kl_cov_penalty(
                logps, old, advantages, mask, self.args.kl_cov_ratio, self.args.kl_cov_coef
            )
            self._kl_cov_term = penalty.sum() / mask.sum().clamp(min=1)
            self._log("baselines/kl_cov_tokens", float(selected.sum()))
        if (
            self.beta != 0.0 and self.args.kl_clamp is not None
        ):  # TRL reads the reference log-probs after this
            inputs["ref_per_token_logps"] = clamped_reference_logps(
                inputs["ref_per_token_logps"], logps, self.args.kl_clamp
            )
        return logps, entropies, aux

    # ---------------------------------------------------------------------------------------------
    # Helpers
    # ---------------------------------------------------------------------------------------------
    def _all_samples(self, output: dict[str, Any], exploration: bool) -> list[Sample]:
        """The samples of TRL's batch of every process, in process order: the global batch."""
        return self._gathered(self._samples(output, exploration))

    def _samples(self, output: dict[str, Any], exploration: bool) -> list[Sample]:
        """Split TRL's padded batch of this process into per-sample records (rewards from the stash of
        ``_calculate_rewards``, which holds those of all processes)."""
        images = split_images(output, output["prompt_mask"])
        prompt_ids, prompt_mask = output["prompt_ids"].cpu(), output["prompt_mask"].cpu().bool()
        completion_ids, completion_mask = (
            output["completion_ids"].cpu(),
            output["completion_mask"].cpu().bool(),
        )
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
        """Sample G' completions per prompt at t'; TRL's metrics of these rollouts go under ``exploration/``, and
        the generation time of these rollouts (part of ``time/generation``) is ``time/exploration_generation``."""
        temperature = self.args.exploration_temperature
        saved = (
            self.num_generations,
            self.generation_config.temperature,
            self.generation_kwargs.get("temperature"),
        )
        metrics = self._metrics["train"]
        before = {key: len(values) for key, values in metrics.items()}
        generation_before = self._timers["generation"]
        self.num_generations = self.exploration_generations
        self.generation_config.temperature = self.generation_kwargs["temperature"] = temperature
        try:
            yield
        finally:
            (
                self.num_generations,
                self.generation_config.temperature,
                self.generation_kwargs["temperature"],
            ) = saved
            for key in list(metrics):
                if key.startswith("exploration/") or key == "num_tokens":
                    continue
                added = metrics[key][before.get(key, 0) :]
                if added:
                    del metrics[key][before.get(key, 0) :]
                    metrics[f"exploration/{key}"].extend(added)
            self._log("time/exploration_generation", self._timers["generation"] - generation_before)

    def _log(self, name: str, value: float) -> None:
        self._metrics["train"][name].append(value)

    def _probe_initial_policy(self) -> None:
        """The probe of the initial policy, written as the step-0 row of ``metrics.jsonl``."""
        if self._probe_due(0):
            started = time.perf_counter()
            values = self._probe(0)
            self._append_row(
                self.metrics_path, {"step": 0, **values, "time/probe": time.perf_counter() - started}
            )

    def _probe_if_due(self) -> None:
        step = self.state.global_step + 1
        if self._probe_due(step):
            started = time.perf_counter()
            for name, value in self._probe(step).items():
                self._log(name, value)
            self._timers["probe"] += time.perf_counter() - started

    def _probe_due(self, step: int) -> bool:
        """At step 0, every ``probe_every`` steps and at the last step; in the main process only."""
        every = self.args.probe_every
        return (
            self.probe_dataset is not None
            and every > 0
            and self.accelerator.is_main_process
            and (step % every == 0 or step == self.state.max_steps)
        )

    def _probe(self, step: int) -> dict[str, float]:
        """Measure the policy, not the samples it trains on: ``probe_samples`` completions of every probe prompt at
        T = 1 and the run's top-p, drawn with ``probe_seed`` (the same draws for every method and seed) inside a
        forked random state (training continues as if no probe had run). Appends the per-prompt sums to
        ``probe.jsonl`` and returns the token-weighted means: ``probe/entropy`` (full-distribution token entropy),
        ``probe/sampled_nll`` (-log p of the sampled tokens), ``probe/accuracy`` and ``probe/mean_length``."""
        with torch.random.fork_rng():
            records = evaluate_policy(
                self.model,
                self.processing_class,
                self.probe_dataset,
                n=self.args.probe_samples,
                ks=(1,),
                hard_group_size=1,
                temperature=1.0,
                top_p=self.args.top_p,
                max_new_tokens=self.max_completion_length,
                seed=self.args.probe_seed,
            ).per_prompt
        columns = {
            name: [p[name] for p in records] for name in ("entropy_sum", "nll_sum", "tokens", "correct")
        }
        self._append_row(
            self.probe_path,
            {
                "step": step,
                "samples": self.args.probe_samples,
                "prompt_ids": [p["id"] for p in records],
                **columns,
            },
        )
        tokens, completions = max(sum(columns["tokens"]), 1), self.args.probe_samples * len(records)
        return {
            "probe/entropy": sum(columns["entropy_sum"]) / tokens,
            "probe/sampled_nll": sum(columns["nll_sum"]) / tokens,
            "probe/accuracy": sum(columns["correct"]) / completions,
            "probe/mean_length": sum(columns["tokens"]) / completions,
        }

    @staticmethod
    def _append_row(path: Path, row: dict[str, Any]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as handle:
            handle.write(json.dumps(row) + "\n")

    def _validate_if_due(self) -> None:
        every = self.args.validation_every
        if (
            self.validation_dataset is None
            or not every
            or (self.state.global_step + 1) % every
            or not self.accelerator.is_main_process
        ):  # only the main process writes metrics
            return
        started = time.perf_counter()
        with torch.random.fork_rng():  # validating does not change the training's draws
            result = evaluate_policy(
                self.model,
                self.processing_class,
                self.validation_dataset,
                n=1,
                ks=(1,),
                hard_group_size=1,
                temperature=self.args.validation_temperature,
                max_new_tokens=self.max_completion_length,
                seed=self.args.seed,
            )
        self._log("validation/accuracy", result.summary["pass@1"])
        self._log("validation/token_entropy", result.summary["token_entropy"])
        self._timers["validation"] += time.perf_counter() - started

    def _log_step_resources(self, seconds: float) -> None:
        for name in ("generation", "scoring", "exploration", "update", "replay", "validation", "probe"):
            self._log(f"time/{name}", self._timers[name])
        self._log("time/step", seconds)
        if self._timers["generation"] > 0:
            self._log("time/tokens_per_second", self._timers["generated_tokens"] / self._timers["generation"])
        self._log("memory/peak_rss_mb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        if torch.cuda.is_available():
            self._log("memory/peak_cuda_mb", torch.cuda.max_memory_allocated() / 2**20)

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """TRL's logging, then the same row appended to ``metrics.jsonl`` (kept if the run is interrupted)."""
        metrics = self._metrics["train"]
        step_row = self.model.training and "uec/updated" in metrics  # not eval or the final summary
        for (
            trl_name,
            name,
        ) in UPDATE_BATCH_METRICS.items():  # TRL adds these metrics to ``logs`` in its ``log``
            if trl_name in metrics:
                metrics[name] = metrics.pop(trl_name)
        super().log(logs, start_time)
        if step_row and self.accelerator.is_main_process:
            self._append_row(self.metrics_path, {"step": self.state.global_step, **logs})
