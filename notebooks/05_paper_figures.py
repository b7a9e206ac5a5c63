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
# # 05 · The paper's figures, regenerated
#
# Each figure of the UEC-RL paper (and of its earlier version, EFRame) that we could reconstruct, drawn from
# runs of this package, with the numbers the paper reports beside ours in a visibly different style
# (hatched bars, hollow markers, dashed lines, labelled "paper (model)").
#
# **Read the comparison honestly.** The paper trains 7B models on Geometry3K and MATH with full fine-tuning on
# GPUs; the runs here train ~1 M-parameter toy policies with LoRA on a CPU: one organism on arithmetic and one
# on text geometry problems of Geometry3K's kinds. Our bars say what the *method* does at this scale; they are
# not a replication of the paper's numbers, and the labels always name the policy and task actually used.
#
# Two modes:
# * `mode = "reference"`: shipped results (metrics and manifests only), so this notebook renders in a minute:
#   `data/reference/paper` (the `paper` preset: 150 steps, arith x 5 seeds and geometry x 3 seeds) by default,
#   or `data/reference/default` (the quick 30-step `default` preset);
# * `mode = "runs"`: your own runs in `experiment_dir` (e.g. after `make paper` or `make reproduce`).
#
# An experiment with a geometry block (the `paper` preset) draws the Geometry3K view and the ablation from its
# geometry runs, and everything else from its arith runs; each figure's label says which.

# %% tags=["parameters"]
mode = "reference"  # "reference" (shipped results) or "runs" (your runs in experiment_dir)
experiment_dir = "runs/default"  # read in "runs" mode
reference_dir = "data/reference/paper"  # read in "reference" mode
figures_dir = ""  # output folder; empty: runs/figures/05_paper_figures/<name>, or experiment_dir/figures

# %%
from pathlib import Path

from uec_repro.layout import figures_folder
from uec_repro.validation import check_choice

check_choice("mode", mode, ("reference", "runs"))
source = Path(reference_dir if mode == "reference" else experiment_dir)
figures_dir = str(figures_folder(source, figures_dir, "05_paper_figures"))  # never the tracked figures/

# %%
from uec_repro import figures
from uec_repro.results import load_runs, paper_reference

runs = load_runs(source)
paper = paper_reference()
main, geometry = figures.figure_blocks(runs)  # the arith block, and the geometry block where there is one
runs.runs.groupby(["variant"]).agg(
    seeds=("seed", "nunique"), policy=("policy", "first"), task=("task", "first")
)

# %% [markdown]
# ## The paper's claims, tested
# One row per claim of the paper and task block: our statistic, its effect with a 95% paired bootstrap
# interval (seeds and prompts resampled together, every method on the same test prompts and seeds), and a
# verdict by a rule written in `uec_repro.claims` before any result was seen: *holds* when the whole interval
# lies on the side of 0 the claim states, *does not hold* when it lies wholly on the other side,
# *inconclusive* when it contains 0. A claim that does not hold at this scale is a finding, not a failure.

# %%
import pandas as pd

from uec_repro.claims import write_claims

write_claims(runs, figures_dir)
claims = pd.read_csv(Path(figures_dir) / "claims.csv")


def show_claims(*ids: str) -> None:
    """Print the claims table's rows ``ids`` (one per task block): our effect, interval and verdict."""
    for row in claims[claims["id"].isin(ids)].itertuples():
        print(
            f"{row.claim} [{row.task}]: {row.effect:+.3f} [{row.low:+.3f}, {row.high:+.3f}] -> {row.verdict}"
        )


claims[["claim", "task", "effect", "low", "high", "seeds", "verdict"]]

# %% [markdown]
# ## Fig. 1 · GRPO's two failure modes
# The paper's motivation (Geometry3K, Qwen2.5-VL-7B): (a) the policy's entropy collapses, (b) validation
# accuracy is unstable. The paper's curve values were not recovered, so only ours are drawn; the lines after
# the figure are our claims (a) and (h) from the table above.

# %%
figures.fig_grpo_failure_modes(main, figures_dir)
show_claims("a", "h")

# %% [markdown]
# ## Entropy dynamics and response length (all methods)
# The paper says UEC-RL keeps entropy and response length stable while GRPO's entropy collapses; our claim
# (b) compares the final probe entropies.

# %%
figures.fig_entropy_dynamics(main, figures_dir)
show_claims("b")

# %% [markdown]
# ## Training reward vs validation accuracy (EFRame Fig. 5 view)

# %%
figures.fig_reward_and_validation(main, figures_dir)

# %% [markdown]
# ## Pass@k curves
# The paper: UEC-RL is ahead of the baselines from Pass@1 to Pass@k; our claims (c) and (d).

# %%
figures.fig_passk_curves(main, figures_dir)
show_claims("c", "d")

# %% [markdown]
# ## Geometry3K: base / GRPO / UEC-RL
# The paper's 38.44 / 50.75 / 55.41. Its headline "37.9% relative improvement over GRPO" is the ratio of the
# gains over the base model, (55.41 − 38.44) / (50.75 − 38.44) − 1 = 0.379, not 55.41 / 50.75 − 1 (9.2%);
# the same ratio is computed for our runs: the geometry organism's where the experiment has a geometry block.

# %%
figures.fig_geometry3k_bars(geometry, figures_dir, paper=paper)
show_claims("i")

# %% [markdown]
# ## The math table (Qwen2.5-Math-7B) beside ours
# The paper's columns run from easy (GSM8K) to hard (AIME24) benchmarks; ours are the difficulty tiers of the
# arith test split (tier 1: 2-digit +- 1-digit ... tier 4: three operands with brackets), each with its paired
# difference to GRPO. The paper's out-of-domain column (MMLU) has no counterpart here: the toys are
# single-task specialists: the arith toy cannot solve geometry problems (their prompts do not even fit its
# 128-position context) and `toy-geometry` almost never solves arith ones (README, "No out-of-domain column"),
# so an out-of-domain column would be a floor for every method, not a measurement.

# %%
figures.fig_math_table(main, figures_dir, paper=paper)

# %% [markdown]
# ## Ablation, sensitivity, cost, and where the samples come from

# %%
figures.fig_ablation_bars(geometry, figures_dir, paper=paper)
show_claims("e", "f", "g")

# %%
figures.fig_sensitivity(main, figures_dir)

# %%
figures.fig_step_cost(main, figures_dir, paper=paper)

# %%
figures.fig_sample_categories(main, figures_dir)

# %% [markdown]
# ## The summary table
# Final metrics per method of the main block, mean over seeds with 95% confidence intervals, and the paired
# differences to GRPO, written as `summary.csv`/`.md` and `paired.csv`/`.md` next to the figures.

# %%
from uec_repro.results import paired_differences, summary_table, write_summary

write_summary(summary_table(main), figures_dir, paired=paired_differences(main))
print((Path(figures_dir) / "summary.md").read_text())
