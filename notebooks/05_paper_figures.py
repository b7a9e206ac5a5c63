# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
#     formats: ipynb,py:percent
#     notebook_metadata_filter: kernelspec,jupytext
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 05 · The paper's figures, regenerated
#
# Each figure of the UEC-RL paper (and of its earlier version, EFRame) that we could reconstruct, drawn from
# runs of this package, with the numbers the paper reports beside ours in a visibly different style
# (hatched bars, hollow markers, dashed lines, labelled "paper (model)").
#
# **Read the comparison honestly.** The paper trains 7B models on Geometry3K and MATH with full fine-tuning on
# GPUs; the default runs here train a ~1 M-parameter toy policy on arithmetic with LoRA on a CPU. Our bars say
# what the *method* does at this scale; they are not a replication of the paper's numbers, and the labels
# always name the policy and task actually used.
#
# Two modes:
# * `mode = "reference"`: the results of one full `default` run shipped with the package
#   (`data/reference/default`, metrics and manifests only), so this notebook renders instantly;
# * `mode = "runs"`: your own runs in `experiment_dir` (e.g. after `make reproduce`).

# %% tags=["parameters"]
mode = "reference"  # "reference" (shipped results) or "runs" (your runs in experiment_dir)
experiment_dir = "runs/default"  # read in "runs" mode
reference_dir = "data/reference/default"  # read in "reference" mode
figures_dir = ""  # where the PNG/PDF/CSV files go; empty: figures/ (reference mode), experiment_dir/figures (runs)

# %%
from pathlib import Path

from uec_repro.validation import check_choice

check_choice("mode", mode, ("reference", "runs"))
source = Path(reference_dir if mode == "reference" else experiment_dir)
figures_dir = figures_dir or ("figures" if mode == "reference" else str(source / "figures"))

# %%
from uec_repro import figures
from uec_repro.results import load_runs, paper_reference

runs = load_runs(source)
paper = paper_reference()
runs.runs.groupby(["variant"]).agg(seeds=("seed", "nunique"), policy=("policy", "first"), task=("task", "first"))

# %% [markdown]
# ## Fig. 1 · GRPO's two failure modes
# The paper's motivation (Geometry3K, Qwen2.5-VL-7B): (a) the policy's entropy collapses, (b) validation
# accuracy is unstable. The paper's curve values were not recovered, so only ours are drawn.

# %%
figures.fig_grpo_failure_modes(runs, figures_dir)

# %% [markdown]
# ## Entropy dynamics and response length (all methods)

# %%
figures.fig_entropy_dynamics(runs, figures_dir)

# %% [markdown]
# ## Training reward vs validation accuracy (EFRame Fig. 5 view)

# %%
figures.fig_reward_and_validation(runs, figures_dir)

# %% [markdown]
# ## Pass@k curves

# %%
figures.fig_passk_curves(runs, figures_dir)

# %% [markdown]
# ## Geometry3K: base / GRPO / UEC-RL
# The paper's 38.44 / 50.75 / 55.41. Its headline "37.9% relative improvement over GRPO" is the ratio of the
# gains over the base model, (55.41 − 38.44) / (50.75 − 38.44) − 1 = 0.379, not 55.41 / 50.75 − 1 (9.2%);
# the same ratio is computed for our runs.

# %%
figures.fig_geometry3k_bars(runs, figures_dir, paper=paper)

# %% [markdown]
# ## The math table (Qwen2.5-Math-7B) beside ours

# %%
figures.fig_math_table(runs, figures_dir, paper=paper)

# %% [markdown]
# ## Ablation, sensitivity, cost, and where the samples come from

# %%
figures.fig_ablation_bars(runs, figures_dir, paper=paper)

# %%
figures.fig_sensitivity(runs, figures_dir)

# %%
figures.fig_step_cost(runs, figures_dir, paper=paper)

# %%
figures.fig_sample_categories(runs, figures_dir)

# %% [markdown]
# ## The summary table
# Final metrics per method, mean over seeds with 95% confidence intervals, written as `summary.csv` and
# `summary.md` next to the figures.

# %%
from uec_repro.results import summary_table, write_summary

write_summary(summary_table(runs), figures_dir)
print((Path(figures_dir) / "summary.md").read_text())
