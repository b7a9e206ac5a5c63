r"""Entropy mechanics of policy-gradient RL on softmax bandits: the theory UEC-RL leans on, made numerical.

A K-armed bandit has logits :math:`z`, a policy :math:`\pi = \mathrm{softmax}(z)`, rewards :math:`r(a)` and
advantages :math:`A(a) = r(a) - \mathbb{E}_\pi[r]`. Its entropy is :math:`H = -\sum_a \pi_a \log \pi_a`.

**The first-order identity** (Cui et al. 2025, cited by UEC-RL as its Theorem 4.2). Differentiating,
:math:`\partial \pi_a / \partial z_j = \pi_a(\delta_{aj} - \pi_j)`, so

.. math::
    \frac{\partial H}{\partial z_j} = -\sum_a \pi_a(\delta_{aj} - \pi_j)(\log \pi_a + 1)
                                    = -\pi_j\,(\log \pi_j - \mathbb{E}_\pi[\log \pi])

(the ``+1`` cancels because :math:`\sum_a \pi_a(\delta_{aj} - \pi_j) = 0`). For any logit step
:math:`\Delta z`, to first order

.. math::
    \Delta H \approx \sum_j \frac{\partial H}{\partial z_j}\,\Delta z_j
             = -\mathrm{Cov}_{a\sim\pi}\big(\log \pi(a),\ \Delta z_a\big).

Natural policy gradient on tabular softmax logits moves each logit by :math:`\eta` times its advantage,
:math:`\Delta z = \eta A`, hence **ΔH ≈ -η Cov_{a~π}(log π(a), A(a))**, with an :math:`O(\eta^2)` error.
Vanilla policy gradient follows the gradient of :math:`\mathbb{E}_\pi[A]`,
:math:`\partial \mathbb{E}_\pi[A] / \partial z_j = \pi_j (A_j - \mathbb{E}_\pi[A]) = \pi_j A_j`, so
:math:`\Delta z = \eta\,\pi \odot A` and **ΔH ≈ -η Cov_{a~π}(log π(a), π(a) A(a))**: the extra factor
π(a) damps the push on rare arms, and the two forms can disagree in sign (:func:`step_forms_table`).
Entropy falls when the update pushes up actions that are already likely (positive covariance) and rises
when it pushes up actions that are unlikely (negative covariance).

**Reinforcing one action.** A step :math:`\Delta z = \eta A\,e_c` on a single arm :math:`c` has covariance
:math:`\eta A\,\pi_c(\log \pi_c + H)`: with :math:`A > 0` it raises the entropy while
:math:`\pi_c < e^{-H}` (a rare arm: UEC-RL's exploration) and lowers it once :math:`\pi_c > e^{-H}` (an arm
made likely by earlier updates: UEC-RL's replay).

**Sampling at temperature t'.** Samples drawn from :math:`\pi^{1/t'}` (renormalised) give a rare arm a
larger share when :math:`t' > 1`; a group of :math:`G'` of them contains it with probability
:math:`1 - (1 - q)^{G'}`, :math:`q` its tempered probability. With the group's own baseline, the expected
vanilla step becomes :math:`\eta\,\pi_{t'} \odot (r - \mathbb{E}_{\pi_{t'}}[r])`: the tempered
distribution takes the place of π as the weight of each arm (:func:`tempered_expected_step`).

:func:`simulate` puts the pieces together on a pool of prompts, each a bandit with its own logits (the
tabular setting of the identity), trained with the selection rules of :mod:`uec_repro.selection` and plain
policy-gradient steps ``A grad log pi`` (what the trainer's loss does) rather than NPG steps; the identity
holds for any logit step, so each kind of update's entropy effect is still ``-Cov(log pi, step)``.
Everything here is small NumPy (plus the torch selection rules), runs in seconds on a CPU and is seeded
through a ``seed`` argument. Modules: :mod:`.identity`, :mod:`.exploration`, :mod:`.simulation`,
:mod:`.plots`.
"""

from .exploration import (
    DISCOVERY_TEMPERATURES,
    ExplorationUpdate,
    bandit_with_rare_arm,
    discovery_table,
    exploration_update,
    prob_rare_arm_found,
    repeated_reinforcement,
    tempered_sampling_table,
)
from .identity import (
    STEP_KINDS,
    advantages,
    entropy,
    entropy_change,
    entropy_change_exact,
    entropy_change_first_order,
    first_order_table,
    log_policy_covariance,
    logit_step,
    npg_step,
    predicted_entropy_change,
    random_bandits_table,
    sign_error_shares,
    softmax,
    step_forms_table,
    tempered,
    tempered_expected_step,
)
from .plots import (
    plot_discovery,
    plot_first_order,
    plot_phase_effects,
    plot_repeated_reinforcement,
    plot_replay_sweep,
    plot_simulation,
    plot_step_forms,
    plot_tempered_sampling,
    save_figures,
)
from .simulation import (
    PHASES,
    STRATEGIES,
    BanditConfig,
    accuracy_summary,
    entropy_summary,
    phase_effects,
    replay_sweep,
    simulate,
)

__all__ = [
    "DISCOVERY_TEMPERATURES",
    "PHASES",
    "STEP_KINDS",
    "STRATEGIES",
    "BanditConfig",
    "ExplorationUpdate",
    "accuracy_summary",
    "advantages",
    "bandit_with_rare_arm",
    "discovery_table",
    "entropy",
    "entropy_change",
    "entropy_change_exact",
    "entropy_change_first_order",
    "entropy_summary",
    "exploration_update",
    "first_order_table",
    "log_policy_covariance",
    "logit_step",
    "npg_step",
    "phase_effects",
    "plot_discovery",
    "plot_first_order",
    "plot_phase_effects",
    "plot_repeated_reinforcement",
    "plot_replay_sweep",
    "plot_simulation",
    "plot_step_forms",
    "plot_tempered_sampling",
    "predicted_entropy_change",
    "prob_rare_arm_found",
    "random_bandits_table",
    "repeated_reinforcement",
    "replay_sweep",
    "save_figures",
    "sign_error_shares",
    "simulate",
    "softmax",
    "step_forms_table",
    "tempered",
    "tempered_expected_step",
    "tempered_sampling_table",
]
