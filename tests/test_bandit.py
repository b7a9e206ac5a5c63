"""Entropy mechanics on softmax bandits: hand-computed cases, the first-order identity, and the directions of
the three simulated strategies."""

import math

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from uec_repro import bandit  # noqa: E402
from uec_repro.bandit.simulation import _policy_gradient_step  # noqa: E402
from uec_repro.validation import ParameterError  # noqa: E402


def test_softmax_and_entropy_by_hand():
    assert bandit.softmax(np.zeros(4)) == pytest.approx([0.25] * 4)
    assert bandit.entropy(np.full(6, 1 / 6)) == pytest.approx(math.log(6))
    assert bandit.entropy(np.array([1.0, 0.0, 0.0])) == 0.0
    # [0.5, 0.25, 0.25]: 0.5 ln 2 + 2 x 0.25 ln 4 = 1.5 ln 2
    assert bandit.entropy(np.array([0.5, 0.25, 0.25])) == pytest.approx(1.5 * math.log(2))
    # softmax at t = 2 of logits ln [4, 1] is proportional to [2, 1]
    assert bandit.softmax(np.log([4.0, 1.0]), temperature=2.0) == pytest.approx([2 / 3, 1 / 3])


def test_two_arm_covariance_and_advantage_by_hand():
    policy = np.array([0.8, 0.2])
    rewards = np.array([0.0, 1.0])
    # E[r] = 0.2, so A = [-0.2, 0.8]
    advantage = bandit.advantages(policy, rewards)
    assert advantage == pytest.approx([-0.2, 0.8])
    # E[log pi] = 0.8 ln 0.8 + 0.2 ln 0.2; E[A] = 0, so Cov = E[log pi * A]
    expected = 0.8 * math.log(0.8) * -0.2 + 0.2 * math.log(0.2) * 0.8
    assert bandit.log_policy_covariance(policy, advantage) == pytest.approx(expected)
    assert expected < 0  # the better arm is the rare one: an NPG step raises the entropy
    logits = np.log(policy)
    assert bandit.predicted_entropy_change(logits, 0.01 * advantage) == pytest.approx(-0.01 * expected)
    assert bandit.entropy_change(logits, 0.01 * advantage) > 0


def test_covariance_of_a_constant_is_zero_and_a_uniform_policy_does_not_move_to_first_order():
    policy = np.array([0.1, 0.2, 0.7])
    assert bandit.log_policy_covariance(policy, np.full(3, 5.0)) == pytest.approx(0.0, abs=1e-12)
    assert bandit.predicted_entropy_change(np.zeros(5), np.arange(5.0)) == pytest.approx(0.0, abs=1e-12)


def test_npg_step_moves_logits_by_eta_times_advantage():
    assert bandit.npg_step(np.array([1.0, 2.0]), np.array([0.5, -0.5]), 0.2) == pytest.approx([1.1, 1.9])


def test_first_order_error_vanishes_faster_than_eta():
    rng = np.random.default_rng(3)
    logits, rewards = rng.normal(size=7), rng.random(7)
    advantage = bandit.advantages(bandit.softmax(logits), rewards)
    errors_over_eta = []
    for eta in (0.1, 0.01, 0.001):
        actual = bandit.entropy_change(logits, eta * advantage)
        predicted = bandit.predicted_entropy_change(logits, eta * advantage)
        errors_over_eta.append(abs(actual - predicted) / eta)
    # error = O(eta^2): error / eta shrinks about tenfold with every tenfold smaller eta
    assert errors_over_eta[1] < 0.2 * errors_over_eta[0]
    assert errors_over_eta[2] < 0.2 * errors_over_eta[1]


def test_first_order_table_ratio_tends_to_one():
    table = bandit.first_order_table([1.0, 0.1, 0.01, 0.001], seed=1)
    assert list(table["eta"]) == [1.0, 0.1, 0.01, 0.001]
    assert table["relative_error"].is_monotonic_decreasing
    assert table["ratio"].iloc[-1] == pytest.approx(1.0, abs=0.01)


def test_random_bandits_agree_in_sign_with_the_prediction():
    table = bandit.random_bandits_table(100, eta=0.05, seed=2)
    assert len(table) == 100
    assert (np.sign(table["predicted"]) == np.sign(table["actual"])).all()
    assert table["predicted"].to_numpy() == pytest.approx(-0.05 * table["covariance"].to_numpy())


def test_vanilla_and_natural_steps_of_a_two_arm_bandit_by_hand():
    logits = np.log([0.8, 0.2])
    advantage = np.array([-0.2, 0.8])  # r = [0, 1], E[r] = 0.2
    # natural: eta A; vanilla: eta pi * A = eta [0.8 x -0.2, 0.2 x 0.8]
    assert bandit.logit_step(logits, advantage, 0.5, "natural") == pytest.approx([-0.1, 0.4])
    assert bandit.logit_step(logits, advantage, 0.5, "vanilla") == pytest.approx([-0.08, 0.08])
    # two arms: Cov(f, g) = pi_1 pi_2 (f_1 - f_2)(g_1 - g_2), and log 0.8 - log 0.2 = ln 4
    natural = -0.01 * 0.16 * math.log(4) * (-0.2 - 0.8)
    vanilla = -0.01 * 0.16 * math.log(4) * (-0.16 - 0.16)
    assert bandit.entropy_change_first_order(logits, advantage, 0.01, "natural") == pytest.approx(natural)
    assert bandit.entropy_change_first_order(logits, advantage, 0.01, "vanilla") == pytest.approx(vanilla)
    for kind, predicted in (("natural", natural), ("vanilla", vanilla)):
        exact = bandit.entropy_change_exact(logits, advantage, 0.01, kind)
        assert exact == pytest.approx(predicted, rel=0.02)


def test_a_three_arm_bandit_where_the_two_forms_disagree_in_sign_by_hand():
    logits = np.log([0.5, 0.4, 0.1])
    advantage = np.array([-0.4, 0.6, -0.4])  # r = [0, 1, 0], E[r] = 0.4
    # natural: Cov(log pi, A) = E[log pi A] = -0.2 ln 0.5 + 0.24 ln 0.4 - 0.04 ln 0.1 > 0: entropy falls
    natural = -(-0.2 * math.log(0.5) + 0.24 * math.log(0.4) - 0.04 * math.log(0.1))
    # vanilla: g = pi A = [-0.2, 0.24, -0.04], E[g] = -0.008, Cov = sum pi log pi (g - E[g]) < 0: H rises
    vanilla = -(-0.096 * math.log(0.5) + 0.0992 * math.log(0.4) - 0.0032 * math.log(0.1))
    assert bandit.entropy_change_first_order(logits, advantage, 1.0, "natural") == pytest.approx(natural)
    assert bandit.entropy_change_first_order(logits, advantage, 1.0, "vanilla") == pytest.approx(vanilla)
    assert natural < 0 < vanilla
    assert bandit.entropy_change_exact(logits, advantage, 0.001, "natural") < 0
    assert bandit.entropy_change_exact(logits, advantage, 0.001, "vanilla") > 0


def test_the_vanilla_step_is_the_mean_sampled_step_and_ignores_the_baseline():
    rng = np.random.default_rng(5)
    logits, rewards = rng.normal(size=5), rng.random(5)
    policy = bandit.softmax(logits)
    advantage = bandit.advantages(policy, rewards)
    # E_{a~pi}[A(a) (e_a - pi)], enumerated
    mean_sampled = sum(policy[a] * advantage[a] * (np.eye(5)[a] - policy) for a in range(5))
    assert bandit.logit_step(logits, advantage, 1.0) == pytest.approx(mean_sampled)
    assert bandit.logit_step(logits, advantage + 3.0, 1.0) == pytest.approx(mean_sampled)
    with pytest.raises(ParameterError, match="kind"):
        bandit.logit_step(logits, advantage, 1.0, kind="adam")


def test_step_forms_table_right_form_never_errs_in_sign_for_small_steps():
    table = bandit.step_forms_table(300, eta=0.001, seed=4)
    assert len(table) == 600 and set(table["step"]) == {"vanilla", "natural"}
    shares = bandit.sign_error_shares(table)
    assert list(shares.index) == ["vanilla", "natural"]
    assert (shares["right_form"] == 0).all()
    assert (shares["wrong_form"] > 0).all()
    assert (shares["right_form_median_relative_error"] < 0.01).all()


def test_tempered_expected_step_by_hand():
    logits = np.log([0.8, 0.2])
    rewards = np.array([0.0, 1.0])
    # at t = 2 the samples come from sqrt(pi) renormalised = [2/3, 1/3]; baseline b = 1/3
    # step = eta pi_t * (r - b) = [2/3 x -1/3, 1/3 x 2/3]
    assert bandit.tempered_expected_step(logits, rewards, 1.0, 2.0) == pytest.approx([-2 / 9, 2 / 9])
    # at t = 1 it is the vanilla step
    vanilla = bandit.logit_step(logits, bandit.advantages(np.array([0.8, 0.2]), rewards), 0.5)
    assert bandit.tempered_expected_step(logits, rewards, 0.5, 1.0) == pytest.approx(vanilla)


def test_tempered_expected_step_is_the_mean_step_of_tempered_samples():
    rng = np.random.default_rng(6)
    logits, rewards = rng.normal(size=6), rng.random(6)
    policy, sampling = bandit.softmax(logits), bandit.softmax(logits, 1.5)
    baseline = sampling @ rewards
    mean_sampled = sum(sampling[a] * (rewards[a] - baseline) * (np.eye(6)[a] - policy) for a in range(6))
    assert bandit.tempered_expected_step(logits, rewards, 1.0, 1.5) == pytest.approx(mean_sampled)


def test_hotter_sampling_raises_the_entropy_more_on_a_rare_correct_arm():
    logits = bandit.bandit_with_rare_arm(8, 0.01, seed=0)
    table = bandit.tempered_sampling_table(logits, 7, [1.0, 1.2, 1.5], eta=0.5)
    assert table["sampling_probability"].iloc[0] == pytest.approx(0.01)
    assert table["sampling_probability"].is_monotonic_increasing
    assert table["correct_arm_step"].is_monotonic_increasing
    assert (table["actual"] > 0).all() and table["actual"].is_monotonic_increasing
    assert table["predicted"].to_numpy() == pytest.approx(table["actual"].to_numpy(), rel=0.01)


def test_bandit_with_rare_arm_has_the_requested_probability():
    policy = bandit.softmax(bandit.bandit_with_rare_arm(6, 0.02, seed=4))
    assert policy.sum() == pytest.approx(1.0)
    assert policy[-1] == pytest.approx(0.02)


def test_prob_rare_arm_found_by_hand():
    policy = np.array([0.81, 0.09, 0.1])
    # at t = 2 the tempered weights are sqrt: [0.9, 0.3, 0.316...]; q = 0.3 / (0.9 + 0.3 + sqrt(0.1))
    q = 0.3 / (0.9 + 0.3 + math.sqrt(0.1))
    assert bandit.prob_rare_arm_found(policy, 1, 2.0, 3) == pytest.approx(1 - (1 - q) ** 3)
    assert bandit.prob_rare_arm_found(policy, 1, 1.0, 2) == pytest.approx(1 - 0.91**2)


def test_a_hotter_larger_group_finds_the_rare_arm_more_often():
    policy = bandit.softmax(bandit.bandit_with_rare_arm(8, 0.01))
    table = bandit.discovery_table(policy, 7, group_sizes=[5, 20], temperatures=[1.0, 1.2, 1.5])
    for _, rows in table.groupby("group_size"):
        assert rows["prob_found"].is_monotonic_increasing
    at_1 = table[table["temperature"] == 1.0].set_index("group_size")["prob_found"]
    assert at_1[20] > at_1[5]


def test_exploration_update_on_a_rare_correct_arm_raises_entropy():
    logits = bandit.bandit_with_rare_arm(8, 0.01, seed=0)
    update = bandit.exploration_update(logits, 7, temperature=1.2, group_size=20, eta=0.5, seed=0)
    assert (update.samples == 7).any()
    assert update.kept[update.samples == 7].all()  # a rare success has |A| > 1
    assert (update.logit_step[:7] == 0).all() and update.logit_step[7] > 0
    assert update.covariance < 0
    assert update.predicted > 0 and update.actual > 0


def test_repeated_reinforcement_flips_from_raising_to_lowering_entropy_at_exp_minus_h():
    logits = bandit.bandit_with_rare_arm(8, 0.01, seed=0)
    table = bandit.repeated_reinforcement(logits, 7, advantage=1.0, eta=0.5, repeats=25)
    assert table["probability"].is_monotonic_increasing
    rare = table["probability"] < table["threshold"]
    assert rare.iloc[0] and not rare.iloc[-1]
    assert (table.loc[rare, "covariance"] < 0).all()
    assert (table.loc[~rare, "covariance"] > 0).all()
    assert table["actual"].iloc[0] > 0 > table["actual"].iloc[-1]


@pytest.fixture(scope="module")
def simulation():
    return bandit.simulate(bandit.BanditConfig(seed=0))


def test_simulation_frame_shape(simulation):
    config = bandit.BanditConfig()
    assert set(simulation["strategy"]) == set(bandit.STRATEGIES)
    assert set(simulation["prompts"]) == {"all", "easy", "hard"}
    assert simulation["step"].max() == config.steps
    start = simulation[simulation["step"] == 0].groupby("prompts")["entropy"].nunique()
    assert (start == 1).all()  # every strategy starts from the same pool


def test_policy_gradient_collapses_the_entropy_of_what_it_can_solve(simulation):
    summary = bandit.entropy_summary(simulation).loc["policy_gradient"]
    assert summary.loc["easy", "end"] < summary.loc["easy", "start"] - 0.1
    assert summary.loc["all", "end"] < summary.loc["all", "start"]


def test_exploration_raises_the_entropy(simulation):
    summary = bandit.entropy_summary(simulation)
    assert summary.loc[("exploration", "hard"), "end"] > summary.loc[("exploration", "hard"), "start"]
    assert summary.loc[("exploration", "hard"), "end"] > summary.loc[("policy_gradient", "hard"), "end"]
    assert summary.loc[("exploration", "all"), "end"] > summary.loc[("exploration", "all"), "start"]
    effects = bandit.phase_effects(simulation)
    assert effects.loc[("exploration", "hard"), "exploration_effect"] > 0


def test_replay_pulls_the_entropy_back_down(simulation):
    summary = bandit.entropy_summary(simulation)
    replay, exploration = summary.loc["exploration_replay"], summary.loc["exploration"]
    assert replay.loc["all", "highest"] > replay.loc["all", "start"]  # exploration still lifts it first
    assert replay.loc["all", "end"] < exploration.loc["all", "end"]
    assert replay.loc["hard", "end"] < exploration.loc["hard", "end"]
    # replaying arms that are still rare raises entropy, replaying arms made likely lowers it
    replays = simulation[(simulation["strategy"] == "exploration_replay") & (simulation["prompts"] == "hard")]
    replays = replays[replays["replay_effect"].notna()]
    assert replays["replay_effect"].iloc[0] > 0 > replays["replay_effect"].iloc[-1]


def test_exploration_and_replay_raise_the_accuracy_most(simulation):
    accuracy = bandit.accuracy_summary(simulation)
    assert (accuracy.groupby("prompts")["start"].nunique() == 1).all()  # same pool for every strategy
    assert accuracy["gain"].to_numpy() == pytest.approx((accuracy["end"] - accuracy["start"]).to_numpy())
    ends = accuracy.xs("all", level="prompts")["end"]
    assert ends["exploration_replay"] > ends["exploration"] > ends["policy_gradient"]
    assert accuracy.loc[("policy_gradient", "all"), "end"] > accuracy.loc[("policy_gradient", "all"), "start"]


def test_a_larger_replay_budget_means_lower_entropy():
    sweep = bandit.replay_sweep(bandit.BanditConfig(seed=1, steps=40), [1, 20])
    final = sweep[sweep["step"] == 40].set_index("replay_every")["entropy"]
    assert final[1] < final[20]


def test_simulation_is_reproducible_and_depends_on_the_seed():
    config = bandit.BanditConfig(steps=5, prompts=32)
    first = bandit.simulate(config, strategies=["exploration"])
    assert first.equals(bandit.simulate(config, strategies=["exploration"]))
    other = bandit.simulate(bandit.BanditConfig(steps=5, prompts=32, seed=1), strategies=["exploration"])
    assert not first["entropy"].equals(other["entropy"])


def test_plots_return_figures_and_save(tmp_path, simulation):
    figures = {
        "first_order": bandit.plot_first_order(
            bandit.first_order_table([0.1, 0.01]), bandit.random_bandits_table(5)
        ),
        "simulation": bandit.plot_simulation(simulation),
        "phases": bandit.plot_phase_effects(simulation),
        "step_forms": bandit.plot_step_forms(bandit.step_forms_table(20)),
        "tempered": bandit.plot_tempered_sampling(
            np.log([0.6, 0.3, 0.1]),
            2,
            bandit.tempered_sampling_table(np.log([0.6, 0.3, 0.1]), 2, [1.0, 1.2], eta=0.1),
            eta=0.1,
        ),
    }
    assert len(figures["simulation"].axes) == 6  # entropy and accuracy for all, easy and hard prompts
    paths = bandit.save_figures(figures, tmp_path / "figures")
    assert [p.name for p in paths] == [
        "first_order.png",
        "simulation.png",
        "phases.png",
        "step_forms.png",
        "tempered.png",
    ]
    assert all(p.stat().st_size > 0 for p in paths)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("arms", 1),
        ("arms", 2.5),
        ("eta", 0),
        ("eta", -1.0),
        ("exploration_temperature", 0.0),
        ("group_size", 1),
        ("exploration_group_size", 1),
        ("steps", 0),
        ("replay_every", 0),
        ("prompts_per_step", 1000),
        ("hard_fraction", 1.5),
        ("rare_probability", 0.0),
        ("seed", -1),
        ("figures_dir", ""),
        ("save_figures", 1),
    ],
)
def test_bad_config_raises_naming_the_parameter(field, value):
    with pytest.raises(ParameterError, match=field):
        bandit.BanditConfig(**{field: value})


def test_bad_function_arguments_raise_parameter_error():
    policy = bandit.softmax(np.zeros(3))
    with pytest.raises(ParameterError, match="temperature"):
        bandit.prob_rare_arm_found(policy, 0, 0.0, 5)
    with pytest.raises(ParameterError, match="arm"):
        bandit.prob_rare_arm_found(policy, 3, 1.0, 5)
    with pytest.raises(ParameterError, match="strategy"):
        bandit.simulate(bandit.BanditConfig(steps=1), strategies=["ppo"])
    with pytest.raises(ParameterError, match="rare_probability"):
        bandit.bandit_with_rare_arm(4, 1.0)


def test_the_simulation_step_is_the_gradient_of_a_log_pi_by_hand():
    logits = np.zeros((2, 4))  # two prompts, uniform policies
    samples = (np.array([1]), np.array([1]), np.array([2.0]))  # prompt 1, arm 1, advantage 2
    step = _policy_gradient_step(logits, samples, weight=0.5)
    # 0.5 x 2 x (e_1 - [0.25] * 4); prompt 0 untouched
    assert step[1] == pytest.approx([-0.25, 0.75, -0.25, -0.25])
    assert (step[0] == 0).all()
