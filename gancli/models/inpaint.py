"""Inpainting generator with fast Fourier convolutions: a global receptive field at CPU cost.

An encoder halves the resolution `num_down` times; residual blocks at the bottom mix a local 3x3 convolution with a
spectral branch (after LaMa's fast Fourier convolution): a 1x1 convolution applied to the real and imaginary parts
of the feature map's 2-D FFT, so every position sees the whole image in one layer. That is what fills large holes
with structure from far away instead of a blur of the nearby border. A decoder upsamples back. The output is
composited: known pixels are returned exactly, only the hole is generated.

With `prefill = "telea"` the hole is first filled by OpenCV's fast marching method (Telea 2004, a classical
diffusion of the border's colours inward) and the network sees that fill as three more input channels and predicts a
correction to it: a coarse-to-fine generator whose coarse stage costs nothing to train. The network starts as the
classical fill and learns what the classical fill gets wrong (texture, structure, large holes).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class InpaintNetConfig:
    base: int = 32  # channels at full resolution, doubled per downsampling
    max_channels: int = 128  # cap on the channels of the encoder and the blocks
    num_down: int = 3  # stride-2 convolutions (the bottom works at 1/2**num_down resolution)
    num_blocks: int = 6  # residual fast-Fourier blocks at the bottom
    global_ratio: float = 0.5  # share of a block's channels that go through the spectral branch
    prefill: str = ""  # "telea": predict a correction to OpenCV's Telea fill of the hole; "": from the hole alone


PREFILL_RADIUS = 3  # cv2.inpaint neighbourhood of the Telea prefill


@torch.no_grad()
def telea_fill(known: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """OpenCV's Telea inpainting of each image of known (B, 3, H, W) in [0, 1] (holes zeroed) where mask (B, 1, H,
    W) is 1, at 8 bits, as (B, 3, H, W) in [0, 1] on known's device and dtype. The known pixels come back unchanged
    up to 8-bit rounding."""
    import cv2
    import numpy as np

    imgs = (known.detach().float().clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    holes = (mask.detach()[:, 0] > 0.5).to(torch.uint8).mul_(255).cpu().numpy()
    out = np.stack([cv2.inpaint(np.ascontiguousarray(i), h, PREFILL_RADIUS, cv2.INPAINT_TELEA)
                    if h.any() else i for i, h in zip(imgs, holes, strict=True)])
    return torch.from_numpy(out).to(known.device).permute(0, 3, 1, 2).to(known.dtype) / 255


class SpectralTransform(nn.Module):
    """Global mixing: 1x1 conv -> rFFT2 -> 1x1 conv on (real, imag) -> inverse FFT -> 1x1 conv."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        half = max(1, channels // 2)
        self.reduce = nn.Sequential(nn.Conv2d(channels, half, 1), nn.GELU())
        self.freq = nn.Sequential(nn.Conv2d(2 * half, 2 * half, 1), nn.GELU())
        self.expand = nn.Conv2d(half, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.reduce(x)
        h, w = x.shape[-2:]
        f = torch.fft.rfft2(x.float(), norm="ortho")
        f = torch.cat([f.real, f.imag], dim=1)
        f = self.freq(f.to(x.dtype)).float()
        re, im = f.chunk(2, dim=1)
        y = torch.fft.irfft2(torch.complex(re, im), s=(h, w), norm="ortho").to(x.dtype)
        return self.expand(x + y)


class FFCBlock(nn.Module):
    """x + f(x): the local channels through two 3x3 convs, the global ones through the spectral transform."""

    def __init__(self, channels: int, global_ratio: float) -> None:
        super().__init__()
        self.n_global = int(channels * global_ratio)
        n_local = channels - self.n_global
        self.local = nn.Sequential(nn.Conv2d(n_local, n_local, 3, padding=1, padding_mode="reflect"), nn.GELU(),
                                   nn.Conv2d(n_local, n_local, 3, padding=1, padding_mode="reflect"))
        self.spectral = SpectralTransform(self.n_global) if self.n_global else None
        self.mix = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.spectral is None:
            y = self.local(x)
        else:
            xl, xg = x[:, : x.shape[1] - self.n_global], x[:, x.shape[1] - self.n_global :]
            y = torch.cat([self.local(xl), self.spectral(xg)], dim=1)
        return x + self.mix(F.gelu(y))


class InpaintNet(nn.Module):
    """forward(image (B, 3, H, W) in [0, 1], mask (B, 1, H, W), 1 = hole) -> (B, 3, H, W) in [0, 1].

    Any H, W: the input is padded (reflect) to a multiple of 2**num_down and the output cropped back. The result is
    the composite image * (1 - mask) + generated * mask; `raw=True` returns the generated image before compositing.
    """

    def __init__(self, config: InpaintNetConfig) -> None:
        super().__init__()
        self.config = config
        if config.prefill not in ("", "telea"):
            raise ValueError(f"unknown prefill {config.prefill!r} (use 'telea' or '')")
        ch = [min(config.base * 2**i, config.max_channels) for i in range(config.num_down + 1)]
        in_ch = 7 if config.prefill else 4
        self.stem = nn.Sequential(nn.Conv2d(in_ch, ch[0], 5, padding=2, padding_mode="reflect"), nn.GELU())
        self.down = nn.ModuleList(
            nn.Sequential(nn.Conv2d(ch[i], ch[i + 1], 3, stride=2, padding=1), nn.GELU())
            for i in range(config.num_down))
        self.blocks = nn.Sequential(*(FFCBlock(ch[-1], config.global_ratio) for _ in range(config.num_blocks)))
        # Decoder: a 1x1 conv to the skip's width at the low resolution, nearest upsampling, + skip, one 3x3 conv.
        self.reduce = nn.ModuleList(nn.Conv2d(ch[i + 1], ch[i], 1) for i in reversed(range(config.num_down)))
        self.up = nn.ModuleList(
            nn.Sequential(nn.Conv2d(ch[i], ch[i], 3, padding=1, padding_mode="reflect"), nn.GELU())
            for i in reversed(range(config.num_down)))
        self.head = nn.Conv2d(ch[0], 3, 3, padding=1, padding_mode="reflect")
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)
        for block in self.blocks:  # residual branches start near zero: the net starts as a plain U-Net
            block.mix.weight.data.mul_(0.1)
        self.head.weight.data.mul_(0.1)

    def forward(self, image: torch.Tensor, mask: torch.Tensor, raw: bool = False) -> torch.Tensor:
        h, w = image.shape[-2:]
        k = 2**self.config.num_down
        # Pad to a multiple of 2**num_down, and to at least two pixels at the bottom (reflect padding needs them).
        ph, pw = max(2 * k, h + (-h) % k) - h, max(2 * k, w + (-w) % k) - w
        known = image * (1 - mask)
        x = torch.cat([known - 0.5 * (1 - mask), mask], dim=1)  # known pixels centred on 0, the hole at exactly 0
        fill = None
        if self.config.prefill:
            fill = telea_fill(known, mask)
            x = torch.cat([x, fill - 0.5], dim=1)
        if ph or pw:
            mode = "reflect" if ph < h and pw < w else "replicate"
            x = F.pad(x, (0, pw, 0, ph), mode=mode)
        skips = [self.stem(x)]
        for down in self.down:
            skips.append(down(skips[-1]))
        y = self.blocks(skips.pop())
        for reduce, up in zip(self.reduce, self.up, strict=True):
            skip = skips.pop()
            y = up(F.interpolate(reduce(y), size=skip.shape[-2:], mode="nearest") + skip)
        if fill is None:  # the sigmoid keeps the generated image in [0, 1] (a zero head starts it at flat grey)
            out = torch.sigmoid(self.head(y))[..., :h, :w]
        else:  # a correction to the classical fill (a zero head starts the net as that fill)
            out = (fill + self.head(y)[..., :h, :w]).clamp(0, 1)
        if raw:
            return out
        return known + out * mask
