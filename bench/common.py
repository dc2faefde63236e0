"""Helpers shared by the benchmark scripts (not part of the installed package)."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("GANCLI_DATA", ROOT.parent / "shared" / "data"))


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {torch.get_num_threads()} threads, torch {torch.__version__}"


def conv_flops(model: nn.Module, shape: tuple[int, ...]) -> int:
    """Multiply-adds x 2 of every Conv2d for one forward pass of an input of `shape`."""
    with torch.no_grad():
        return counted_flops(model, lambda: model(torch.zeros(shape)))


def counted_flops(model: nn.Module, fn) -> int:
    """Multiply-adds x 2 of every Conv2d and Linear of `model` while fn() runs (whatever inputs it makes)."""
    total = 0

    def hook(m, inp, out):
        nonlocal total
        if isinstance(m, nn.Linear):
            total += 2 * out.numel() * m.in_features
        else:
            k = m.kernel_size[0] * m.kernel_size[1]
            total += 2 * out.numel() * (m.in_channels // m.groups) * k

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    try:
        fn()
    finally:
        for h in handles:
            h.remove()
    return total


def matmul_gflops(n: int = 2048, repeat: int = 10) -> float:
    """Float32 GFLOP/s of a large matmul: the practical ceiling of this CPU for dense math."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(2):
        a @ b
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def timeit(fn, repeat: int = 5, warmup: int = 1) -> float:
    """Median seconds of fn()."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]


def side_by_side(panels: list, names: list[str], path: Path) -> None:
    """Panels ((H, W, 3) uint8 arrays) in a row on white, each under a caption row with its name (PIL's default
    font; names too wide for their panel are shortened with "..."), written as a PNG."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFont

    from gancli import imageio

    font = ImageFont.load_default()
    gap, caption = 12, 20
    h = max(p.shape[0] for p in panels) + caption
    w = sum(p.shape[1] for p in panels) + gap * (len(panels) - 1)
    sheet = Image.new("RGB", (w, h), "white")
    pen = ImageDraw.Draw(sheet)
    x = 0
    for name, p in zip(names, panels, strict=True):
        while len(name) > 4 and pen.textlength(name, font=font) > p.shape[1] - 4:
            name = name[:-4] + "..."
        pen.text((x + 2, 4), name, fill="black", font=font)
        sheet.paste(Image.fromarray(p), (x, caption))
        x += p.shape[1] + gap
    path.parent.mkdir(parents=True, exist_ok=True)
    imageio.save(imageio.Picture(np.asarray(sheet).copy()), path)


class ConvFeatures(nn.Module):
    """The benchmarks' own feature classifiers: 3x3 conv layers (BatchNorm + ReLU, no pooling but the strides), then
    global average + linear. forward(x in [0, 1]) -> (logits, [spatial means of the layers in `taps`, or of all])."""

    def __init__(self, spec: list[tuple[int, int, int]], classes: int, taps: tuple[int, ...] | None = None) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            nn.Sequential(nn.Conv2d(a, b, 3, stride=s, padding=1, bias=False), nn.BatchNorm2d(b), nn.ReLU())
            for a, b, s in spec)  # (in, out, stride)
        self.fc = nn.Linear(spec[-1][1], classes)
        self.taps = tuple(range(len(spec))) if taps is None else taps

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        h = (x - 0.5) / 0.5
        feats = []
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if i in self.taps:
                feats.append(h.mean(dim=(2, 3)))
        return self.fc(h.mean(dim=(2, 3))), feats


def fit_classifier(net: nn.Module, steps: int, batch: Callable[[int], tuple[torch.Tensor, torch.Tensor]],
                   log: Callable[[str], None], log_every: int = 100) -> None:
    """The benchmarks' classifier recipe: `steps` of AdamW (weight decay 1e-4), one-cycle LR peaking at 2e-3 after
    15 %, cross-entropy on batch(step) -> (inputs, labels); leaves the net in eval mode, frozen."""
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps, pct_start=0.15)
    net.train()
    for step in range(steps):
        x, y = batch(step)
        loss = torch.nn.functional.cross_entropy(net(x)[0], y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if (step + 1) % log_every == 0:
            log(f"classifier step {step + 1}/{steps}: loss {loss.item():.4f}")
    net.eval().requires_grad_(False)


def cached_net(path: Path, build: Callable[[], nn.Module], train: Callable[[], tuple[nn.Module, dict]]
               ) -> tuple[nn.Module, dict]:
    """A benchmark's trained network: loaded from `path` (safetensors, its training info in the metadata) if there,
    else trained once by `train()` and saved there. Returned in eval mode, frozen, channels_last."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    from gancli.atomic import atomic_path

    if path.exists():
        with safe_open(str(path), framework="pt", device="cpu") as f:
            info = json.loads(f.metadata()["info"])
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        net = build()
        net.load_state_dict(tensors, strict=True)
    else:
        net, info = train()
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp),
                      metadata={"info": json.dumps(info)})
    net = net.to(memory_format=torch.channels_last).eval().requires_grad_(False)
    return net, info | {"cache": str(path)}
