"""PatchGAN discriminator with spectral normalisation: one real/fake score per overlapping patch.

Strided 4x4 convolutions halve the resolution `num_down` times, then two 3x3 convolutions give a (B, 1, h, w) map of
scores; spectral norm on every convolution keeps D Lipschitz, which stabilises small-batch GAN training.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


@dataclass
class PatchDiscriminatorConfig:
    in_channels: int = 3  # RGB images
    num_feat: int = 64  # channels after the first convolution; doubled per downsampling, capped at 8x
    num_down: int = 3  # stride-2 convolutions (receptive field grows with each)


class PatchDiscriminator(nn.Module):
    """x (B, C, H, W) in [0, 1] -> (B, 1, H / 2**num_down, W / 2**num_down) unbounded scores (real > fake)."""

    def __init__(self, config: PatchDiscriminatorConfig) -> None:
        super().__init__()
        self.config = config
        nf = config.num_feat
        layers: list[nn.Module] = [spectral_norm(nn.Conv2d(config.in_channels, nf, 4, 2, 1)), nn.LeakyReLU(0.2)]
        ch = nf
        for i in range(1, config.num_down):
            out = nf * min(2**i, 8)
            layers += [spectral_norm(nn.Conv2d(ch, out, 4, 2, 1)), nn.LeakyReLU(0.2)]
            ch = out
        layers += [spectral_norm(nn.Conv2d(ch, ch, 3, 1, 1)), nn.LeakyReLU(0.2),
                   spectral_norm(nn.Conv2d(ch, 1, 3, 1, 1))]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x * 2 - 1)
