"""Unconditional and class-conditional image GANs for small data on a CPU (DCGAN-class, modernised).

Generator: a latent vector (and a class embedding) -> bottom features (4x4 for 32 or 64, 7x7 for 28: the image size
halved while it stays even and >= 4) -> (nearest x2, `convs` 3x3 convs, LeakyReLU, pixel norm) blocks up to the image
size -> 1x1 conv to the image's channels (1 gray, 3 RGB, 4 RGBA), tanh. Pixel norm instead of batch norm keeps every
sample independent of the others in its batch, so a seed gives the same image at any batch size. Optionally (`sle`)
FastGAN's skip-layer excitation gates the last two levels per channel from coarser ones, and (`skip`) every level
writes an image, each added to the bilinearly enlarged sum of the coarser ones before the tanh (StyleGAN2's skip
generator: flat areas and the layout come from the coarse levels, edges and detail from the fine ones).

Discriminator: strided 4x4 convolutions with spectral norm down to the same bottom size (each followed by `convs`
3x3 ones), optionally a minibatch-std channel and one more 3x3 conv, a linear score, and a projection term
<embed(label), features> for class-conditional models. Optionally (`recon`) a small decoder rebuilds real images from
its features at twice the bottom side (FastGAN's self-supervised discriminator).
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
    image_size: int = 32  # output side, 8..256: bottom * 2**k with bottom 4..7 (28, 32, 48, 64, ...; see net_size)
    channels: int = 3  # 1 gray, 3 RGB, 4 RGBA
    latent_dim: int = 128
    base: int = 256  # channels at 4x4, halved per doubling of the resolution
    min_channels: int = 32
    num_classes: int = 0  # > 0: class-conditional
    crop: int = 0  # > 0: the data was padded to image_size from this side; samples are centre-cropped back
    convs: int = 2  # 3x3 convolutions per resolution block
    cond: str = "mul"  # class conditioning: "mul" (z * embedding) or "concat" ([z, embedding] into the first layer)
    upsample: str = "nearest"  # x2 upsampling of each block: "nearest" or "bilinear" (smoother; against grid artefacts)
    sle: bool = False  # skip-layer excitation (FastGAN): each of the last two levels gated per channel by a level
    #                    three doublings coarser (the layout decided at low resolution reaches the fine levels)
    skip: bool = False  # an image from every level, summed coarse to fine (StyleGAN2's skip generator)


def bottom_size(size: int) -> tuple[int, int]:
    """(bottom side, number of x2 blocks) for an image side: halved while even and the half is >= 4."""
    steps = 0
    while size % 2 == 0 and size // 2 >= 4:
        size //= 2
        steps += 1
    return size, steps


def net_size(size: int) -> int:
    """The side the networks run at for data of this side: itself where bottom_size allows, else the next power of 2."""
    bottom, steps = bottom_size(size)
    if 8 <= size <= 256 and bottom <= 7 and steps >= 1:
        return size
    return 2 ** math.ceil(math.log2(max(8, size)))


def _pixel_norm(x: torch.Tensor) -> torch.Tensor:
    return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


class GANGenerator(nn.Module):
    """forward(z (B, latent_dim), labels (B,) long or None) -> (B, channels, size, size) in [0, 1]."""

    def __init__(self, config: GANGeneratorConfig) -> None:
        super().__init__()
        self.config = config
        size = config.image_size
        if net_size(size) != size:
            raise ValueError(f"image_size must be 8..256 and bottom * 2**k with bottom 4..7, got {size}")
        if config.cond not in ("mul", "concat") or config.convs < 1 or config.upsample not in ("nearest", "bilinear"):
            raise ValueError(f"bad generator config: cond {config.cond!r}, convs {config.convs}, "
                             f"upsample {config.upsample!r}")
        self.bottom, steps = bottom_size(size)
        ch = [max(config.min_channels, config.base // 2**i) for i in range(steps + 1)]
        self.embed = nn.Embedding(config.num_classes, config.latent_dim) if config.num_classes else None
        fc_in = config.latent_dim * (2 if self.embed is not None and config.cond == "concat" else 1)
        self.fc = nn.Linear(fc_in, ch[0] * self.bottom**2)
        self.blocks = nn.ModuleList(
            nn.ModuleList(nn.Conv2d(ch[i] if k == 0 else ch[i + 1], ch[i + 1], 3, padding=1)
                          for k in range(config.convs))
            for i in range(steps))
        self.to_image = nn.Conv2d(ch[-1], config.channels, 1)
        # skip: the coarser levels' images (level j's 1x1 conv at index j; the last level's is to_image)
        self.to_images = nn.ModuleList(nn.Conv2d(c, config.channels, 1) for c in ch[:-1]) if config.skip else None
        self.ch0 = ch[0]
        # level j (0 = bottom) -> the coarser level gating it; only the last two levels, sources three levels below
        self.sle_from = {j: j - 3 for j in (steps - 1, steps) if config.sle and j - 3 >= 0}
        if config.sle and not self.sle_from:
            raise ValueError(f"sle needs at least 3 x2 blocks (image_size 32 or more), got image_size {size}")
        self.sle = nn.ModuleDict({str(j): SkipExcitation(ch[i], ch[j]) for j, i in self.sle_from.items()})

    @property
    def conditional(self) -> bool:
        return self.embed is not None

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None, truncation: float = 1.0) -> torch.Tensor:
        """Truncation psi scales the latent's part of the normalised input of the first (linear) layer toward its mean
        over z, which is 0 (a class embedding is kept): the first layer's output moves to psi of the way from its class
        mean. Scaling z itself would do nothing, since z is pixel-normalised first."""
        if self.embed is not None:
            if labels is None:
                raise ValueError("this generator is class-conditional: give labels")
            e = self.embed(labels)
            if self.config.cond == "concat":
                z = torch.cat([_pixel_norm(z), _pixel_norm(e)], dim=1)
            else:
                z = z * e  # multiplicative conditioning: each class reshapes the latent space
        b = self.bottom
        u = _pixel_norm(z)
        if truncation != 1.0:
            d = self.config.latent_dim if self.embed is not None and self.config.cond == "concat" else u.shape[1]
            u = torch.cat([u[:, :d] * truncation, u[:, d:]], dim=1)
        x = _pixel_norm(F.leaky_relu(self.fc(u), 0.2).view(-1, self.ch0, b, b))
        levels = [x]
        image = self.to_images[0](x) if self.to_images is not None else None
        for j, convs in enumerate(self.blocks, start=1):
            x = F.interpolate(x, scale_factor=2, mode=self.config.upsample,
                              align_corners=False if self.config.upsample == "bilinear" else None)
            for conv in convs:
                x = _pixel_norm(F.leaky_relu(conv(x), 0.2))
            if j in self.sle_from:
                x = self.sle[str(j)](levels[self.sle_from[j]], x)
            levels.append(x)
            if image is not None:
                out = self.to_images[j] if j < len(self.to_images) else self.to_image
                image = F.interpolate(image, scale_factor=2, mode="bilinear", align_corners=False) + out(x)
        return (torch.tanh(self.to_image(x) if image is None else image) + 1) / 2

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
    convs: int = 1  # 3x3 convolutions after each strided one (0: strided convolutions only)
    mbstd: int = 0  # > 0: minibatch standard deviation over groups of this many images, as one more channel before
    #                 a last 3x3 conv (lets D see a batch's lack of variety: fights within-class mode collapse)
    blur: bool = False  # low-pass ([1, 2, 1] binomial) before each strided conv: D sees what aliasing would hide
    recon: float = 0.0  # > 0: a small decoder rebuilds each real image at half size from D's features at twice the
    #                     bottom side, with this weight on its L1 error in D's loss (FastGAN's self-supervised D:
    #                     features that must describe the image, not just separate 300 memorised ones)


class GANDiscriminator(nn.Module):
    """forward(x (B, channels, size, size) in [0, 1], labels or None) -> (B,) unbounded scores (real > fake)."""

    def __init__(self, config: GANDiscriminatorConfig) -> None:
        super().__init__()
        self.config = config
        if net_size(config.image_size) != config.image_size:
            raise ValueError(f"image_size must be 8..256 and bottom * 2**k with bottom 4..7, got {config.image_size}")
        bottom, steps = bottom_size(config.image_size)
        ch = [min(config.max_channels, config.base * 2**i) for i in range(steps + 1)]
        layers: list[nn.Module] = [spectral_norm(nn.Conv2d(config.channels, ch[0], 3, padding=1)), nn.LeakyReLU(0.2)]
        tap = -1
        for i in range(steps):
            if config.blur:
                layers.append(Blur(ch[i]))
            layers += [spectral_norm(nn.Conv2d(ch[i], ch[i + 1], 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
            for _ in range(config.convs):
                layers += [spectral_norm(nn.Conv2d(ch[i + 1], ch[i + 1], 3, padding=1)), nn.LeakyReLU(0.2)]
            if i == steps - 2:
                tap = len(layers) - 1  # features at twice the bottom side feed the decoder
        self.net = nn.Sequential(*layers)
        self.decoder = None
        if config.recon > 0:
            if steps < 2:
                raise ValueError(f"recon needs image_size 16 or more, got {config.image_size}")
            self.tap = tap
            c = ch[steps - 1]
            dec: list[nn.Module] = []
            for _ in range(steps - 2):  # up to half the image side
                dec += [nn.Upsample(scale_factor=2), nn.Conv2d(c, max(16, c // 2), 3, padding=1), nn.LeakyReLU(0.2)]
                c = max(16, c // 2)
            self.decoder = nn.Sequential(*dec, nn.Conv2d(c, config.channels, 3, padding=1), nn.Tanh())
        self.mbstd = config.mbstd
        self.last = (nn.Sequential(spectral_norm(nn.Conv2d(ch[-1] + 1, ch[-1], 3, padding=1)), nn.LeakyReLU(0.2))
                     if config.mbstd else None)
        flat = ch[-1] * bottom**2
        self.fc = spectral_norm(nn.Linear(flat, 1))
        self.embed = spectral_norm(nn.Embedding(config.num_classes, flat)) if config.num_classes else None

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None, recon: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """recon=True (a model built with recon > 0): also the decoder's half-size image, in [-1, 1]."""
        if recon and self.decoder is None:
            raise ValueError("this discriminator has no decoder (recon = 0)")
        h = x * 2 - 1
        rebuilt = None
        for i, layer in enumerate(self.net):
            h = layer(h)
            if recon and i == self.tap:
                rebuilt = self.decoder(h)
        if self.last is not None:
            h = self.last(torch.cat([h, _minibatch_std(h, self.mbstd)], dim=1))
        h = h.flatten(1)
        out = self.fc(h).squeeze(1)
        if self.embed is not None and labels is not None:
            out = out + (self.embed(labels) * h).sum(dim=1)  # projection discriminator
        return (out, rebuilt) if recon else out


class SkipExcitation(nn.Module):
    """gate(coarse, fine) -> fine * sigmoid(channel weights computed from the coarse level, pooled to 4x4)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.AdaptiveAvgPool2d(4), nn.Conv2d(c_in, c_out, 4), nn.LeakyReLU(0.2),
                                 nn.Conv2d(c_out, c_out, 1), nn.Sigmoid())

    def forward(self, coarse: torch.Tensor, fine: torch.Tensor) -> torch.Tensor:
        return fine * self.net(coarse)


class Blur(nn.Module):
    """Depthwise 3x3 binomial low-pass ([1, 2, 1] x [1, 2, 1] / 16), replicate padding; no parameters."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        k = torch.tensor([1.0, 2.0, 1.0])
        self.register_buffer("kernel", (k[:, None] * k[None, :] / 16).expand(channels, 1, 3, 3).clone(),
                             persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), self.kernel.to(x.dtype), groups=x.shape[1])


def _minibatch_std(h: torch.Tensor, group: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, 1, H, W): each image's group's mean feature standard deviation (`group` images
    i, i + B/group, ... form a group; a smaller group where B is not a multiple)."""
    b = h.shape[0]
    g = next(k for k in range(min(group, b), 0, -1) if b % k == 0)
    y = h.float().view(g, b // g, *h.shape[1:])
    std = (y.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))  # (B // g,)
    return std.repeat(g).view(b, 1, 1, 1).expand(b, 1, *h.shape[2:]).to(h.dtype)
