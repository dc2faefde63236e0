"""Opt-in torch.compile for inference, with a loud fallback to eager mode.

Inductor fuses the pointwise layers into the convolutions and, on the CPU, generates C++ for the rest. Measured here
(README, Speed): 23-33 % less time per 512x512 image for most models, but a first call that compiles for seconds
(17-33 s with a cold cache; a few seconds once inductor's on-disk cache is warm), and in folders of 1024x768 photos
no per-image gain for upscale (its tiles come in two shapes: a second shape triggers one more compile, with dynamic
shapes, after which no shape recompiles). So it is off unless asked for: it pays in long inpaint jobs and where the
cache is warm.

Compilation needs a working C++ compiler on the CPU (Triton on CUDA). Where it fails, the model runs eagerly from
then on and the failure is said once on stderr: a missing compiler costs speed, never the job.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable

import torch
from torch import nn

from gancli.batch import one_line


class Compiled(nn.Module):
    """Wraps `model`: forward runs torch.compile(model), or `model` itself once compiling has failed.

    Other attributes (receptive_radius, config, ...) are the wrapped model's. CUDA out-of-memory errors
    are not a compile failure: they propagate, so the caller's tile back-off still works.
    """

    def __init__(self, model: nn.Module, on_fallback: Callable[[str], None]) -> None:
        super().__init__()
        # torch logs "No CUDA runtime is found, using CUDA_HOME=..." when inductor first builds C++ on a CPU-only
        # machine: noise on a command's stderr, not a problem.
        logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
        self.eager = model
        # Not a registered submodule: it shares the parameters of `eager`, and state_dict() must not list them twice.
        object.__setattr__(self, "_compiled", torch.compile(model))
        self._on_fallback = on_fallback
        self.failed: str | None = None  # the one-line reason, once compiling has failed

    def __getattr__(self, name: str):
        # What the callers read of a model (receptive_radius, config, conditional, sample_latents, ...) is the
        # wrapped model's.
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.eager, name)

    def forward(self, *args, **kwargs):
        if self.failed is None:
            try:
                with warnings.catch_warnings():
                    # inpaint-ffc's FFTs: inductor leaves complex ops to eager kernels, and says so. Measured: the
                    # model still runs about 30 % faster compiled (bench/speed.py --compile).
                    warnings.filterwarnings("ignore", message="Torchinductor does not support code generation for "
                                            "complex operators")
                    return self._compiled(*args, **kwargs)
            except torch.cuda.OutOfMemoryError:
                raise
            except Exception as e:  # noqa: BLE001 - any compiler or backend error: the eager model still works
                self.failed = one_line(e)
                self._on_fallback(f"torch.compile failed ({self.failed}); running without it")
        return self.eager(*args, **kwargs)

