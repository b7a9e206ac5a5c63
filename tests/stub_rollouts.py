"""Scripted rollouts for fast ``UECTrainer`` tests: TRL's generation is replaced by hand-made completions, so
a test decides which rollout of which prompt succeeds, and the rest (TRL's scoring and advantages, selection,
the buffers, replay, the loss and the optimizer) runs unchanged on a tiny randomly initialised Llama with a
LoRA adapter. A few steps take well under a second.

The seam is ``GRPOTrainer._generate_single_turn`` (TRL 1.16): TRL's ``_generate`` tokenizes the prompts, calls
it for the completion ids, decodes them and logs its completion metrics; ``UECTrainer._generate`` wraps that
as in a real run. A :class:`Script` gives, per step, phase (``standard``: the G rollouts per prompt;
``exploration``: the G' rollouts per hard prompt) and prompt, one outcome character per rollout:

* ``+`` correct, ``-`` wrong (both end with EOS);
* ``T`` correct but truncated, ``t`` wrong and truncated (no EOS).

Every completion's text is unique and names itself: ``<prompt><step><r|x><index:02d><+|->``, e.g. ``A1r00+``
is prompt A's first standard rollout of step 1, a correct one, and ``C2x13-`` is prompt C's 14th exploration
rollout of step 2, a wrong one. :func:`scripted_reward` gives 1.0 to texts ending in ``+``. Tests identify
samples by these texts (:func:`text_of`, :func:`ids`).

Usage::

    script = Script(
        {1: {"A": "+---", "B": "++--", "C": "----", "D": "++++"}}, exploration={1: {"C": "+-------"}}
    )
    trainer = make_trainer(tmp_path, "uec_rl", script, exploration_generations=8)
    records = run(trainer)            # one StepRecord per training step
    records[0].kept, records[0].update, records[0].metrics["uec/hard_prompts"], ...

``per_device_train_batch_size`` (B0) / ``num_generations`` (G) prompts named A, B, C, ... make the dataset, so
every step sees every prompt once (in the order of TRL's sampler); scripts are keyed by prompt name, not by
position. Scripted completions are 6 characters and EOS (7 tokens; 6 when truncated), after a 1-token prompt.

A :class:`StepRecord` per step holds what each generation call saw (temperature, ``num_generations``), the
standard and exploration samples with TRL's advantages, the kept samples, the ``update`` and ``replay`` lists
given to ``_train``, every mini-batch of the loss (ids, advantages, loss, inputs), the buffers after the step
and the step's ``metrics.jsonl`` row. The records come from wrapping ``UECTrainer._select``, ``_train``,
``compute_loss`` and ``training_step``; renaming those breaks this harness loudly.

Wrap a test module in :func:`fast_cpu` (one torch thread, no garbage-collector scans of the imported
libraries): a run then costs a few tenths of a second.
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import json
import string
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from uec_repro.config import UECConfig, method_config
from uec_repro.layout import METRICS_FILE
from uec_repro.trainer import UECTrainer

__all__ = [
    "GenerationCall",
    "MiniBatch",
    "Script",
    "ScriptedTrainer",
    "Seen",
    "StepRecord",
    "completion_text",
    "fast_cpu",
    "ids",
    "make_trainer",
    "perturb_adapter",
    "run",
    "scripted_reward",
    "text_of",
    "tiny_model",
    "tokenizer",
]

OUTCOMES = {
    "+": (True, False),
    "-": (False, False),
    "T": (True, True),
    "t": (False, True),
}  # (correct, truncated)
PHASES = {"standard": "r", "exploration": "x"}


# ------------------------------------------------------------------------------------------------------------
# Script
# ------------------------------------------------------------------------------------------------------------
class Script:
    """Outcomes per step and prompt: ``standard[step][prompt]`` is a string of G outcome characters,
    ``exploration[step][prompt]`` one of G' characters for a prompt that is hard at that step. A rollout that
    the script does not cover fails the run with KeyError; a string of the wrong length (the trainer asked for
    another group size) with AssertionError."""

    def __init__(
        self,
        standard: Mapping[int, Mapping[str, str]],
        exploration: Mapping[int, Mapping[str, str]] | None = None,
    ) -> None:
        self.standard = {step: dict(groups) for step, groups in standard.items()}
        self.exploration = {step: dict(groups) for step, groups in (exploration or {}).items()}

    @classmethod
    def every_step(
        cls, steps: int, standard: Mapping[str, str], exploration: Mapping[str, str] | None = None
    ) -> Script:
        """The same outcomes at steps 1..steps (completion texts still differ: they carry the step)."""
        return cls(
            {s: standard for s in range(1, steps + 1)}, {s: exploration or {} for s in range(1, steps + 1)}
        )

    @property
    def steps(self) -> int:
        return max(self.standard)

    def outcomes(self, step: int, phase: str, prompt: str, count: int) -> str:
        table = self.standard if phase == "standard" else self.exploration
        try:
            outcomes = table[step][prompt]
        except KeyError:
            raise KeyError(
                f"the script has no {phase} outcomes for prompt {prompt!r} at step {step}"
            ) from None
        assert len(outcomes) == count, (
            f"step {step}, {phase} rollouts of {prompt!r}: the trainer generated {count}, the script has "
            f"{len(outcomes)} ({outcomes!r})"
        )
        assert set(outcomes) <= set(OUTCOMES), outcomes
        return outcomes


def completion_text(prompt: str, step: int, phase: str, index: int, outcome: str) -> str:
    """The text of one scripted completion, e.g. ``A1r00+`` (without its EOS)."""
    correct, _ = OUTCOMES[outcome]
    return f"{prompt}{step}{PHASES[phase]}{index:02d}{'+' if correct else '-'}"


def scripted_reward(prompts, completions, completion_ids, **kwargs) -> list[float]:
    """1.0 for a completion whose text ends with ``+`` (see :func:`completion_text`), else 0.0."""
    return [1.0 if completion.endswith("+") else 0.0 for completion in completions]


# ------------------------------------------------------------------------------------------------------------
# Tiny model
# ------------------------------------------------------------------------------------------------------------
@contextmanager
def fast_cpu() -> Iterator[None]:
    """One torch thread (a width-16 model only loses to thread start-up, more so on a busy machine) and the
    objects alive now frozen out of the garbage collector's scans (HF's ``train`` runs ``gc.collect()``
    through accelerate's ``free_memory``, about a second with transformers and TRL imported); both undone on
    exit."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
        torch.set_num_threads(threads)


@functools.cache
def tokenizer():
    """The toy policy's character-level tokenizer (cheap: no model is built)."""
    from uec_repro.models.toy import build_tokenizer

    return build_tokenizer()


@functools.cache
def _base_weights() -> dict[str, torch.Tensor]:
    return {name: t.clone() for name, t in _fresh_base(seed=0).state_dict().items()}


def _fresh_base(seed: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = tokenizer()
    config = LlamaConfig(
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        vocab_size=len(tok),
        max_position_embeddings=64,
        initializer_range=0.1,  # HF's 0.02 leaves logits so flat that no adapter moves them
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(config)


def tiny_model(adapter_scale: float = 0.0):
    """A 1-layer, width-16 Llama (the same random weights on every call) with a LoRA adapter (r=2) on every
    linear layer. The adapter starts at zero, as peft makes it (the policy equals the reference), unless
    ``adapter_scale`` > 0 (see :func:`perturb_adapter`; 0.5 gives a mean k3 between the policy and the base
    model of about 0.1 per token). Its next-token entropy is about 4.5 nats (104 tokens)."""
    from peft import get_peft_model

    from uec_repro.models import LoraSettings

    base = _fresh_base(seed=0)
    base.load_state_dict(_base_weights())
    torch.manual_seed(1)  # lora_A's initialisation
    model = get_peft_model(base, LoraSettings(r=2, alpha=4, dropout=0.0).to_peft())
    if adapter_scale:
        perturb_adapter(model, adapter_scale)
    return model


@torch.no_grad()
def perturb_adapter(model, scale: float, seed: int = 2) -> None:
    """Set the trained (``default``) adapter's ``lora_B`` to Gaussian values of std ``scale`` (deterministic),
    so that the policy differs from the base model. Other adapters (TRL's frozen ``ref`` copy) are left
    alone."""
    generator = torch.Generator().manual_seed(seed)
    for name, parameter in sorted(model.named_parameters()):
        if ".lora_B.default." in name:
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * scale)


# ------------------------------------------------------------------------------------------------------------
# Records
# ------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GenerationCall:
    """What one generation call saw: the step, ``standard`` or ``exploration`` (the first or the second call
    of a step), ``generation_config.temperature``, ``generation_kwargs["temperature"]`` (TRL passes both to
    ``generate``), the trainer's ``num_generations`` and the one TRL passed down, and the rows' prompts and
    completion texts."""

    step: int
    phase: str
    temperature: float
    kwargs_temperature: float | None
    num_generations: int
    passed_num_generations: int
    prompts: tuple[str, ...]
    completions: tuple[str, ...]


@dataclass(frozen=True)
class Seen:
    """A sample as the trainer held it at one point: its completion text (its identity) and training data."""

    id: str
    advantage: float
    reward: float
    exploration: bool
    truncated: bool


@dataclass
class MiniBatch:
    """One ``compute_loss`` call: its phase (``update`` while the step's update samples are not all used, then
    ``replay``: the trainer makes the update's mini-batches first), the samples' ids in row order, their
    advantages (per sequence; per token for Entropy-Adv), the loss returned, the inputs as TRL's loss read
    them after the call (cloned, on the CPU; ``ref_per_token_logps`` as clamped for the loss) and the
    trainable weights the loss was computed with (by parameter name)."""

    phase: str
    ids: list[str]
    advantages: torch.Tensor
    loss: float
    inputs: dict[str, Any]
    weights: dict[str, torch.Tensor]


@dataclass
class StepRecord:
    """One training step: generation calls, the standard and exploration samples with TRL's advantages, the
    kept samples (after retention and the overlong filter), the ``update`` and ``replay`` sample lists given
    to ``_train`` (in the order given), the mini-batches of the loss, the buffers after the step (oldest
    first), the sampling settings after the step and the step's ``metrics.jsonl`` row (filled in by
    :func:`run`)."""

    step: int
    calls: list[GenerationCall] = field(default_factory=list)
    standard: list[Seen] = field(default_factory=list)
    explored: list[Seen] = field(default_factory=list)
    kept: list[Seen] = field(default_factory=list)
    update: list[Seen] = field(default_factory=list)
    replay: list[Seen] = field(default_factory=list)
    mini_batches: list[MiniBatch] = field(default_factory=list)
    batch_buffer: list[str] = field(default_factory=list)
    replay_buffer: list[str] = field(default_factory=list)
    batch_buffer_dropped: int = 0
    temperature_after: float | None = None
    kwargs_temperature_after: float | None = None
    num_generations_after: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)

    def call(self, phase: str) -> GenerationCall:
        (match,) = [c for c in self.calls if c.phase == phase]
        return match


def text_of(completion_ids: torch.Tensor) -> str:
    """A completion's text (its identity) from its token ids, special tokens dropped."""
    return tokenizer().decode(completion_ids.tolist(), skip_special_tokens=True)


def _seen(samples) -> list[Seen]:
    return [
        Seen(text_of(s.completion_ids), s.advantage, s.reward, s.exploration, s.truncated) for s in samples
    ]


def ids(samples) -> list[str]:
    """The ids of Seen records, samples or buffer contents, in order."""
    return [s.id if isinstance(s, Seen) else text_of(s.completion_ids) for s in samples]


# ------------------------------------------------------------------------------------------------------------
# Trainer
# ------------------------------------------------------------------------------------------------------------
class ScriptedTrainer(UECTrainer):
    """``UECTrainer`` whose generation returns the completions of ``script`` and which records every step in
    ``records`` (see :class:`StepRecord`)."""

    def __init__(self, *args: Any, script: Script, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.script = script
        self.records: list[StepRecord] = []
        self._record: StepRecord | None = None

    def _current(self) -> StepRecord:
        step = self.state.global_step + 1
        if self._record is None or self._record.step != step:
            self._record = StepRecord(step)
        return self._record

    # --- the seam: TRL's generation -------------------------------------------------------------------------
    def _generate_single_turn(
        self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False
    ):
        record = self._current()
        phase = "exploration" if record.calls else "standard"
        assert len(record.calls) < 2, f"a third generation call in step {record.step}"
        tok = tokenizer()
        prompts = [tok.decode(row) for row in prompt_ids]
        completions, texts, seen = [], [], {}
        # rows of one prompt are consecutive (TRL's sampler; the trainer's exploration)
        for prompt in prompts:
            seen.setdefault(prompt, 0)
            index = seen[prompt]
            seen[prompt] += 1
            count = prompts.count(prompt)
            outcome = self.script.outcomes(record.step, phase, prompt, count)[index]
            text = completion_text(prompt, record.step, phase, index, outcome)
            texts.append(text)
            completions.append(tok.encode(text) + ([] if OUTCOMES[outcome][1] else [tok.eos_token_id]))
        record.calls.append(
            GenerationCall(
                step=record.step,
                phase=phase,
                temperature=self.generation_config.temperature,
                kwargs_temperature=self.generation_kwargs.get("temperature"),
                num_generations=self.num_generations,
                passed_num_generations=num_generations,
                prompts=tuple(prompts),
                completions=tuple(texts),
            )
        )
        return completions, None

    # --- recording ------------------------------------------------------------------------------------------
    def _select(self, standard, explored):
        kept = super()._select(standard, explored)
        record = self._current()
        record.standard, record.explored, record.kept = _seen(standard), _seen(explored), _seen(kept)
        return kept

    def _train(self, model, phases):
        record = self._current()
        record.update, record.replay = _seen(phases.get("update", [])), _seen(phases.get("replay", []))
        return super()._train(model, phases)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        if self.model.training:
            mask = inputs["completion_mask"].bool()
            texts = [text_of(row[keep]) for row, keep in zip(inputs["completion_ids"], mask, strict=True)]
            cloned = {
                k: v.detach().cpu().clone() if isinstance(v, torch.Tensor) else v for k, v in inputs.items()
            }
            record = self._current()
            used = sum(len(batch.ids) for batch in record.mini_batches if batch.phase == "update")
            phase = "update" if used < len(record.update) else "replay"
            advantages = inputs["advantages"].detach().cpu().clone()
            weights = {
                n: p.detach().cpu().clone() for n, p in self.model.named_parameters() if p.requires_grad
            }
            record.mini_batches.append(
                MiniBatch(phase, texts, advantages, float(loss.detach()), cloned, weights)
            )
        return loss

    def training_step(self, model, inputs, num_items_in_batch=None):
        record = self._current()
        loss = super().training_step(model, inputs, num_items_in_batch)
        record.batch_buffer = ids(self.batch_buffer.contents()) if self.batch_buffer is not None else []
        record.replay_buffer = ids(self.replay_buffer.contents()) if self.replay_buffer is not None else []
        record.batch_buffer_dropped = self.batch_buffer.dropped if self.batch_buffer is not None else 0
        record.temperature_after = self.generation_config.temperature
        record.kwargs_temperature_after = self.generation_kwargs.get("temperature")
        record.num_generations_after = self.num_generations
        self.records.append(record)
        return loss


# ------------------------------------------------------------------------------------------------------------
# Building and running
# ------------------------------------------------------------------------------------------------------------
def make_trainer(
    tmp_path: Path,
    method: str,
    script: Script,
    *,
    adapter_scale: float = 0.0,
    trainer_class: type[ScriptedTrainer] = ScriptedTrainer,
    probe_dataset: Any = None,
    **overrides: Any,
) -> ScriptedTrainer:
    """A :class:`ScriptedTrainer` for registered ``method`` with ``overrides`` (any UECConfig field) on the
    tiny model; defaults: B0 = 16, G = 4 (so prompts A-D), ``max_steps`` = the script's steps, output in
    ``tmp_path / "run"``, no checkpoints, no validation, no probes (``probe_dataset`` and ``probe_every`` turn
    them on).

    ``adapter_scale`` > 0 perturbs the trained adapter (:func:`perturb_adapter`) after TRL has taken its
    initial, zero weights as the KL reference (TRL copies a given PEFT model's adapter into a frozen ``ref``
    adapter when beta != 0), so that the policy differs from its reference, the base model, from the first
    mini-batch on."""
    from datasets import Dataset

    settings: dict[str, Any] = dict(
        output_dir=str(tmp_path / "run"),
        use_cpu=True,
        max_steps=script.steps,
        num_generations=4,
        per_device_train_batch_size=16,
        max_completion_length=16,
        seed=0,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
        activation_checkpointing=False,
        validation_every=0,
    )
    if "probe_every" in {f.name for f in dataclasses.fields(UECConfig)}:
        settings["probe_every"] = 0
    config = method_config(method, **{**settings, **overrides})
    prompts = string.ascii_uppercase[: config.per_device_train_batch_size // config.num_generations]
    trainer = trainer_class(
        model=tiny_model(),
        reward_funcs=[scripted_reward],
        args=config,
        train_dataset=Dataset.from_dict({"prompt": list(prompts)}),
        processing_class=tokenizer(),
        script=script,
        probe_dataset=probe_dataset,
    )
    if adapter_scale:
        perturb_adapter(trainer.model, adapter_scale)
    return trainer


def run(trainer: ScriptedTrainer, **train_kwargs: Any) -> list[StepRecord]:
    """``trainer.train(**train_kwargs)``; returns the records of the steps it ran, each with its metrics
    row."""
    first = len(trainer.records)
    trainer.train(**train_kwargs)
    path = Path(trainer.args.output_dir) / METRICS_FILE
    rows = (
        {row["step"]: row for row in map(json.loads, path.read_text().splitlines())} if path.exists() else {}
    )
    records = trainer.records[first:]
    for record in records:
        record.metrics = rows.get(record.step, {})
    return records
