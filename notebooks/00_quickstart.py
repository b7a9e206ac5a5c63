# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
#     formats: ipynb,py:percent
#     notebook_metadata_filter: kernelspec,jupytext
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 00 · Quickstart: entropy control in RL for reasoning, in ten minutes on a laptop
#
# UEC-RL (*Targeted Exploration via Unified Entropy Control*, ACL 2026 Findings) starts from two failure
# modes of GRPO, the standard RL recipe for reasoning models:
#
# * **entropy collapse**: the policy sharpens on the prompts it already solves (reinforcing answers that are
#   already likely lowers entropy, see `06_entropy_mechanics`), and stops trying other reasoning paths;
# * **wasted hard prompts**: when all G answers to a prompt are wrong, every advantage is 0, so the prompts
#   the model most needs to learn teach it nothing; and raising entropy by other means (bonuses, wider
#   clips) tends to make training unstable.
#
# The paper's answer: spend extra, hotter rollouts only on the prompts GRPO fails completely (**targeted
# exploration**, meant to raise entropy where it is needed), keep only the informative samples (**selective
# retention**), and periodically retrain on a **replay** buffer (the **stabiliser**, meant to lower entropy
# again). In the released code, which is this package's default, a sample enters the replay buffer when its
# advantage is large in absolute value, |A| > 1: large negative advantages are replayed too (the paper-text
# variant `uec_rl_paper` replays A > 1 only). Whether the two halves move entropy as the paper says, and
# which way the sum goes, is something these runs measure; section 5 prints what this run shows.
#
# This tour runs everything on the package's *toy policy*: a ~1 M-parameter model organism that the package
# builds on this machine (about 3 minutes the first time, then cached). It solves small arithmetic problems
# with `<think>` reasoning and a `\boxed{}` answer, right about a third of the time, so RL has room to help.

# %% tags=["parameters"]
policy = "toy"  # the policy to train (see uec_repro.models.POLICIES)
steps = 12  # training steps of each run
seed = 0  # seed of everything
eval_prompts = 100  # held-out problems of the final evaluation
eval_samples = 8  # samples per problem (Pass@k up to k of this size)
experiment_dir = "runs"  # the runs go to experiment_dir/quickstart/METHOD

# %%
from pathlib import Path

from uec_repro.training import RunSettings

common = dict(
    policy=policy,
    steps=steps,
    seed=seed,
    eval_prompts=eval_prompts,
    eval_samples=eval_samples,
    validation_every=4,
    overwrite=True,
)
runs_dir = Path(experiment_dir) / "quickstart"
runs = {
    method: RunSettings(method=method, output_dir=str(runs_dir / method), **common)
    for method in ("base", "grpo", "uec_rl")
}

# %% [markdown]
# ## 1. A task
# Tasks are `datasets.Dataset`s with a `prompt` (here plain text: the toy policy has no chat template), the
# reference `answer` and a `difficulty` tier. The built-in `arith` family is generated offline from a seed;
# the paper's Geometry3K and MATH load from the Hugging Face Hub when you have it.

# %%
from uec_repro.models import load_policy
from uec_repro.tasks import load_task

model, tokenizer = load_policy(policy)
train = load_task("arith", "train", n=4, seed=seed, tokenizer=tokenizer)
train.to_pandas()[["prompt", "answer", "difficulty"]]

# %% [markdown]
# ## 2. The reward
# The reward is answer accuracy only, as in the authors' code: the content of the last `\boxed{}` is compared
# with the reference (numbers exactly, everything else with math-verify in a sandboxed subprocess).

# %%
from uec_repro.rewards import accuracy_reward

answer = train[0]["answer"]
completions = [
    f"<think>...</think> \\boxed{{{answer}}}",
    "<think>...</think> \\boxed{7}",
    f"the answer is {answer}",
]
list(zip(completions, accuracy_reward(completions, answer=[answer] * 3), strict=True))

# %% [markdown]
# ## 3. What the policy does before training
# Eight samples for one problem at temperature 1. Some are right, some wrong: that spread is what GRPO's
# group-relative advantage learns from.

# %%
from uec_repro.evaluation import sample

for text in sample(model, tokenizer, [train[0]["prompt"]], n=8, seed=seed).completions[0]:
    print(repr(text))

# %% [markdown]
# ## 4. Train: GRPO, then UEC-RL
# Each run writes a run directory: per-step metrics, the final evaluation and the LoRA adapter. `base` is
# the untrained policy evaluated the same way.

# %%
from uec_repro.training import run_training

results = {method: run_training(settings) for method, settings in runs.items()}
{
    method: {key: round(r["summary"][key], 3) for key in ("pass@1", f"pass@{eval_samples}", "token_entropy")}
    for method, r in results.items()
}

# %% [markdown]
# ## 5. One plot: reward, entropy and UEC-RL's extra samples per step
# The entropy shown is the *probe*: every few steps each run samples the same held-out prompts with the same
# seed and measures the policy's token entropy there, so GRPO and UEC-RL are measured on the same footing
# (step 0 is the untrained policy, identical for both). The entropy of the samples a method trains on
# (`entropy/update_batch*` in `metrics.jsonl`) is not comparable: UEC-RL trains only on the samples it keeps.
# The paper claims GRPO's entropy collapses and UEC-RL keeps it from collapsing. The cell after the plot
# prints what these two runs show; the claims tables (`figures/claims.md`, 30 steps, and
# `figures/paper/claims.md`, 150 steps) test both claims over several seeds, claims (a) and (b).

# %%
import matplotlib.pyplot as plt
import pandas as pd

frames = {m: pd.read_json(runs_dir / m / "metrics.jsonl", lines=True) for m in ("grpo", "uec_rl")}
fig, axes = plt.subplots(1, 3, figsize=(13, 3.2))
for method, frame in frames.items():
    axes[0].plot(frame["step"], frame["reward"], marker=".", label=method)
    probed = frame.dropna(subset=["probe/entropy"])
    axes[1].plot(probed["step"], probed["probe/entropy"], marker=".", label=method)
uec = frames["uec_rl"]  # side by side: hard prompts (prompts) and the exploration samples kept (samples)
axes[2].bar(uec["step"] - 0.2, uec["uec/hard_prompts"], width=0.4, label="hard prompts")
axes[2].bar(
    uec["step"] + 0.2, uec["uec/exploration_kept_positive"], width=0.4, label="exploration kept (A > 0)"
)
for ax, title in zip(
    axes, ("training reward", "probe entropy (same prompts for both)", "UEC-RL exploration"), strict=True
):
    ax.set(title=title, xlabel="step")
    ax.legend()
fig.tight_layout()

# %%
from uec_repro.results import probe_change

steps_frame = pd.concat([frame.assign(variant=method) for method, frame in frames.items()])
change = probe_change(steps_frame).set_index("variant")
for method, row in change.iterrows():
    print(
        f"{method}: probe entropy {row.start:.3f} -> {row.end:.3f} nats from step {row.first_step:.0f} "
        f"to {row.last_step:.0f}, a change of {row.change:+.3f}"
    )
gap = change.loc["uec_rl", "end"] - change.loc["grpo", "end"]
print(f"at the last probe, UEC-RL minus GRPO: {gap:+.3f} nats")
print("(one seed each: a sign, not a measurement; 03_baselines compares methods over seeds with intervals)")

# %% [markdown]
# ## Where next
# * `01_train`: one run with every knob; `02_ablation`: exploration vs stabiliser; `03_baselines`: UEC-RL
#   against GRPO, DAPO, KL-Cov, Clip-Cov, Entropy-Adv; `04_passk`: Pass@k curves; `05_paper_figures`: the
#   paper's figures beside ours; `06_entropy_mechanics`: why entropy moves the way it does.
# * Batch reruns: `uec-repro run default` (what `make reproduce` does).
