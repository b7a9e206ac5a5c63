"""The method registry, torch-free: each method is a set of :class:`~uec_repro.config.UECConfig` overrides
(``method_config("dapo")`` builds one), with a one-line summary and its source in the literature and in
docs/paper.md."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["METHODS", "Method", "methods_table"]


@dataclass(frozen=True)
class Method:
    """One registered method: the overrides of :class:`UECConfig` that make it, and where it comes from."""

    summary: str
    source: str
    overrides: dict[str, Any]


_PLAIN_GRPO = {
    "exploration": False,
    "retention": False,
    "overlong_filter": False,
    "batch_buffer": False,
    "replay": False,
}

METHODS: dict[str, Method] = {
    "grpo": Method(
        "GRPO as in the authors' harness: update on every batch, k3 KL 0.01, clip 0.2/0.2, token-mean loss.",
        "Shao et al. 2024; docs/paper.md#grpo",
        _PLAIN_GRPO,
    ),
    "dapo": Method(
        "DAPO: clip-higher 0.28, dynamic sampling (drop zero-variance groups) with a batch buffer of 4 x B0 "
        "(the authors' DAPO code), token-level loss, no KL. Set epsilon_high=0.2 for the authors' own DAPO "
        "code, which hard-codes the clip.",
        "Yu et al. 2025, arXiv 2503.14476; docs/paper.md#dapo",
        {
            **_PLAIN_GRPO,
            "retention": True,
            "batch_buffer": True,
            "batch_buffer_capacity": 4.0,
            "epsilon_high": 0.28,
            "beta": 0.0,
        },
    ),
    "entropy_bonus": Method(
        "GRPO plus TRL's entropy bonus (entropy_coef 0.001, a common value; the paper gives none).",
        "entropy regularisation baseline; docs/paper.md#entropy-bonus",
        {**_PLAIN_GRPO, "entropy_coef": 0.001},
    ),
    "kl_cov": Method(
        "KL-Cov: |log p - log p_old| penalty (coef 1) on the top 2e-3 tokens by covariance; no KL to "
        "reference.",
        "Cui et al. 2025, arXiv 2505.22617 (verl 7B recipe); docs/paper.md#kl-cov-and-clip-cov",
        {**_PLAIN_GRPO, "kl_cov_ratio": 2e-3, "kl_cov_coef": 1.0, "beta": 0.0},
    ),
    "clip_cov": Method(
        "Clip-Cov: drop the gradient of 2e-4 of the tokens with covariance in (1, 5); no KL to reference.",
        "Cui et al. 2025, arXiv 2505.22617; docs/paper.md#kl-cov-and-clip-cov",
        {**_PLAIN_GRPO, "clip_cov_ratio": 2e-4, "clip_cov_bounds": (1.0, 5.0), "beta": 0.0},
    ),
    "entropy_adv": Method(
        "Entropy-Adv: advantage + min(0.4 x token entropy, |A| / 2), entropy detached.",
        "Cheng et al. 2025, arXiv 2506.14758; docs/paper.md#entropy-adv",
        {**_PLAIN_GRPO, "entropy_adv_alpha": 0.4, "entropy_adv_kappa": 2.0},
    ),
    "uec_rl": Method(
        "UEC-RL with the released code's semantics (the defaults of UECConfig).",
        "UEC-RL, arXiv 2604.14646, code github.com/597358816/EFRame; docs/paper.md#the-algorithm",
        {},
    ),
    "uec_rl_paper": Method(
        "UEC-RL with the paper text's rules: exploration keeps A > 0, replay takes A > A0.",
        "UEC-RL paper text; docs/paper.md#paper-versus-code",
        {"exploration_rule": "positive", "replay_rule": "positive"},
    ),
    "uec_rl_no_explore": Method(
        "Ablation: UEC-RL without targeted exploration (no extra rollouts).",
        "UEC-RL ablation; docs/paper.md#ablation",
        {"exploration": False},
    ),
    "uec_rl_no_replay": Method(
        "Ablation: UEC-RL without the replay stabiliser.",
        "UEC-RL ablation; docs/paper.md#ablation",
        {"replay": False},
    ),
    "uec_rl_no_retention": Method(
        "Ablation: UEC-RL without selective retention (every sample is kept).",
        "UEC-RL ablation; docs/paper.md#ablation",
        {"retention": False},
    ),
}


def methods_table() -> str:
    """The paper index as a markdown table: method, what it is, source."""
    rows = [f"| `{name}` | {m.summary} | {m.source} |" for name, m in METHODS.items()]
    return "\n".join(["| method | what it is | source |", "|---|---|---|", *rows])
