"""Data-parallel training over processes started by torchrun: gloo on the CPU, NCCL on CUDA.

    torchrun --nproc_per_node=2 -m gancli train --data imgs --run runs/ddp ...

Every rank holds the whole model, draws its own patches (seeded by rank) and averages gradients through
DistributedDataParallel, so the effective batch is `batch x world size`. Rank 0 alone validates, logs and writes
checkpoints; every rank's RNG and data-sampler states go into the checkpoint, so a resumed run with the same number
of processes continues exactly. Flags that end or roll back a step (a signal, the time budget, a non-finite loss) are
agreed on by all ranks every step, so no rank is left waiting in a collective.
"""

from __future__ import annotations

import base64
import gc
import json
import os
import random
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from gancli.devices import DeviceError


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def from_environment(device: str) -> tuple[DistContext, str]:
    """Join the process group torchrun describes in the environment; returns (context, device for this rank).

    Outside torchrun (WORLD_SIZE unset or 1) nothing happens. Under torchrun each rank takes cuda:LOCAL_RANK when
    CUDA is used (NCCL), otherwise the CPU (gloo).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext(), device
    local = int(os.environ.get("LOCAL_RANK", "0"))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    use_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if use_cuda:
        count = torch.cuda.device_count()
        if local >= count:  # set_device would fail with "invalid device ordinal", one rank at a time
            raise DeviceError(
                f"torchrun started {local_world} processes on this node but {count} CUDA GPU(s) are visible: "
                f"use --nproc_per_node={count} (one GPU per process) or --device cpu (gloo)")
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    else:
        device = "cpu"
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return DistContext(dist.get_rank(), world, local, local_world), device


def shutdown(ctx: DistContext) -> None:
    """Leave the process group. Drop every DistributedDataParallel wrapper first: a gloo group destroyed under a
    live reducer can abort the process at exit ("terminate called without an active exception")."""
    if ctx.enabled and dist.is_initialized():
        gc.collect()
        dist.destroy_process_group()


def any_rank(ctx: DistContext, flags: list[bool], device: torch.device) -> list[bool]:
    """Element-wise OR of boolean flags over all ranks (identity with one process)."""
    if not ctx.enabled:
        return flags
    t = torch.tensor([int(f) for f in flags], dtype=torch.int32, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return [bool(v) for v in t.tolist()]


def gather_strings(ctx: DistContext, text: str, device: torch.device) -> list[str]:
    """Every rank's string, in rank order, on every rank (via byte tensors: nothing is pickled)."""
    if not ctx.enabled:
        return [text]
    data = torch.tensor(list(text.encode()), dtype=torch.uint8, device=device)
    size = torch.tensor([data.numel()], dtype=torch.int64, device=device)
    sizes = [torch.zeros_like(size) for _ in range(ctx.world)]
    dist.all_gather(sizes, size)
    longest = int(max(s.item() for s in sizes))
    padded = torch.zeros(longest, dtype=torch.uint8, device=device)
    padded[: data.numel()] = data
    parts = [torch.zeros_like(padded) for _ in range(ctx.world)]
    dist.all_gather(parts, padded)
    return [bytes(p[: int(s.item())].cpu().tolist()).decode() for p, s in zip(parts, sizes, strict=True)]


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()


def max_parameter_difference(ctx: DistContext, model: torch.nn.Module) -> float:
    """Largest |w - w_rank0| over all parameters and ranks: 0.0 when the ranks are in sync."""
    if not ctx.enabled:
        return 0.0
    flat = torch.cat([p.detach().float().flatten() for p in model.parameters()])
    reference = flat.clone()
    dist.broadcast(reference, src=0)
    diff = (flat - reference).abs().max()
    dist.all_reduce(diff, op=dist.ReduceOp.MAX)
    return float(diff)


def rng_state_json() -> str:
    """This process's torch, numpy and python RNG states as JSON."""
    np_state = np.random.get_state(legacy=False)
    return json.dumps({
        "torch": base64.b64encode(torch.get_rng_state().numpy().tobytes()).decode(),
        "numpy": {**np_state, "state": {k: (v.tolist() if isinstance(v, np.ndarray) else v)
                                         for k, v in np_state["state"].items()}},
        "python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
    })


def set_rng_state_json(text: str) -> None:
    s: dict[str, Any] = json.loads(text)
    torch.set_rng_state(torch.frombuffer(bytearray(base64.b64decode(s["torch"])), dtype=torch.uint8).clone())
    np_state = s["numpy"]
    np_state["state"] = {k: (np.array(v, dtype=np.uint32) if isinstance(v, list) else v)
                         for k, v in np_state["state"].items()}
    np.random.set_state(np_state)
    version, internal, gauss = s["python"]
    random.setstate((version, tuple(internal), gauss))
