"""``UECConfig`` (TRL's ``GRPOConfig`` plus UEC-RL's switches) and the method registry.

Every TRL option still works; the fields added here switch UEC-RL's components on and off one by one, so
that an ablation is a change of one field. The defaults are the authors' released code
(docs/paper.md#the-algorithm); where the paper text says otherwise the paper's variant is a value of the same
field (docs/paper.md#paper-versus-code):

=======================  ==========================  ===============================================
field                    released code (default)     paper text / later code
=======================  ==========================  ===============================================
``exploration_rule``     ``"abs>1"``                 ``"positive"`` (paper), ``"abs>0.5"`` (ICR code)
``replay_rule``          ``"abs"`` (abs(A) > A0)     ``"positive"`` (A > A0), A0 = ``replay_threshold``
``exploration_temp...``  1.2                         1.15 / 1.1 in later author code
``batch_buffer_cap...``  2 x B0                      4 x B0 in later author code
``replay_fresh_logp...``  False (stored old log-probs) True: recomputed just before the replay update
``kl_clamp``             10 (k3 clamped to +-10)      None: TRL's unclamped k3
``shuffle_mini_batches`` False (split in order)       True: TRL's shuffled split
=======================  ==========================  ===============================================

TRL's choices that the authors' code does not share are changed here, each reachable again through its field:
the KL term is plain k3 (``use_bias_correction_kl=False``; TRL multiplies k3 by the importance ratio), AdamW's
weight decay is 0.01 (HF: 0.0), and mini-batches are taken in order.

B0, the size of one unfiltered update batch, is ``per_device_train_batch_size`` completions times the number
of processes (the authors: 512 prompts x 5 = 2560); with several processes, G' must split evenly among them.
Sizes of the buffers are multiples of B0. A training step generates once and makes as many optimizer steps as
the data it trains on needs (``updates_per_batch`` per B0; none when the batch buffer is not yet full), so
TRL's ``steps_per_generation``, ``gradient_accumulation_steps`` and ``num_iterations`` stay 1.

:data:`METHODS` maps a method name to the overrides that make it (``method_config("dapo")``); the paper
index in :func:`methods_table` says which paper and which section of docs/paper.md each one implements.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from trl import GRPOConfig

from .defaults import (
    EXPLORATION_GROUP_FACTOR,
    EXPLORATION_TEMPERATURE,
    LEARNING_RATE,
    REPLAY_CAPACITY,
    REPLAY_FREQUENCY,
)
from .methods import METHODS, Method, methods_table
from .selection import EXPLORATION_RULES, REPLAY_RULES
from .validation import ParameterError, check_bool, check_choice, check_float, check_int

__all__ = ["METHODS", "Method", "UECConfig", "method_config", "methods_table"]


# TRL generation back-ends that UECTrainer cannot drive yet, refused before anything is loaded (not mid-run)
UNSUPPORTED_GENERATION = {
    "use_vllm": "Exploration samples G' completions at t' by switching TRL's transformers generation config, "
    "which TRL's vLLM generator does not read (its temperature is fixed when it starts), and the "
    "re-collated batches of the buffers carry no vLLM importance-sampling ratio. Generate with transformers "
    "(the default).",
    "use_transformers_continuous_batching": "TRL's continuous batching casts the whole model to bf16 on "
    "every generation call, QLoRA's fp32 norms and the fp32 adapters included. Use the default generation.",
}


@dataclass
class UECConfig(GRPOConfig):
    """``GRPOConfig`` with UEC-RL's components and the baselines' knobs; defaults follow the authors' code."""

    # ---- targeted exploration (docs/paper.md#hard-prompts-and-targeted-exploration) ----
    exploration: bool = field(
        default=True,
        metadata={
            "help": "Targeted exploration: prompts whose G standard rollouts all get reward 0 are 'hard' and "
            "get G' extra rollouts at temperature t'."
        },
    )
    exploration_generations: int | None = field(
        default=None,
        metadata={
            "help": "G', extra rollouts per hard prompt. None: 4 x num_generations (the authors: G = 5, "
            "G' = 20)."
        },
    )
    exploration_temperature: float = field(
        default=EXPLORATION_TEMPERATURE,
        metadata={
            "help": "t', sampling temperature of the extra rollouts (released code 1.2; later code 1.15, "
            "1.1). Log-probs for the loss use the training temperature, as in the authors' code."
        },
    )
    # ---- selective retention (docs/paper.md#selective-retention) ----
    retention: bool = field(
        default=True,
        metadata={
            "help": "Selective retention: train only on standard samples with |A| > regular_threshold and on "
            "exploration samples that pass exploration_rule. Off: every sample is kept."
        },
    )
    regular_threshold: float = field(
        default=0.05,
        metadata={
            "help": "Standard samples are kept when |A| exceeds this (drops all-correct and all-wrong "
            "groups)."
        },
    )
    exploration_rule: str = field(
        default="abs>1",
        metadata={
            "help": "Which exploration samples are kept: "
            + "; ".join(f"'{k}': {v}" for k, v in EXPLORATION_RULES.items())
        },
    )
    # ---- overlong filter (docs/paper.md#overlong-filter) ----
    overlong_filter: bool = field(
        default=True,
        metadata={
            "help": "Drop truncated samples whose advantage is positive (an unfinished answer is never "
            "reinforced); truncated samples with A <= 0 stay."
        },
    )
    # ---- batch buffer (docs/paper.md#batch-buffer) ----
    batch_buffer: bool = field(
        default=True,
        metadata={
            "help": "Collect filtered samples in a FIFO and update only when it holds at least one full "
            "batch of B0 samples; steps with less data make no update (logged)."
        },
    )
    batch_buffer_capacity: float = field(
        default=2.0,
        metadata={
            "help": "Batch-buffer capacity as a multiple of B0 (released code 2; later code 4); the oldest "
            "samples are dropped on overflow."
        },
    )
    # ---- replay stabiliser (docs/paper.md#replay-buffer) ----
    replay: bool = field(
        default=True,
        metadata={
            "help": "Replay stabiliser: samples of each update that pass replay_rule enter a replay buffer; "
            "every replay_frequency steps one extra update is made on samples drawn from it."
        },
    )
    replay_rule: str = field(
        default="abs",
        metadata={
            "help": "Which updated samples enter the replay buffer: "
            + "; ".join(f"'{k}': {v}" for k, v in REPLAY_RULES.items())
        },
    )
    replay_threshold: float = field(
        default=1.0, metadata={"help": "A0 of the replay rule (the authors' code implies 1)."}
    )
    replay_capacity: float = field(
        default=REPLAY_CAPACITY,
        metadata={
            "help": "s', the replay buffer's capacity as a multiple of B0 (released code: 2 x 2560 = 5120)."
        },
    )
    replay_frequency: int = field(
        default=REPLAY_FREQUENCY,
        metadata={"help": "f_replay: a replay update every this many training steps."},
    )
    replay_fresh_logprobs: bool = field(
        default=False,
        metadata={
            "help": "False (released code): replayed samples keep the old log-probs stored when they were "
            "first trained on, so the clip bounds how far replay moves the policy from that older policy. "
            "True: recompute them with the weights of just before the replay update (after this step's "
            "update), so the clip is taken around the current policy."
        },
    )
    # ---- baselines' knobs (docs/paper.md#baselines); 0 switches each off ----
    kl_cov_ratio: float = field(
        default=0.0,
        metadata={
            "help": "KL-Cov (Cui et al. 2025): share k of tokens, by covariance of log-prob and advantage, "
            "that get the penalty kl_cov_coef x |log p - log p_old|. 0 = off; the method uses 2e-3."
        },
    )
    kl_cov_coef: float = field(
        default=1.0, metadata={"help": "KL-Cov penalty coefficient (beta; recipe value 1)."}
    )
    clip_cov_ratio: float = field(
        default=0.0,
        metadata={
            "help": "Clip-Cov (Cui et al. 2025): share r of tokens with covariance in clip_cov_bounds whose "
            "gradient is dropped. 0 = off; the method uses 2e-4."
        },
    )
    clip_cov_bounds: tuple[float, float] = field(
        default=(1.0, 5.0), metadata={"help": "Clip-Cov's covariance window (omega_low, omega_high)."}
    )
    entropy_adv_alpha: float = field(
        default=0.0,
        metadata={
            "help": "Entropy-Adv (Cheng et al. 2025): advantage + min(alpha x H, |A| / kappa) per token. "
            "0 = off; the method uses 0.4."
        },
    )
    entropy_adv_kappa: float = field(default=2.0, metadata={"help": "Entropy-Adv's cap divisor kappa (> 1)."})
    # ---- entropy probe: the same measurement for every method ----
    probe_every: int = field(
        default=5,
        metadata={
            "help": "Measure the policy on the fixed probe prompts at step 0 (the initial policy), every "
            "this many steps and at the last step (0 = never): probe/entropy, probe/sampled_nll, "
            "probe/accuracy, probe/mean_length. Unlike the update-batch measures, these do not depend on "
            "which samples a method trains on."
        },
    )
    probe_samples: int = field(
        default=4, metadata={"help": "Completions per probe prompt, sampled at T = 1 with the run's top_p."}
    )
    probe_seed: int = field(
        default=0,
        metadata={
            "help": "Sampling seed of every probe, whatever the run's seed, so every method and seed is "
            "probed with the same draws; the probe leaves the training's random state untouched."
        },
    )
    # ---- validation during training (docs/paper.md#hyper-parameters) ----
    validation_every: int = field(
        default=5, metadata={"help": "Validate on the held-out split every this many steps (0 = never)."}
    )
    validation_temperature: float = field(
        default=0.5,
        metadata={"help": "Sampling temperature of in-training validation (authors: 0.5, n = 1)."},
    )
    # ---- TRL fields whose defaults follow the authors' code ----
    beta: float = field(
        default=0.01,
        metadata={"help": "Coefficient of the k3 KL to the initial policy (authors: 0.01, as a loss term)."},
    )
    use_bias_correction_kl: bool = field(
        default=False,
        metadata={
            "help": "False (authors): plain k3, exp(ref - logp) - (ref - logp) - 1. True: TRL's default, k3 "
            "times the importance ratio pi / pi_old."
        },
    )
    kl_clamp: float | None = field(
        default=10.0,
        metadata={
            "help": "The authors clamp each token's k3 to [-10, 10] (k3 >= 0, so only the upper bound acts; "
            "a clamped token's KL has no gradient). None: unclamped, as TRL."
        },
    )
    weight_decay: float = field(
        default=0.01, metadata={"help": "AdamW weight decay (authors: 0.01; HF: 0.0)."}
    )
    shuffle_mini_batches: bool = field(
        default=False,
        metadata={
            "help": "False (authors): an update batch is split in order into mini-batches of "
            "ceil(B0 / updates_per_batch) samples. True: shuffled and split into near-equal mini-batches, "
            "as TRL does."
        },
    )
    epsilon_high: float | None = field(
        default=0.2,
        metadata={"help": "Upper clip; the authors' code hard-codes 0.2 (its config's 0.3 is ignored)."},
    )
    exploration_max_rows: int | None = field(
        default=None,
        metadata={
            "help": "The most exploration rows (hard prompts x G') one process generates in one call; more "
            "go in chunks of whole groups (memory: the KV cache grows with the rows). None: one call, as the "
            "authors' code. Chunks draw other samples than one call (each consumes the random stream)."
        },
    )
    updates_per_batch: int = field(
        default=4,
        metadata={
            "help": "Optimizer steps per B0 samples trained on: an update batch is split into mini-batches "
            "of ceil(B0 / updates_per_batch) (authors: 2560 = 4 x 640), so the PPO ratio and clip are active."
        },
    )
    loss_type: str = field(
        default="bnpo",
        metadata={
            "help": "TRL loss aggregation; 'bnpo' is the token mean over each mini-batch. The authors "
            "average per-micro-batch token means; that is the same here, where a mini-batch is one "
            "micro-batch (with several processes, ours is the mini-batch's token mean, theirs the mean of "
            "per-GPU means)."
        },
    )
    delta: float | None = field(
        default=3.0,
        metadata={
            "help": "TRL's upper bound on the ratio; for negative advantages it is the authors' dual clip "
            "(c = 3), for positive ones it never binds above 1 + epsilon_high."
        },
    )
    disable_dropout: bool = field(
        default=True, metadata={"help": "No dropout, so the old and the current log-probs of a sample agree."}
    )
    learning_rate: float = field(
        default=LEARNING_RATE,
        metadata={
            "help": "For LoRA adapters; the authors' 1e-6 is for full fine-tuning of 7B models. Measured on "
            "the toy policy (LoRA r = 16, 40 steps of 8 prompts x 8): grpo pass@1 0.362 -> 0.419."
        },
    )
    lr_scheduler_type: str = field(
        default="constant",
        metadata={"help": "Learning-rate schedule: 'constant' only (the authors'; see validate_uec_fields)."},
    )
    logging_steps: float = field(default=1, metadata={"help": "Log (one metrics row) every this many steps."})
    top_p: float = field(
        default=0.99, metadata={"help": "Rollout top-p (authors: 0.99, at temperature 1.0)."}
    )
    bf16: bool | None = field(
        default=None,
        metadata={
            "help": "None: bf16 on CUDA GPUs with native bf16 (Ampere and later), fp32 elsewhere (bf16 is "
            "several times slower on CPU); True on an older GPU is refused."
        },
    )
    # TRL 1.16 sets the deprecated alias (gradient_checkpointing=True): transformers 5 warns at every
    # config. Unset here; __post_init__ turns TRL's default on under the new name, activation_checkpointing
    gradient_checkpointing: bool | None = field(
        default=None,
        metadata={"help": "Deprecated alias of activation_checkpointing (transformers 5), removed in v6."},
    )
    # ---- faults and resources ----
    nonfinite_patience: int = field(
        default=3,
        metadata={
            "help": "A step whose rewards, advantages, loss or gradients are NaN/inf makes no update "
            "(counted in faults/skipped_step); after this many such steps in a row the run stops with "
            "NonFiniteError (0: stop at the first). A checkpoint is never written from non-finite weights."
        },
    )
    min_free_disk_mb: float = field(
        default=64.0,
        metadata={
            "help": "Free disk space (MB), on top of the size of one checkpoint, required before a "
            "checkpoint is written; when short the run stops with InsufficientDiskError and keeps what it "
            "has."
        },
    )
    keep_all_checkpoints: bool = field(
        default=False,
        metadata={
            "help": "Keep every complete checkpoint-<step> folder (False: once a new checkpoint is complete, "
            "the older ones are removed). HF's save_total_limit is not used for this: HF rotates before "
            "the new checkpoint's UEC state marks it complete."
        },
    )

    def __post_init__(self) -> None:
        self.validate_uec_fields()
        import torch

        on_cuda = torch.cuda.is_available() and not self.use_cpu
        # native bf16: Ampere (compute capability 8.0) and later; older GPUs only emulate it, slowly
        native_bf16 = on_cuda and torch.cuda.is_bf16_supported(including_emulation=False)
        if self.bf16 is None:
            self.bf16 = native_bf16
        elif self.bf16 and on_cuda and not native_bf16:
            raise ParameterError(
                f"bf16={self.bf16!r} is not allowed on this GPU: it has no native bf16 (compute capability "
                f"{_compute_capability()}; bf16 needs 8.0, Ampere, or later); use bf16=None or False (fp32, "
                "what bf16=None picks here) or a newer GPU"
            )
        if self.activation_checkpointing is None and self.gradient_checkpointing is None:
            self.activation_checkpointing = True  # TRL's default
        super().__post_init__()
        if self.exploration and self.exploration_group_size % self.world_size:
            raise ParameterError(
                f"exploration_generations={self.exploration_group_size} must be a multiple of the number of "
                f"processes ({self.world_size}): each process generates an equal share of every hard "
                "prompt's extra rollouts"
            )

    @property
    def exploration_group_size(self) -> int:
        """G': ``exploration_generations``, or 4 x ``num_generations`` when it is None."""
        return self.exploration_generations or EXPLORATION_GROUP_FACTOR * self.num_generations

    def validate_uec_fields(self) -> None:
        """Check the fields added here; ParameterError names the field, its value and what is allowed."""
        for name in (
            "exploration",
            "retention",
            "overlong_filter",
            "batch_buffer",
            "replay",
            "replay_fresh_logprobs",
            "shuffle_mini_batches",
            "use_bias_correction_kl",
        ):
            if not isinstance(getattr(self, name), bool):
                raise ParameterError(f"{name}={getattr(self, name)!r} must be True or False")
        if self.exploration_generations is not None:
            check_int("exploration_generations", self.exploration_generations, minimum=2)
        check_float("exploration_temperature", self.exploration_temperature, minimum=0.0, min_exclusive=True)
        check_float("regular_threshold", self.regular_threshold, minimum=0.0)
        check_choice("exploration_rule", self.exploration_rule, EXPLORATION_RULES)
        check_choice("replay_rule", self.replay_rule, REPLAY_RULES)
        check_float("replay_threshold", self.replay_threshold, minimum=0.0)
        check_float("batch_buffer_capacity", self.batch_buffer_capacity, minimum=1.0)
        check_float("replay_capacity", self.replay_capacity, minimum=1.0)
        check_int("replay_frequency", self.replay_frequency, minimum=1)
        check_float("kl_cov_ratio", self.kl_cov_ratio, minimum=0.0, maximum=1.0)
        check_float("kl_cov_coef", self.kl_cov_coef, minimum=0.0)
        check_float("clip_cov_ratio", self.clip_cov_ratio, minimum=0.0, maximum=1.0)
        bounds = self.clip_cov_bounds
        if (
            not isinstance(bounds, tuple | list)
            or len(bounds) != 2
            or not all(isinstance(b, int | float) and not isinstance(b, bool) for b in bounds)
            or not bounds[0] < bounds[1]
        ):
            raise ParameterError(
                f"clip_cov_bounds={bounds!r} must be two numbers (low, high) with low < high"
            )
        check_float("entropy_adv_alpha", self.entropy_adv_alpha, minimum=0.0)
        check_float("entropy_adv_kappa", self.entropy_adv_kappa, minimum=1.0, min_exclusive=True)
        if self.kl_clamp is not None:
            check_float("kl_clamp", self.kl_clamp, minimum=0.0, min_exclusive=True)
        check_float("weight_decay", self.weight_decay, minimum=0.0)
        check_int("probe_every", self.probe_every, minimum=0)
        check_int("probe_samples", self.probe_samples, minimum=1)
        check_int("probe_seed", self.probe_seed, minimum=0)
        check_int("validation_every", self.validation_every, minimum=0)
        if self.exploration_max_rows is not None:
            check_int("exploration_max_rows", self.exploration_max_rows, minimum=1)
        for name, why in UNSUPPORTED_GENERATION.items():
            if getattr(self, name, False):
                raise ParameterError(f"{name}=True is not supported by UECTrainer; allowed: False. {why}")
        schedule = getattr(self.lr_scheduler_type, "value", self.lr_scheduler_type)
        # HF's scheduler steps once per training step, UECTrainer's optimizer more often
        if schedule != "constant":
            raise ParameterError(
                f"lr_scheduler_type={schedule!r} is not supported; allowed: 'constant'. UECTrainer makes "
                "several optimizer steps per training step (mini-batches, replay) and HF's scheduler "
                "advances once per training step, so any other schedule would follow training steps, not "
                "optimizer steps"
            )
        check_float("validation_temperature", self.validation_temperature, minimum=0.0, min_exclusive=True)
        check_float("beta", self.beta, minimum=0.0)
        check_float("learning_rate", self.learning_rate, minimum=0.0, min_exclusive=True)
        check_float("temperature", self.temperature, minimum=0.0, min_exclusive=True)
        check_float("top_p", self.top_p, minimum=0.0, maximum=1.0, min_exclusive=True)
        check_int("updates_per_batch", self.updates_per_batch, minimum=1)
        check_int("nonfinite_patience", self.nonfinite_patience, minimum=0)
        check_float("min_free_disk_mb", self.min_free_disk_mb, minimum=0.0)
        check_bool("keep_all_checkpoints", self.keep_all_checkpoints)
        group = check_int("num_generations", self.num_generations, minimum=2)
        size = check_int("per_device_train_batch_size", self.per_device_train_batch_size, minimum=1)
        if size % group:
            nearest = " or ".join(str(m) for m in (size // group * group, (size // group + 1) * group) if m)
            raise ParameterError(
                f"per_device_train_batch_size={size} is not allowed with num_generations={group}: a batch "
                f"holds whole groups of {group} completions, so use a multiple of {group} (e.g. {nearest})"
            )
        if self.generation_batch_size not in (None, size):
            raise ParameterError(
                f"generation_batch_size={self.generation_batch_size!r} is not allowed: UECTrainer generates "
                f"one batch of per_device_train_batch_size={size} completions per step; use None or {size}"
            )
        for name in ("steps_per_generation", "gradient_accumulation_steps", "num_iterations"):
            if getattr(self, name) not in (None, 1):
                raise ParameterError(
                    f"{name}={getattr(self, name)!r} is not allowed: UECTrainer generates once per step and "
                    "makes its own optimizer steps (set updates_per_batch instead); use None or 1"
                )


def _compute_capability() -> str:
    """The current CUDA device's compute capability, ``"major.minor"`` (``"unknown"`` if unreadable)."""
    import torch

    try:
        return "{}.{}".format(*torch.cuda.get_device_capability())
    except Exception:
        return "unknown"


def method_config(method: str, **overrides: Any) -> UECConfig:
    """The :class:`UECConfig` of a registered ``method``; keyword ``overrides`` (any field) win over its
    own."""
    check_choice("method", method, METHODS)
    names = {f.name for f in fields(UECConfig)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ParameterError(f"unknown UECConfig field(s) {unknown}; see help(UECConfig) for the fields")
    return UECConfig(**{**METHODS[method].overrides, **overrides})
