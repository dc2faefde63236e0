"""Image quality metrics with the super-resolution papers' protocol: Y channel (BT.601), border shaved.

All functions take (B, 3, H, W) or (3, H, W) float tensors in [0, 1] (RGB) or (.., 1, H, W) luma already in [16, 235].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def rgb_to_y(x: torch.Tensor) -> torch.Tensor:
    """RGB in [0, 1] -> Y in [16, 235] as the papers compute it (MATLAB rgb2ycbcr), shape (..., 1, H, W)."""
    if x.shape[-3] == 1:
        return x * 219.0 + 16.0  # gray: R = G = B, and the coefficients below sum to 219
    w = torch.tensor([65.481, 128.553, 24.966], dtype=x.dtype, device=x.device).view(3, 1, 1)
    return (x * w).sum(dim=-3, keepdim=True) + 16.0


def _shave(x: torch.Tensor, border: int) -> torch.Tensor:
    return x[..., border : x.shape[-2] - border, border : x.shape[-1] - border] if border else x


def psnr_y(sr: torch.Tensor, hr: torch.Tensor, shave: int = 0) -> torch.Tensor:
    """PSNR in dB on Y (peak 255), per image; inputs RGB in [0, 1]. Quantize both to 8 bits first for paper numbers."""
    a, b = _shave(rgb_to_y(sr.double()), shave), _shave(rgb_to_y(hr.double()), shave)
    mse = ((a - b) ** 2).flatten(-3).mean(-1)
    return 10.0 * torch.log10(255.0**2 / mse.clamp_min(1e-12))


def _gaussian_window(size: int = 11, sigma: float = 1.5, dtype=torch.float64) -> torch.Tensor:
    g = torch.arange(size, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(g**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).view(1, 1, size, size)


def ssim_map_y(sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """The SSIM map on Y (B, 1, H - 10, W - 10) in the inputs' dtype (differentiable: a training loss uses it)."""
    a, b = rgb_to_y(sr), rgb_to_y(hr)
    if a.dim() == 3:
        a, b = a[None], b[None]
    w = _gaussian_window(dtype=a.dtype).to(a.device)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_a, mu_b = F.conv2d(a, w), F.conv2d(b, w)
    var_a = F.conv2d(a * a, w) - mu_a**2
    var_b = F.conv2d(b * b, w) - mu_b**2
    cov = F.conv2d(a * b, w) - mu_a * mu_b
    return ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))


def ssim_y(sr: torch.Tensor, hr: torch.Tensor, shave: int = 0) -> torch.Tensor:
    """SSIM on Y (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, valid region, L = 255), per image."""
    return ssim_map_y(_shave(sr.double(), shave), _shave(hr.double(), shave)).flatten(1).mean(1)
