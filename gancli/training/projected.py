"""A second discriminator on frozen ImageNet features (Projected GAN, Sauer et al. 2021), for small data.

A discriminator trained from scratch on a few hundred images learns features only from them; one that scores frozen
pretrained features starts from features that already describe shapes and parts, and the generator learns through
them. Here: EfficientNet-Lite0 (the ImageNet network installable offline, gancli[train]) at four depths (strides 4, 8,
16 and 32 of an input enlarged to at least 128 pixels), mixed across channels by fixed random 1x1 convolutions (CCM)
and across scales by fixed random 3x3 convolutions, coarse into fine (CSM), so that no single pretrained feature
dominates; then one small trainable head per scale (spectral-norm strided convolutions down to 4x4 logits, and a
projection term for class-conditional models). Training only: exported models carry the generator alone.

The task trains it beside its own discriminator (`projected_weight` in the config weights its hinge loss), which
still sees the raw image, alpha included; this one sees the RGB composited over mid grey.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from gancli.training.perceptual import Lite0Features

TAPS = (2, 4, 10, 15)  # EfficientNet-Lite0 blocks: 24 ch at /4, 40 at /8, 112 at /16, 320 at /32
MIXED = (32, 64, 128, 256)  # channels after the random cross-channel mixing, per tap
MIN_SIDE = 128  # inputs are enlarged (bilinear) to at least this side: the /32 tap keeps 4x4 positions


class ProjectedHeads(nn.Module):
    """forward(x (B, C, S, S) in [0, 1], labels or None) -> (B, N) logits (real > fake), 16 per scale at side 128.

    While the heads train (their parameters require grad: the trainer's discriminator step) the image gets no gradient
    through the frozen network: it runs without a graph there, which halves the step's cost."""

    def __init__(self, channels: int, image_size: int, num_classes: int = 0, seed: int = 0) -> None:
        super().__init__()
        # the frozen network is kept out of the module tree: not in parameters() (no optimizer, no requires_grad_
        # from the trainer), not in state_dict() (checkpoints stay small); moved to the input's device on use
        self._features = (Lite0Features(TAPS).to(memory_format=torch.channels_last),)
        self.channels = channels
        self.side = max(MIN_SIDE, image_size)
        g = torch.Generator().manual_seed(seed)
        feats = self._features[0].channels
        for i, (c_in, c_out) in enumerate(zip(feats, MIXED, strict=True)):
            # fixed random mixing (buffers: saved with the checkpoint so a resumed run sees the same projection)
            self.register_buffer(f"ccm{i}", torch.randn(c_out, c_in, 1, 1, generator=g) * math.sqrt(1 / c_in))
            if i + 1 < len(MIXED):
                w = torch.randn(c_out, MIXED[i + 1], 3, 3, generator=g) * math.sqrt(1 / (9 * MIXED[i + 1]))
                self.register_buffer(f"csm{i}", w)
        self.heads = nn.ModuleList(_head(c, self.side // s) for c, s in zip(MIXED, (4, 8, 16, 32), strict=True))
        self.embed = (nn.ModuleList(spectral_norm(nn.Embedding(num_classes, _head_width(c))) for c in MIXED)
                      if num_classes else None)

    def _rgb(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels == 4:
            a = x[:, 3:]
            x = x[:, :3] * a + 0.5 * (1 - a)
        elif self.channels == 1:
            x = x.expand(-1, 3, -1, -1)
        if x.shape[-1] != self.side:
            x = F.interpolate(x, size=(self.side, self.side), mode="bilinear", align_corners=False)
        return x

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        net = self._features[0]
        if next(net.parameters()).device != x.device:
            net.to(x.device)
        heads_train = next(self.heads.parameters()).requires_grad
        with torch.set_grad_enabled(torch.is_grad_enabled() and not heads_train):
            feats = net.features(self._rgb(x).contiguous(memory_format=torch.channels_last))
            mixed = [F.conv2d(f, getattr(self, f"ccm{i}").to(f.dtype)) for i, f in enumerate(feats)]
            for i in range(len(mixed) - 2, -1, -1):  # coarse into fine
                up = F.interpolate(mixed[i + 1], size=mixed[i].shape[-2:], mode="bilinear", align_corners=False)
                mixed[i] = mixed[i] + F.conv2d(up, getattr(self, f"csm{i}").to(up.dtype), padding=1)
        out = []
        for i, (h, head) in enumerate(zip(mixed, self.heads, strict=True)):
            h = head[0](h)  # down to 4x4 features
            logit = head[1](h)  # (B, 1, 4, 4)
            if self.embed is not None and labels is not None:
                e = self.embed[i](labels)[:, :, None, None]
                logit = logit + (e * h).sum(dim=1, keepdim=True) / math.sqrt(h.shape[1])
            out.append(logit.flatten(1))
        return torch.cat(out, dim=1)


def _head_width(c: int) -> int:
    return min(256, max(64, c))


def _head(c: int, side: int) -> nn.ModuleList:
    """Strided 4x4 spectral-norm convolutions from `side` down to 4x4, then a 1x1 conv to one logit per position."""
    layers: list[nn.Module] = []
    width = _head_width(c)
    c_in = c
    while side > 4:
        layers += [spectral_norm(nn.Conv2d(c_in, width, 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
        c_in, side = width, side // 2
    if not layers:
        layers += [spectral_norm(nn.Conv2d(c_in, width, 3, padding=1)), nn.LeakyReLU(0.2)]
    return nn.ModuleList([nn.Sequential(*layers), spectral_norm(nn.Conv2d(width, 1, 1))])


class WithProjected(nn.Module):
    """The task's own discriminator and a ProjectedHeads beside it, trained as one (one optimizer, one checkpoint).

    forward(x, labels, recon=False, projected=False): the own discriminator's output (as it gives it), and with
    projected=True also the projected logits, as a pair."""

    def __init__(self, own: nn.Module, projected: ProjectedHeads) -> None:
        super().__init__()
        self.own, self.projected = own, projected

    @property
    def config(self):
        return self.own.config

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None, recon: bool = False,
                projected: bool = False):
        out = self.own(x, labels, recon=recon)
        return (out, self.projected(x, labels)) if projected else out
