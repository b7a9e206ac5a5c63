"""uec_repro.claims on small made-up run folders (the helpers of test_results write them)."""

import json
import math
import statistics

import pandas as pd
import pytest
from test_results import FULL, PROMPTS, SAMPLES, probe, write_experiment

from uec_repro.claims import CLAIM_COLUMNS, CLAIMS, claim_verdict, claims_table, write_claims
from uec_repro.results import load_runs, paired_differences


@pytest.mark.parametrize(
    ("low", "high", "direction", "expected"),
    [
        (0.1, 0.3, 1, "holds"),
        (0.1, 0.3, -1, "does not hold"),
        (-0.3, -0.1, -1, "holds"),
        (-0.3, -0.1, 1, "does not hold"),
        (-0.1, 0.2, 1, "inconclusive"),
        (-0.1, 0.2, -1, "inconclusive"),
        (0.0, 0.2, 1, "inconclusive"),  # an interval touching 0 contains it
        (math.nan, 0.2, 1, "no data"),
        (-0.2, math.nan, -1, "no data"),
    ],
)
def test_claim_verdict(low, high, direction, expected):
    assert claim_verdict(low, high, direction) == expected


def rows_of(runs) -> pd.DataFrame:
    return claims_table(runs, resamples=500).set_index(["id", "task"])


def write_probes(root, slope: float) -> None:
    """GRPO's probe rows: prompt 0 (1 token) has entropy 2 + slope t + 0.1 seed, prompt 1 (3 tokens) 2 + slope
    t / 2 per token; step 3 lies in neither window and is wild."""
    for seed in (0, 1, 2):
        rows = [
            probe(t, [2.0 + slope * t + 0.1 * seed, 6.0 + 1.5 * slope * t], [1, 3])
            if t != 3
            else probe(3, [50.0, 50.0], [1, 3])
            for t in (0, 1, 3, 5, 6)
        ]
        (root / "grpo" / f"seed{seed}" / "probe.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in rows)
        )


@pytest.mark.parametrize(("slope", "expected"), [(-0.2, "holds"), (0.2, "does not hold")])
def test_entropy_fall_is_late_minus_early_window_of_token_weighted_entropy(tmp_path, slope, expected):
    root = write_experiment(tmp_path / "e", {"grpo": FULL["grpo"]}, incomplete=False)
    write_probes(root, slope)
    row = rows_of(load_runs(root)).loc[("a", "arith")]
    # 6 steps: early = steps <= 1.2 (0, 1), late = steps >= 4.8 (5, 6); per step, (8 + 2.5 slope t + 0.1 seed)
    # / 4 tokens, so late - early = 2.5 slope / 4 * (5.5 - 0.5) for every seed
    assert row["effect"] == pytest.approx(2.5 * slope / 4 * 5)
    # prompt resamples give slope * 5 (prompt 0 alone) to slope / 2 * 5 (prompt 1 alone)
    assert sorted([abs(row["low"]), abs(row["high"])]) == pytest.approx(
        sorted([5 * abs(slope) / 2, 5 * abs(slope)])
    )
    assert (row["verdict"], row["seeds"], row["steps"]) == (expected, 3, 6)


def test_validation_instability_is_the_difference_of_sds_of_changes(tmp_path):
    series = {
        ("grpo", 0): [0.1, 0.5, 0.2, 0.6],
        ("grpo", 1): [0.3, 0.3, 0.5, 0.5],
        ("uec_rl", 0): [0.1, 0.2, 0.3, 0.4],
        ("uec_rl", 1): [0.2, 0.3, 0.3, 0.4],
        ("uec_rl", 2): [0.9, 0.1, 0.9, 0.1],  # grpo has no seed 2: not paired
    }
    variants = {"grpo": ("grpo", {}, (0, 1)), "uec_rl": ("uec_rl", {}, (0, 1, 2))}
    root = write_experiment(tmp_path / "e", variants, incomplete=False)
    for (variant, seed), values in series.items():
        rows = [{"step": 2 * i + 1, "reward": 0.0} for i in range(4)]  # steps without validation between
        rows += [{"step": 2 * i + 2, "validation/accuracy": v} for i, v in enumerate(values)]
        (root / variant / f"seed{seed}" / "metrics.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in rows)
        )
    row = rows_of(load_runs(root)).loc[("h", "arith")]
    differences = [
        statistics.stdev([0.4, -0.3, 0.4]) - statistics.stdev([0.1, 0.1, 0.1]),
        statistics.stdev([0.0, 0.2, 0.0]) - statistics.stdev([0.1, 0.0, 0.1]),
    ]
    assert row["effect"] == pytest.approx(sum(differences) / 2)
    # two seeds: the extreme resamples (both seeds the same) each have probability 1/4
    assert [row["low"], row["high"]] == pytest.approx(sorted(differences))
    assert (row["seeds"], row["verdict"]) == (2, "holds")


def geometry_experiment(root, correct: dict) -> None:
    """The geometry block's base, grpo and uec_rl runs with the given correct counts per (method, seed)."""
    methods = {m for m, _ in correct}
    variants = {f"{m}--task=geometry": (m, {"task": "geometry"}, (0, 1)) for m in methods}
    write_experiment(root, variants, incomplete=False)
    for (method, seed), count in correct.items():
        path = root / f"{method}--task=geometry" / f"seed{seed}" / "eval.json"
        path.write_text(json.dumps(json.loads(path.read_text()) | {"correct": [count] * PROMPTS}))


def test_gain_ratio_is_computed_on_the_geometry_block(tmp_path):
    # pass@1 = count / 4: B = 1/4; G = (2/4 + 3/4) / 2 = 5/8; U = (3/4 + 4/4) / 2 = 7/8
    correct = {
        ("base", 0): 1,
        ("base", 1): 1,
        ("grpo", 0): 2,
        ("grpo", 1): 3,
        ("uec_rl", 0): 3,
        ("uec_rl", 1): 4,
    }
    geometry_experiment(tmp_path / "e", correct)
    runs = load_runs(tmp_path / "e")
    rows = rows_of(runs)
    row = rows.loc[("i", "geometry")]
    assert row["effect"] == pytest.approx(
        (7 / 8 - 1 / 4) / (5 / 8 - 1 / 4) - 1
    )  # 2/3, not the mean ratio 3/4
    # seed resamples {0, 0}: 1.0, {1, 1}: 0.5, {0, 1}: 2/3 (every prompt alike)
    assert [row["low"], row["high"], row["seeds"], row["verdict"]] == pytest.approx([0.5, 1.0, 2, "holds"])
    assert ("i", "arith") not in rows.index  # claim (i) is for the geometry block only
    assert rows.loc[("c", "geometry"), "effect"] == pytest.approx(7 / 8 - 5 / 8)
    assert ("c", "arith") not in rows.index  # no arith runs, no arith rows
    assert rows.loc[("e", "geometry"), "verdict"] == "no data"  # no ablations: still shown, without data
    assert math.isnan(rows.loc[("e", "geometry"), "effect"]) and rows.loc[("e", "geometry"), "seeds"] == 0


def test_gain_ratio_without_a_grpo_gain_is_infinite(tmp_path):
    correct = {(m, s): c for m, c in (("base", 1), ("grpo", 1), ("uec_rl", 2)) for s in (0, 1)}
    geometry_experiment(tmp_path / "e", correct)
    row = rows_of(load_runs(tmp_path / "e")).loc[("i", "geometry")]
    assert [row["effect"], row["low"], row["high"], row["verdict"]] == [math.inf, math.inf, math.inf, "holds"]


def test_write_claims_writes_every_claim(tmp_path):
    runs = load_runs(write_experiment(tmp_path / "e", incomplete=False))
    csv_path, md_path = write_claims(runs, tmp_path / "out")
    table = pd.read_csv(csv_path)
    assert list(table.columns) == CLAIM_COLUMNS
    assert table["id"].tolist() == list("abcdefghi") == [c.id for c in CLAIMS]
    assert table.set_index("id").loc["e", "verdict"] == "no data"  # FULL has no ablations
    (c,) = table[table["id"] == "c"].itertuples()
    paired = paired_differences(runs, variants=["uec_rl"], metrics=("pass@1",)).iloc[0]
    assert [c.effect, c.low, c.high] == pytest.approx([paired["diff"], paired["low"], paired["high"]])
    assert "Geometry3K test: UEC-RL (=EFRame) 0.5541, GRPO 0.5075" in c.paper
    assert table.set_index("id").loc["d", "statistic"].startswith(f"pass@{SAMPLES} ")
    markdown = md_path.read_text()
    assert "toy runs" in markdown and "never edited by hand" in markdown
    assert f"| {c.effect:.3f} [{c.low:.3f}, {c.high:.3f}] | arith | 6 | 3 | {c.verdict} |" in markdown


def test_results_block_tallies_verdicts_and_lays_out_one_column_per_task(tmp_path):
    from uec_repro.claims import README_MARKERS, results_block, update_readme

    table = pd.DataFrame(
        {
            "claim": ["(a) x", "(a) x", "(i) y"],
            "task": ["arith", "geometry", "geometry"],
            "effect": [-0.5, 0.25, 0.1],
            "low": [-0.75, -0.25, 0.05],
            "high": [-0.25, 0.5, 0.2],
            "steps": [150, 150, 150],
            "seeds": [5, 3, 3],
            "verdict": ["holds", "inconclusive", "holds"],
        }
    )
    block = results_block(table)
    assert block.startswith("3 tests of the paper's claims at 150 training steps: 2 hold, 1 inconclusive.")
    assert "| (a) x | -0.500 [-0.750, -0.250] holds | 0.250 [-0.250, 0.500] inconclusive |" in block
    assert "| (i) y | – | 0.100 [0.050, 0.200] holds |" in block
    readme, claims = tmp_path / "README.md", tmp_path / "claims.csv"
    table.to_csv(claims, index=False)
    readme.write_text(f"top\n{README_MARKERS[0]}\nold\n{README_MARKERS[1]}\nbottom\n")
    assert update_readme(readme, claims) and not update_readme(readme, claims)
    assert readme.read_text() == f"top\n{README_MARKERS[0]}\n{block.strip()}\n{README_MARKERS[1]}\nbottom\n"
