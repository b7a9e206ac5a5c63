"""``UECTrainer``: UEC-RL (and every registered baseline) on top of TRL's ``GRPOTrainer``.

One training step is one step of the paper (docs/paper.md#one-training-step); its rules live in
:mod:`uec_repro.selection`, the baselines' loss pieces in :mod:`uec_repro.baselines`::

    standard = TRL rollouts: G per prompt                                    (rollouts, trl_hooks)
    hard     = prompts whose G rewards are all 0                             (hard_prompts)
    explore  = TRL rollouts: G' per hard prompt at temperature t'            (rollouts(exploration=True))
    kept     = retention filters + overlong filter, exploration first (the authors' order)
    update   = batch buffer: kept samples, released in whole batches of B0 (or all kept, buffer off)
    replay buffer <- samples of the update that pass the replay rule
    for each mini-batch of the update, then of a replay draw (every f_replay steps):
        TRL's loss (clip, k3 KL, bnpo mean) -> backward -> optimizer step

HF's loop makes one optimizer step per training step, so all but the last optimizer step of a step are made
here; a step with nothing to train on makes no backward, so HF's optimizer step changes nothing.

Around the step: probe, validation, time, memory and ``metrics.jsonl`` (:mod:`uec_repro.callbacks`; metric
groups ``uec/``, ``exploration/``, ``probe/``, ``entropy/update_batch*``, ``baselines/``, ``validation/``,
``time/``, ``memory/``, ``faults/``); buffers in checkpoints (:mod:`uec_repro.checkpoints`); non-finite values
(:mod:`uec_repro.guards`); TRL's internals only through :mod:`uec_repro.trl_hooks`. With several processes,
every process gathers all samples (same decisions everywhere) and weights its loss by its mini-batch share.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import torch

from .baselines import clip_cov_mask, entropy_shaped_advantages, kl_cov_penalty
from .callbacks import MetricsFile, Probe, StepResources, Validation
from .checkpoints import PREFIX, complete_checkpoints, load_uec_state, remove_checkpoints, save_uec_state
from .config import UECConfig
from .guards import InsufficientDiskError, NonFiniteError, NonFiniteGuard, check_checkpoint
from .kl import clamped_reference_logps
from .selection import (
    BatchBuffer,
    ReplayBuffer,
    drop_overlong,
    hard_prompts,
    keep_exploration,
    keep_regular,
    replay_entry,
)
from .trl_hooks import Sample, TRLHooks
from .validation import ParameterError

__all__ = ["InsufficientDiskError", "NonFiniteError", "Sample", "UECTrainer"]


class UECTrainer(TRLHooks):
    """``GRPOTrainer`` with UEC-RL's targeted exploration, selective retention, overlong filter, batch buffer
    and replay, plus the KL-Cov, Clip-Cov and Entropy-Adv baselines, each switched by a :class:`UECConfig`
    field. ``validation_dataset`` and ``probe_dataset`` (``prompt`` and ``answer`` columns) feed the
    validation and the entropy probe (:mod:`uec_repro.callbacks`)."""

    def __init__(
        self, *args: Any, validation_dataset: Any = None, probe_dataset: Any = None, **kwargs: Any
    ) -> None:
        config = kwargs.get("args", args[2] if len(args) > 2 else None)
        if not isinstance(config, UECConfig):
            raise ParameterError(
                f"args must be a UECConfig (see uec_repro.config.method_config), got {type(config)}"
            )
        super().__init__(*args, **kwargs)
        self.batch_size = self.args.per_device_train_batch_size * self.num_processes  # B0, the global batch
        self.mini_batch_size = math.ceil(self.batch_size / self.args.updates_per_batch)
        capacity = {"batch": self.args.batch_buffer_capacity, "replay": self.args.replay_capacity}
        self.batch_buffer = (
            BatchBuffer(self.batch_size, int(capacity["batch"] * self.batch_size))
            if self.args.batch_buffer
            else None
        )
        self.replay_buffer = (
            ReplayBuffer(self.batch_size, int(capacity["replay"] * self.batch_size))
            if self.args.replay
            else None
        )
        self._rng = random.Random(self.args.seed)
        self._clip_cov_generator = torch.Generator().manual_seed(self.args.seed + self.process_index)
        self.guard = NonFiniteGuard(self.args.nonfinite_patience, self.accelerator)
        if validation_dataset is not None:
            self.add_callback(Validation(self, validation_dataset))
        self.probe = Probe(self, probe_dataset) if probe_dataset is not None else None
        for callback in (self.probe, StepResources(self), MetricsFile()):
            if callback is not None:
                self.add_callback(callback)

    # ---- one training step ---------------------------------------------------------------------------------
    def training_step(self, model, inputs, num_items_in_batch=None) -> torch.Tensor:
        """Rollout, select, buffer, update, replay. ``inputs`` is the raw generation batch of TRL's
        sampler."""
        model.train()  # as HF's training_step (loading a checkpoint's adapter leaves the model in eval mode)
        kept = self._rollout(inputs)
        update = self._take_update(kept)
        before_entry = self._enter_replay(update)
        replay = self._draw_replay()
        loss = self._train(model, {"update": update, "replay": replay})
        if (
            self.guard.faults and before_entry is not None
        ):  # the update was not made: its samples do not enter
            self.replay_buffer.restore(before_entry)
        self.record("uec/replay_buffer_size", float(len(self.replay_buffer or ())))
        self.record("uec/batch_buffer_size", float(len(self.batch_buffer or ())))
        self.record("faults/skipped_step", self.guard.end_step(self.state.global_step + 1))
        return loss

    def _rollout(self, inputs: list[dict[str, Any]]) -> list[Sample]:
        """Standard rollouts, then exploration of hard prompts; returns the samples that pass the filters."""
        standard = self.rollouts(inputs)
        if not self._finite_rollouts("", standard):
            standard = []  # none of this step's rollouts is trained on or buffered
        hard = hard_prompts(torch.tensor([s.reward for s in standard]), self.num_generations)
        self.record("uec/hard_prompts", float(hard.sum()))
        self.record("uec/prompts", float(hard.numel()))
        explored: list[Sample] = []
        group, extra = self.num_generations, self.args.exploration_group_size  # G and G'
        if self.args.exploration and hard.any():
            with self.timed("exploration"):
                all_inputs = self.gathered(inputs)
                repeated = [
                    all_inputs[g * group] for g in hard.nonzero().flatten().tolist() for _ in range(extra)
                ]
                share = (
                    len(repeated) // self.num_processes
                )  # this process's contiguous share, in process order
                part = repeated[self.process_index * share : (self.process_index + 1) * share]
                explored = self.rollouts(part, exploration=True, max_rows=self.args.exploration_max_rows)
                if not self._finite_rollouts("exploration ", explored):
                    explored = []
        self.record("uec/exploration_generated", float(len(explored)))
        solved = sum(
            any(s.reward > 0 for s in explored[i : i + extra]) for i in range(0, len(explored), extra)
        )
        self.record("uec/exploration_solved_prompts", float(solved))
        return self._select(standard, explored)

    def _finite_rollouts(self, kind: str, samples: list[Sample]) -> bool:
        rewards = self.guard.finite(f"{kind}rewards", [s.reward for s in samples])
        return rewards and self.guard.finite(f"{kind}advantages", [s.advantage for s in samples])

    def _select(self, standard: list[Sample], explored: list[Sample]) -> list[Sample]:
        """Selective retention and the overlong filter (docs/paper.md#selective-retention), counts logged."""

        def advantages(samples: list[Sample]) -> torch.Tensor:
            return torch.tensor([s.advantage for s in samples], dtype=torch.float32)

        explored_advantages = advantages(explored)
        keep_standard = torch.ones(len(standard), dtype=torch.bool)
        keep_explored = torch.ones(len(explored), dtype=torch.bool)
        if self.args.retention:
            keep_standard = keep_regular(advantages(standard), self.args.regular_threshold)
            keep_explored = keep_exploration(explored_advantages, self.args.exploration_rule)
        self.record("uec/regular_kept", float(keep_standard.sum()))
        positive = explored_advantages > 0
        self.record("uec/exploration_kept_positive", float((keep_explored & positive).sum()))
        self.record("uec/exploration_kept_negative", float((keep_explored & ~positive).sum()))
        # exploration samples first, as the authors concatenate them: the order decides what waits in the
        # batch buffer and what its overflow drops
        kept = [s for s, k in zip(explored, keep_explored.tolist(), strict=True) if k]
        kept += [s for s, k in zip(standard, keep_standard.tolist(), strict=True) if k]
        truncated = torch.tensor([s.truncated for s in kept], dtype=torch.bool)
        self.record("uec/truncated_kept", float(truncated.sum()))
        keep = torch.ones(len(kept), dtype=torch.bool)
        if self.args.overlong_filter and kept:
            keep = drop_overlong(advantages(kept), truncated)
        self.record("uec/overlong_dropped", float((~keep).sum()))
        return [s for s, k in zip(kept, keep.tolist(), strict=True) if k]

    def _take_update(self, kept: list[Sample]) -> list[Sample]:
        """The samples to train on now: whole batches from the batch buffer, or everything kept (buffer
        off)."""
        if self.batch_buffer is None:
            update = kept
        else:
            self.batch_buffer.push(kept)
            update = self.batch_buffer.pop()
        self.record("uec/updated", float(bool(update)))
        self.record("uec/update_samples", float(len(update)))
        self.record("uec/update_exploration_samples", float(sum(s.exploration for s in update)))
        return update

    def _enter_replay(self, update: list[Sample]) -> list[Sample] | None:
        """Put the update's samples that pass the replay rule into the replay buffer, before this step's draw,
        as the authors do; returns the buffer's content before (to undo the entry if the update fails)."""
        if self.replay_buffer is None or not update or self.guard.faults:
            return None
        before = self.replay_buffer.contents()
        advantages = torch.tensor([s.advantage for s in update])
        entering = replay_entry(advantages, self.args.replay_rule, self.args.replay_threshold)
        self.replay_buffer.push(s for s, keep in zip(update, entering.tolist(), strict=True) if keep)
        return before

    def _draw_replay(self) -> list[Sample]:
        """Every ``replay_frequency`` steps, the samples to replay (none while the buffer holds less than
        B0)."""
        due = (
            self.replay_buffer is not None and (self.state.global_step + 1) % self.args.replay_frequency == 0
        )
        replay = self.replay_buffer.draw(self._rng) if due else []
        self.record("uec/replayed", float(bool(replay)))
        self.record("uec/replay_samples", float(len(replay)))
        return replay

    # ---- updates -------------------------------------------------------------------------------------------
    def _train(self, model, phases: dict[str, list[Sample]]) -> torch.Tensor:
        """Mini-batch updates over each phase's samples (update, then replay); every optimizer step but the
        last is made here, the last by HF's loop. A phase's old log-probs are prepared just before its first
        mini-batch, so replay's fresh ones come from the weights after the update. Returns the mean loss (0
        without any)."""
        mini_batches = [
            (phase, batch) for phase, samples in phases.items() for batch in self._mini_batches(samples)
        ]
        self.record("uec/optimizer_steps", float(len(mini_batches)))
        losses = []
        for position, (phase, samples) in enumerate(mini_batches):
            with self.timed(phase):
                if position == 0 or mini_batches[position - 1][0] != phase:
                    self._prepare_phase(phase, phases[phase])
                loss = self._mini_batch_update(model, phase, samples)
                if loss is None:
                    break
                losses.append(loss)
                if position < len(mini_batches) - 1:
                    self._optimizer_step(model)
        if self.guard.faults:
            self.optimizer.zero_grad(set_to_none=True)  # HF's optimizer step then changes nothing
        return torch.stack(losses).mean() if losses else torch.zeros((), device=self.accelerator.device)

    def _mini_batch_update(self, model, phase: str, samples: list[Sample]) -> torch.Tensor | None:
        """Loss and backward of one mini-batch; None (and no gradient kept) when the loss or gradients are not
        finite."""
        inputs, weight = self.local_batch(samples)
        with self.compute_loss_context_manager():
            loss = self.compute_loss(model, inputs) * weight
        if not self.guard.finite("loss", loss.detach(), every_process=True):
            return None
        self.accelerator.backward(loss)  # DDP's all-reduce: every process checks the same gradients
        if not self.guard.finite("gradients", [p.grad for p in model.parameters() if p.grad is not None]):
            return None
        return loss.detach()

    def _mini_batches(self, samples: list[Sample]) -> list[list[Sample]]:
        """In order, ``mini_batch_size`` samples each (the last may be smaller), as the authors split; with
        ``shuffle_mini_batches``, shuffled into near-equal parts, as TRL does."""
        if not self.args.shuffle_mini_batches:
            return self._chunks(samples)
        order = list(range(len(samples)))
        self._rng.shuffle(order)
        parts = math.ceil(len(samples) / self.mini_batch_size)  # sizes differ by at most one; none is empty
        return [[samples[i] for i in order[part::parts]] for part in range(parts)]

    def _prepare_phase(self, phase: str, samples: list[Sample]) -> None:
        """Old (and reference) log-probs of a phase's samples, computed now; replay with
        ``replay_fresh_logprobs`` recomputes them from each sample's own advantage (Entropy-Adv's shaping is
        never applied twice)."""
        if phase == "replay" and self.args.replay_fresh_logprobs:
            for sample in samples:
                sample.old_logps = sample.token_advantages = None
        self._prepare_old_logps(samples)

    def _optimizer_step(self, model) -> None:
        if self.args.max_grad_norm and self.args.max_grad_norm > 0:
            norm = self.accelerator.clip_grad_norm_(model.parameters(), self.args.max_grad_norm)
            self.record("uec/inner_grad_norm", float(norm))
        self.optimizer.step()
        self.optimizer.zero_grad()

    @torch.no_grad()
    def _prepare_old_logps(self, samples: list[Sample]) -> None:
        """Old log-probs (and Entropy-Adv's shaped advantages) of samples that have none yet, as the authors
        compute them when a batch leaves the batch buffer, and the KL term's deferred reference log-probs.
        Samples go through these passes sorted by length, one mini-batch at a time, so little of each chunk is
        padding."""
        if self.beta != 0.0:

            def reference(chunk: list[Sample]) -> list[dict[str, torch.Tensor]]:
                logps = self.reference_logps(self.collate(chunk, with_old_logps=False))
                return [
                    {"ref_logps": logps[row, : len(s.completion_ids)].cpu()} for row, s in enumerate(chunk)
                ]

            self.fill_in_turns(
                self._chunks(self._by_length([s for s in samples if s.ref_logps is None])), reference
            )
        fresh = self._by_length([s for s in samples if s.old_logps is None])
        if not fresh:
            return
        entropy_adv = self.args.entropy_adv_alpha > 0

        def old(chunk: list[Sample]) -> list[dict[str, torch.Tensor]]:
            batch = self.collate(chunk, with_old_logps=False)
            logps, entropies = self.policy_logps(batch, compute_entropy=entropy_adv)
            if entropy_adv:
                alpha, kappa = self.args.entropy_adv_alpha, self.args.entropy_adv_kappa
                shaped = entropy_shaped_advantages(
                    batch["advantages"], entropies, batch["completion_mask"], alpha, kappa
                )
            values = []
            for row, sample in enumerate(chunk):
                length = len(sample.completion_ids)
                values.append({"old_logps": logps[row, :length].cpu()})
                if entropy_adv:
                    values[-1]["token_advantages"] = shaped[row, :length].cpu()
            return values

        self.fill_in_turns(self._chunks(fresh), old)
        self.record("entropy/update_batch_sampled_nll", self._mean_nll(fresh))
        explored = [s for s in fresh if s.exploration]
        if explored:
            self.record("entropy/update_batch_exploration_sampled_nll", self._mean_nll(explored))

    @staticmethod
    def _mean_nll(samples: list[Sample]) -> float:
        """The authors' entropy estimate: mean -log p of the sampled tokens, over all tokens of
        ``samples``."""
        tokens = max(sum(len(s.completion_ids) for s in samples), 1)
        return -sum(float(s.old_logps.sum()) for s in samples) / tokens

    @staticmethod
    def _by_length(samples: list[Sample]) -> list[Sample]:
        return sorted(samples, key=lambda s: (len(s.prompt_ids), len(s.completion_ids)))

    def _chunks(self, samples: list[Sample]) -> list[list[Sample]]:
        size = self.mini_batch_size
        return [samples[start : start + size] for start in range(0, len(samples), size)]

    def _loss_terms(self, logps: torch.Tensor, inputs: dict[str, Any]) -> tuple[torch.Tensor, Any]:
        """Inside TRL's loss: Clip-Cov detaches its chosen tokens, KL-Cov returns its penalty, and the
        reference log-probs are adjusted so that TRL's k3 is clamped at ``kl_clamp`` (:mod:`uec_repro.kl`)."""
        mask, advantages, old = inputs["completion_mask"], inputs["advantages"], inputs["old_per_token_logps"]
        extra = None
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
            self.record("baselines/clip_cov_tokens", float(chosen.sum()))
        if self.args.kl_cov_ratio > 0:
            penalty, selected = kl_cov_penalty(
                logps, old, advantages, mask, self.args.kl_cov_ratio, self.args.kl_cov_coef
            )
            extra = penalty.sum() / mask.sum().clamp(min=1)
            self.record("baselines/kl_cov_tokens", float(selected.sum()))
        if self.beta != 0.0 and self.args.kl_clamp is not None:
            inputs["ref_per_token_logps"] = clamped_reference_logps(
                inputs["ref_per_token_logps"], logps, self.args.kl_clamp
            )
        return logps, extra

    # ---- checkpoints ---------------------------------------------------------------------------------------
    def train(self, resume_from_checkpoint: str | bool | None = None, *args: Any, **kwargs: Any):
        """HF's ``train``; resuming also restores the buffers and random states this class keeps.
        ``resume_from_checkpoint=True`` takes the newest complete checkpoint in ``output_dir``."""
        if resume_from_checkpoint is True:
            complete = complete_checkpoints(self.args.output_dir)
            if not complete:
                raise ParameterError(
                    f"resume_from_checkpoint=True, but output_dir={self.args.output_dir!r} holds no complete "
                    "checkpoint (a checkpoint-<step> folder with its state file)"
                )
            resume_from_checkpoint = str(complete[-1])
        if resume_from_checkpoint:
            self._load_uec_state(Path(resume_from_checkpoint))
        return super().train(resume_from_checkpoint, *args, **kwargs)

    def _save_checkpoint(self, model, trial) -> None:
        """HF's checkpoint, then the buffers and random states and the state file that marks it complete;
        older checkpoints are removed once it is. Refuses non-finite weights and a disk short of space."""
        run_dir = Path(self._get_output_dir(trial))
        check_checkpoint(model, run_dir, self.state.global_step, self.args.min_free_disk_mb)
        super()._save_checkpoint(model, trial)
        folder = run_dir / f"{PREFIX}{self.state.global_step}"
        self._save_uec_state(folder)
        if self.accelerator.is_main_process:
            remove_checkpoints(run_dir, keep=folder, keep_complete=self.args.keep_all_checkpoints)
        self.accelerator.wait_for_everyone()

    def _save_uec_state(self, folder: Path) -> None:
        save_uec_state(folder, self)

    def _load_uec_state(self, folder: Path) -> None:
        load_uec_state(folder, self)
