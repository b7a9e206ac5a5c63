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
# # 04 · Pass@k: does RL find new answers, or only sharpen old ones?
#
# Pass@k is the probability that at least one of k samples is correct. RL with verifiable rewards is
# commonly reported to raise pass@1 (it sharpens the distribution) but to *lower* pass@k at large k when the
# policy stops exploring; the paper claims UEC-RL, by controlling entropy, keeps the large-k end (its claim
# (d)). The last section prints what the runs read here show, each method against the untrained policy.
#
# With n samples per problem of which c are correct, the unbiased estimator (Chen et al. 2021) is
# pass@k = 1 − C(n−c, k) / C(n, k), averaged over problems; it needs n ≥ k. mean@n is the mean accuracy of
# the n samples (= pass@1), maj@n the accuracy of the majority answer.
#
# The runs' final evaluations (`eval.json`) keep the correct count of every problem, so every k ≤ n is
# computed from them here, without sampling again.

# %% tags=["parameters"]
experiment_dir = "data/reference/default"  # a folder of runs (VARIANT/seedK/): a reference or runs/<name>
figures_dir = ""  # empty: experiment_dir/figures, or runs/figures/04_passk/<name> for a reference

# %%

from uec_repro.layout import figures_folder
from uec_repro.results import load_runs

runs = load_runs(experiment_dir)
out_dir = figures_folder(experiment_dir, figures_dir, "04_passk")
sorted(runs.passk["variant"].unique())

# %% [markdown]
# ## The estimator on one problem
# 16 samples, 3 correct: pass@1 is 3/16; pass@16 is 1 because all 16 samples are used.

# %%
from uec_repro.evaluation import pass_at_k

[(k, round(pass_at_k(16, 3, k), 3)) for k in (1, 2, 4, 8, 16)]

# %% [markdown]
# ## Pass@k curves
# Mean over seeds with 95% confidence bands; `base` is the policy before RL.

# %%
from uec_repro import figures

figures.fig_passk_curves(runs, out_dir)

# %% [markdown]
# ## The numbers: pass@k, mean@n and maj@n per method

# %%
passk_table = runs.passk.pivot_table(index="variant", columns="k", values="pass_at_k", aggfunc="mean")
passk_table.round(3)

# %%
columns = [c for c in runs.evals.columns if c.startswith(("mean@", "maj@", "hard_share@"))]
runs.evals.groupby("variant")[columns].mean().round(3)

# %% [markdown]
# ## Did RL sharpen, or also lose the large-k end?
# Each trained method minus `base` at pass@1 and at the largest k every run has, with a paired bootstrap
# interval over seeds and test prompts; a difference counts only when its interval excludes 0.

# %%
from uec_repro.results import paired_differences

if "base" in set(runs.runs["variant"]):
    against_base = paired_differences(runs, reference="base", metrics=["pass@1", "pass@k"])
    for variant, rows in against_base.groupby("variant", sort=False):
        parts = [
            f"{r.metric} {r.diff:+.3f} [{r.low:+.3f}, {r.high:+.3f}] ({r.verdict})" for r in rows.itertuples()
        ]
        print(f"{variant} - base: " + "; ".join(parts))
