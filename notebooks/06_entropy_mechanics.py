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
# # 06 · Entropy mechanics: why exploration raises entropy and replay lowers it
#
# UEC-RL controls the policy's entropy through *which samples* it trains on, not through an entropy term in
# the loss. The argument rests on one first-order result (Cui et al. 2025, *The Entropy Mechanism of RL for
# Reasoning LMs*, cited by UEC-RL as its Theorem 4.2): for a softmax policy π = softmax(z) and a natural
# policy gradient step z ← z + η·A,
#
# $$\Delta H \approx -\eta\,\mathrm{Cov}_{a\sim\pi}\big(\log \pi(a),\ A(a)\big).$$
#
# Reinforcing actions that are already likely lowers the entropy; reinforcing unlikely ones raises it. This
# notebook checks the identity numerically and then uses it to explain UEC-RL's two levers, on K-armed
# bandits small enough to run in seconds on a CPU:
#
# 1. **the identity**, exact vs predicted, as η shrinks and over many random bandits;
# 2. **exploration**: sampling at t' > 1 finds rare correct arms, and reinforcing them raises entropy;
# 3. **replay**: reinforcing the same arm again and again lowers entropy once the arm is likely; and a small
#    simulation of the three strategies (plain policy gradient, exploration, exploration + replay).
#
# Everything is in `uec_repro.bandit` (its module docstring has the derivation); this notebook only calls it.

# %% [markdown]
# ## Parameters
# Plain values only, so papermill can override them (`papermill --help-notebook
# notebooks/06_entropy_mechanics.ipynb`). The defaults follow the paper's released configuration where it
# has one (G = 5, G' = 20, t' = 1.2, replay every 5 steps); the bandit sizes are this notebook's own. They
# are checked at once in the next cell.

# %% tags=["parameters"]
seed = 0  # seed of every random draw
arms = 8  # K, actions of each bandit
eta = 0.5  # step size: logits move by eta x advantage
exploration_temperature = 1.2  # t', sampling temperature of the exploration samples
group_size = 5  # G, standard samples per prompt, drawn at temperature 1
exploration_group_size = 20  # G', extra samples per hard prompt at t'
rare_probability = 0.01  # probability of the rare correct arm in the exploration examples
steps = 60  # simulated training steps
replay_every = 5  # f_replay: a replay update every this many steps
prompts = 256  # prompts in the simulated training set
prompts_per_step = 16  # prompts per simulated step
hard_fraction = 0.9  # share of hard prompts (their correct arm is among their least likely half)
initial_logit_scale = 2.5  # std of the initial logits (larger: a more confident starting policy)
figures_dir = "figures"  # where the figures are written when save_figures is True
save_figures = False  # write every figure as a PNG file into figures_dir

# %%
from uec_repro.bandit import BanditConfig

config = BanditConfig(
    seed=seed,
    arms=arms,
    eta=eta,
    exploration_temperature=exploration_temperature,
    group_size=group_size,
    exploration_group_size=exploration_group_size,
    rare_probability=rare_probability,
    steps=steps,
    replay_every=replay_every,
    prompts=prompts,
    prompts_per_step=prompts_per_step,
    hard_fraction=hard_fraction,
    initial_logit_scale=initial_logit_scale,
    figures_dir=figures_dir,
    save_figures=save_figures,
)
figures = {}  # name -> matplotlib Figure, saved at the end when save_figures is True

# %% [markdown]
# ## 1. The first-order identity
#
# A bandit has logits z, policy π = softmax(z), rewards r(a) and advantages A(a) = r(a) − E_π[r]. Since
# ∂π_a/∂z_j = π_a(δ_aj − π_j), the entropy H = −Σ π_a log π_a has gradient
# ∂H/∂z_j = −π_j (log π_j − E_π[log π]), so any small logit step Δz changes it by
#
# $$\Delta H \approx -\mathrm{Cov}_{a\sim\pi}\big(\log \pi(a),\ \Delta z_a\big).$$
#
# Natural policy gradient on tabular softmax logits moves each logit by η times its advantage, Δz = η·A.
# Below, one random bandit takes one NPG step for a range of η: the ratio of the exact entropy change to
# the prediction −η·Cov(log π, A) tends to 1 as η → 0 (the error is O(η²)). On the right, 300 random
# bandits take one step of the notebook's η each: the points track the diagonal, and stray further from it
# the larger η is.

# %%
from uec_repro.bandit import first_order_table, plot_first_order, random_bandits_table

first_order = first_order_table(
    [1.0, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01, 0.001], arms=config.arms, seed=config.seed
)
random_bandits = random_bandits_table(300, arms=config.arms, eta=config.eta, seed=config.seed)
figures["bandit_first_order"] = plot_first_order(first_order, random_bandits)
first_order

# %% [markdown]
# ## 2. Exploration: sampling at t' > 1 finds rare correct arms
#
# Take a *hard prompt*: a policy whose only correct arm has probability `rare_probability`. The G standard
# samples at t = 1 almost always miss it, so GRPO gets no signal at all from this prompt. UEC-RL draws G'
# extra samples at a temperature t' > 1, i.e. from π^{1/t'} renormalised, which gives rare arms a larger
# share. A group of G' such samples contains the rare arm with probability 1 − (1 − q)^{G'}, q its tempered
# probability. The dashed lines are the same probability at t = 1, for a group of G and of G': most of the
# gain comes from the larger group, the temperature adds to it.

# %%
from uec_repro.bandit import (
    bandit_with_rare_arm,
    discovery_table,
    plot_discovery,
    prob_rare_arm_found,
    softmax,
)

hard_logits = bandit_with_rare_arm(config.arms, config.rare_probability, seed=config.seed)
rare_arm = config.arms - 1
hard_policy = softmax(hard_logits)
discovery = discovery_table(
    hard_policy, rare_arm, group_sizes=[config.group_size, config.exploration_group_size]
)
baselines = {
    f"{g} samples at t = 1": prob_rare_arm_found(hard_policy, rare_arm, 1.0, g)
    for g in (config.group_size, config.exploration_group_size)
}
figures["bandit_discovery"] = plot_discovery(discovery, baselines)
discovery[discovery["temperature"].isin([1.0, config.exploration_temperature])].reset_index(drop=True)

# %% [markdown]
# When a group of G' does find the rare arm, GRPO's group-normalised advantage of that one success is large
# (about 4.25 for 1 success in 20), and UEC-RL's selective retention (released code: keep |A| > 1) keeps
# exactly these rare successes. Reinforcing the kept sample moves the logit of an arm whose log-probability
# is far below average, so Cov(log π, A) < 0 and the entropy goes **up**. (The step η·A ≈ 2 is large, so
# the first-order prediction is only rough here; its sign is what matters.)

# %%
from uec_repro.bandit import exploration_update

update = exploration_update(
    hard_logits,
    rare_arm,
    temperature=config.exploration_temperature,
    group_size=config.exploration_group_size,
    eta=config.eta,
    seed=config.seed,
)
update.summary()

# %% [markdown]
# ## 3. Replay: reinforcing the same arm again and again
#
# Reinforcing one arm c with advantage A > 0 has covariance A·π_c·(log π_c + H): negative while
# π_c < e^{−H}, positive after. So the *same* update raises entropy while the arm is rare and lowers it
# once earlier updates have made it likely. UEC-RL's replay buffer re-trains on high-advantage samples it has
# already trained on: the arms they reinforce become likely, and replaying them pulls the entropy down.
# Below, the hard prompt's rare arm is reinforced again and again (A = 1, step η): the entropy change flips
# sign exactly where π_c crosses e^{−H}.

# %%
from uec_repro.bandit import plot_repeated_reinforcement, repeated_reinforcement

reinforcement = repeated_reinforcement(hard_logits, rare_arm, advantage=1.0, eta=config.eta, repeats=25)
figures["bandit_repeated_reinforcement"] = plot_repeated_reinforcement(reinforcement)
reinforcement.iloc[::4]

# %% [markdown]
# ### Three strategies on a training set
#
# A pool of `prompts` prompts, each a bandit with its own logits (the tabular setting of the identity) and one
# correct arm. Easy prompts: the correct arm is the most likely one. Hard prompts (`hard_fraction` of them):
# it is one of the least likely half. Each step trains on `prompts_per_step` prompts with the selection
# rules of `uec_repro.selection` (the trainer's own), one policy-gradient step per step:
#
# * `policy_gradient`: GRPO on G samples at t = 1 (kept when |A| > 0.05);
# * `exploration`: + G' samples at t' for every prompt whose G samples were all wrong, kept when |A| > 1;
# * `exploration_replay`: + samples with |A| > 1 enter a replay buffer (2 × B0) that is trained on again
#   every `replay_every` steps.
#
# Plain policy gradient sharpens what the policy already gets right: the easy prompts' entropy collapses,
# while the hard prompts give it almost no signal. Exploration reinforces rare correct arms on hard prompts
# and lifts the entropy. Replay first re-reinforces arms that are still rare (entropy up), then the same arms
# once they are likely (entropy down), and pulls the entropy back towards where it started.

# %%
from uec_repro.bandit import entropy_summary, plot_simulation, simulate

simulation = simulate(config)
figures["bandit_simulation"] = plot_simulation(simulation)
entropy_summary(simulation)

# %% [markdown]
# The identity, applied to each kind of update in the simulation: the first-order entropy change that the
# standard, exploration and replay steps made at every step. On hard prompts, exploration steps sit above
# zero (they reinforce unlikely arms) and replay steps start above zero, then cross below it once the
# replayed arms have become likely; on easy prompts, standard and replay steps are below zero throughout.

# %%
from uec_repro.bandit import phase_effects, plot_phase_effects

figures["bandit_phase_effects"] = plot_phase_effects(simulation)
phase_effects(simulation)

# %% [markdown]
# How far replay pulls the entropy down is set by the replay budget: the more often the buffer is replayed,
# the lower the entropy settles. A band is therefore something to tune for (the paper notes that t' and the
# replay budget need tuning per task), not something replay guarantees.

# %%
from uec_repro.bandit import plot_replay_sweep, replay_sweep

sweep = replay_sweep(config, sorted({1, 2, config.replay_every, 10, 20}))
figures["bandit_replay_sweep"] = plot_replay_sweep(sweep)

# %% [markdown]
# ## Saving the figures

# %%
from uec_repro.bandit import save_figures

if config.save_figures:
    for path in save_figures(figures, config.figures_dir):
        print(path)

# %% [markdown]
# ## What this shows, and what it does not
#
# * The identity is first order: it is accurate for small steps and gets the sign right for the large ones
#   used here, but the clipped PPO objective that GRPO-style trainers optimise is not an NPG step.
# * In a tabular bandit, exploration's entropy rise is temporary: once a rare correct arm has been pushed past
#   e^{−H}, further reinforcement (standard or replayed) collapses that prompt. The rise persists over the
#   run only while there are hard prompts left to find, which is why the simulation uses a large, mostly
#   hard pool that each prompt visits a few times.
# * The released code replays samples with their old log-probabilities under a [0.8, 1.2] clip, which bounds
#   how far a replayed sample can push; the simulation replays without a clip.
