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
# # 03 · UEC-RL against the paper's baselines
#
# Every method runs in the same harness (`UECTrainer`, one config switch per component), on the same
# policy, task, prompts and seeds, so the only difference between two runs is the method:
#
# | method | how it is meant to act on entropy |
# |---|---|
# | `grpo` | it does not: group-relative advantages, clip, k3 KL to the initial policy |
# | `dapo` | clip-higher (ε_high=0.28) lets unlikely tokens grow; drops zero-variance groups (batch buffer) |
# | `entropy_bonus` | adds an entropy term to the loss (the classic regulariser UEC-RL argues against) |
# | `kl_cov` | penalises the change of the few tokens with the largest covariance of log-prob and advantage |
# | `clip_cov` | stops the gradient of a few high-covariance tokens |
# | `entropy_adv` | adds a capped entropy bonus to each token's advantage |
# | `uec_rl` | hot rollouts on hard prompts raise it; replay of samples with \|A\| > 1 lowers it (paper) |
#
# UEC-RL's replay rule is the released code's (this package's default): an updated sample enters the replay
# buffer when |A| > 1, so large negative advantages are replayed too; `uec_rl_paper` replays A > 1 only.
#
# The covariance methods come from the same observation UEC-RL builds on (Cui et al. 2025; see
# `06_entropy_mechanics`). For a softmax policy and one small step of size η, the first-order change of the
# entropy at a state is dH ≈ −η·Cov(log π, A) under **natural** policy gradient (the logits move by η·A), and
# dH ≈ −η·Cov(log π, π·A) under **vanilla** policy gradient (the logits move by η·π·A); the covariance is
# over actions a ~ π(·|s). Either way, reinforcing already-likely actions lowers entropy.

# %% [markdown]
# ## Parameters
# By default the notebook reads the shipped reference runs (`data/reference/default`, the `default` preset)
# and trains nothing: it opens in seconds. To train, point `experiment_dir` at a runs folder (e.g.
# `runs/baselines`) and set `run_missing = True`: the grid's missing runs are trained there
# (`<experiment_dir>/<method>/seed<k>/`), complete ones are skipped.

# %% tags=["parameters"]
experiment_dir = "data/reference/default"  # runs are read from here (and trained into, with run_missing)
methods = [
    "base",
    "grpo",
    "dapo",
    "entropy_bonus",
    "kl_cov",
    "clip_cov",
    "entropy_adv",
    "uec_rl",
]  # methods compared
seeds = [0, 1, 2]  # one run per method and seed; bands are 95% confidence intervals over seeds
train_parameters = {"steps": 30, "eval_prompts": 200, "eval_samples": 16}  # 01_train settings of every run
run_missing = False  # True: train the grid's missing runs into experiment_dir (a runs/ folder)
jobs = 1  # runs trained in parallel
figures_dir = ""  # empty: experiment_dir/figures, or runs/figures/03_baselines/<name> for a reference

# %%
from pathlib import Path

from uec_repro.experiments import GridSpec, run_grid, training_grid
from uec_repro.layout import figures_folder, is_reference
from uec_repro.validation import ParameterError

grid = GridSpec.from_dict(
    training_grid(experiment_dir, methods, seeds, train_parameters), source="03_baselines"
)
if run_missing and is_reference(experiment_dir):
    raise ParameterError(
        f"experiment_dir={experiment_dir!r} is a shipped reference: train into a runs/ folder"
    )
out_dir = figures_folder(experiment_dir, figures_dir, "03_baselines")

# %% [markdown]
# ## Train what is missing
# The batch runner executes `01_train` once per (method, seed) with papermill, skips runs that are already
# complete and restarts interrupted ones. Each run folder holds the executed notebook and a `run.json`
# manifest (parameters, versions, git commit, hardware, wall time, peak memory).

# %%
if run_missing:
    report = run_grid(grid, runs_root=Path(experiment_dir).parent, jobs=jobs)
    assert report.ok, "some runs failed: see the report above"

# %%
from uec_repro import figures
from uec_repro.results import load_runs, summary_table

runs = load_runs(experiment_dir)
runs.runs[["variant", "seed", "policy", "task", "steps", "wall_seconds"]]

# %% [markdown]
# ## Entropy over training
# Two entropy measures: TRL's (entropy of the full next-token distribution, averaged over generated tokens)
# and the authors' (−log π of the sampled tokens, a Monte-Carlo estimate of the same thing, which their
# plots use). The paper's premise is GRPO's downward drift, and its claim that UEC-RL keeps entropy from
# collapsing. The cell after the figure prints, per method, how the probe entropy moved over training and
# how each method's final value compares with GRPO's (paired bootstrap over seeds and probe prompts).

# %%
figures.fig_entropy_dynamics(runs, out_dir)

# %%
from uec_repro.results import paired_differences, probe_change

change = probe_change(runs.steps[runs.steps["variant"].isin(methods)])
for row in change.itertuples():
    print(
        f"{row.variant}: probe entropy {row.start:.3f} -> {row.end:.3f} nats from step {row.first_step:.0f} "
        f"to {row.last_step:.0f}, a change of {row.change:+.3f} (mean over {row.seeds} seeds)"
    )
print(f"methods whose probe entropy rose: {list(change.loc[change['change'] > 0, 'variant']) or 'none'}")
compared = [m for m in change["variant"] if m != "grpo"]
if "grpo" in set(change["variant"]) and compared:
    final = paired_differences(runs, metrics=["probe_entropy"], variants=compared)
    readings = {"higher": "above GRPO's", "lower": "below GRPO's", "not resolved": "not resolved from GRPO's"}
    for verdict, reading in readings.items():
        chosen = final.loc[final["verdict"] == verdict, "variant"].tolist()
        print(f"final probe entropy {reading} (95% paired interval): {chosen or 'none'}")

# %% [markdown]
# ## Reward and validation accuracy
# Training reward can rise while held-out accuracy does not (EFRame's Fig. 5 shows exactly that gap): the
# second panel is the one that matters.

# %%
figures.fig_reward_and_validation(runs, out_dir)

# %% [markdown]
# ## What it costs
# UEC-RL generates more (G' extra rollouts per hard prompt) but skips updates while its batch buffer fills;
# the paper reports 0.79× GRPO's time per step. The line after the figure gives the ratio in these runs
# (mean wall time per step without validation and probe, from `summary_table`).

# %%
figures.fig_step_cost(runs, out_dir)

# %%
table = summary_table(runs)
seconds = table.set_index("variant")["step_seconds"]
if {"grpo", "uec_rl"} <= set(seconds.dropna().index):
    print(f"UEC-RL's time per step here is {seconds['uec_rl'] / seconds['grpo']:.2f}x GRPO's (paper: 0.79x)")

# %% [markdown]
# ## Final numbers
# Means over seeds with 95% confidence intervals (Student t). With few seeds and a small policy the
# intervals are wide: read overlaps as "no evidence of a difference".

# %%
table
