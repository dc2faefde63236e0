"""Degradations that turn a high-resolution batch into the low-resolution input a model learns to invert."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bicubic_down(hr: torch.Tensor, scale: int, quantize: bool = True) -> torch.Tensor:
    """(B, C, H, W) in [0, 1] -> (B, C, H/scale, W/scale): antialiased bicubic (a = -0.5, as Pillow and MATLAB).

    quantize=True rounds to 8-bit levels, as a low-resolution image saved to disk would be.
    """
    lr = F.interpolate(hr, scale_factor=1 / scale, mode="bicubic", antialias=True, align_corners=False)
    lr = lr.clamp(0, 1)
    if quantize:
        lr = torch.round(lr * 255) / 255
    return lr
