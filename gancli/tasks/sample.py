"""Drawing images from a sample model, as `gancli sample` writes them (shared with the benchmarks)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def label_pool(classes: list[str], label: str) -> list[int] | None:
    """The labels `--label` draws from, seed s taking pool[s % len(pool)]: the class named `label`, the class of that
    index, or a family of classes named label-1, label-2, ... (bench/emoji_set.py --groups layout); None: no match."""
    if label in classes:
        return [classes.index(label)]
    if label.isdigit() and int(label) < len(classes):
        return [int(label)]
    family = [i for i, c in enumerate(classes) if c.startswith(f"{label}-") and c[len(label) + 1 :].isdigit()]
    return family or None


def parse_class_counts(text: str, count: int) -> list[int]:
    """'72,63,...' -> training images per class (one per class, 0 or more, not all 0), else ValueError."""
    try:
        numbers = [int(c) for c in text.split(",")]
    except ValueError:
        raise ValueError(f"--class-counts takes whole numbers, comma-separated, got {text}") from None
    if len(numbers) != count or min(numbers) < 0 or sum(numbers) == 0:
        raise ValueError(f"--class-counts needs {count} counts of 0 or more (not all 0), got {text}")
    return numbers


def _unit(seed: int) -> float:
    """A uniform number in [0, 1) fixed by the seed alone (splitmix64: the same on every platform and version)."""
    x = (seed + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return ((x ^ (x >> 31)) >> 11) / float(1 << 53)


def seed_label(seed: int, pool: list[int], counts: list[int] | None = None) -> int:
    """The class seed `seed` draws from `pool`: in turn (pool[seed % len(pool)]), or with `counts` (training images
    per class, indexed by class) in the data's shares: a draw fixed by the seed alone, so a seed keeps its class at
    any -n and batch size, and many seeds follow the shares of the pool's classes."""
    if counts is None:
        return pool[seed % len(pool)]
    weights = [max(0, int(counts[c])) for c in pool]
    total = sum(weights)
    if total == 0:
        return pool[seed % len(pool)]
    u, acc = _unit(seed) * total, 0
    for c, w in zip(pool, weights, strict=True):
        acc += w
        if u < acc:
            return c
    return pool[-1]


@torch.no_grad()
def generate(net: nn.Module, z: torch.Tensor, labels: list[int] | None = None, *, truncation: float = 1.0,
             zoom: int = 1, device: torch.device | None = None) -> np.ndarray:
    """Latents z (B, latent_dim) (and labels for a class-conditional net) -> (B, H, W, C) uint8 images.

    Truncation moves the first layer's output toward its class mean (GANGenerator.forward); the output is clamped to
    [0, 1], centre-cropped back to the data's side when the net was trained on padded images (config.crop), enlarged
    by `zoom` (nearest) and quantised.
    """
    device = device or next(net.parameters()).device
    y = torch.tensor(labels, device=device) if net.conditional else None
    x = net(z.to(device), y, truncation=truncation).clamp(0, 1)
    crop = int(getattr(net.config, "crop", 0))
    if crop:
        o = (x.shape[-1] - crop) // 2
        x = x[..., o : o + crop, o : o + crop]
    if zoom > 1:
        x = torch.nn.functional.interpolate(x, scale_factor=zoom, mode="nearest")
    return (x * 255 + 0.5).byte().permute(0, 2, 3, 1).cpu().numpy()
