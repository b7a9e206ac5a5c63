"""``UECTrainer``: UEC-RL (and every registered baseline) on top of TRL's ``GRPOTrainer``.

One training step is one step of the paper (notes, 1.8); the rules it applies live in
:mod:`uec_repro.selection`, the baselines' loss pieces in :mod:`uec_repro.baselines`::

    standard = GRPOTrainer._generate_and_score_completions(G rollouts per prompt)       # TRL, unchanged
    hard     = prompts whose G rewards are all 0
    explore  = GRPOTrainer._generate_and_score_completions(G' rollouts per hard prompt at t')
    kept     = retention filters + overlong filter over standard and exploration samples
    update   = batch buffer: kept samples, released in whole batches of B0 (or all kept, buffer off)
    for each mini-batch of the update: TRL's loss (clip, k3 KL, bnpo mean) -> backward -> optimizer step
    replay buffer <- samples of the update that pass the replay rule
    every f_replay steps: the same update on samples drawn from the replay buffer

TRL's methods are called, not copied: generation, scoring and advantages come from
``_generate_and_score_completions`` (called twice when there are hard prompts, with ``num_generations`` G'
and the sampling temperature t' for the second call), the loss from ``compute_loss``. What this class adds
is the step structure: HF's loop makes one optimizer step per training step, so the first optimizer steps of
a step are made here and the last one is left to HF; a step with nothing to train on makes no backward, so
HF's optimizer step finds no gradient and changes nothing (AdamW skips parameters without a gradient).

Per step, one row of ``metrics.jsonl`` in the output directory (TRL's metrics and those below, grouped by
prefix): ``uec/`` selection counts and buffer sizes, ``exploration/`` TRL's metrics of the exploration
rollouts, ``entropy/`` the authors' entropy estimate (mean -log p of the sampled tokens), ``time/`` wall
time split, ``memory/`` peak RSS (and CUDA), ``validation/`` in-training validation accuracy.

Single process only for now: hard-prompt detection, filters and buffers act on the local batch.
"""

from __future__ import annotations

import json
import math
import random
import resource
import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from trl import GRPOTrainer
from trl.models.utils import disable_gradient_checkpointing
from trl.trainer.utils import pad

from .baselines import clip_cov_mask, entropy_shaped_advantages, kl_cov_penalty
from .config import UECConfig
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

__all__ = ["Sample", "UECTrainer"]

METRICS_FILE = "metrics.jsonl"


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


class UECTrainer(GRPOTrainer):
    """``GRPOTrainer`` with UEC-RL's targeted exploration, selective retention, overlong filter, batch buffer and
    replay, plus the KL-Cov, Clip-Cov and Entropy-Adv baselines, each switched by a :class:`UECConfig` field.

    ``validation_dataset`` (``prompt`` and ``answer`` columns) is evaluated every ``validation_every`` steps at
    ``validation_temperature`` with one sample per prompt, as in the authors' code.
    """

    def __init__(self, *args: Any, validation_dataset: Any = None, **kwargs: Any) -> None:
        config = kwargs.get("args", args[2] if len(args) > 2 else None)
        if not isinstance(config, UECConfig):
            raise ParameterError(f"args must be a UECConfig (see uec_repro.config.method_config), got {type(config)}")
        super().__init__(*args, **kwargs)
        if self.accelerator.num_processes > 1:
            raise ParameterError(
                f"UECTrainer runs in one process for now (got {self.accelerator.num_processes}); its buffers and "
                "filters are not yet synchronised across processes"
            )
        self.validation_dataset = validation_dataset
        self.batch_size = self.args.per_device_train_batch_size  # B0
        self.mini_batch_size = math.ceil(self.batch_size / self.args.updates_per_batch)
        self.exploration_generations = self.args.exploration_generations or 4 * self.num_generations
        self.batch_buffer = (
            BatchBuffer(self.batch_size, int(self.args.batch_buffer_capacity * self.batch_size))
            if self.args.batch_buffer else None
        )
        self.replay_buffer = (
            ReplayBuffer(self.batch_size, int(self.args.replay_capacity * self.batch_size)) if self.args.replay else None
        )
        self._rng = random.Random(self.args.seed)
        self._clip_cov_generator = torch.Generator().manual_seed(self.args.seed)
        self._last_rewards: torch.Tensor | None = None
        self._loss_inputs: dict[str, Any] | None = None  # the mini-batch whose loss is being computed
        self._kl_cov_term: torch.Tensor | None = None
        self._timers: dict[str, float] = defaultdict(float)
        self.metrics_path = Path(self.args.output_dir) / METRICS_FILE

    # ---------------------------------------------------------------------------------------------
    # One training step
    # ---------------------------------------------------------------------------------------------
    def training_step(self, model, inputs, num_items_in_batch=None) -> torch.Tensor:
        """Rollout, select, buffer, update, replay. ``inputs`` is the raw generation batch of TRL's sampler."""
        started = time.perf_counter()
        self._timers.clear()
        kept = self._rollout(inputs)
        update = self._take_update(kept)
        replay = self._draw_replay()
        loss = self._train(model, {"update": update, "replay": replay})
        if update and self.replay_buffer is not None:
            advantages = torch.tensor([s.advantage for s in update])
            entering = replay_entry(advantages, self.args.replay_rule, self.args.replay_threshold)
            self.replay_buffer.push(s for s, keep in zip(update, entering.tolist(), strict=True) if keep)
        self._log("uec/replay_buffer_size", float(len(self.replay_buffer or ())))
        self._log("uec/batch_buffer_size", float(len(self.batch_buffer or ())))
        self._validate_if_due()
        self._log_step_resources(time.perf_counter() - started)
        return loss

    def _rollout(self, inputs: list[dict[str, Any]]) -> list[Sample]:
        """Standard rollouts, then exploration of hard prompts; returns the samples that pass the filters."""
        group = self.num_generations
        standard = self._samples(super()._generate_and_score_completions(inputs), exploration=False)
        rewards = torch.tensor([s.reward for s in standard])
        hard = hard_prompts(rewards, group)
        self._log("uec/hard_prompts", float(hard.sum()))
        self._log("uec/prompts", float(hard.numel()))
        explored: list[Sample] = []
        if self.args.exploration and hard.any():
            started = time.perf_counter()
            hard_inputs = [inputs[g * group] for g in hard.nonzero().flatten().tolist()]
            repeated = [row for row in hard_inputs for _ in range(self.exploration_generations)]
            with self._exploration_sampling():
                explored = self._samples(super()._generate_and_score_completions(repeated), exploration=True)
            self._timers["exploration"] += time.perf_counter() - started
        self._log("uec/exploration_generated", float(len(explored)))
        self._log("uec/exploration_solved_prompts", float(sum(
            any(s.reward > 0 for s in explored[i : i + self.exploration_generations])
            for i in range(0, len(explored), self.exploration_generations)
        )))
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
        kept = [s for s, k in zip(standard, keep_standard.tolist(), strict=True) if k]
        kept += [s for s, k in zip(explored, keep_explored.tolist(), strict=True) if k]
        truncated = torch.tensor([s.truncated for s in kept], dtype=torch.bool)
        self._log("uec/truncated_kept", float(truncated.sum()))
        keep = torch.ones(len(kept), dtype=torch.bool)
        if self.args.overlong_filter and kept:
            keep = drop_overlong(advantages(kept), truncated)
        self._log("uec/overlong_dropped", float((~keep).sum()))
        return [s for s, k in zip(kept, keep.tolist(), strict=True) if k]

    def _draw_replay(self) -> list[Sample]:
        """Every ``replay_frequency`` steps, the samples to replay (none while the buffer holds less than B0)."""
        due = self.replay_buffer is not None and (self.state.global_step + 1) % self.args.replay_frequency == 0
        replay = self.replay_buffer.draw(self._rng) if due else []
        if self.args.replay_fresh_logprobs:
            for sample in replay:  # recomputed from the sample's own advantage, never shaped twice
                sample.old_logps = sample.token_advantages = None
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
        made here, the last by HF's loop. Returns the mean loss (0, with no backward, when there is nothing)."""
        mini_batches: list[tuple[str, list[Sample]]] = []
        for phase, samples in phases.items():
            if not samples:
                continue
            started = time.perf_counter()
            self._prepare_old_logps(samples)
            order = list(range(len(samples)))
            self._rng.shuffle(order)
            chunks = math.ceil(len(samples) / self.mini_batch_size)
            # sizes differ by at most one, and no chunk is empty
            mini_batches += [(phase, [samples[i] for i in order[c::chunks]]) for c in range(chunks)]
            self._timers[phase] += time.perf_counter() - started
        self._log("uec/optimizer_steps", float(len(mini_batches)))
        losses = []
        for position, (phase, samples) in enumerate(mini_batches):
            started = time.perf_counter()
            inputs = self._collate(samples)
            with self.compute_loss_context_manager():
                loss = self.compute_loss(model, inputs)
            self.accelerator.backward(loss)
            losses.append(loss.detach())
            if position < len(mini_batches) - 1:
                self._optimizer_step(model)
            self._timers[phase] += time.perf_counter() - started
        if not losses:
            return torch.zeros((), device=self.accelerator.device)
        return torch.stack(losses).mean()

    def _optimizer_step(self, model) -> None:
        if self.args.max_grad_norm and self.args.max_grad_norm > 0:
            norm = self.accelerator.clip_grad_norm_(model.parameters(), self.args.max_grad_norm)
            self._log("uec/inner_grad_norm", float(norm))
        self.optimizer.step()
        self.optimizer.zero_grad()

    @torch.no_grad()
    def _prepare_old_logps(self, samples: list[Sample]) -> None:
        """Old log-probs (and Entropy-Adv's shaped advantages) for samples that have none yet, at the training
        temperature, as the authors compute them when a batch leaves the batch buffer."""
        fresh = [s for s in samples if s.old_logps is None]
        if not fresh:
            return
        entropy_adv = self.args.entropy_adv_alpha > 0
        nll, count, explore_nll, explore_count = 0.0, 0, 0.0, 0
        for start in range(0, len(fresh), self.mini_batch_size):
            chunk = fresh[start : start + self.mini_batch_size]
            batch = self._collate(chunk, with_old_logps=False)
            input_ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], dim=1)
            attention_mask = torch.cat([batch["prompt_mask"], batch["completion_mask"]], dim=1)
            with disable_gradient_checkpointing(self.model, self.args.gradient_checkpointing_kwargs):
                logps, entropies, _ = self._get_per_token_logps_and_entropies(
                    self.model, input_ids, attention_mask, batch["completion_ids"].size(1),
                    compute_entropy=entropy_adv,
                )
            mask = batch["completion_mask"]
            if entropy_adv:
                shaped = entropy_shaped_advantages(
                    batch["advantages"], entropies, mask, self.args.entropy_adv_alpha, self.args.entropy_adv_kappa
                )
            for row, sample in enumerate(chunk):
                length = len(sample.completion_ids)
                sample.old_logps = logps[row, :length].cpu()
                if entropy_adv:
                    sample.token_advantages = shaped[row, :length].cpu()
            nll -= float((logps * mask).sum())
            count += int(mask.sum())
            explore_mask = mask * torch.tensor([s.exploration for s in chunk], device=mask.device).unsqueeze(1)
            explore_nll -= float((logps * explore_mask).sum())
            explore_count += int(explore_mask.sum())
        self._log("entropy/sampled_nll", nll / max(count, 1))
        if explore_count:
            self._log("entropy/exploration_sampled_nll", explore_nll / explore_count)

    def _collate(self, samples: list[Sample], with_old_logps: bool = True) -> dict[str, Any]:
        """Pad samples into the batch dict TRL's loss reads (prompts left-padded, completions right-padded)."""
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
        batch["num_items_in_batch"] = batch["completion_mask"].sum()
        if samples[0].token_advantages is not None:
            batch["advantages"] = padded([s.token_advantages for s in samples], 0.0, "right")
        else:
            batch["advantages"] = torch.tensor([s.advantage for s in samples], dtype=torch.float32, device=device)
        if self.beta != 0.0:
            batch["ref_per_token_logps"] = padded([s.ref_logps for s in samples], 0.0, "right")
        if with_old_logps:
            batch["old_per_token_logps"] = padded([s.old_logps for s in samples], 0.0, "right")
        return batch

    # ---------------------------------------------------------------------------------------------
    # Hooks into TRL (wrapped, never copied)
    # ---------------------------------------------------------------------------------------------
    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        """TRL's rewards, kept for hard-prompt detection (TRL returns only advantages)."""
        started = time.perf_counter()
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        weights = self.reward_weights.to(rewards_per_func.device)
        self._last_rewards = (rewards_per_func * weights.unsqueeze(0)).nansum(dim=1).cpu()
        self._timers["scoring"] += time.perf_counter() - started
        return rewards_per_func

    def _generate(self, prompts: list):
        started = time.perf_counter()
        result = super()._generate(prompts)
        self._timers["generation"] += time.perf_counter() - started
        self._timers["generated_tokens"] += sum(len(ids) for ids in result[1])
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

    def _get_per_token_logps_and_entropies(self, model, input_ids, attention_mask, logits_to_keep, *args, **kwargs):
        """TRL's log-probs; inside a training loss, Clip-Cov detaches its chosen tokens and KL-Cov keeps its term."""
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
            clipped = ((ratio > 1 + self.epsilon_high) & (per_token > 0)) | ((ratio < 1 - self.epsilon_low) & (per_token < 0))
            low, high = self.args.clip_cov_bounds
            chosen = clip_cov_mask(logps, advantages, mask, self.args.clip_cov_ratio, low, high, clipped,
                                   self._clip_cov_generator)
            logps = torch.where(chosen, logps.detach(), logps)
            self._log("baselines/clip_cov_tokens", float(chosen.sum()))
        if self.args.kl_cov_ratio > 0:
            penalty, selected = kl_cov_penalty(logps, old, advantages, mask, self.args.kl_cov_ratio,
                                               self.args.kl_cov_coef)
            self._kl_cov_term = penalty.sum() / mask.sum().clamp(min=1)
            self._log("baselines/kl_cov_tokens", float(selected.sum()))
        return logps, entropies, aux

    # ---------------------------------------------------------------------------------------------
    # Helpers
    # ---------------------------------------------------------------------------------------------
    def _samples(self, output: dict[str, Any], exploration: bool) -> list[Sample]:
        """Split TRL's padded batch into per-sample records (rewards from the stash of ``_calculate_rewards``)."""
        if any(key in output for key in ("pixel_values", "image_grid_thw", "token_type_ids")):
            raise ParameterError("UECTrainer supports text-only tasks for now; multimodal batches are not split yet")
        prompt_ids, prompt_mask = output["prompt_ids"].cpu(), output["prompt_mask"].cpu().bool()
        completion_ids, completion_mask = output["completion_ids"].cpu(), output["completion_mask"].cpu().bool()
        advantages = output["advantages"].cpu()
        ref = output.get("ref_per_token_logps")
        eos = set(self.eos_token_ids)
        samples = []
        for row in range(prompt_ids.size(0)):
            completion = completion_ids[row][completion_mask[row]]
            samples.append(Sample(
                prompt_ids=prompt_ids[row][prompt_mask[row]],
                completion_ids=completion,
                advantage=float(advantages[row]),
                reward=float(self._last_rewards[row]),
                truncated=bool(len(completion) == 0 or int(completion[-1]) not in eos),
                exploration=exploration,
                ref_logps=ref[row][: len(completion)].cpu() if ref is not None else None,
            ))
        return samples

    @contextmanager
    def _exploration_sampling(self):
        """Sample G' completions per prompt at t'; TRL's metrics of these rollouts go under ``exploration/``."""
        temperature = self.args.exploration_temperature
        saved = (self.num_generations, self.generation_config.temperature, self.generation_kwargs.get("temperature"))
        metrics = self._metrics["train"]
        before = {key: len(values) for key, values in metrics.items()}
        self.num_generations = self.exploration_generations
        self.generation_config.temperature = self.generation_kwargs["temperature"] = temperature
        try:
            yield
        finally:
            self.num_generations, self.generation_config.temperature, self.generation_kwargs["temperature"] = saved
            for key in list(metrics):
                if key.startswith("exploration/") or key == "num_tokens":
                    continue
                added = metrics[key][before.get(key, 0):]
                if added:
                    del metrics[key][before.get(key, 0):]
                    metrics[f"exploration/{key}"].extend(added)

    def _log(self, name: str, value: float) -> None:
        self._metrics["train"][name].append(value)

    def _validate_if_due(self) -> None:
        every = self.args.validation_every
        if self.validation_dataset is None or not every or (self.state.global_step + 1) % every:
            return
        from .evaluation import evaluate_policy

        started = time.perf_counter()
        result = evaluate_policy(
            self.model, self.processing_class, self.validation_dataset, n=1, ks=(1,), hard_group_size=1,
            temperature=self.args.validation_temperature, max_new_tokens=self.max_completion_length,
            seed=self.args.seed,
        )
        self._log("validation/accuracy", result.summary["pass@1"])
        self._log("validation/token_entropy", result.summary["token_entropy"])
        self._timers["validation"] += time.perf_counter() - started

    def _log_step_resources(self, seconds: float) -> None:
        for name in ("generation", "scoring", "exploration", "update", "replay", "validation"):
            self._log(f"time/{name}", self._timers[name])
        self._log("time/step", seconds)
        if self._timers["generation"] > 0:
            self._log("time/tokens_per_second", self._timers["generated_tokens"] / self._timers["generation"])
        self._log("memory/peak_rss_mb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        if torch.cuda.is_available():
            self._log("memory/peak_cuda_mb", torch.cuda.max_memory_allocated() / 2**20)

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """TRL's logging, then the same row appended to ``metrics.jsonl`` (kept if the run is interrupted)."""
        step_row = self.model.training and "uec/updated" in self._metrics["train"]  # not eval or the final summary
        super().log(logs, start_time)
        if step_row and self.accelerator.is_main_process:
            self.metrics_path.parent.mkdir(parents=True, exist_ok=True)
            with self.metrics_path.open("a") as handle:
                handle.write(json.dumps({"step": self.state.global_step, **logs}) + "\n")
