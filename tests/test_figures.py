"""uec_repro.figures: every figure writes png, pdf and the csv of what it drew, with or without data."""

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from test_results import FULL, PROMPTS, SAMPLES, STEPS, correct_counts, probe_columns, write_experiment

from uec_repro.config import METHODS
from uec_repro.figures import (
    MAX_LINES,
    METHOD_COLORS,
    METHOD_ORDER,
    fig_baseline_differences,
    fig_entropy_dynamics,
    fig_geometry3k_bars,
    fig_grpo_failure_modes,
    fig_passk_curves,
    fig_reward_and_validation,
    fig_sensitivity,
    fig_step_cost,
    make_all,
)
from uec_repro.results import load_runs, metric_bounds, paired_differences, paper_reference

FIGURES = (
    "grpo_failure_modes",
    "entropy_dynamics",
    "reward_and_validation",
    "passk_curves",
    "geometry3k_bars",
    "math_table",
    "ablation_bars",
    "baseline_differences",
    "sensitivity",
    "step_cost",
    "sample_categories",
)
EXPECTED_FILES = {f"{name}.{ext}" for name in FIGURES for ext in ("png", "pdf", "csv")} | {
    "summary.csv",
    "summary.md",
    "paired.csv",
    "paired.md",
    "claims.csv",
    "claims.md",
}
UPDATE_BATCH = "update batch (samples each method trains on)"
OURS = "ours (toy, arith)"


def pass1_percent(variant: str, seeds) -> float:
    """Mean over seeds of the pass@1 (%) the synthetic correct counts give."""
    return sum(100 * sum(correct_counts(variant, s)) / (SAMPLES * PROMPTS) for s in seeds) / len(seeds)


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    runs = load_runs(write_experiment(tmp_path_factory.mktemp("runs") / "default"))
    out = tmp_path_factory.mktemp("figures")
    return runs, out, make_all(runs, out)


@pytest.fixture(scope="module")
def base_and_grpo(tmp_path_factory):
    root = write_experiment(
        tmp_path_factory.mktemp("runs") / "small", {v: FULL[v] for v in ("base", "grpo")}, incomplete=False
    )
    out = tmp_path_factory.mktemp("figures")
    return load_runs(root), out, make_all(load_runs(root), out)


def read(out, name: str) -> pd.DataFrame:
    return pd.read_csv(out / f"{name}.csv")


def test_make_all_writes_the_fixed_set_of_files(full, base_and_grpo):
    for _, out, paths in (full, base_and_grpo):
        assert {p.name for p in paths} == EXPECTED_FILES
        assert {p.name for p in out.iterdir()} == EXPECTED_FILES
        for name in FIGURES:
            assert (out / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            assert (out / f"{name}.pdf").read_bytes()[:5] == b"%PDF-"


def test_paper_and_our_values_are_labelled_and_never_share_a_label(full):
    _, out, _ = full
    for name in FIGURES:
        data = read(out, name)
        assert set(data["source"]) <= {"paper", "ours"}, name
        assert data.loc[data["source"] == "ours", "label"].eq(OURS).all(), name
        assert data.loc[data["source"] == "paper", "label"].str.startswith("paper (").all(), name


def test_geometry3k_bars_show_the_papers_numbers_beside_ours(full):
    _, out, _ = full
    data = read(out, "geometry3k_bars")
    bars = data[data["metric"] == "pass@1 (%)"]
    paper = bars[bars["source"] == "paper"].set_index("method")
    assert paper["value"].to_dict() == {"base": 38.44, "grpo": 50.75, "uec_rl": 55.41}
    assert set(paper["label"]) == {"paper (Qwen2.5-VL-7B)"}
    ours = bars[bars["source"] == "ours"].set_index("method")
    for method in ("base", "grpo", "uec_rl"):
        assert ours.loc[method, "value"] == pytest.approx(pass1_percent(method, FULL[method][2]))
    gains = data[data["metric"] == "relative improvement (%)"].set_index("source")["value"]
    assert gains["paper"] == pytest.approx(100 * ((55.41 - 38.44) / (50.75 - 38.44) - 1))  # 37.9
    base, grpo, uec = (ours.loc[m, "value"] for m in ("base", "grpo", "uec_rl"))
    assert gains["ours"] == pytest.approx(100 * ((uec - base) / (grpo - base) - 1))
    stated = data[data["metric"] == "relative improvement, stated (%)"]
    assert stated["value"].tolist() == [37.9]


def test_geometry3k_bars_read_the_paper_values_from_the_table(full, tmp_path):
    runs, _, _ = full
    paper = paper_reference()
    paper.loc[
        (paper["method"] == "GRPO")
        & (paper["dataset"] == "Geometry3K test")
        & (paper["metric"] == "accuracy (Pass@1)"),
        "value",
    ] = 45.0
    png = fig_geometry3k_bars(runs, tmp_path, paper=paper)
    assert png == tmp_path / "geometry3k_bars.png"
    assert png._repr_png_() == png.read_bytes()  # a notebook shows the returned path as the image
    data = read(tmp_path, "geometry3k_bars").query("source == 'paper'").set_index(["metric", "method"])
    assert data.loc[("pass@1 (%)", "grpo"), "value"] == 45.0
    expected = 100 * ((55.41 - 38.44) / (45 - 38.44) - 1)
    assert data.loc[("relative improvement (%)", "uec_rl"), "value"] == pytest.approx(expected)


def test_math_table_holds_the_papers_rows_and_ours_apart(full):
    _, out, _ = full
    data = read(out, "math_table")
    paper = data[data["source"] == "paper"]
    assert set(paper["method"]) == {"grpo", "dapo", "uec_rl"}
    assert {"AIME24", "MATH", "GSM8K", "MMLU"} <= set(paper["dataset"])
    assert paper.set_index(["method", "dataset"]).loc[("uec_rl", "AIME24"), "value"] == 28.5
    assert set(paper["label"]) == {"paper (Qwen2.5-Math-7B)"}
    ours = data[data["source"] == "ours"].set_index(["method", "dataset", "metric"])
    assert set(ours.index.get_level_values("method")) == {"base", "grpo", "uec_rl"}  # sweeps left out
    assert set(ours.index.get_level_values("dataset")) == {"tier 1", "tier 2", "all"}
    assert ours.loc[("grpo", "all", "pass@1 (%)"), "value"] == pytest.approx(pass1_percent("grpo", (0, 1, 2)))
    assert ours.loc[("grpo", "all", f"pass@{SAMPLES} (%)"), "seeds"] == 3
    assert ours.loc[("grpo", "all", "pass@1 (%)"), "low"] < ours.loc[("grpo", "all", "pass@1 (%)"), "value"]
    # a tier: the mean over seeds of the share of correct samples on that tier's prompts (every other prompt)
    tier_two = [sum(correct_counts("uec_rl", s)[1::2]) / (SAMPLES * PROMPTS / 2) for s in (0, 1, 2)]
    assert ours.loc[("uec_rl", "tier 2", "pass@1 (%)"), "value"] == pytest.approx(100 * sum(tier_two) / 3)
    # the paired difference to GRPO on a tier, as paired_differences computes it on those prompts alone
    tier_one = [
        sum(correct_counts(m, s)[::2]) / (SAMPLES * PROMPTS / 2)
        for m in ("uec_rl", "grpo")
        for s in (0, 1, 2)
    ]
    expected = 100 * (sum(tier_one[:3]) - sum(tier_one[3:])) / 3
    assert ours.loc[("uec_rl", "tier 1", "pass@1 - grpo (pp)"), "value"] == pytest.approx(expected)
    assert ("grpo", "tier 1", "pass@1 - grpo (pp)") not in ours.index


def test_ablation_bars_mark_the_approximate_paper_values(full):
    _, out, _ = full
    data = read(out, "ablation_bars")
    bars = data[data["metric"] == "pass@1 (%)"]
    paper = bars[bars["source"] == "paper"].set_index("method")
    assert paper.loc["uec_rl_no_explore", ["value", "approximate"]].tolist() == [50.0, True]
    assert paper.loc[["uec_rl_no_replay", "uec_rl_no_retention"], "value"].tolist() == [52.0, 51.0]
    assert paper.loc["uec_rl", ["value", "approximate"]].tolist() == [55.41, False]
    assert paper.loc["grpo", "value"] == 50.75
    ours = bars[bars["source"] == "ours"].set_index("method")
    assert list(ours.index) == ["uec_rl", "grpo"]
    assert ours.loc["uec_rl", "value"] == pytest.approx(pass1_percent("uec_rl", (0, 1, 2)))
    # the paper's differences to its GRPO, labelled as the paper's, beside our paired ones
    differences = data[data["metric"] == "pass@1 - grpo (pp)"].set_index(["source", "method"])
    assert differences.loc[("paper", "uec_rl"), "value"] == pytest.approx(55.41 - 50.75)
    assert differences.loc[("paper", "uec_rl_no_explore"), ["value", "approximate"]].tolist() == [
        pytest.approx(50 - 50.75),
        True,
    ]
    assert differences.loc[("paper", "uec_rl"), "label"] == "paper (Qwen2.5-VL-7B)"
    assert differences.loc[("ours", "uec_rl"), "interval"].startswith("paired bootstrap")


def test_line_figures_draw_the_mean_over_seeds(full):
    _, out, _ = full
    data = read(out, "entropy_dynamics")
    entropy = data.set_index(["metric", "method", "step"])
    probe = [probe_columns("grpo", seed, 3)["probe/entropy"] for seed in (0, 1, 2)]
    assert entropy.loc[("probe/entropy", "grpo", 3), "mean"] == pytest.approx(sum(probe) / 3)
    assert sorted(set(data.loc[data["metric"] == "probe/entropy", "step"])) == [0, 3, 6]  # step 0: initial
    assert entropy.loc[("entropy/update_batch", "grpo", 1), "mean"] == pytest.approx(1.0 - 0.12 + 0.01)
    assert entropy.loc[("entropy/update_batch_sampled_nll", "grpo", 6), "mean"] == pytest.approx(
        1.1 * (1.0 - 0.72 + 0.01)
    )
    assert ("entropy/update_batch", "uec_rl", 2) not in entropy.index  # no update, no entropy logged
    assert entropy.loc[("completions/mean_length", "uec_rl", 4), "mean"] == 24.0
    assert set(entropy.index.get_level_values("method")) == {"grpo", "uec_rl"}
    # the update-batch measures are labelled as such, the probe's are not
    panels = data.drop_duplicates("metric").set_index("metric")["panel"]
    assert all(
        UPDATE_BATCH in panels[m] for m in ("entropy/update_batch", "entropy/update_batch_sampled_nll")
    )
    assert all(UPDATE_BATCH not in panels[m] for m in ("probe/entropy", "probe/sampled_nll"))
    failure = read(out, "grpo_failure_modes")
    assert set(failure["metric"]) == {"probe/entropy", "probe/sampled_nll", "validation/accuracy"}
    assert set(failure["method"]) == {"grpo", "uec_rl"}
    validation = read(out, "reward_and_validation").query("metric == 'validation/accuracy'")
    assert set(validation["step"]) == {3, 6}
    grpo_at_6 = validation.set_index(["method", "step"]).loc[("grpo", 6), "mean"]
    assert grpo_at_6 == pytest.approx(0.4 + 0.12 + 0.01)


def test_passk_curves_include_the_base_policy(full):
    _, out, _ = full
    data = read(out, "passk_curves")
    assert list(dict.fromkeys(data["method"])) == ["base", "grpo", "uec_rl"]
    assert sorted(set(data["k"])) == list(range(1, SAMPLES + 1))
    base = data.set_index(["method", "k"]).loc[("base", 1), "mean"]
    assert 100 * base == pytest.approx(pass1_percent("base", (0, 1)))


def test_sensitivity_draws_each_sweep_with_the_default_run(full, tmp_path):
    runs, out, _ = full
    data = read(out, "sensitivity")
    temperature = data[data["sweep_param"] == "exploration_temperature"].set_index("value")
    assert list(temperature.index) == [1.0, 1.2, 1.5]  # 1.2: UECConfig's default, drawn from the unswept run
    assert temperature["default"].tolist() == [False, True, False]
    assert 100 * temperature.loc[1.5, "mean"] == pytest.approx(
        pass1_percent("uec_rl--exploration_temperature=1.5", (0, 1))
    )
    assert 100 * temperature.loc[1.2, "mean"] == pytest.approx(pass1_percent("uec_rl", (0, 1, 2)))
    frequency = data[data["sweep_param"] == "replay_frequency"]
    assert frequency["value"].tolist() == [2.0, 5.0]
    # a run's own parameter wins over the config default
    parameters = [
        {**p, "exploration_temperature": 1.3} if v == "uec_rl" else p
        for v, p in zip(runs.runs["variant"], runs.runs["parameters"], strict=True)
    ]
    fig_sensitivity(replace(runs, runs=runs.runs.assign(parameters=parameters)), tmp_path)
    moved = read(tmp_path, "sensitivity").query("sweep_param == 'exploration_temperature' and default")
    assert moved["value"].tolist() == [1.3]


def test_step_cost_is_relative_to_grpo_and_adds_up(full):
    _, out, _ = full
    data = read(out, "step_cost")
    relative = data[data["metric"] == "time per step / GRPO"].set_index(["source", "method"])["value"]
    grpo_seconds = 1.0 + 0.1 + 0.5 + 0.05  # generation, scoring, update (mean over seeds), other
    uec_seconds = grpo_seconds + 0.2 / 6  # plus replay at one step in six
    assert relative[("ours", "uec_rl")] == pytest.approx(uec_seconds / grpo_seconds)
    assert relative[("paper", "uec_rl")] == 0.79
    paper_label = data.loc[data["source"] == "paper", "label"].tolist()
    assert paper_label == ["paper (likely Qwen2.5-VL-7B)"]
    parts = data[data["metric"].str.startswith("seconds per step: ")]
    uec = parts[parts["method"] == "uec_rl"].set_index("metric")["value"]
    assert uec["seconds per step: exploration"] == pytest.approx(0.3)
    assert uec["seconds per step: standard rollouts"] == pytest.approx(1.1 - 0.3)
    assert uec["seconds per step: other"] == pytest.approx(0.05)
    assert uec.sum() == pytest.approx(uec_seconds)


def test_sample_categories_cover_uec_rl_only(full):
    _, out, _ = full
    data = read(out, "sample_categories")
    assert set(data["method"]) == {"uec_rl"}
    counts = data.set_index(["metric", "step"])["mean"]
    assert counts[("uec/hard_prompts", 1)] == 3.5
    assert counts[("uec/replay_samples", 5)] == 64.0
    assert counts[("uec/exploration_kept_positive", 2)] == pytest.approx(4.0)  # 3 + mean seed


def test_figures_cope_with_only_base_and_grpo(base_and_grpo):
    _, out, _ = base_and_grpo
    assert read(out, "sample_categories").empty
    assert read(out, "sensitivity").empty
    geometry = read(out, "geometry3k_bars")
    assert set(geometry.query("source == 'ours' and metric == 'pass@1 (%)'")["method"]) == {"base", "grpo"}
    ours_gain = geometry.query("source == 'ours' and metric == 'relative improvement (%)'")["value"]
    assert ours_gain.isna().all()
    assert set(read(out, "grpo_failure_modes")["method"]) == {"grpo"}
    assert set(read(out, "ablation_bars").query("source == 'ours'")["method"]) == {"grpo"}
    differences = read(out, "baseline_differences")
    assert set(differences["method"]) == {"base"}
    assert set(differences["metric"]) == {
        "pass@1 - grpo (pp)",
        f"pass@{SAMPLES} - grpo (pp)",
    }  # base: no probe


def test_figures_cope_with_missing_columns(full, tmp_path):
    runs, _, _ = full
    without = replace(runs, steps=runs.steps.drop(columns=["entropy/update_batch_sampled_nll", "time/step"]))
    fig_entropy_dynamics(without, tmp_path)
    fig_step_cost(without, tmp_path)
    assert set(read(tmp_path, "entropy_dynamics")["metric"]) == {
        "probe/entropy",
        "probe/sampled_nll",
        "entropy/update_batch",
        "completions/mean_length",
    }
    cost = read(tmp_path, "step_cost")
    assert cost["source"].tolist() == ["paper"]  # no step times: only the paper's reference line


def test_figures_cope_with_runs_made_before_the_probe(full, tmp_path):
    runs, _, _ = full
    probe = [c for c in runs.steps if c.startswith("probe/")]
    old = replace(runs, steps=runs.steps.drop(columns=probe).query("step > 0"), probes=runs.probes.iloc[:0])
    fig_grpo_failure_modes(old, tmp_path)
    fig_entropy_dynamics(old, tmp_path)
    fig_baseline_differences(old, tmp_path)
    assert set(read(tmp_path, "grpo_failure_modes")["metric"]) == {"validation/accuracy"}
    assert "probe/entropy" not in set(read(tmp_path, "entropy_dynamics")["metric"])
    assert not read(tmp_path, "baseline_differences")["metric"].str.startswith("probe_entropy").any()


def test_no_band_leaves_the_range_of_its_quantity(full, tmp_path):
    runs, out, _ = full
    # seeds whose Student-t interval would cross 0 (probe entropy) and 1 (validation accuracy) at step 6
    steps = runs.steps.copy()
    at = (steps["method"] == "grpo") & (steps["step"] == STEPS)
    steps.loc[at, "probe/entropy"] = 0.3 * (steps.loc[at, "seed"] == 2)
    steps.loc[at, "validation/accuracy"] = 1.0 - 0.3 * (steps.loc[at, "seed"] == 2)
    spread = replace(runs, steps=steps)
    for figure in (fig_grpo_failure_modes, fig_entropy_dynamics, fig_reward_and_validation):
        figure(spread, tmp_path)
    point = read(tmp_path, "grpo_failure_modes").set_index(["metric", "method", "step"])
    assert point.loc[("probe/entropy", "grpo", STEPS), ["mean", "low"]].tolist() == pytest.approx([0.1, 0.0])
    assert point.loc[("validation/accuracy", "grpo", STEPS), ["mean", "high"]].tolist() == pytest.approx(
        [0.9, 1]
    )
    assert (
        point.loc[("probe/entropy", "grpo", STEPS), "interval"]
        == "95% Student-t over seeds, clipped to [0, inf]"
    )
    for folder, name in [
        (tmp_path, "grpo_failure_modes"),
        (tmp_path, "entropy_dynamics"),
        (tmp_path, "reward_and_validation"),
        (out, "sample_categories"),
    ]:
        data = read(folder, name)
        for metric, rows in data.groupby("metric"):
            lowest, highest = metric_bounds(metric)
            assert (rows["low"] >= lowest).all() and (rows["high"] <= highest).all(), (name, metric)
    passk = read(out, "passk_curves")
    assert (passk["low"] >= 0).all() and (passk["high"] <= 1).all()
    for name in ("geometry3k_bars", "ablation_bars", "math_table"):
        data = read(out, name)
        percent = data[(data["source"] == "ours") & data["metric"].str.fullmatch(r"pass@\d+ \(%\)")]
        assert not percent.empty, name
        assert (percent["low"] >= 0).all() and (percent["high"] <= 100).all(), name


def test_difference_figures_draw_the_paired_intervals(full):
    runs, out, _ = full
    paired = paired_differences(runs, "grpo", ["pass@1", "pass@k", "probe_entropy"]).set_index(
        ["variant", "metric"]
    )
    data = read(out, "baseline_differences")
    assert set(data["source"]) == {"ours"} and set(data["method"]) == {"base", "uec_rl"}
    units = {"pass@1": ("pp", 100), f"pass@{SAMPLES}": ("pp", 100), "probe_entropy": ("nats", 1)}
    drawn = 0
    for (variant, metric), row in paired.dropna(subset=["diff"]).iterrows():
        unit, scale = units[metric]
        for name in (
            ("baseline_differences", "ablation_bars") if variant == "uec_rl" else ("baseline_differences",)
        ):
            figure = read(out, name).query("source == 'ours'").set_index(["method", "metric"])
            drawn_row = figure.loc[(variant, f"{metric} - grpo ({unit})")]
            assert drawn_row[["value", "low", "high"]].tolist() == pytest.approx(
                [scale * row["diff"], scale * row["low"], scale * row["high"]]
            )
            assert drawn_row[["seeds", "prompts", "interval"]].tolist() == [
                row["seeds"],
                row["prompts"],
                row["interval"],
            ]
            drawn += 1
    assert drawn == 2 + 3 * 2  # base: pass@1 and pass@k (no probe); uec_rl: three metrics in both figures
    pd.testing.assert_frame_equal(
        read(out, "paired"), paired.reset_index()[read(out, "paired").columns], check_dtype=False
    )


def test_a_figure_with_eleven_methods_has_at_most_six_lines_per_panel(tmp_path):
    variants = {method: (method, {}, (0, 1)) for method in METHOD_ORDER}  # base and 11 trained methods
    runs = load_runs(write_experiment(tmp_path / "all", variants, incomplete=False))
    for figure in (fig_entropy_dynamics, fig_passk_curves, fig_baseline_differences):
        figure(runs, tmp_path)
    for name in ("entropy_dynamics", "passk_curves", "baseline_differences"):
        data = read(tmp_path, name)
        lines = data.groupby("panel")["method"].nunique()
        assert lines.max() <= MAX_LINES, (name, lines.to_dict())
        assert set(data["method"]) >= set(METHOD_ORDER) - {"base", "grpo"}, name
    entropy = read(tmp_path, "entropy_dynamics")
    panels = entropy[entropy["metric"] == "probe/entropy"].groupby("panel")["method"].agg(set)
    assert len(panels) == 2 and all("grpo" in methods for methods in panels)  # GRPO in every panel
    assert sorted(p.split(" -- ")[1] for p in panels.index) == ["UEC-RL and ablations", "baselines"]


def test_method_order_and_colours_follow_the_registry():
    assert ("base", *METHODS) == METHOD_ORDER
    assert set(METHOD_COLORS) == set(METHOD_ORDER)
    assert len(set(METHOD_COLORS.values())) == len(METHOD_COLORS)
    uec = {METHOD_COLORS[m] for m in METHOD_ORDER if m.startswith("uec_rl")}
    assert not uec & {METHOD_COLORS[m] for m in METHOD_ORDER if not m.startswith("uec_rl")}


@pytest.mark.parametrize(("reference", "folder"), [("default", "figures"), ("paper", "figures/paper")])
def test_shipped_figures_are_what_the_shipped_reference_results_make(tmp_path, reference, folder):
    root = Path(__file__).parents[1]
    runs = load_runs(root / "data" / "reference" / reference)
    written = make_all(runs, tmp_path)
    for path in written:
        if path.suffix in (".csv", ".md"):
            assert path.read_text() == (root / folder / path.name).read_text(), (
                f"{folder}/{path.name} is stale"
            )


def test_an_experiment_with_a_geometry_block_draws_the_geometry_view_from_it(tmp_path):
    arith = {v: FULL[v] for v in ("base", "grpo", "uec_rl")}
    geometry = {f"{m}--task=geometry": (m, {"task": "geometry"}, (0, 1)) for m in ("base", "grpo", "uec_rl")}
    runs = load_runs(write_experiment(tmp_path / "paper", arith | geometry, incomplete=False))
    out = tmp_path / "figures"
    assert {p.name for p in make_all(runs, out)} == EXPECTED_FILES
    bars = read(out, "geometry3k_bars")
    ours = bars[(bars["source"] == "ours") & (bars["metric"] == "pass@1 (%)")].set_index("method")
    assert set(ours["label"]) == {"ours (toy-geometry, geometry)"}
    assert ours.loc["uec_rl", "value"] == pytest.approx(pass1_percent("uec_rl--task=geometry", (0, 1)))
    assert set(read(out, "ablation_bars").query("source == 'ours'")["label"]) == {
        "ours (toy-geometry, geometry)"
    }
    table = read(out, "math_table").query(
        "source == 'ours'"
    )  # the main block: arith, without the geometry runs
    assert set(table["label"]) == {OURS} and set(table["method"]) == set(arith)
    assert set(read(out, "summary")["variant"]) == set(arith)
    claims = read(out, "claims")
    assert set(claims.loc[claims["id"] == "c", "task"]) == {"arith", "geometry"}
