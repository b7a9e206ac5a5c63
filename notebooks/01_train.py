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
# # 01 · One training run
#
# This notebook trains one policy with one method and writes a **run directory**: the per-step metrics
# (`metrics.jsonl`), the final held-out evaluation (`eval.json`) and the trained LoRA adapter. The batch
# runner (`uec-repro run`) executes it once per (method, seed, sweep value) of a grid;
# you can also run it by hand.
#
# One training step of UEC-RL (the method name `uec_rl`) does, in order:
#
# 1. **standard rollouts**: G completions per prompt at temperature 1.0, scored by the answer checker;
# 2. **hard-prompt detection**: a prompt whose G rewards are all 0 gives GRPO no signal at all;
# 3. **targeted exploration**: G' extra completions per hard prompt at a higher temperature t';
# 4. **selective retention**: keep standard samples with |A| > 0.05 and exploration samples that pass the
#    exploration rule (released code: |A'| > 1; on hard prompts mostly the rare successes, but also the
#    failures of a prompt where most of the G' succeed);
# 5. **batch buffer**: update only once a full batch B0 of kept samples is there;
# 6. **replay**: updated samples with |A| > 1 (released code, the default: large negative advantages too;
#    `replay_rule="positive"` keeps A > 1 only) enter a replay buffer that is trained on again every
#    `replay_frequency` steps; by the paper's account this pulls the entropy back down (`02_ablation`
#    compares runs without it).
#
# The other methods (`grpo`, `dapo`, `kl_cov`, ...) switch these pieces off and their own on; see
# `uec_repro.config.methods_table()`.

# %% [markdown]
# ## Parameters
# Plain values only, so papermill can override them (`papermill --help-notebook notebooks/01_train.ipynb`).
# `None` means "the method's default". They are checked at once in the next cell.

# %% tags=["parameters"]
method = "uec_rl"  # a method of uec_repro.config.METHODS, or "base" (evaluate the initial policy only)
policy = "toy"  # "toy", "toy-geometry", "smollm2-135m", a local folder or a hub id
task = "arith"  # a task of uec_repro.tasks.TASKS
seed = 0  # seed of data order, sampling and adapter initialisation
steps = 30  # training steps (one rollout batch each)
prompts_per_step = 8  # prompts per step; B0 is prompts_per_step x num_generations
num_generations = 8  # G, completions per prompt
max_completion_length = 48  # generation budget in tokens
exploration_generations = None  # G' (None: the method's default, 4 x G)
exploration_temperature = None  # t' (None: the method's default)
replay_capacity = None  # s' as a multiple of B0 (None: the method's default)
replay_frequency = None  # f_replay in steps (None: the method's default)
learning_rate = None  # AdamW learning rate of the adapter (None: the method's default)
quantization = "none"  # "none" (LoRA) or "nf4" (QLoRA: 4-bit base weights)
lora_r = 16  # LoRA rank
overrides = {}  # any other UECConfig field, e.g. {"beta": 0.0}
validation_prompts = 50  # held-out prompts of in-training validation
probe_prompts = 64  # held-out prompts of the entropy probe (the same for every method and seed)
validation_every = 5  # validate every this many steps (0: never)
eval_prompts = 100  # held-out prompts of the final evaluation
eval_samples = 16  # n, samples per prompt: Pass@k up to k of n
eval_temperature = 1.0  # sampling temperature of the final evaluation
threads = 0  # torch CPU threads (0: $UEC_REPRO_THREADS or torch's default)
save_adapter = True  # keep the trained LoRA adapter in output_dir/adapter
checkpoint_every = 10  # save a resumable checkpoint every this many steps (0: never)
overwrite = False  # start over in an output_dir that already holds a run (unset: an unfinished run resumes)
output_dir = "runs/manual/uec_rl/seed0"  # where the run's files go

# %%
from uec_repro.training import RunSettings, run_training

settings = RunSettings.from_namespace(globals())
settings

# %% [markdown]
# ## The trainer's configuration
# `RunSettings` turns into a `UECConfig` (TRL's `GRPOConfig` plus one switch per UEC-RL component). These
# are the fields that make the method what it is:

# %%
from uec_repro.config import METHODS

if method != "base":
    config = settings.trainer_config()
    print(METHODS[method].summary)
    for name in (
        "exploration",
        "exploration_generations",
        "exploration_temperature",
        "retention",
        "exploration_rule",
        "overlong_filter",
        "batch_buffer",
        "replay",
        "replay_rule",
        "replay_capacity",
        "replay_frequency",
        "beta",
        "epsilon",
        "epsilon_high",
        "entropy_coef",
        "kl_cov_ratio",
        "clip_cov_ratio",
        "entropy_adv_alpha",
        "learning_rate",
        "per_device_train_batch_size",
    ):
        print(f"{name:>28} = {getattr(config, name)}")

# %% [markdown]
# ## Train and evaluate
# Training prints nothing per step; every step appends a row to `metrics.jsonl`. The final evaluation
# samples `eval_samples` completions for each of `eval_prompts` held-out problems.

# %%
result = run_training(settings)
{key: round(value, 4) for key, value in result["summary"].items()}

# %% [markdown]
# ## What happened during training
# Reward and entropy per step (`probe/` on fixed held-out prompts, comparable across methods;
# `entropy/update_batch` on the samples this method trained on), the validation accuracy, and UEC-RL's sample
# counts: hard prompts found, exploration samples kept, samples trained on, and the steps where replay ran.

# %%
from pathlib import Path

import pandas as pd

metrics_file = Path(output_dir) / "metrics.jsonl"
if metrics_file.exists():
    steps_frame = pd.read_json(metrics_file, lines=True).set_index("step")
    columns = [
        "reward",
        "probe/entropy",
        "probe/sampled_nll",
        "entropy/update_batch",
        "validation/accuracy",
        "completions/mean_length",
        "uec/hard_prompts",
        "uec/exploration_kept_positive",
        "uec/update_samples",
        "uec/replayed",
    ]
    shown = steps_frame[[c for c in columns if c in steps_frame]]
    shown.plot(
        subplots=True, figsize=(8, 2 * shown.shape[1]), marker=".", legend=False, title=list(shown.columns)
    )
    display(shown.tail())  # noqa: F821 (IPython)
