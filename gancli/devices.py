"""The only place that asks for CUDA or MPS: picks the device and the precision, once, at the edge."""

from __future__ import annotations

import os

import torch


class DeviceError(ValueError):
    pass


def pick_device(name: str = "auto") -> torch.device:
    """'auto' -> CUDA, then MPS, then CPU; 'cpu', 'cuda', 'cuda:N', 'mps' must exist or it is an error.

    >>> pick_device("cpu")
    device(type='cpu')
    """
    name = name.strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise DeviceError(f"unknown device {name!r} (use auto, cpu, cuda, cuda:N or mps)") from None
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device {name!r} requested but CUDA is not available (use --device cpu or auto)")
        index = dev.index or 0
        if index >= torch.cuda.device_count():
            raise DeviceError(f"device {name!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist")
        return torch.device("cuda", index)
    if dev.type == "mps":
        if not _mps_available():
            raise DeviceError(f"device {name!r} requested but MPS is not available (use --device cpu or auto)")
        return dev
    raise DeviceError(f"unsupported device {name!r} (use auto, cpu, cuda, cuda:N or mps)")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def pick_dtype(device: torch.device, precision: str = "auto") -> torch.dtype:
    """'auto' -> float32 on CPU and MPS; bfloat16 on CUDA where supported, else float16. Or fp32/fp16/bf16."""
    precision = precision.lower()
    explicit = {"fp32": torch.float32, "float32": torch.float32, "fp16": torch.float16, "float16": torch.float16,
                "bf16": torch.bfloat16, "bfloat16": torch.bfloat16}
    if precision in explicit:
        return explicit[precision]
    if precision != "auto":
        raise DeviceError(f"unknown precision {precision!r} (use auto, fp32, fp16 or bf16)")
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def set_threads(threads: int = 0) -> int:
    """Use `threads` intra-op threads (0: every core this process may run on). Returns the number set."""
    if threads <= 0:
        threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    torch.set_num_threads(threads)
    return threads
