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
# # 02 · Ablation: exploration vs stabiliser
#
# The paper's mechanism (`docs/paper.md#entropy-mechanics`): UEC-RL has two halves meant to push entropy in
# opposite directions.
#
# * The **exploration** half (hot rollouts on hard prompts; the released rule keeps those with |A'| > 1,
#   on hard prompts mostly the rare successes) reinforces tokens the policy found unlikely:
#   Cov(log π, A) < 0, entropy goes **up**.
# * The **stabiliser** half (replay of the updated samples with |A| > 1 in the released code, this package's
#   default, so large negative advantages are replayed too; the paper-text variant `uec_rl_paper` replays
#   A > 1 only) retrains on what was already reinforced: Cov(log π, A) > 0, entropy goes **down**.
#
# If that holds here, removing exploration should end with lower entropy than the full method, and removing
# replay with higher. The section "Does entropy move as the paper says?" below compares the runs read here.
#
# The ablation removes one piece at a time: `uec_rl_no_explore` (no extra rollouts), `uec_rl_no_replay` (no
# stabiliser), `uec_rl_no_retention` (every sample kept, no filtering). The paper (Geometry3K, Qwen2.5-VL-7B)
# reports roughly 50 / 52 / 51 against 55.41 for the full method; those are approximate values from a
# secondary source and are drawn as such.
#
# The sensitivity sweeps vary the exploration temperature t' and the replay budget (buffer size s' and
# frequency f_replay), which the authors say need tuning per task.
#
# By default the notebook reads the shipped reference runs (`data/reference/default`) and trains nothing. To
# train, set `experiment_dir` to a runs folder (e.g. `runs/ablation`) and `run_missing = True`.

# %% tags=["parameters"]
experiment_dir = "data/reference/default"  # runs are read from here (and trained into, with run_missing)
methods = [
    "grpo",
    "uec_rl",
    "uec_rl_no_explore",
    "uec_rl_no_replay",
    "uec_rl_no_retention",
]  # configurations compared
seeds = [0, 1, 2]  # one run per method and seed
sweeps = {
    "exploration_temperature": [1.0, 1.5],
    "replay_frequency": [2, 10],
    "replay_capacity": [1, 4],
}  # t', f_replay, s'
sweep_seeds = [0, 1]  # seeds of each swept value (the unswept uec_rl runs are the default value)
train_parameters = {"steps": 30, "eval_prompts": 200, "eval_samples": 16}  # 01_train settings of every run
run_missing = False  # True: train the grid's missing runs into experiment_dir (a runs/ folder)
jobs = 1  # runs trained in parallel
figures_dir = ""  # empty: experiment_dir/figures, or runs/figures/02_ablation/<name> for a reference

# %%
from pathlib import Path

from uec_repro.experiments import GridSpec, run_grid, training_grid
from uec_repro.layout import figures_folder, is_reference
from uec_repro.validation import ParameterError

grid = GridSpec.from_dict(
    training_grid(experiment_dir, methods, seeds, train_parameters, sweeps=sweeps, sweep_seeds=sweep_seeds),
    source="02_ablation",
)
if run_missing and is_reference(experiment_dir):
    raise ParameterError(
        f"experiment_dir={experiment_dir!r} is a shipped reference: train into a runs/ folder"
    )
out_dir = figures_folder(experiment_dir, figures_dir, "02_ablation")

# %%
if run_missing:
    report = run_grid(grid, runs_root=Path(experiment_dir).parent, jobs=jobs)
    assert report.ok, "some runs failed: see the report above"

# %%
from uec_repro import figures
from uec_repro.results import load_runs, summary_table

runs = load_runs(experiment_dir)

# %% [markdown]
# ## Which component matters?
# Final pass@1 per configuration, with the paper's approximate ablation values beside ours (hatched).

# %%
figures.fig_ablation_bars(runs, out_dir)

# %% [markdown]
# ## Does entropy move as the paper says?
# Final probe entropy (same probe prompts and draws for every run) of each ablation against the full method,
# with a paired bootstrap interval over seeds and probe prompts. A difference counts only when its interval
# excludes 0 (`uec_repro.results.verdict`).

# %%
from uec_repro.results import paired_differences

expected = {"uec_rl_no_explore": "lower", "uec_rl_no_replay": "higher"}  # the paper's mechanism
ablations = [v for v in expected if v in set(runs.runs["variant"])]
if "uec_rl" in set(runs.runs["variant"]) and ablations:
    entropy = paired_differences(runs, reference="uec_rl", metrics=["probe_entropy"], variants=ablations)
    for row in entropy.itertuples():
        if row.verdict not in ("higher", "lower"):
            reading = "the interval contains 0, so these runs neither confirm nor contradict it"
        else:
            agree = row.verdict == expected[row.variant]
            reading = "these runs agree" if agree else "these runs contradict it"
        print(
            f"{row.variant} ends {'above' if row.diff > 0 else 'below'} uec_rl: {row.value:.3f} vs "
            f"{row.reference_value:.3f} nats at probe step {row.step:.0f}, paired difference {row.diff:+.3f} "
            f"[{row.low:+.3f}, {row.high:+.3f}] ({row.verdict}).\n  The paper's mechanism expects "
            f"{expected[row.variant]}: {reading}."
        )

# %% [markdown]
# ## Where UEC-RL's training samples come from
# Per step: prompts GRPO could not solve (hard), the exploration samples kept (positive and negative
# advantage), the regular samples kept, and the replayed ones. Without exploration the hard prompts are
# simply lost; without retention every zero-advantage sample dilutes the update.

# %%
figures.fig_sample_categories(runs, out_dir)

# %% [markdown]
# ## Sensitivity to t' and to the replay budget

# %%
figures.fig_sensitivity(runs, out_dir)

# %%
table = summary_table(runs)
table
