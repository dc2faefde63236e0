"""DiffAugment (Zhao et al., 2020): differentiable augmentations applied to every image the discriminator sees, real
and generated alike, so a small data set is not memorised by D. Translation (by up to 1/8 of the side, zero
padding), cutout (a square of half the side, zeroed) and color (brightness, saturation, contrast). Random draws
come from torch's global generator, which the training checkpoint saves and restores.
"""

from __future__ import annotations

import torch

POLICIES = ("translation", "cutout", "color")


def parse_policy(text: str) -> tuple[str, ...]:
    parts = tuple(p.strip() for p in text.split(",") if p.strip())
    unknown = [p for p in parts if p not in POLICIES]
    if unknown:
        raise ValueError(f"unknown DiffAugment policy {', '.join(unknown)} (use {', '.join(POLICIES)})")
    return parts


def _color(x: torch.Tensor) -> torch.Tensor:
    """x in [0, 1]; the alpha channel (4th) is left alone."""
    b = x.shape[0]
    rgb, rest = (x[:, :3], x[:, 3:]) if x.shape[1] == 4 else (x, x[:, :0])
    rgb = rgb + (torch.rand(b, 1, 1, 1, device=x.device) - 0.5)
    mean = rgb.mean(dim=1, keepdim=True)
    rgb = (rgb - mean) * (torch.rand(b, 1, 1, 1, device=x.device) * 2) + mean
    mean = rgb.mean(dim=(1, 2, 3), keepdim=True)
    rgb = (rgb - mean) * (torch.rand(b, 1, 1, 1, device=x.device) + 0.5) + mean
    return torch.cat([rgb, rest], dim=1)


def _translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    b, _, h, w = x.shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = torch.randint(-sy, sy + 1, (b, 1, 1), device=x.device)
    tx = torch.randint(-sx, sx + 1, (b, 1, 1), device=x.device)
    gy, gx = torch.meshgrid(torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij")
    gy = (gy[None] + ty + 1).clamp(0, h + 1)
    gx = (gx[None] + tx + 1).clamp(0, w + 1)
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1))
    idx = (gy * (w + 2) + gx).view(b, 1, -1).expand(-1, x.shape[1], -1)
    return padded.flatten(2).gather(2, idx).view_as(x)


def _cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (b, 1, 1), device=x.device)
    cx = torch.randint(0, w + (1 - cw % 2), (b, 1, 1), device=x.device)
    gy, gx = torch.meshgrid(torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij")
    inside = ((gy[None] >= cy - ch // 2) & (gy[None] < cy + ch - ch // 2)
              & (gx[None] >= cx - cw // 2) & (gx[None] < cx + cw - cw // 2))
    return x * (~inside).unsqueeze(1).to(x.dtype)


def augment(x: torch.Tensor, policy: tuple[str, ...]) -> torch.Tensor:
    for p in policy:
        x = {"color": _color, "translation": _translation, "cutout": _cutout}[p](x)
    return x
