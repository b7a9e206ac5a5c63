"""Quiet by default: the dependencies' messages that say nothing to a user of this package are turned off.

:func:`install` runs when ``uec_repro`` is imported; it imports no dependency (``uec-repro --help`` stays
fast) and changes only what is listed here, each switch as narrow as it can be (one message of one module):

* bitsandbytes' ``Failed to load CPU gemm_4bit_forward from kernels-community: No module named 'kernels'``
  (logged at import on CPUs with AVX512-BF16 when the optional ``kernels`` package is not installed). The
  kernel it is about serves 4-bit weights repacked for CPU inference, a repacking the package turns off
  (``uec_repro.models._keep_4bit_layers_differentiable``): it is never used. Any other failure to load the
  kernel (``kernels`` installed but broken) is still logged.
* transformers' ``FutureWarning`` that ``is_gradient_checkpointing`` is deprecated: peft 0.21.2
  (``PeftModel.__init__``) and TRL 1.16 (``disable_gradient_checkpointing``) read the old property; the
  package itself uses only the new names.

:func:`quiet_progress` (called where models load, it imports transformers) hides transformers' ``Loading
weights`` bar, one per model load, which finishes in well under a second on the package's policies. The
Hub's download bars and the package's own progress bar stay.

``UEC_REPRO_VERBOSE=1`` in the environment keeps every message (nothing is installed).
"""

from __future__ import annotations

import logging
import os
import warnings

__all__ = ["VERBOSE_ENV", "install", "quiet_progress", "verbose"]

VERBOSE_ENV = "UEC_REPRO_VERBOSE"

# bitsandbytes 0.50.2, backends/cpu/ops.py: logger.warning(KERNELS_MESSAGE + "...", exc) at import
KERNELS_LOGGER = "bitsandbytes.backends.cpu.ops"
KERNELS_MESSAGE = "Failed to load CPU gemm_4bit_forward from kernels-community"

_installed = False
_progress_quiet = False


def verbose() -> bool:
    """True when ``UEC_REPRO_VERBOSE`` asks for every message (any value but empty, 0, false, no, off)."""
    return os.environ.get(VERBOSE_ENV, "").strip().lower() not in ("", "0", "false", "no", "off")


class _MissingKernelsFilter(logging.Filter):
    """Drops bitsandbytes' kernels-community record when its cause is only that ``kernels`` is not
    installed."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith(KERNELS_MESSAGE):
            return True
        cause = record.args[0] if isinstance(record.args, tuple) and record.args else None
        return not (isinstance(cause, ImportError) and cause.name == "kernels")


def install() -> None:
    """Install the filters once (a no-op under ``UEC_REPRO_VERBOSE=1``); they cost no import."""
    global _installed
    if _installed or verbose():
        return
    _installed = True
    # bitsandbytes: the optional `kernels` package is missing (see the module docstring). A filter on the
    # module's own logger (created here, before bitsandbytes imports and reuses it) sees only its records.
    logging.getLogger(KERNELS_LOGGER).addFilter(_MissingKernelsFilter())
    # transformers 5: peft's and TRL's reads of the deprecated `is_gradient_checkpointing` property
    warnings.filterwarnings(
        "ignore",
        message=r"`is_gradient_checkpointing` is deprecated",
        category=FutureWarning,
        module=r"transformers\.modeling_utils",
    )


def quiet_progress() -> None:
    """Hide transformers' ``Loading weights`` bar (a no-op under ``UEC_REPRO_VERBOSE=1``).

    transformers' own switch, ``transformers.utils.logging.disable_progress_bar()``, also turns off the Hub's
    download bars; a tqdm hook on transformers' bars alone keeps those."""
    global _progress_quiet
    if _progress_quiet or verbose():
        return
    _progress_quiet = True
    from transformers.utils import logging as hf_logging

    previous = None

    def no_bar(factory, args, kwargs):
        # transformers 5 (core_model_loading.py): a tqdm bar per model load, "Loading weights"
        if kwargs.get("desc") == "Loading weights":
            factory = hf_logging.EmptyTqdm
        return previous(factory, args, kwargs) if previous is not None else factory(*args, **kwargs)

    previous = hf_logging.set_tqdm_hook(no_bar)
