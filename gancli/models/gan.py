"""Unconditional and class-conditional image GANs for small data on a CPU (DCGAN-class, modernised).

Generator: a latent vector (and a class embedding) -> 4x4 features -> (nearest x2, 3x3 conv, LeakyReLU, pixel norm)
blocks up to the image size -> 1x1 conv to the image's channels (1 gray, 3 RGB, 4 RGBA), tanh. Pixel norm instead of
batch norm keeps every sample independent of the others in its batch, so a seed gives the same image at any batch
size. Discriminator: strided 3x3/4x4 convolutions with spectral norm down to 4x4, a linear score, and a projection
term <embed(label), features> for class-conditional models.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


@dataclass
class GANGeneratorConfig:
    image_size: int = 32  # output side: a power of two, 8..256 (images of other sizes are padded/cropped for it)
    channels: int = 3  # 1 gray, 3 RGB, 4 RGBA
    latent_dim: int = 128
    base: int = 256  # channels at 4x4, halved per doubling of the resolution
    min_channels: int = 32
    num_classes: int = 0  # > 0: class-conditional
    crop: int = 0  # > 0: the data was padded to image_size from this side; samples are centre-cropped back


def _pixel_norm(x: torch.Tensor) -> torch.Tensor:
    return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


class GANGenerator(nn.Module):
    """forward(z (B, latent_dim), labels (B,) long or None) -> (B, channels, size, size) in [0, 1]."""

    def __init__(self, config: GANGeneratorConfig) -> None:
        super().__init__()
        self.config = config
        size = config.image_size
        steps = int(math.log2(size)) - 2
        if 2 ** (steps + 2) != size or not 8 <= size <= 256:
            raise ValueError(f"image_size must be a power of two in 8..256, got {size}")
        ch = [max(config.min_channels, config.base // 2**i) for i in range(steps + 1)]
        self.embed = nn.Embedding(config.num_classes, config.latent_dim) if config.num_classes else None
        self.fc = nn.Linear(config.latent_dim, ch[0] * 16)
        self.blocks = nn.ModuleList(
            nn.ModuleList([nn.Conv2d(ch[i], ch[i + 1], 3, padding=1), nn.Conv2d(ch[i + 1], ch[i + 1], 3, padding=1)])
            for i in range(steps))
        self.to_image = nn.Conv2d(ch[-1], config.channels, 1)
        self.ch0 = ch[0]

    @property
    def conditional(self) -> bool:
        return self.embed is not None

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            if labels is None:
                raise ValueError("this generator is class-conditional: give labels")
            z = z * self.embed(labels)  # multiplicative conditioning: each class reshapes the latent space
        x = _pixel_norm(F.leaky_relu(self.fc(_pixel_norm(z)), 0.2).view(-1, self.ch0, 4, 4))
        for conv1, conv2 in self.blocks:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
            x = _pixel_norm(F.leaky_relu(conv1(x), 0.2))
            x = _pixel_norm(F.leaky_relu(conv2(x), 0.2))
        return (torch.tanh(self.to_image(x)) + 1) / 2

    def sample_latents(self, seeds: list[int]) -> torch.Tensor:
        """One latent per seed, each from its own generator: a seed's image never depends on the batch it is in."""
        zs = [torch.randn(self.config.latent_dim, generator=torch.Generator().manual_seed(int(s))) for s in seeds]
        return torch.stack(zs)


@dataclass
class GANDiscriminatorConfig:
    image_size: int = 32
    channels: int = 3
    base: int = 32  # channels at full resolution, doubled per halving
    max_channels: int = 256
    num_classes: int = 0


class GANDiscriminator(nn.Module):
    """forward(x (B, channels, size, size) in [0, 1], labels or None) -> (B,) unbounded scores (real > fake)."""

    def __init__(self, config: GANDiscriminatorConfig) -> None:
        super().__init__()
        self.config = config
        steps = int(math.log2(config.image_size)) - 2
        ch = [min(config.max_channels, config.base * 2**i) for i in range(steps + 1)]
        layers: list[nn.Module] = [spectral_norm(nn.Conv2d(config.channels, ch[0], 3, padding=1)), nn.LeakyReLU(0.2)]
        for i in range(steps):
            layers += [spectral_norm(nn.Conv2d(ch[i], ch[i + 1], 4, stride=2, padding=1)), nn.LeakyReLU(0.2),
                       spectral_norm(nn.Conv2d(ch[i + 1], ch[i + 1], 3, padding=1)), nn.LeakyReLU(0.2)]
        self.net = nn.Sequential(*layers)
        self.fc = spectral_norm(nn.Linear(ch[-1] * 16, 1))
        self.embed = spectral_norm(nn.Embedding(config.num_classes, ch[-1] * 16)) if config.num_classes else None

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = self.net(x * 2 - 1).flatten(1)
        out = self.fc(h).squeeze(1)
        if self.embed is not None and labels is not None:
            out = out + (self.embed(labels) * h).sum(dim=1)  # projection discriminator
        return out
