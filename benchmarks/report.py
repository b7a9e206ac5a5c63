"""The benchmark report: ``REPORT.md`` and ``plots/*.png`` in the results folder, from the result files the
benchmarks wrote there (a benchmark without a result file is listed as not run).

    python -m benchmarks.report [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .common import RESULTS_DIR

BENCHMARKS = ("overhead", "uec_cost", "generation", "update", "qlora_memory", "scaling", "pipeline")


def load_results(folder: Path) -> dict[str, dict[str, Any]]:
    return {
        name: json.loads((folder / f"{name}.json").read_text())
        for name in BENCHMARKS
        if (folder / f"{name}.json").is_file()
    }


def spread(summary: dict[str, float], digits: int = 3) -> str:
    """``median [IQR q1-q3; min-max, n=...]``."""
    f = f"{{:.{digits}f}}"
    return (
        f"{f.format(summary['median'])} [IQR {f.format(summary['q1'])}-{f.format(summary['q3'])}; "
        f"range {f.format(summary['min'])}-{f.format(summary['max'])}; n={summary['n']}]"
    )


def summary_rows(results: dict[str, dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    """(measure, value with spread, goal, mode) for every ratio the benchmarks report."""
    rows = []
    if "overhead" in results:
        r = results["overhead"]
        rows.append(
            (
                "1. harness overhead: time/step, uec grpo / stock TRL",
                spread(r["time_ratio"]),
                "<= 1.05",
                r["mode"],
            )
        )
        rows.append(
            (
                "1. harness overhead: peak RSS, uec grpo / stock TRL",
                spread(r["peak_rss_ratio"]),
                "-",
                r["mode"],
            )
        )
    if "uec_cost" in results:
        r = results["uec_cost"]
        for label, ratio in r["ratios"].items():
            blocks = ratio["blocks"]
            value = (
                f"{ratio['ratio_of_totals']:.3f} (blocks of {ratio['block_steps']} steps: "
                + (spread(blocks) if blocks else "too few steps for a block")
                + ")"
            )
            rows.append(
                (
                    f"2. step cost: {label}",
                    value,
                    "<= 0.79 (paper)" if label == "uec_rl / grpo" else "-",
                    r["mode"],
                )
            )
    if "generation" in results:
        r = results["generation"]
        rows.append(
            ("3. generation: tokens/s, trainer path / bare generate", spread(r["ratio"]), ">= 0.9", r["mode"])
        )
    if "update" in results:
        r = results["update"]
        rows.append(
            (
                "4. update: achieved FLOP/s / peak matmul FLOP/s",
                spread(r["efficiency_vs_peak"]),
                "report",
                r["mode"],
            )
        )
        rows.append(
            (
                "4. update: achieved / matmul FLOP/s at the model's shapes",
                spread(r["efficiency_vs_model_shape_matmul"]),
                "report",
                r["mode"],
            )
        )
    if "qlora_memory" in results:
        r = results["qlora_memory"]
        for policy, p in r["policies"].items():
            rows.append(
                (
                    f"5. QLoRA/LoRA base weight bytes, {policy}",
                    spread(p["weight_ratio"]),
                    "<= 0.35",
                    r["mode"],
                )
            )
            rows.append(
                (
                    f"5. QLoRA/LoRA whole-process peak RSS, {policy}",
                    spread(p["peak_rss_ratio"]),
                    "report",
                    r["mode"],
                )
            )
            rows.append(
                (
                    f"5. QLoRA/LoRA peak RSS during the training steps, {policy}",
                    spread(p["train_peak_rss_ratio"]),
                    "report",
                    r["mode"],
                )
            )
    if "scaling" in results:
        r = results["scaling"]
        for factor, slope in r["slopes"].items():
            value = "n/a" if slope["slope_vs_parameter"] is None else f"{slope['slope_vs_parameter']:.2f}"
            if slope.get("slope_vs_generated_tokens") is not None:
                value += f" (vs generated tokens {slope['slope_vs_generated_tokens']:.2f})"
            rows.append((f"6. scaling: log-log slope of time vs {factor}", value, "<= 1", r["mode"]))
    if "pipeline" in results:
        r = results["pipeline"]
        default = r["default"]
        if isinstance(default, dict):
            rows.append(
                (
                    "7. pipeline: make reproduce (default), minutes",
                    f"{default['wall_seconds'] / 60:.1f} (from the manifests in {default['source']})",
                    "<= 30",
                    r["mode"],
                )
            )
        if isinstance(r["smoke"], dict):
            rows.append(
                (
                    "7. pipeline: smoke preset, minutes",
                    f"{r['smoke']['wall_seconds'] / 60:.1f} (exit code {r['smoke']['exit_code']})",
                    "-",
                    r["mode"],
                )
            )
    return rows


# --------------------------------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------------------------------
def _errorbar(summary: dict[str, float]) -> tuple[float, list[list[float]]]:
    return summary["median"], [[summary["median"] - summary["q1"]], [summary["q3"] - summary["median"]]]


def plot_all(results: dict[str, dict[str, Any]], folder: Path) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    made = {}

    def save(fig, name: str) -> None:
        fig.tight_layout()
        fig.savefig(folder / f"{name}.png", dpi=110)
        plt.close(fig)
        made[name] = f"plots/{name}.png"

    if "overhead" in results:
        r = results["overhead"]
        fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
        for ax, key, label in (
            (axes[0], "seconds_per_step", "s / step"),
            (axes[1], "peak_rss_mb", "peak RSS (MiB)"),
        ):
            names = list(r[key])
            for i, name in enumerate(names):
                value, err = _errorbar(r[key][name])
                ax.bar(i, value, yerr=err, capsize=4, color=("tab:blue", "tab:gray")[i % 2])
            ax.set_xticks(range(len(names)), names)
            ax.set_ylabel(label)
        fig.suptitle("1. harness overhead (median, IQR)")
        save(fig, "overhead")
    if "uec_cost" in results:
        r = results["uec_cost"]
        split = r["phase_seconds_per_step"]
        fig, ax = plt.subplots(figsize=(8, 3.8))
        bottoms = [0.0] * len(split)
        for phase in next(iter(split.values())):
            values = [split[name][phase] for name in split]
            ax.bar(range(len(split)), values, bottom=bottoms, label=phase)
            bottoms = [b + v for b, v in zip(bottoms, values, strict=True)]
        ax.set_xticks(range(len(split)), list(split), fontsize=8)
        ax.set_ylabel("mean s / step (trainer's time/* columns)")
        ax.set_title("2. step cost by phase")
        ax.legend(fontsize=7)
        save(fig, "uec_cost")
    if "generation" in results:
        r = results["generation"]
        fig, ax = plt.subplots(figsize=(5, 3.2))
        names = list(r["tokens_per_second"])
        for i, name in enumerate(names):
            value, err = _errorbar(r["tokens_per_second"][name])
            ax.bar(i, value, yerr=err, capsize=4)
        ax.set_xticks(range(len(names)), names)
        ax.set_ylabel("generated tokens / s")
        ax.set_title("3. generation (median, IQR)")
        save(fig, "generation")
    if "update" in results:
        r = results["update"]
        fig, ax = plt.subplots(figsize=(6, 3.2))
        keys = (
            "achieved_flops_per_second",
            "model_shape_matmul_flops_per_second",
            "peak_matmul_flops_per_second",
        )
        for i, key in enumerate(keys):
            value, err = _errorbar({k: v / 1e9 if k != "n" else v for k, v in r[key].items()})
            ax.bar(i, value, yerr=err, capsize=4)
        ax.set_xticks(range(len(keys)), ["update", "matmul at\nmodel shape", "matmul\n1024^3"])
        ax.set_ylabel("GFLOP/s")
        ax.set_title("4. update phase throughput (median, IQR)")
        save(fig, "update")
    if "qlora_memory" in results:
        r = results["qlora_memory"]
        fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
        policies = list(r["policies"])
        for ax, key, label in (
            (axes[0], "weight_mb", "base weights (MiB)"),
            (axes[1], "peak_rss_mb", "peak RSS (MiB)"),
        ):
            for j, quantization in enumerate(("none", "nf4")):
                values = [r["policies"][p][key][quantization] for p in policies]
                values = [v["median"] if isinstance(v, dict) else v for v in values]
                ax.bar(
                    [i + 0.4 * j for i in range(len(policies))],
                    values,
                    width=0.4,
                    label="LoRA" if quantization == "none" else "QLoRA (NF4)",
                )
            ax.set_xticks([i + 0.2 for i in range(len(policies))], policies)
            ax.set_ylabel(label)
            ax.set_yscale("log")
        axes[0].legend(fontsize=8)
        fig.suptitle("5. QLoRA memory")
        save(fig, "qlora_memory")
    if "scaling" in results:
        r = results["scaling"]
        fig, ax = plt.subplots(figsize=(6, 4))
        for factor, slope in r["slopes"].items():
            names = slope["configurations"]
            points = [r["points"][n] for n in names]
            if factor == "exploration_generations":
                ys = [p["exploration_seconds_per_hard_prompt"] for p in points]
            else:
                ys = [p["seconds_per_step"]["median"] for p in points]
            if not ys:
                continue
            xs = [p["multiplier"] for p in points]
            ax.plot(
                xs,
                [y / ys[0] for y in ys],
                marker="o",
                label=f"{factor} (slope {slope['slope_vs_parameter']:.2f})"
                if slope["slope_vs_parameter"] is not None
                else factor,
            )
        multipliers = r["settings"]["multipliers"]
        ax.plot(multipliers, multipliers, "k--", linewidth=1, label="linear")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log", base=2)
        ax.set_xlabel("parameter multiplier")
        ax.set_ylabel("time relative to x1")
        ax.set_title("6. scaling (log-log)")
        ax.legend(fontsize=7)
        save(fig, "scaling")
    return made


# --------------------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------------------
def _environment_line(results: dict[str, dict[str, Any]]) -> str:
    record = next(iter(results.values()))["environment"]
    hw, versions = record["hardware"], record["versions"]
    return (
        f"{hw.get('cpu_model')} x {hw.get('cpu_count')} CPUs, {hw.get('ram_gb')} GB RAM, {record['cuda']}; "
        f"torch threads {record['torch_threads']}; torch {versions.get('torch')}, transformers "
        f"{versions.get('transformers')}, trl {versions.get('trl')}, peft {versions.get('peft')}; git "
        f"{str(record.get('git_commit'))[:10]}{' (dirty)' if record.get('git_dirty') else ''}"
    )


def sections(results: dict[str, dict[str, Any]]) -> list[str]:
    out = []
    if "uec_cost" in results:
        r = results["uec_cost"]
        sel = r["selection"]["uec_rl"]
        split = r["phase_seconds_per_step"]
        main = r["ratios"]["uec_rl / grpo"]["ratio_of_totals"]
        before = r["ratios"]["uec_rl / grpo, eager reference (before)"]["ratio_of_totals"]
        out += [
            "## 2. UEC-RL step cost",
            "",
            f"`uec_rl` / `grpo` = **{main:.2f}x** (was {before:.2f}x with TRL's eager reference pass, same "
            f"run). Hard-prompt fraction {sel['hard_prompt_fraction']:.2f}: "
            f"{sel['exploration_completions_per_step']:.0f} exploration completions per step beside the "
            f"{sel['standard_completions_per_step']} standard ones; {sel['steps_with_update']:.0%} of steps "
            f"update (the batch buffer waits for B0 otherwise).",
            "",
            "| variant | " + " | ".join(next(iter(split.values()))) + " |",
            "|---|" + "---|" * len(next(iter(split.values()))),
        ]
        for name, phases in split.items():
            out.append(f"| {name} | " + " | ".join(f"{v:.3f}" for v in phases.values()) + " |")
        out += [
            "",
            "Mean seconds per step from the trainer's `time/*` columns. Why it is not 0.79x here: on this "
            "CPU, generation is paid per decoding step and grows little with batch size, so the exploration "
            "rollouts of the hard prompts cost nearly a second generation call on every step with a hard "
            "prompt, while the paper's vLLM setup makes generation cheap next to the update; the update "
            "savings (no update on steps the batch buffer skips, fewer samples trained on after selection) "
            "are real but smaller than the extra generation.",
            "",
        ]
    if "update" in results:
        r = results["update"]
        pad = r["padding_share"]
        out += [
            "## 4. Update phase",
            "",
            f"{r['flops_per_update'] / 1e9:.1f} GFLOP per update of {r['settings']['samples']} completions "
            f"({r['flops_reference_and_old_passes'] / 1e9:.1f} of them in the no-grad reference and old "
            f"log-prob passes; {r['flops_per_update_kl_off'] / 1e9:.1f} with the KL term off, when no "
            f"reference pass runs). Padding share of the tokens: no-grad passes sorted by length "
            f"{pad['no_grad_passes_sorted_by_length']:.0%} (in arrival order "
            f"{pad['no_grad_passes_in_arrival_order']:.0%}, TRL's one-batch reference pass "
            f"{pad['trl_eager_reference_pass_whole_batch']:.0%}); loss mini-batches "
            f"{pad['loss_mini_batches_random_partition']:.0%} (their random partition is part of the method, "
            "so it is not reordered).",
            "",
        ]
    if "qlora_memory" in results:
        r = results["qlora_memory"]
        out += [
            "## 5. QLoRA memory",
            "",
            "| policy | base weights LoRA / QLoRA (MiB) | adapter (MiB) | RSS added "
            "by loading | whole-process peak RSS | peak RSS while training | s/step | CUDA |",
            "|---|---|---|---|---|---|---|---|",
        ]

        def pair(p: dict[str, Any], key: str, digits: int = 0) -> str:
            return " / ".join(f"{p[key][q]['median']:.{digits}f}" for q in ("none", "nf4"))

        for policy, p in r["policies"].items():
            out.append(
                f"| {policy} | {p['weight_mb']['none']:.1f} / {p['weight_mb']['nf4']:.1f} | "
                f"{p['adapter_mb']:.1f} | {pair(p, 'loaded_rss_mb')} | {pair(p, 'peak_rss_mb')} | "
                f"{pair(p, 'train_peak_rss_mb')} | {pair(p, 'seconds_per_step', 2)} | {p['cuda_mb']['nf4']} |"
            )
        out += ["", "Pairs are LoRA / QLoRA, MiB (RSS) and seconds."]
        out += [
            "",
            "Whole-process peaks include the Python runtime, torch, transformers and TRL (several hundred "
            "MiB that do not shrink with the weights), so their ratio is much closer to 1 than the weights' "
            "ratio; bitsandbytes keeps embeddings and norms unquantised.",
            "",
        ]
    if "scaling" in results:
        r = results["scaling"]
        out += [
            "## 6. Scaling",
            "",
            "| configuration | s/step (median) | generated tokens/step |",
            "|---|---|---|",
        ]
        for name, p in r["points"].items():
            out.append(
                f"| {name} | {p['seconds_per_step']['median']:.3f} | {p['generated_tokens_per_step']:.0f} |"
            )
        out += [""]
    return out


def write_report(folder: Path) -> Path:
    results = load_results(folder)
    plots = plot_all(results, folder / "plots") if results else {}
    lines = [
        "# Benchmarks",
        "",
        "Written by `python -m benchmarks.report` from the result files beside it (`make bench` runs every "
        "benchmark in full mode, `make bench-quick` in quick mode). Ratios come from variants measured "
        "interleaved in one process (or, for memory, in alternating fresh processes); medians with IQR and "
        "range over repetitions. Timings on a shared, noisy machine: compare ratios, not absolute times.",
        "",
    ]
    if results:
        lines += [f"Environment: {_environment_line(results)}.", ""]
    missing = [name for name in BENCHMARKS if name not in results]
    if missing:
        lines += [f"Not run yet: {', '.join(missing)}.", ""]
    lines += ["## Summary", "", "| measure | value [spread] | goal | mode |", "|---|---|---|---|"]
    lines += [f"| {m} | {v} | {g} | {mode} |" for m, v, g, mode in summary_rows(results)]
    lines += ["", *sections(results)]
    if plots:
        lines += ["## Plots", ""] + [f"![{name}]({path})" for name, path in plots.items()] + [""]
    path = folder / "REPORT.md"
    path.write_text("\n".join(lines))
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(RESULTS_DIR), help="the results folder")
    args = parser.parse_args(argv)
    print(write_report(Path(args.out)))


if __name__ == "__main__":
    main()
