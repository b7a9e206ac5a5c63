"""UECTrainer's step on scripted rollouts (tests/stub_rollouts.py): TRL's generation is replaced by hand-made
completions whose rewards the test chooses, everything else runs (TRL's scoring and advantages, selection,
buffers, replay, loss, optimizer) on a tiny random Llama. Every expected value is worked out by hand here:
the sampling settings of each generation call, TRL's advantages, which samples are kept, buffered, dropped,
replayed and trained on, each UECConfig field's effect, the KL term of the loss, and a resumed run's state.

Sample names: ``A3x01+`` is prompt A's exploration rollout 1 of step 3, a correct one; ``B2r00-`` is prompt
B's standard rollout 0 of step 2, a wrong one (see stub_rollouts.completion_text).

Hand values used throughout (TRL 1.16: A = (r - mean) / (std + 1e-4), std with Bessel's correction, per
group), binary rewards, c correct of n:

* n = 4:  c = 1: +0.75 / 0.5001 = +1.4997 and -0.25 / 0.5001 = -0.4999; c = 2: +-0.5 / (sqrt(1/3) + 1e-4) =
  +-0.8659; c = 3: +0.4999 and -1.4997; c = 0 or 4: 0.
* n = 8:  c = 2: +0.75 / (sqrt(3/14) + 1e-4) = +1.6198 and -0.5399; c = 6: +0.5399 and -1.6198.
* n = 16: c = 1: +3.7485; c = 5: +1.4359 (-0.6526); c = 7: +1.0977 (-0.8538); c = 9: -1.0977 (+0.8538).

So with UEC-RL's defaults (standard samples kept when |A| > 0.05, exploration samples when |A| > 1, replay
entry when |A| > 1): a group of 4 with 1 or 3 correct gives 4 kept samples of which one enters the replay
buffer; with 2 correct, 4 kept and none enters; G' = 16 exploration rollouts with c <= 7 correct keep their c
successes, with c >= 9 their 16 - c failures.
"""

import dataclasses
import math

import pytest
import torch
from stub_rollouts import Script, fast_cpu, ids, make_trainer, run, tiny_model, tokenizer

from uec_repro.config import UECConfig


@pytest.fixture(autouse=True, scope="module")
def _quick():
    with fast_cpu():
        yield


def by_hand(outcomes: str) -> list[float]:
    """TRL 1.16's group advantage, worked out with plain floats: rewards 1 for '+'/'T', 0 for '-'/'t'."""
    rewards = [1.0 if o in "+T" else 0.0 for o in outcomes]
    n = len(rewards)
    mean = sum(rewards) / n
    std = math.sqrt(sum((r - mean) ** 2 for r in rewards) / (n - 1))
    return [(r - mean) / (std + 1e-4) for r in rewards]


def names(prefix: str, indices, mark: str) -> list[str]:
    """``names("A3x", range(2), "+") == ["A3x00+", "A3x01+"]``."""
    return [f"{prefix}{i:02d}{mark}" for i in indices]


def group(prefix: str, outcomes: str) -> list[str]:
    """The names of one scripted group: ``group("A1r", "+-") == ["A1r00+", "A1r01-"]``."""
    return [f"{prefix}{i:02d}{'+' if o in '+T' else '-'}" for i, o in enumerate(outcomes)]


def test_hand_values_in_the_docstring():
    assert by_hand("+---") == pytest.approx([0.75 / 0.5001] + [-0.25 / 0.5001] * 3)
    assert by_hand("+---")[0] == pytest.approx(1.4997, abs=1e-4)
    assert by_hand("++--")[0] == pytest.approx(0.8659, abs=1e-4)
    assert by_hand("++------")[:2] == pytest.approx([1.6198] * 2, abs=1e-4)
    assert by_hand("++++++--")[-1] == pytest.approx(-1.6198, abs=1e-4)
    assert by_hand("+" + "-" * 15)[0] == pytest.approx(3.7485, abs=1e-4)
    assert by_hand("+" * 5 + "-" * 11)[0] == pytest.approx(1.4359, abs=1e-4)
    assert by_hand("+" * 7 + "-" * 9)[0] == pytest.approx(1.0977, abs=1e-4)
    assert by_hand("+" * 9 + "-" * 7)[-1] == pytest.approx(-1.0977, abs=1e-4)


# ------------------------------------------------------------------------------------------------------------
# 1. What every generation call sees
# ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("settings", "temperature", "t_prime", "g", "g_prime"),
    [
        ({}, 1.0, 1.2, 4, 16),  # defaults: TRL's T = 1, t' = 1.2, G' = 4 G
        (
            {
                "temperature": 0.8,
                "exploration_temperature": 1.4,
                "num_generations": 2,
                "exploration_generations": 6,
                "per_device_train_batch_size": 8,
            },
            0.8,
            1.4,
            2,
            6,
        ),
    ],
    ids=["defaults", "T=0.8,t'=1.4,G=2,G'=6"],
)
def test_standard_rollouts_use_t_and_g_exploration_uses_t_prime_and_g_prime_then_both_are_restored(
    tmp_path, settings, temperature, t_prime, g, g_prime
):
    prompts = "ABCD"  # B0 / G = 4 prompts in both cases, all hard at both steps
    script = Script.every_step(2, {p: "-" * g for p in prompts}, {p: "-" * g_prime for p in prompts})
    records = run(make_trainer(tmp_path, "uec_rl", script, **settings))
    assert [r.step for r in records] == [1, 2]
    for record in records:
        standard, exploration = record.call("standard"), record.call("exploration")
        assert (standard.temperature, standard.kwargs_temperature) == (temperature, temperature)
        assert (standard.num_generations, standard.passed_num_generations) == (g, g)
        assert len(standard.completions) == 4 * g
        assert (exploration.temperature, exploration.kwargs_temperature) == (t_prime, t_prime)
        assert (exploration.num_generations, exploration.passed_num_generations) == (g_prime, g_prime)
        assert sorted(exploration.prompts) == sorted(prompts * g_prime)
        # restored after the exploration call (step 2's standard call above sees them too)
        assert (record.temperature_after, record.kwargs_temperature_after) == (temperature, temperature)
        assert record.num_generations_after == g
        assert record.metrics["uec/exploration_generated"] == 4 * g_prime


# ------------------------------------------------------------------------------------------------------------
# 2. Advantages: TRL's formula within each group of G, exploration within its group of G'
# ------------------------------------------------------------------------------------------------------------
ADVANTAGE_SCRIPT = Script(
    {1: {"A": "+---", "B": "++-T", "C": "----", "D": "----"}},
    exploration={1: {"C": "+-------", "D": "-+-+-+--"}},
)


def test_advantages_are_trls_within_each_standard_group_and_within_each_exploration_group_of_g_prime(
    tmp_path,
):
    # everything kept and trained on at once, so the update shows every sample's advantage
    trainer = make_trainer(
        tmp_path,
        "uec_rl",
        ADVANTAGE_SCRIPT,
        exploration_generations=8,
        retention=False,
        overlong_filter=False,
        batch_buffer=False,
        replay=False,
    )
    (record,) = run(trainer)
    expected = {}
    for prompt, outcomes in ADVANTAGE_SCRIPT.standard[1].items():
        expected |= dict(zip(group(f"{prompt}1r", outcomes), by_hand(outcomes), strict=True))
    for prompt, outcomes in ADVANTAGE_SCRIPT.exploration[1].items():
        expected |= dict(zip(group(f"{prompt}1x", outcomes), by_hand(outcomes), strict=True))
    trained = {s.id: s.advantage for s in record.update}
    assert sorted(trained) == sorted(expected)
    for name, advantage in expected.items():
        assert trained[name] == pytest.approx(advantage, abs=1e-5), name
    # spot values: A's group of 4; C's lone success among its 8 exploration rollouts
    assert trained["A1r00+"] == pytest.approx(1.4997, abs=1e-4)
    assert trained["C1x00+"] == pytest.approx(0.875 / (math.sqrt(1 / 8) + 1e-4), abs=1e-5)  # 2.4742
    # grouping C's exploration rollouts by G = 4 instead would give C1x00+ the advantage of "+---"
    assert by_hand("+---")[0] == pytest.approx(1.4997, abs=1e-4)
    assert abs(trained["C1x00+"] - 1.4997) > 0.9
    # a truncated correct completion is scored like any correct one, and flagged truncated
    (truncated,) = [s for s in record.update if s.truncated]
    assert (truncated.id, truncated.reward) == ("B1r03+", 1.0)
    assert {s.id for s in record.update if s.exploration} == {n for n in expected if n[2] == "x"}


@pytest.mark.parametrize("correct", [1, 9, 10, 11, 19])
def test_abs_above_one_keeps_exploration_successes_iff_at_most_9_of_20_and_failures_iff_at_least_11(
    tmp_path, correct
):
    # |A+| > 1 <=> (20 - c) / 20 > sqrt(c (20 - c) / 380) <=> 780 c < 7600 <=> c <= 9; failures by symmetry
    outcomes = "+" * correct + "-" * (20 - correct)
    script = Script({1: {"A": "----"}}, exploration={1: {"A": outcomes}})
    trainer = make_trainer(
        tmp_path,
        "uec_rl",
        script,
        per_device_train_batch_size=4,
        exploration_generations=20,
        batch_buffer=False,
        replay=False,
    )
    (record,) = run(trainer)
    positives = names("A1x", range(correct), "+") if correct <= 9 else []
    negatives = names("A1x", range(correct, 20), "-") if correct >= 11 else []
    assert ids(record.kept) == positives + negatives
    assert ids(record.update) == positives + negatives
    assert record.metrics["uec/exploration_kept_positive"] == len(positives)
    assert record.metrics["uec/exploration_kept_negative"] == len(negatives)
    success, failure = by_hand(outcomes)[0], by_hand(outcomes)[-1]
    assert (success > 1) == (correct <= 9) and (-failure > 1) == (correct >= 11)


# ------------------------------------------------------------------------------------------------------------
# 3. Exactly what is kept, buffered, dropped, trained on and replayed
# ------------------------------------------------------------------------------------------------------------
def test_batch_buffer_releases_whole_batches_of_b0_and_its_overflow_drops_the_oldest(tmp_path):
    # B0 = 8 (prompts A and B), capacity 2 x B0 = 16, G' = 16
    script = Script(
        {
            1: {"A": "+---", "B": "++++"},
            2: {"A": "++++", "B": "--+-"},
            3: {"A": "----", "B": "-+-T"},
            4: {"A": "-+--", "B": "----"},
            5: {"A": "----", "B": "++++"},
            6: {"A": "----", "B": "-+-T"},
        },
        exploration={
            3: {"A": "++" + "-" * 14},
            4: {"B": "+" * 7 + "-" * 9},
            5: {"A": "+" * 9 + "-" * 7},
            6: {"A": "+" * 7 + "-" * 9},
        },
    )
    trainer = make_trainer(tmp_path, "uec_rl", script, per_device_train_batch_size=8, replay=False)
    records = run(trainer)
    kept = {
        1: group("A1r", "+---"),  # B: all correct, A = 0
        2: group("B2r", "--+-"),
        3: names("A3x", range(2), "+") + ["B3r00-", "B3r01+", "B3r02-"],  # B3r03+ is truncated with A > 0
        4: names("B4x", range(7), "+") + group("A4r", "-+--"),  # c = 7 of 16: the successes
        5: names("A5x", range(9, 16), "-"),  # c = 9 of 16: the failures
        6: names("A6x", range(7), "+") + ["B6r00-", "B6r01+", "B6r02-"],
    }
    update = {
        1: [],
        2: kept[1] + kept[2],  # 4 < B0 waits; 8 = B0 goes
        3: [],
        4: kept[3] + kept[4],  # 5 wait; 5 + 11 = 16 = capacity: two batches go
        5: [],
        6: kept[5][1:] + kept[6],  # 7 + 10 = 17 > 16: the oldest (A5x09-) is dropped, 16 go
    }
    buffered = {1: kept[1], 2: [], 3: kept[3], 4: [], 5: kept[5], 6: []}
    for record in records:
        step = record.step
        assert sorted(ids(record.kept)) == sorted(kept[step]), step
        assert sorted(ids(record.update)) == sorted(update[step]), step
        assert sorted(record.batch_buffer) == sorted(buffered[step]), step
        assert record.metrics["uec/update_samples"] == len(update[step])
        assert record.metrics["uec/updated"] == float(bool(update[step]))
        assert record.metrics["uec/batch_buffer_size"] == len(buffered[step])
        # mini-batches of ceil(B0 / 4) = 2: every released sample is trained on once
        assert sorted(n for batch in record.mini_batches for n in batch.ids) == sorted(update[step])
        assert record.metrics["uec/optimizer_steps"] == len(update[step]) // 2
    assert [r.batch_buffer_dropped for r in records] == [0, 0, 0, 0, 0, 1]
    assert [r.metrics["uec/overlong_dropped"] for r in records] == [0, 0, 1, 0, 0, 1]


def test_kept_samples_are_exploration_first_and_the_batch_buffer_releases_the_oldest_first(tmp_path):
    # the authors' order: exploration samples, then standard ones; B0 = 8 of step 1's 11 go, 3 wait and go
    # first at step 2
    script = Script(
        {1: {"A": "----", "B": "+---"}, 2: {"A": "----", "B": "+---"}},
        exploration={1: {"A": "+" * 7 + "-" * 9}, 2: {"A": "+" + "-" * 15}},
    )
    first, second = run(make_trainer(tmp_path, "uec_rl", script, per_device_train_batch_size=8, replay=False))
    assert ids(first.kept) == names("A1x", range(7), "+") + group("B1r", "+---")
    assert ids(first.update) == names("A1x", range(7), "+") + ["B1r00+"]
    assert first.batch_buffer == ["B1r01-", "B1r02-", "B1r03-"]
    assert ids(second.kept) == ["A2x00+"] + group("B2r", "+---")
    assert ids(second.update) == ["B1r01-", "B1r02-", "B1r03-", "A2x00+"] + group("B2r", "+---")
    assert second.batch_buffer == []


def test_overlong_filter_drops_a_truncated_sample_only_when_its_advantage_is_positive(tmp_path):
    # "Tt+-": 2 of 4 correct, A = +-0.87; the truncated correct one (A > 0) goes, the truncated wrong one
    # stays
    script = Script({1: {"A": "Tt+-"}})
    (record,) = run(
        make_trainer(tmp_path, "uec_rl", script, per_device_train_batch_size=4, batch_buffer=False)
    )
    assert [s.truncated for s in record.standard] == [True, True, False, False]
    assert ids(record.update) == ["A1r01-", "A1r02+", "A1r03-"]
    assert (record.metrics["uec/truncated_kept"], record.metrics["uec/overlong_dropped"]) == (2, 1)
    # mini-batches of ceil(4 / 4) = 1; the truncated completion is trained on without an EOS: 6 tokens, not 7
    tokens = {b.ids[0]: int(b.inputs["completion_mask"].sum()) for b in record.mini_batches}
    assert tokens == {"A1r01-": 6, "A1r02+": 7, "A1r03-": 7}


BASE = Script.every_step(
    1, {"A": "+---", "B": "+T--", "C": "----", "D": "----"}, {"C": "++------", "D": "++++++--"}
)
# kept with the defaults (G' = 8): exploration C's 2 successes, D's 2 failures, then A's 4 and B's 3 (B1r01+
# is truncated with A > 0); 6 characters and EOS each: 77 tokens
BASE_KEPT = ["C1x00+", "C1x01+", "D1x06-", "D1x07-"] + group("A1r", "+---") + ["B1r00+", "B1r02-", "B1r03-"]
BASE_ADVANTAGES = {
    "A1r00+": 0.75 / 0.5001,
    "A1r01-": -0.25 / 0.5001,
    "A1r02-": -0.25 / 0.5001,
    "A1r03-": -0.25 / 0.5001,
    "B1r00+": 0.5 / (math.sqrt(1 / 3) + 1e-4),
    "B1r02-": -0.5 / (math.sqrt(1 / 3) + 1e-4),
    "B1r03-": -0.5 / (math.sqrt(1 / 3) + 1e-4),
    "C1x00+": 0.75 / (math.sqrt(3 / 14) + 1e-4),
    "C1x01+": 0.75 / (math.sqrt(3 / 14) + 1e-4),
    "D1x06-": -0.75 / (math.sqrt(3 / 14) + 1e-4),
    "D1x07-": -0.75 / (math.sqrt(3 / 14) + 1e-4),
}
# UEC-RL's defaults with G' = 8, the batch buffer off and one update per batch: each step trains on its 11
# kept samples in one mini-batch
BASE_SETTINGS = {"exploration_generations": 8, "batch_buffer": False, "updates_per_batch": 1}
DEFAULTS = {f.name: f.default for f in dataclasses.fields(UECConfig)}


def base_script(steps: int = 1, g_prime: int = 8) -> Script:
    """BASE at every step, exploration groups of any G': C has 2 successes, D 2 failures."""
    return Script.every_step(
        steps, BASE.standard[1], {"C": "++" + "-" * (g_prime - 2), "D": "+" * (g_prime - 2) + "--"}
    )


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    """``base_run(steps, **settings)``: the records of a run of :func:`base_script` with BASE_SETTINGS and
    ``settings``; runs that differ only in settings at their defaults are made once per module."""
    made = {}

    def get(steps: int = 1, adapter_scale: float = 0.0, **settings):
        settings = {**BASE_SETTINGS, **settings}
        key = (
            steps,
            adapter_scale,
            repr(sorted((k, v) for k, v in settings.items() if DEFAULTS.get(k) != v)),
        )
        if key not in made:
            g_prime = settings["exploration_generations"]
            trainer = make_trainer(
                tmp_path_factory.mktemp("base"),
                "uec_rl",
                base_script(steps, g_prime),
                adapter_scale=adapter_scale,
                **settings,
            )
            made[key] = run(trainer)
        return made[key]

    return get


def test_mini_batches_split_the_update_in_order(base_run):
    # the authors split in order (no shuffle): B0 = 16 over 4 updates makes mini-batches of 4
    (record,) = base_run(updates_per_batch=4)
    assert sorted(ids(record.update)) == sorted(BASE_KEPT)
    update = ids(record.update)
    assert [batch.ids for batch in record.mini_batches] == [update[0:4], update[4:8], update[8:11]]


def test_replay_buffer_takes_update_samples_above_the_threshold_and_replays_every_f_steps(tmp_path):
    # B0 = 8, replay capacity 2 x B0 = 16, every 2nd step; the due steps' updates enter nothing, so the order
    # of entry and draw within a step does not matter here
    quiet = {"A": "++--", "B": "++++"}  # 4 kept, |A| = 0.87: none enters
    script = Script(
        {
            1: {"A": "+---", "B": "----"},
            2: quiet,
            3: {"A": "+++-", "B": "----"},
            4: quiet,
            5: {"A": "----", "B": "+---"},
            6: quiet,
            7: {"A": "-+--", "B": "----"},
            8: quiet,
        },
        exploration={
            1: {"B": "+" + "-" * 15},
            3: {"B": "+" * 5 + "-" * 11},
            5: {"A": "+" * 7 + "-" * 9},
            7: {"B": "+" + "-" * 15},
        },
    )
    trainer = make_trainer(
        tmp_path, "uec_rl", script, per_device_train_batch_size=8, batch_buffer=False, replay_frequency=2
    )
    records = run(trainer)
    entered = {
        1: ["B1x00+", "A1r00+"],  # +3.75 and +1.50; A's -0.50 stay out
        3: names("B3x", range(5), "+") + ["A3r03-"],  # +1.44 each, and -1.50 (|A| counts)
        5: names("A5x", range(7), "+") + ["B5r00+"],  # +1.10 each, and +1.50
        7: ["B7x00+", "A7r01+"],
    }
    buffer = {1: entered[1], 2: entered[1]}
    buffer[3] = buffer[4] = entered[1] + entered[3]
    buffer[5] = buffer[6] = entered[1] + entered[3] + entered[5]  # 16: full
    buffer[7] = buffer[8] = entered[3] + entered[5] + entered[7]  # the 2 oldest pushed out
    replayed = {2: [], 4: buffer[4], 6: buffer[6], 8: buffer[8]}  # 2 < B0: nothing; 8 = B0: all; full: all
    first_advantage = {}
    for record in records:
        step = record.step
        first_advantage |= {s.id: s.advantage for s in record.update}
        assert sorted(record.replay_buffer) == sorted(buffer[step]), step
        assert sorted(ids(record.replay)) == sorted(replayed.get(step, [])), step
        assert record.metrics["uec/replay_buffer_size"] == len(buffer[step])
        assert record.metrics["uec/replayed"] == float(bool(replayed.get(step)))
        assert record.metrics["uec/replay_samples"] == len(replayed.get(step, []))
        for sample in record.replay:  # replayed with the advantage it was first trained with
            assert sample.advantage == first_advantage[sample.id]
        by_phase = {"update": [], "replay": []}
        for batch in record.mini_batches:
            by_phase[batch.phase] += batch.ids
        assert sorted(by_phase["update"]) == sorted(ids(record.update))
        assert sorted(by_phase["replay"]) == sorted(ids(record.replay))
    assert first_advantage["A3r03-"] == pytest.approx(-1.4997, abs=1e-4)


def test_a_due_replay_step_draws_after_its_own_update_samples_entered(tmp_path):
    # the authors push this step's qualifying samples first: 8 = B0 enter at step 1 and are replayed at once
    script = Script({1: {"A": "+---", "B": "----"}}, exploration={1: {"B": "+" * 7 + "-" * 9}})
    (record,) = run(
        make_trainer(
            tmp_path, "uec_rl", script, per_device_train_batch_size=8, batch_buffer=False, replay_frequency=1
        )
    )
    assert sorted(ids(record.replay)) == sorted(names("B1x", range(7), "+") + ["A1r00+"])
    assert record.metrics["uec/replay_samples"] == 8


# ------------------------------------------------------------------------------------------------------------
# 4. Every selection, buffer, replay, baseline and update setting reaches the trainer
# ------------------------------------------------------------------------------------------------------------
def metric(name: str, step: int = 1):
    return lambda records: records[step - 1].metrics.get(name)


def kept_signs(records):
    return records[0].metrics["uec/exploration_kept_positive"], records[0].metrics[
        "uec/exploration_kept_negative"
    ]


# (field, value, other overrides, steps, observation, expected by hand). Base: UEC-RL's defaults, B0 = 16,
# G' = 8, batch buffer off and one update per batch, so BASE's 11 kept samples (see BASE_KEPT) are one
# mini-batch of 77 tokens (6 characters + EOS each). Hard: C and D; standard |A|: A 1.50, 0.50 x3;
# B 0.87 x4 (B1r01+ truncated).
FIELD_CASES = [
    ("exploration", True, {}, 1, metric("uec/exploration_generated"), 16),
    ("exploration", False, {}, 1, metric("uec/exploration_generated"), 0),
    ("exploration_generations", 8, {}, 1, metric("uec/exploration_generated"), 16),
    ("exploration_generations", 12, {}, 1, metric("uec/exploration_generated"), 24),
    ("exploration_temperature", 1.2, {}, 1, lambda r: r[0].call("exploration").temperature, 1.2),
    ("exploration_temperature", 0.7, {}, 1, lambda r: r[0].call("exploration").temperature, 0.7),
    ("retention", True, {}, 1, metric("uec/regular_kept"), 8),  # C and D have A = 0
    ("retention", False, {}, 1, metric("uec/regular_kept"), 16),
    ("regular_threshold", 0.05, {}, 1, metric("uec/regular_kept"), 8),
    ("regular_threshold", 0.6, {}, 1, metric("uec/regular_kept"), 5),  # A's three -0.50 go
    ("exploration_rule", "abs>1", {}, 1, kept_signs, (2, 2)),  # C's +1.62 x2, D's -1.62 x2
    ("exploration_rule", "positive", {}, 1, kept_signs, (8, 0)),  # C's 2, D's 6 (+0.54)
    ("exploration_rule", "abs>0.5", {}, 1, kept_signs, (8, 8)),  # and C's 6 (-0.54), D's 2
    ("overlong_filter", True, {}, 1, metric("uec/update_samples"), 11),
    ("overlong_filter", False, {}, 1, metric("uec/update_samples"), 12),  # B1r01+ too
    ("batch_buffer", True, {}, 1, metric("uec/update_samples"), 0),  # 11 < B0 = 16 waits
    ("batch_buffer", False, {}, 1, metric("uec/update_samples"), 11),
    # two steps of 11: 22 -> 16 go, 6 wait; capacity 1 x B0: the 6 oldest are dropped on entry
    ("batch_buffer_capacity", 2.0, {"batch_buffer": True}, 2, metric("uec/batch_buffer_size", 2), 6),
    ("batch_buffer_capacity", 1.0, {"batch_buffer": True}, 2, metric("uec/batch_buffer_size", 2), 0),
    ("replay", True, {}, 1, metric("uec/replay_buffer_size"), 5),  # |A| > 1: A1r00+, C's 2, D's 2
    ("replay", False, {}, 1, metric("uec/replay_buffer_size"), 0),
    ("replay_rule", "abs", {}, 1, metric("uec/replay_buffer_size"), 5),
    ("replay_rule", "positive", {}, 1, metric("uec/replay_buffer_size"), 3),
    ("replay_threshold", 1.0, {}, 1, metric("uec/replay_buffer_size"), 5),
    ("replay_threshold", 0.6, {}, 1, metric("uec/replay_buffer_size"), 8),  # B's three 0.87 too
    # threshold 0: all 11 enter each step; capacity 1 x B0 holds 16 of the 22
    ("replay_capacity", 2.0, {"replay_threshold": 0.0}, 2, metric("uec/replay_buffer_size", 2), 22),
    ("replay_capacity", 1.0, {"replay_threshold": 0.0}, 2, metric("uec/replay_buffer_size", 2), 16),
    # threshold 0, capacity 1 x B0: the buffer is full (16) from step 2; replayed whole when due at step 3
    (
        "replay_frequency",
        1,
        {"replay_threshold": 0.0, "replay_capacity": 1.0},
        3,
        metric("uec/replay_samples", 3),
        16,
    ),
    (
        "replay_frequency",
        2,
        {"replay_threshold": 0.0, "replay_capacity": 1.0},
        3,
        metric("uec/replay_samples", 3),
        0,
    ),
    ("kl_cov_ratio", 0.0, {}, 1, metric("baselines/kl_cov_tokens"), None),
    ("kl_cov_ratio", 0.1, {}, 1, metric("baselines/kl_cov_tokens"), 7),  # int(0.1 x 77)
    # bounds that every token's covariance lies in, so that the count is int(0.1 x 77) (no token is
    # PPO-clipped in the first mini-batch)
    ("clip_cov_ratio", 0.0, {}, 1, metric("baselines/clip_cov_tokens"), None),
    ("clip_cov_ratio", 0.1, {"clip_cov_bounds": (-1e6, 1e6)}, 1, metric("baselines/clip_cov_tokens"), 7),
    ("updates_per_batch", 1, {}, 1, metric("uec/optimizer_steps"), 1),
    ("updates_per_batch", 4, {}, 1, metric("uec/optimizer_steps"), 3),  # mini-batches of 4: 4 + 4 + 3
    ("updates_per_batch", 8, {}, 1, metric("uec/optimizer_steps"), 6),  # of 2: 5 x 2 + 1
]
# beta and entropy_adv_alpha change the loss: see the tests below
LOSS_FIELDS = {"beta", "entropy_adv_alpha"}
FIELDS = {
    "exploration",
    "exploration_generations",
    "exploration_temperature",
    "retention",
    "regular_threshold",
    "exploration_rule",
    "overlong_filter",
    "batch_buffer",
    "batch_buffer_capacity",
    "replay",
    "replay_rule",
    "replay_threshold",
    "replay_capacity",
    "replay_frequency",
    "beta",
    "kl_cov_ratio",
    "clip_cov_ratio",
    "entropy_adv_alpha",
    "updates_per_batch",
}


def test_every_setting_has_cases_that_expect_different_results():
    expectations = {}
    for field, _, _, _, _, expected in FIELD_CASES:
        expectations.setdefault(field, set()).add(repr(expected))
    assert set(expectations) | LOSS_FIELDS == FIELDS
    assert all(len(values) >= 2 for values in expectations.values())


@pytest.mark.parametrize(
    ("field", "value", "others", "steps", "observe", "expected"),
    FIELD_CASES,
    ids=[f"{case[0]}={case[1]}" for case in FIELD_CASES],
)
def test_setting_changes_what_the_trainer_does(base_run, field, value, others, steps, observe, expected):
    records = base_run(steps, **others, **{field: value})
    assert len(records) == steps
    assert observe(records) == expected


def policy_loss_by_hand(samples: list[str], advantages: dict[str, float]) -> float:
    """bnpo's loss of the first mini-batch (ratio 1, so each token's loss is -A): minus the token mean of
    A."""
    tokens = {name: len(name) + 1 for name in samples}  # the characters and EOS
    return -sum(advantages[n] * tokens[n] for n in samples) / sum(tokens.values())


def logps_by_hand(model, name: str) -> torch.Tensor:
    """Log-probs of a scripted completion's tokens (its characters and EOS) after its one-token prompt."""
    tok = tokenizer()
    prompt, completion = tok.encode(name[0]), tok.encode(name) + [tok.eos_token_id]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([prompt + completion])).logits[0, len(prompt) - 1 : -1]
    return torch.log_softmax(logits.double(), dim=-1)[torch.arange(len(completion)), completion]


def test_kl_term_adds_beta_times_the_mean_k3_to_reference_to_the_loss(base_run):
    # a perturbed adapter: the policy differs from its reference, the initial (zero) adapter, i.e. the base
    # model
    losses, kl_logged = {}, {}
    for beta in (0.0, 0.5):
        (record,) = base_run(adapter_scale=0.5, beta=beta)
        (batch,) = record.mini_batches
        assert sorted(batch.ids) == sorted(BASE_KEPT)
        losses[beta], kl_logged[beta] = batch.loss, record.metrics.get("kl")
    model = tiny_model(adapter_scale=0.5)
    k3 = []
    for name in BASE_KEPT:
        current = logps_by_hand(model, name)
        with model.disable_adapter():
            reference = logps_by_hand(model, name)
        x = reference - current
        k3.append(torch.exp(x) - x - 1)
    mean_k3 = float(torch.cat(k3).mean())
    assert mean_k3 > 0.05 and float(torch.cat(k3).max()) < 10  # visible, and below the authors' clamp
    assert losses[0.0] == pytest.approx(policy_loss_by_hand(BASE_KEPT, BASE_ADVANTAGES), abs=1e-5)
    assert losses[0.5] - losses[0.0] == pytest.approx(0.5 * mean_k3, rel=1e-4)
    assert kl_logged == {0.0: None, 0.5: pytest.approx(mean_k3, rel=1e-4)}  # TRL logs the same token mean


def test_kl_term_after_an_optimizer_step_is_plain_k3_not_weighted_by_the_ratio(base_run):
    # two mini-batches (8 + 3 samples) at a large learning rate: the adapter starts at zero, so the first loss
    # has no KL and no KL gradient, and both runs reach the second mini-batch with the same weights; there the
    # policy is off its reference and its old log-probs (ratios 0.74 to 1.54), and the KL term is beta x mean
    # k3, as in the authors' code (TRL's use_bias_correction_kl would weight k3 by the ratio)
    runs = {beta: base_run(updates_per_batch=2, learning_rate=0.05, beta=beta)[0] for beta in (0.0, 0.5)}
    first, second = runs[0.5].mini_batches
    assert first.loss == runs[0.0].mini_batches[0].loss
    model = tiny_model()
    with torch.no_grad():
        parameters = dict(model.named_parameters())
        for name, value in second.weights.items():
            parameters[name].copy_(value)
    k3, ratio = [], []
    for row, name in enumerate(second.ids):
        current = logps_by_hand(model, name)
        with model.disable_adapter():
            reference = logps_by_hand(model, name)
        x = reference - current
        k3.append(torch.exp(x) - x - 1)
        ratio.append(torch.exp(current - second.inputs["old_per_token_logps"][row, : len(current)].double()))
    k3, ratio = torch.cat(k3), torch.cat(ratio)
    plain, weighted = float(k3.mean()), float((k3 * ratio).mean())
    assert plain > 0.01 and abs(weighted - plain) > 0.1 * plain  # the two readings differ clearly
    assert second.loss - runs[0.0].mini_batches[1].loss == pytest.approx(0.5 * plain, rel=1e-4)


def test_entropy_adv_raises_each_tokens_advantage_by_the_capped_bonus(base_run):
    # the random model's token entropy (about 4.5) makes alpha H = 1.8 exceed every cap |A| / 2 (<= 0.81):
    # each advantage becomes A + |A| / 2, and the loss -mean(A) of the first mini-batch falls accordingly
    (plain,) = base_run()[0].mini_batches
    (shaped_batch,) = base_run(entropy_adv_alpha=0.4)[0].mini_batches
    shaped = {name: a + abs(a) / 2 for name, a in BASE_ADVANTAGES.items()}
    assert plain.loss == pytest.approx(policy_loss_by_hand(BASE_KEPT, BASE_ADVANTAGES), abs=1e-5)
    assert shaped_batch.loss == pytest.approx(policy_loss_by_hand(BASE_KEPT, shaped), abs=1e-5)
    assert shaped_batch.loss < plain.loss
    per_token = shaped_batch.advantages  # (rows, tokens): the shaped value on each of the row's 7 tokens
    for row, name in enumerate(shaped_batch.ids):
        assert per_token[row].tolist() == pytest.approx([shaped[name]] * 7, abs=1e-5)


# ------------------------------------------------------------------------------------------------------------
# 5. Resume: the trainer's own checkpoint restores its random state and buffers
# ------------------------------------------------------------------------------------------------------------
def test_checkpoint_restores_the_python_random_state_buffers_and_counters(tmp_path):
    # 11 kept per step: 22 -> 16 go and 6 wait; those of the 16 with |A| > 1 enter the replay buffer. Clip-Cov
    # (every token eligible) draws from its generator, which the checkpoint keeps too
    script = base_script(steps=2)
    settings = dict(exploration_generations=8, clip_cov_ratio=0.1, clip_cov_bounds=(-1e6, 1e6))
    saved = make_trainer(tmp_path / "saved", "uec_rl", script, **settings)
    run(saved)
    assert len(saved.batch_buffer) == 6 and len(saved.replay_buffer) > 0
    saved._rng.random()  # a state that no fresh trainer has, whether or not the steps drew from it
    saved.guard.streak = 2
    saved._save_checkpoint(saved.model, trial=None)
    folder = tmp_path / "saved" / "run" / "checkpoint-2"

    fresh = make_trainer(tmp_path / "fresh", "uec_rl", script, **settings)
    assert fresh._rng.getstate() != saved._rng.getstate()
    assert not torch.equal(fresh._clip_cov_generator.get_state(), saved._clip_cov_generator.get_state())
    assert len(fresh.batch_buffer) == len(fresh.replay_buffer) == 0
    fresh._load_uec_state(folder)
    assert fresh._rng.getstate() == saved._rng.getstate()
    assert fresh._rng.random() == saved._rng.random()
    assert torch.equal(fresh._clip_cov_generator.get_state(), saved._clip_cov_generator.get_state())
    assert fresh.guard.streak == 2
    assert fresh.batch_buffer.dropped == saved.batch_buffer.dropped
    for restored, original in (
        (fresh.batch_buffer, saved.batch_buffer),
        (fresh.replay_buffer, saved.replay_buffer),
    ):
        assert ids(restored.contents()) == ids(original.contents())
        for a, b in zip(restored.contents(), original.contents(), strict=True):
            assert (a.advantage, a.reward, a.truncated, a.exploration) == (
                b.advantage,
                b.reward,
                b.truncated,
                b.exploration,
            )
            assert torch.equal(a.prompt_ids, b.prompt_ids) and torch.equal(a.completion_ids, b.completion_ids)
            for name in ("old_logps", "ref_logps"):
                x, y = getattr(a, name), getattr(b, name)
                assert (x is None and y is None) or torch.equal(x, y), name


def test_checkpoint_keeps_the_batch_buffers_drop_count_when_the_buffer_is_empty(tmp_path):
    # capacity 1 x B0 = 16: step 2's 11 + 11 = 22 drop the 6 oldest, and the 16 left all go: empty, 6 dropped
    script = base_script(steps=2)
    saved = make_trainer(
        tmp_path / "saved", "uec_rl", script, exploration_generations=8, batch_buffer_capacity=1.0
    )
    run(saved)
    assert (len(saved.batch_buffer), saved.batch_buffer.dropped) == (0, 6)
    saved._save_checkpoint(saved.model, trial=None)
    fresh = make_trainer(
        tmp_path / "fresh", "uec_rl", script, exploration_generations=8, batch_buffer_capacity=1.0
    )
    fresh._load_uec_state(tmp_path / "saved" / "run" / "checkpoint-2")
    assert fresh.batch_buffer.dropped == 6


def test_resumed_run_makes_the_same_third_step_as_an_uninterrupted_one(tmp_path):
    # replay every step from a buffer of 3 x B0 = 48 with every sample entering (threshold 0): 11 per step, so
    # steps 2 and 3 draw part of the buffer at random (16 of 22, 32 of 33), with the trainer's Python random
    # state
    script = base_script(steps=3)
    settings = dict(
        exploration_generations=8,
        batch_buffer=False,
        replay_threshold=0.0,
        replay_frequency=1,
        replay_capacity=3.0,
    )
    uninterrupted = make_trainer(tmp_path / "whole", "uec_rl", script, **settings)
    whole = run(uninterrupted)
    first = make_trainer(
        tmp_path / "resumed", "uec_rl", script, max_steps=2, save_strategy="steps", save_steps=2, **settings
    )
    run(first)
    assert (tmp_path / "resumed" / "run" / "checkpoint-2" / "uec_state.json").is_file()
    second = make_trainer(tmp_path / "resumed", "uec_rl", script, **settings)
    (third,) = run(second, resume_from_checkpoint=True)
    expected = whole[2]
    assert third.step == expected.step == 3
    assert ids(third.replay) == ids(expected.replay)
    assert 0 < len(expected.replay) < len(expected.replay_buffer)  # a random part: the random state matters
    assert ids(third.update) == ids(expected.update)
    assert third.replay_buffer == expected.replay_buffer
    assert [b.ids for b in third.mini_batches] == [b.ids for b in expected.mini_batches]
    assert [b.loss for b in third.mini_batches] == pytest.approx(
        [b.loss for b in expected.mini_batches], abs=1e-6
    )
    resumed_weights = dict(second.model.named_parameters())
    for name, parameter in uninterrupted.model.named_parameters():
        if parameter.requires_grad:
            assert torch.allclose(resumed_weights[name], parameter, atol=1e-6), name


# ------------------------------------------------------------------------------------------------------------
# 6. The authors' replay log-probs and KL clamp, and the entropy probe
# ------------------------------------------------------------------------------------------------------------
def model_with(weights: dict[str, torch.Tensor]):
    model = tiny_model()
    with torch.no_grad():
        parameters = dict(model.named_parameters())
        for name, value in weights.items():
            parameters[name].copy_(value)
    return model


@pytest.mark.parametrize("fresh", [False, True])
def test_replayed_old_logprobs_are_stored_or_taken_after_this_steps_update(tmp_path, fresh):
    # step 1 trains on its 11 kept samples (6 mini-batches of 2) at a large learning rate, then replays the 8
    # that entered: stored old log-probs are those of the initial weights; fresh ones those after the update
    script = Script({1: {"A": "+---", "B": "----"}}, exploration={1: {"B": "+" * 7 + "-" * 9}})
    trainer = make_trainer(
        tmp_path,
        "uec_rl",
        script,
        per_device_train_batch_size=8,
        batch_buffer=False,
        replay_frequency=1,
        learning_rate=0.05,
        replay_fresh_logprobs=fresh,
    )
    (record,) = run(trainer)
    first_update = record.mini_batches[0]
    first_replay = next(batch for batch in record.mini_batches if batch.phase == "replay")
    assert [batch.phase for batch in record.mini_batches] == ["update"] * 6 + ["replay"] * 4
    after_update, initial = model_with(first_replay.weights), model_with(first_update.weights)
    for row, name in enumerate(first_replay.ids):
        expected = logps_by_hand(after_update if fresh else initial, name)
        other = logps_by_hand(initial if fresh else after_update, name)
        old = first_replay.inputs["old_per_token_logps"][row, : len(expected)].double()
        assert torch.allclose(old, expected, atol=1e-5)
        assert (old - other).abs().max() > 1e-3  # the update moved these log-probs: the test can tell


def test_kl_term_is_clamped_per_token_at_kl_clamp(base_run):
    # a perturbed adapter gives a mean k3 of about 0.1 per token; a clamp of 0.05 binds on many tokens, and
    # the loss's KL term is then beta x the token mean of min(k3, 0.05)
    model = tiny_model(adapter_scale=0.5)
    k3 = []
    for name in BASE_KEPT:
        current = logps_by_hand(model, name)
        with model.disable_adapter():
            reference = logps_by_hand(model, name)
        x = reference - current
        k3.append(torch.exp(x) - x - 1)
    k3 = torch.cat(k3)
    assert 0.1 < float((k3 > 0.05).double().mean()) < 0.9  # the clamp binds on some tokens, not all
    (without,) = base_run(adapter_scale=0.5, beta=0.0)[0].mini_batches
    (clamped,) = base_run(adapter_scale=0.5, beta=0.5, kl_clamp=0.05)[0].mini_batches
    (unclamped,) = base_run(adapter_scale=0.5, beta=0.5, kl_clamp=None)[0].mini_batches
    assert clamped.loss - without.loss == pytest.approx(0.5 * float(k3.clamp(max=0.05).mean()), rel=1e-4)
    assert unclamped.loss - without.loss == pytest.approx(0.5 * float(k3.mean()), rel=1e-4)


def probe_prompts(count: int = 3):
    from datasets import Dataset

    return Dataset.from_dict(
        {
            "prompt": list("PQRSTUVW"[:count]),
            "answer": ["1"] * count,
            "id": [f"probe-{i}" for i in range(count)],
        }
    )


def test_every_method_probes_the_same_initial_policy_with_the_same_draws(tmp_path):
    import json

    rows = {}
    for method in ("grpo", "uec_rl"):
        trainer = make_trainer(
            tmp_path / method,
            method,
            base_script(steps=3),
            probe_dataset=probe_prompts(),
            probe_every=2,
            probe_samples=2,
            **BASE_SETTINGS,
        )
        records = run(trainer)
        folder = tmp_path / method / "run"
        metrics = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
        probes = [json.loads(line) for line in (folder / "probe.jsonl").read_text().splitlines()]
        rows[method] = metrics, probes
        assert [row["step"] for row in metrics] == [0, 1, 2, 3]
        assert [row["step"] for row in probes] == [0, 2, 3]  # step 0, every 2 steps and the last step
        assert [r.step for r in records if "probe/entropy" in r.metrics] == [2, 3]
        for row, probe in zip([metrics[0], metrics[2], metrics[3]], probes, strict=True):
            assert probe["prompt_ids"] == ["probe-0", "probe-1", "probe-2"] and probe["samples"] == 2
            assert row["probe/entropy"] == pytest.approx(sum(probe["entropy_sum"]) / sum(probe["tokens"]))
            assert row["probe/sampled_nll"] == pytest.approx(sum(probe["nll_sum"]) / sum(probe["tokens"]))
            assert row["probe/mean_length"] == pytest.approx(sum(probe["tokens"]) / 6)
            assert row["probe/accuracy"] == pytest.approx(sum(probe["correct"]) / 6)
        assert 4.0 < metrics[0]["probe/entropy"] < 4.7  # the random model's entropy at T = 1 (104 tokens)
    (grpo_metrics, grpo_probes), (uec_metrics, uec_probes) = rows["grpo"], rows["uec_rl"]
    step0 = {key: value for key, value in grpo_metrics[0].items() if key != "time/probe"}
    assert step0 == {key: value for key, value in uec_metrics[0].items() if key != "time/probe"}
    assert grpo_probes[0] == uec_probes[0]
    assert grpo_probes[-1] != uec_probes[-1]  # the methods trained differently, and the probe sees it


def test_a_probe_leaves_the_training_random_state_untouched(tmp_path):
    trainer = make_trainer(tmp_path, "uec_rl", base_script(), probe_dataset=probe_prompts(), probe_every=1)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    values = trainer.probe.measure(0)
    assert torch.equal(torch.get_rng_state(), state)
    assert values == trainer.probe.measure(0)  # the probe's own draws are fixed (probe_seed)


def test_the_probe_of_a_step_measures_the_policy_after_the_steps_last_optimizer_step(tmp_path):
    # two mini-batches: the step's first optimizer step is the trainer's, the last HF's. The probe of step 1
    # must see the weights after both: the same values as a probe of the trained model
    trainer = make_trainer(
        tmp_path,
        "grpo",
        base_script(steps=1),
        probe_dataset=probe_prompts(),
        probe_every=1,
        updates_per_batch=2,
    )
    (record,) = run(trainer)
    assert record.metrics["uec/optimizer_steps"] == 2
    logged = {key: record.metrics[key] for key in ("probe/entropy", "probe/sampled_nll")}
    after = trainer.probe.measure(1)
    assert logged == {key: after[key] for key in logged}


def test_adamw_decays_the_adapter_weights_by_the_authors_0_01(tmp_path):
    trainer = make_trainer(tmp_path, "uec_rl", base_script())
    trainer.create_optimizer()
    decayed = {
        id(p) for g in trainer.optimizer.param_groups if g["weight_decay"] == 0.01 for p in g["params"]
    }
    lora = [p for name, p in trainer.model.named_parameters() if "lora_" in name and p.requires_grad]
    assert lora and all(id(p) in decayed for p in lora)


@pytest.mark.parametrize(
    ("unscored", "standard_kept", "explored_kept"),
    [
        ("A1r01-", 0, 0),
        ("C1x03-", 7, 0),
    ],  # a standard rollout: nothing of the step; an exploration one: no exploration
)
def test_a_rollout_no_reward_function_scored_skips_its_samples_and_counts_a_fault(
    tmp_path, monkeypatch, unscored, standard_kept, explored_kept
):
    # TRL sums rewards with nansum, so its advantages stay finite; the trainer must see the NaN reward itself
    import stub_rollouts

    def reward(prompts, completions, completion_ids, **kwargs):
        return [math.nan if c == unscored else (1.0 if c.endswith("+") else 0.0) for c in completions]

    monkeypatch.setattr(stub_rollouts, "scripted_reward", reward)
    with pytest.warns(RuntimeWarning, match="non-finite"):
        (record,) = run(make_trainer(tmp_path, "uec_rl", base_script(), **BASE_SETTINGS))
    assert all(math.isfinite(s.advantage) for s in record.standard + record.explored)
    assert len(record.kept) == standard_kept + explored_kept
    assert sum(s.exploration for s in record.kept) == explored_kept
    assert record.metrics["faults/skipped_step"] == 1.0


def test_activation_checkpointing_gives_the_same_update(tmp_path):
    # the GPU presets turn it on to hold a mini-batch's activations; it must not change what is learned
    adapters = {}
    for checkpointing in (False, True):
        trainer = make_trainer(
            tmp_path / str(checkpointing), "uec_rl", base_script(), activation_checkpointing=checkpointing,
            **BASE_SETTINGS,
        )  # fmt: skip
        run(trainer)
        assert trainer.model.get_base_model().is_activation_checkpointing == checkpointing  # HF turns it on
        adapters[checkpointing] = {
            n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad
        }
    assert adapters[False].keys() == adapters[True].keys()
    for name, value in adapters[False].items():
        torch.testing.assert_close(adapters[True][name], value, rtol=1e-5, atol=1e-6)
    assert any(not torch.equal(v, torch.zeros_like(v)) for n, v in adapters[True].items() if "lora_B" in n)


# ------------------------------------------------------------------------------------------------------------
# Exploration rollouts through TRL in chunks (TRLHooks.rollouts(max_rows=...))
# ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("max_rows", "rows"),
    [
        (None, [64]),  # the default: one TRL call, as the trainer makes it
        (64, [64]),  # everything fits in one chunk: the same single call
        (32, [32, 32]),
        (20, [16] * 4),  # whole groups of G' = 16 only
        (8, [16] * 4),  # a chunk smaller than a group still holds one whole group
    ],
)
def test_exploration_rollouts_in_chunks_give_the_same_samples_with_at_most_max_rows_per_trl_call(
    tmp_path, max_rows, rows
):
    from stub_rollouts import ScriptedTrainer

    class Chunked(ScriptedTrainer):
        """Exploration through ``rollouts(max_rows=...)``; records the rows of every generation call (the
        harness itself allows one standard and one exploration call per step)."""

        def rollouts(self, inputs, exploration=False, max_rows=None):
            return super().rollouts(inputs, exploration, max_rows=self.max_rows if exploration else max_rows)

        def _generate_single_turn(self, prompt_ids, *args, **kwargs):
            record = self._current()
            earlier = record.calls
            record.calls = earlier[:1]  # the harness names a call after the first one "exploration"
            try:
                return super()._generate_single_turn(prompt_ids, *args, **kwargs)
            finally:
                self.rows.append(len(prompt_ids))
                record.calls = earlier + record.calls[len(earlier[:1]) :]

    exploration = {"A": "+" + "-" * 15, "B": "+" * 5 + "-" * 11, "C": "+" * 7 + "-" * 9, "D": "-" * 16}
    script = Script({1: {p: "----" for p in "ABCD"}}, exploration={1: exploration})
    results = {}
    for name, chunk in (("one call", None), ("chunked", max_rows)):
        trainer = make_trainer(tmp_path / name, "uec_rl", script, trainer_class=Chunked)
        trainer.max_rows, trainer.rows = chunk, []
        (record,) = run(trainer)
        results[name] = (trainer.rows, record)
    (one_rows, one), (chunked_rows, chunked) = results["one call"], results["chunked"]
    assert one_rows == [16, 64]  # the standard call, then every hard prompt's G' rollouts at once
    assert chunked_rows == [16, *rows]
    assert all(r <= max(max_rows or 64, 16) for r in chunked_rows[1:])
    # the same samples, in the same order, with TRL's advantages within each group of G'
    assert chunked.explored == one.explored and len(chunked.explored) == 64
    assert [s.advantage for s in chunked.explored[:16]] == pytest.approx(by_hand(exploration["A"]), abs=1e-4)
    assert ids(chunked.kept) == ids(one.kept) and ids(chunked.update) == ids(one.update)
    assert chunked.metrics["uec/exploration_generated"] == 64
    assert chunked.metrics["uec/exploration_solved_prompts"] == 3


def test_the_exploration_max_rows_setting_reaches_the_trainers_rollouts(tmp_path):
    from stub_rollouts import ScriptedTrainer

    class Recorded(ScriptedTrainer):
        def rollouts(self, inputs, exploration=False, max_rows=None):
            self.limits.append(max_rows)
            return super().rollouts(inputs, exploration, max_rows)

    script = Script({1: {p: "----" for p in "ABCD"}}, exploration={1: {p: "+" + "-" * 15 for p in "ABCD"}})
    trainer = make_trainer(tmp_path, "uec_rl", script, trainer_class=Recorded, exploration_max_rows=64)
    trainer.limits = []
    run(trainer)
    assert trainer.limits == [None, 64]  # the standard rollout as TRL makes it; exploration capped at 64 rows
