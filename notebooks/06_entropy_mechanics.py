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
# Reasoning LMs*, cited by UEC-RL as its Theorem 4.2): for a softmax policy π = softmax(z), a small logit
# step Δz changes the entropy by ΔH ≈ −Cov_{a∼π}(log π(a), Δz_a). Which Δz a policy-gradient step makes
# depends on the optimiser, and so does the form of the result:
#
# $$\text{natural PG } (\Delta z = \eta A):\quad
#   \Delta H \approx -\eta\,\mathrm{Cov}_{a\sim\pi}\big(\log \pi(a),\ A(a)\big),$$
# $$\text{vanilla PG } (\Delta z = \eta\,\nabla_z \mathbb{E}_\pi[A] = \eta\,\pi \odot A):\quad
#   \Delta H \approx -\eta\,\mathrm{Cov}_{a\sim\pi}\big(\log \pi(a),\ \pi(a)\,A(a)\big).$$
#
# UEC-RL states the natural form; the simulation in this notebook (like the trainer's loss −A·log π) makes
# *sampled vanilla* steps, so the vanilla form is the one that describes it. In both, reinforcing actions
# that are already likely lowers the entropy and reinforcing unlikely ones raises it. This notebook checks
# both forms numerically and then uses them to explain UEC-RL's two levers, on K-armed bandits small enough
# to run in seconds on a CPU:
#
# 1. **the identity**, exact vs predicted, for both forms, and how often the wrong form gets the sign wrong;
# 2. **exploration**: sampling at t' > 1 finds rare correct arms and gives them more weight in the expected
#    update, which raises entropy;
# 3. **replay**: reinforcing the same arm again and again lowers entropy once the arm is likely; and a small
#    simulation of the three strategies (plain policy gradient, exploration, exploration + replay), with
#    their entropy and their accuracy.
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
# $$\Delta H \approx \sum_j \frac{\partial H}{\partial z_j}\,\Delta z_j
#   = -\mathrm{Cov}_{a\sim\pi}\big(\log \pi(a),\ \Delta z_a\big).$$
#
# **Two policy gradients.** The objective is J(z) = E_π[r]. By the same derivative,
# ∂J/∂z_j = π_j (r_j − E_π[r]) = π_j A_j, so
#
# * *vanilla* policy gradient steps along it, Δz = η·π ⊙ A, hence ΔH ≈ −η·Cov(log π, π·A);
# * *natural* policy gradient preconditions it with the inverse Fisher matrix F = diag(π) − ππᵀ. Since
#   F·A = π ⊙ A − π·E_π[A] = π ⊙ A, the step is Δz = η·A (up to adding the same constant to every logit,
#   which leaves π unchanged), hence ΔH ≈ −η·Cov(log π, A).
#
# The vanilla step weighs each arm's advantage by its probability, so it barely moves rare arms. The
# simulation's steps are *sampled* vanilla steps: descending the loss −A(a)·log π(a) of a sample a ∼ π
# moves the logits by η·A(a)(e_a − π), whose mean over a ∼ π is η·π ⊙ A.
#
# First the natural form, as UEC-RL states it. Below, one random bandit takes one NPG step for a range of
# η: the ratio of the exact entropy change to the prediction −η·Cov(log π, A) tends to 1 as η → 0 (the
# error is O(η²)). On the right, 300 random bandits take one NPG step of the notebook's η each: the points
# track the diagonal, and stray further from it the larger η is.

# %%
from uec_repro.bandit import first_order_table, plot_first_order, random_bandits_table

first_order = first_order_table(
    [1.0, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01, 0.001], arms=config.arms, seed=config.seed
)
random_bandits = random_bandits_table(300, arms=config.arms, eta=config.eta, seed=config.seed)
figures["bandit_first_order"] = plot_first_order(first_order, random_bandits)
first_order

# %% [markdown]
# ### Vanilla vs natural: the two forms can disagree in sign
#
# A three-arm example. The correct arm is the middle one, so A is positive there and equal and negative on
# the other two. The natural step pushes the rarest arm down as hard as the most likely one, which makes a
# rare arm rarer: entropy falls. The vanilla step pushes each wrong arm down in proportion to its
# probability, so it takes mass mostly from the most likely arm: entropy rises. The table gives the two
# steps per arm; below it, the first-order and exact ΔH of each step per unit η (exact at a small η).

# %%
import numpy as np
import pandas as pd

from uec_repro.bandit import (
    advantages,
    entropy_change_exact,
    entropy_change_first_order,
    logit_step,
)

example_policy = np.array([0.5, 0.4, 0.1])
example_logits, example_rewards = np.log(example_policy), np.array([0.0, 1.0, 0.0])
example_advantages = advantages(example_policy, example_rewards)
small_eta = 1e-3  # a small step, for the exact entropy changes of this section
print(
    pd.DataFrame(
        {
            "pi(a)": example_policy,
            "r(a)": example_rewards,
            "A(a)": example_advantages,
            "natural step / eta": logit_step(example_logits, example_advantages, 1.0, "natural"),
            "vanilla step / eta": logit_step(example_logits, example_advantages, 1.0, "vanilla"),
        }
    ).round(3)
)
pd.DataFrame(
    {
        kind: {
            "first-order dH / eta": entropy_change_first_order(example_logits, example_advantages, 1.0, kind),
            "exact dH / eta": entropy_change_exact(example_logits, example_advantages, small_eta, kind)
            / small_eta,
        }
        for kind in ("natural", "vanilla")
    }
).T

# %% [markdown]
# How common is this? Below, random bandits (logits ∼ N(0, 1.5²), rewards ∼ U(0, 1) per arm) each take one
# small vanilla step and one small natural step. For each step we compare the measured ΔH with the
# prediction of the matching ("right") form and of the other ("wrong") form. With a small η the right form
# lies on the diagonal; the wrong form scatters around it, and its points in the shaded quadrants are sign
# errors. The table gives the share of sign errors of each form and the right form's median relative error.

# %%
from uec_repro.bandit import plot_step_forms, sign_error_shares, step_forms_table

step_forms = step_forms_table(1000, arms=config.arms, eta=small_eta, logit_scale=1.5, seed=config.seed)
figures["bandit_step_forms"] = plot_step_forms(step_forms)
sign_errors = sign_error_shares(step_forms)
print(
    f"Natural form applied to a vanilla step: wrong sign on {sign_errors.loc['vanilla', 'wrong_form']:.1%} "
    f"of {sign_errors.loc['vanilla', 'bandits']} random bandits "
    f"(right form: {sign_errors.loc['vanilla', 'right_form']:.1%})."
)
sign_errors

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
# ### What sampling at t' does to the expected update
#
# Let the exploration samples come from the tempered distribution π_t' ∝ π^{1/t'}, with reward r(a) and the
# group's baseline b = E_{π_t'}[r]. The trainer takes log-probabilities at t = 1 with no importance
# correction (as the released code does, see `docs/paper.md`), so one sample a gives the vanilla step
# η·(r(a) − b)(e_a − π). Its mean is
#
# $$\mathbb{E}_{a\sim\pi_{t'}}\big[(r(a) - b)(e_a - \pi)\big]
#   = \pi_{t'} \odot (r - b) - \pi\,\underbrace{\mathbb{E}_{\pi_{t'}}[r - b]}_{=\,0}
#   = \pi_{t'} \odot (r - b),$$
#
# $$\Delta H \approx -\eta\,\mathrm{Cov}_{a\sim\pi}\big(\log \pi(a),\ \pi_{t'}(a)\,(r(a) - b)\big).$$
#
# At t' = 1 this is the vanilla step η·π ⊙ A. Sampling hotter replaces the weight π(a) by π_t'(a), which
# is larger for rare arms. That is UEC-RL's lever: the rare correct arm gets sampled more often, so it gets
# a larger push, and since its log-probability lies far below the mean, the covariance becomes more
# negative and the entropy rises faster.
#
# Below, the expected step on the hard prompt at t = 1 and at t'. Left: each arm's logit step against its
# log-probability. Right: ΔH of the expected step as the sampling temperature varies.

# %%
from uec_repro.bandit import DISCOVERY_TEMPERATURES, plot_tempered_sampling, tempered_sampling_table

tempered_table = tempered_sampling_table(
    hard_logits,
    rare_arm,
    sorted({*DISCOVERY_TEMPERATURES, 1.0, config.exploration_temperature}),
    eta=config.eta,
)
figures["bandit_tempered_sampling"] = plot_tempered_sampling(
    hard_logits,
    rare_arm,
    tempered_table,
    eta=config.eta,
    temperatures=(1.0, config.exploration_temperature),
)
compared = tempered_table[tempered_table["temperature"].isin([1.0, config.exploration_temperature])]
compared = compared.set_index("temperature")
print(
    f"Expected update, eta = {config.eta:g}: dH = {compared['actual'].iloc[0]:.2e} with samples at t = 1, "
    f"{compared['actual'].iloc[-1]:.2e} at t' = {config.exploration_temperature:g} "
    f"({compared['actual'].iloc[-1] / compared['actual'].iloc[0]:.2f} times as much)."
)
compared

# %% [markdown]
# With the default parameters the expected step raises the entropy at t = 1 as well, only less. In practice
# the difference is larger than the expectation suggests: a group of G samples at t = 1 usually contains no
# correct answer at all (the discovery figure), so its actual update is zero, and the expected value is made
# of the rare groups that do find the arm.
#
# When a group of G' does find the rare arm, GRPO's group-normalised advantage of that one success is large
# (about 4.25 for 1 success in 20), and UEC-RL's selective retention (released code: keep |A| > 1) keeps
# exactly these rare successes. Reinforcing the kept sample moves the logit of an arm whose log-probability
# is far below average, so Cov(log π, A) < 0 and the entropy goes **up**. (The step η·A ≈ 2 is large, so
# the first-order prediction is only rough here; its sign is what matters.) This single update is written
# in the natural form, Δz = η·A on the kept arm. The sampled vanilla step η·A·(e_c − π) adds −η·A·π, which
# pushes every arm down in proportion to its probability and raises the entropy further.

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
# Below, the hard prompt's rare arm is reinforced again and again (A = 1, step η on that arm alone, the
# natural form): the entropy change flips sign exactly where π_c crosses e^{−H}. A sampled vanilla step,
# η·A·(e_c − π), has covariance A·(π_c(log π_c + H) − Cov(log π, π)). Since Cov(log π, π) ≥ 0 (both are
# increasing in π), the flip comes at a somewhat larger π_c, but it still comes.

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
# The steps are sampled vanilla steps (η/G per kept sample), so their mean is η·π ⊙ A per prompt, and the
# vanilla form is the one that predicts their entropy effect.
#
# Plain policy gradient sharpens what the policy already gets right: the easy prompts' entropy collapses,
# while the hard prompts give it almost no signal. Exploration reinforces rare correct arms on hard prompts
# and lifts the entropy. Replay first re-reinforces arms that are still rare (entropy up), then the same arms
# once they are likely (entropy down). It does not bring the entropy back to its start and stop there: with
# the default settings, the mean entropy over all prompts rises and then ends *below* where it started,
# because the hard prompts end only a little above their start while the easy prompts, replayed again and
# again, collapse further than under any other strategy. In a short run (few steps) the fall has not
# happened yet. The cell prints the start, peak and end of each curve.
#
# The bottom row shows the accuracy, the mean probability of the correct arm: it is what the entropy
# changes are for. Exploration finds the hard prompts' correct arms, and replay makes them likely.

# %%
from uec_repro.bandit import accuracy_summary, entropy_summary, plot_simulation, simulate

simulation = simulate(config)
figures["bandit_simulation"] = plot_simulation(simulation)
entropies = entropy_summary(simulation)
accuracies = accuracy_summary(simulation)
for strategy in simulation["strategy"].unique():
    h, acc = entropies.loc[(strategy, "all")], accuracies.loc[(strategy, "all")]
    where = "below" if h["end"] < h["start"] else "above"
    print(
        f"{strategy:>18}, all prompts: entropy {h['start']:.3f} at the start, highest {h['highest']:.3f} "
        f"(step {int(h['highest_step'])}), {h['end']:.3f} at the end ({where} the start); "
        f"accuracy {acc['start']:.3f} -> {acc['end']:.3f}"
    )
pd.concat({"entropy": entropies, "accuracy": accuracies}, axis=1).round(3)

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
# How far replay pulls the entropy down is set by the replay budget: with the default run length, the more
# often the buffer is replayed, the lower the entropy is at the end of the run (the table prints the end
# values; in a short run the differences are small and need not be in order). A band is therefore
# something to tune for (the paper notes that t' and the replay budget need tuning per task), not something
# replay guarantees.

# %%
from uec_repro.bandit import plot_replay_sweep, replay_sweep

sweep = replay_sweep(config, sorted({1, 2, config.replay_every, 10, 20}))
figures["bandit_replay_sweep"] = plot_replay_sweep(sweep)
sweep[sweep["step"] == config.steps].set_index("replay_every")[["entropy"]].rename(
    columns={"entropy": "entropy at the end"}
)

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
#   used here. Its form depends on the optimiser (natural: Cov(log π, A); vanilla: Cov(log π, π·A)), and
#   the clipped PPO objective that GRPO-style trainers optimise with Adam is neither of the two steps.
# * An LLM's logits are not free tabular parameters. They are computed by shared weights, so a step taken
#   for one response also moves the logits of other prompts and positions; the softmax is over a vocabulary
#   at every token position, and a response's log-probability is a sum over its tokens; and with LoRA the
#   weights can only move within a low-rank subspace. The bandit therefore shows the *direction* of the
#   first-order effect (reinforcing rare correct answers raises entropy, re-reinforcing likely ones lowers
#   it), not its size in a real model.
# * In a tabular bandit, exploration's entropy rise is temporary: once a rare correct arm has been pushed past
#   e^{−H}, further reinforcement (standard or replayed) collapses that prompt. The rise persists over the
#   run only while there are hard prompts left to find, which is why the simulation uses a large, mostly
#   hard pool that each prompt visits a few times.
# * The released code replays samples with their old log-probabilities under a [0.8, 1.2] clip, which bounds
#   how far a replayed sample can push; the simulation replays without a clip.
