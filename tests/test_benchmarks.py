"""The benchmarks' helpers (statistics, FLOPs, memory, interleaving, configs, CLI checks), one real benchmark
run on the toy policy, and the trainer's deferred reference pass (same results as TRL's eager one)."""

import json
import threading

import pytest
import torch

from benchmarks.common import BenchmarkError, Interleaver, parse_args, run_settings, stock_config
from benchmarks.generation import completion_tokens
from benchmarks.profiling import (
    block_ratios,
    count_flops,
    loglog_slope,
    paired_ratios,
    summarize,
    weight_bytes,
)
from benchmarks.update import padded_tokens


def test_summarize_gives_median_quartiles_and_range():
    s = summarize([5, 1, 4, 2, 3])
    assert (s["n"], s["median"], s["q1"], s["q3"], s["iqr"], s["min"], s["max"]) == (5, 3, 2, 4, 2, 1, 5)
    single = summarize([0.7])
    assert single["median"] == single["q1"] == single["q3"] == 0.7
    with pytest.raises(ValueError):
        summarize([])


def test_ratios_pair_repetitions_and_blocks_sum_before_dividing():
    assert paired_ratios([2.0, 3.0], [1.0, 2.0]) == [2.0, 1.5]
    with pytest.raises(ValueError, match="equally long"):
        paired_ratios([1.0], [1.0, 2.0])
    # block totals: (1 + 3) / (2 + 2) and (4 + 4) / (1 + 3); the trailing partial block is dropped
    assert block_ratios([1, 3, 4, 4, 9], [2, 2, 1, 3, 1], 2) == [1.0, 2.0]


def test_loglog_slope_recovers_the_exponent():
    xs = [1, 2, 4, 8]
    assert loglog_slope(xs, [3 * x for x in xs]) == pytest.approx(1.0)
    assert loglog_slope(xs, [x**2 for x in xs]) == pytest.approx(2.0)
    with pytest.raises(ValueError):
        loglog_slope([2, 2], [1, 3])


def test_count_flops_counts_a_matrix_product():
    a, b = torch.randn(3, 5), torch.randn(5, 7)
    result, flops = count_flops(lambda: a @ b)
    assert flops == 2 * 3 * 5 * 7
    assert torch.equal(result, a @ b)


def test_weight_bytes_splits_frozen_and_trainable():
    model = torch.nn.Sequential(torch.nn.Linear(4, 3, bias=False), torch.nn.Linear(3, 2))
    model[0].weight.requires_grad_(False)
    assert weight_bytes(model) == {"base": 4 * 3 * 4, "trainable": (3 * 2 + 2) * 4}


def test_padding_and_token_counts():
    assert padded_tokens([[(2, 3), (4, 1)], [(1, 1)]]) == (2 + 3 + 4 + 1 + 2, 2 * (4 + 3) + 2)
    assert completion_tokens([[5, 7, 2, 0, 0], [5, 5, 5]], eos_ids=[2]) == 3 + 3
    assert completion_tokens(torch.tensor([[2, 9], [9, 9]]), eos_ids=[2]) == 1 + 2


def test_interleaver_alternates_turns_and_lets_a_finished_worker_go():
    interleaver, log = Interleaver(["a", "b"]), []

    def worker(name: str, turns: int) -> None:
        for _ in range(turns):
            interleaver.begin(name)
            log.append(name)
        interleaver.finish(name)

    threads = [threading.Thread(target=worker, args=("b", 2)), threading.Thread(target=worker, args=("a", 4))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert log == ["a", "b", "a", "b", "a", "a"]
    assert [len(interleaver.durations[name]) for name in ("a", "b")] == [4, 2]


@pytest.mark.parametrize(
    "argv, parameter",
    [(["--mode", "slow"], "--mode"), (["--threads", "0"], "--threads"), (["--threads", "two"], "--threads")],
)
def test_bad_command_lines_name_the_parameter(argv, parameter):
    with pytest.raises(BenchmarkError, match=parameter):
        parse_args("test", argv)


def test_run_refuses_an_unknown_benchmark_before_running_any(tmp_path):
    from benchmarks.run import main

    with pytest.raises(BenchmarkError, match="--only"):
        main(["--only", "overhead,warp_drive", "--out", str(tmp_path)])
    assert not list(tmp_path.iterdir())


def test_stock_config_matches_the_uec_config_with_trls_step_structure(tmp_path):
    uec = run_settings("grpo", 3, tmp_path / "uec").trainer_config()
    stock = stock_config(uec, tmp_path / "stock")
    assert stock.per_device_train_batch_size * stock.steps_per_generation == uec.per_device_train_batch_size
    assert stock.steps_per_generation == uec.updates_per_batch
    assert stock.max_steps == 3 * uec.updates_per_batch
    for name in (
        "beta",
        "epsilon",
        "epsilon_high",
        "loss_type",
        "learning_rate",
        "temperature",
        "top_p",
        "max_completion_length",
        "num_generations",
        "disable_dropout",
        "seed",
    ):
        assert getattr(stock, name) == getattr(uec, name), name


@pytest.mark.slow
def test_generation_benchmark_writes_its_result_and_the_report(toy_policy_path, tmp_path, monkeypatch):
    from benchmarks import generation
    from benchmarks.report import write_report

    monkeypatch.setitem(generation.PLAN, "quick", {"repetitions": 1})
    record = generation.measure("quick", torch.get_num_threads(), tmp_path)
    saved = json.loads((tmp_path / "generation.json").read_text())
    assert saved["ratio"] == record["ratio"] and saved["ratio"]["n"] == 1
    assert saved["environment"]["cuda"] == (
        "no CUDA" if not torch.cuda.is_available() else saved["environment"]["cuda"]
    )
    assert saved["same_tokens_sampled"] == 1  # same seed, same policy: the two paths sample the same tokens
    rows = (tmp_path / "generation.csv").read_text().splitlines()
    assert len(rows) == 1 + 2
    report = write_report(tmp_path).read_text()
    assert "3. generation: tokens/s, trainer path / bare generate" in report
    assert (tmp_path / "plots" / "generation.png").is_file()


@pytest.mark.slow
def test_deferred_reference_pass_gives_the_same_training(toy_policy_path, tmp_path):
    """The KL term's reference log-probs computed for the samples trained on (deferred) or for every rollout
    at scoring time (TRL's eager pass): same metrics, and only samples trained on carry them when deferred."""
    from transformers import set_seed

    from uec_repro.config import method_config
    from uec_repro.layout import METRICS_FILE
    from uec_repro.models import LoraSettings, cast_trainable_to_fp32, load_policy
    from uec_repro.rewards import accuracy_reward
    from uec_repro.tasks import load_task
    from uec_repro.trainer import UECTrainer

    class EagerReference(UECTrainer):
        defer_reference_logps = False

    def train(trainer_class, name):
        set_seed(0)
        model, tokenizer = load_policy(str(toy_policy_path), lora=LoraSettings(r=4, alpha=8, dropout=0.0))
        config = method_config(
            "uec_rl",
            output_dir=str(tmp_path / name),
            use_cpu=True,
            max_steps=3,
            per_device_train_batch_size=16,
            num_generations=4,
            max_completion_length=32,
            learning_rate=1e-3,
            seed=0,
            report_to="none",
            save_strategy="no",
            disable_tqdm=True,
            gradient_checkpointing=False,
            validation_every=0,
            replay_frequency=2,
        )
        trainer = trainer_class(
            model=model,
            reward_funcs=[accuracy_reward],
            args=config,
            train_dataset=load_task("arith", "train", n=64, seed=0, tokenizer=tokenizer),
            processing_class=tokenizer,
        )
        cast_trainable_to_fp32(trainer.model)
        trainer.train()
        rows = [json.loads(line) for line in (tmp_path / name / METRICS_FILE).read_text().splitlines()]
        return trainer, rows

    deferred, deferred_rows = train(UECTrainer, "deferred")
    eager, eager_rows = train(EagerReference, "eager")
    assert deferred.beta != 0 and deferred._defers_reference() and not eager._defers_reference()
    assert any(row["uec/exploration_generated"] for row in deferred_rows)
    assert any(row["uec/updated"] for row in deferred_rows)
    for ours, theirs in zip(deferred_rows, eager_rows, strict=True):
        for key, value in theirs.items():
            if key.startswith(("time/", "memory/")):
                continue
            assert ours[key] == pytest.approx(value, rel=1e-4, abs=1e-6), key
    trained = deferred.replay_buffer.contents()
    waiting = deferred.batch_buffer.contents()
    assert all(s.ref_logps is not None and len(s.ref_logps) == len(s.completion_ids) for s in trained)
    assert all(s.ref_logps is None for s in waiting if s.old_logps is None)


def test_benchmark_records_hold_no_machine_path(tmp_path, monkeypatch):
    from benchmarks.common import ROOT, write_results

    out = ROOT / "benchmarks" / "results"
    monkeypatch.setattr(
        "sys.argv", [str(ROOT / "benchmarks" / "x.py"), "--out", str(out), "--log", "/elsewhere/a.log"]
    )
    path = write_results(tmp_path, "x", "quick", {"folder": str(out / "sub")}, [{"seconds": 1.0}])
    saved = json.loads(path.read_text())
    assert saved["command"] == "x.py --out benchmarks/results --log .../a.log"
    assert saved["folder"] == "benchmarks/results/sub"


@pytest.mark.slow
def test_the_gpu_smoke_checks_pass_in_their_reduced_form(tmp_path):
    """`make gpu-smoke`'s checks on the toy policy in fp32: the GPU run's code paths minus NF4 and bf16."""
    from benchmarks import gpu_smoke

    record = gpu_smoke.run(reduced=True, out=tmp_path)
    failed = {name: check for name, check in record["checks"].items() if not check["ok"]}
    assert not failed, failed
    saved = json.loads((tmp_path / "gpu_smoke_reduced.json").read_text())
    assert saved["checks"]["exploration"]["calls"] == saved["checks"]["exploration"]["expected"]
    assert saved["checks"]["resume"]["final_step"] == 4
