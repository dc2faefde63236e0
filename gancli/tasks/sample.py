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
