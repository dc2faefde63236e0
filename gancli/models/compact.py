"""Compact super-resolution network: plain 3x3 convolutions at low resolution, then a pixel shuffle.

The family of Real-ESRGAN's SRVGGNetCompact: every convolution runs on the low-resolution grid, so the cost per
output pixel is tiny and the CPU stays busy with large, regular convolutions. The network predicts a residual over
a bilinear upscale of its input, which makes it start from a sensible image and learn fast.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class CompactSRConfig:
    scale: int = 4  # upscaling factor of the pixel shuffle
    in_channels: int = 3  # RGB in, RGB out
    num_feat: int = 48  # channels of every hidden convolution
    num_conv: int = 10  # hidden 3x3 convolutions after the first one


class CompactSR(nn.Module):
    """x (B, C, h, w) in [0, 1] -> (B, C, h*scale, w*scale), roughly in [0, 1] (not clamped)."""

    def __init__(self, config: CompactSRConfig) -> None:
        super().__init__()
        self.config = config
        c, nf, s = config.in_channels, config.num_feat, config.scale
        layers: list[nn.Module] = [nn.Conv2d(c, nf, 3, padding=1), nn.PReLU(nf)]
        for _ in range(config.num_conv):
            layers += [nn.Conv2d(nf, nf, 3, padding=1), nn.PReLU(nf)]
        layers += [nn.Conv2d(nf, c * s * s, 3, padding=1)]
        self.body = nn.Sequential(*layers)
        self.shuffle = nn.PixelShuffle(s)
        self.reset_parameters()

    @property
    def receptive_radius(self) -> int:
        """Input pixels on each side that influence one output pixel (tiling needs at least this much context)."""
        return self.config.num_conv + 3

    def reset_parameters(self) -> None:
        # He init for every hidden conv: with PyTorch's default init this plain stack learns nothing for hundreds of
        # steps. The last conv starts small so the untrained net is close to the bilinear base.
        convs = [m for m in self.body if isinstance(m, nn.Conv2d)]
        for conv in convs:
            nn.init.kaiming_normal_(conv.weight, a=0.25, nonlinearity="leaky_relu")
            nn.init.zeros_(conv.bias)
        convs[-1].weight.data.mul_(0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        base = F.interpolate(x, scale_factor=self.config.scale, mode="bilinear", align_corners=False)
        return self.shuffle(self.body(x)) + base
