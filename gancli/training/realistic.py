"""Real-world degradations for super-resolution training, in two rounds (after Real-ESRGAN's second-order model).

A high-resolution batch (B, 3, H, W) in [0, 1] becomes the low-resolution batch (B, 3, H/s, W/s) a phone camera or a
web page would have produced: blur (isotropic, anisotropic, generalized Gaussian and plateau kernels), resizing with a
random interpolation, Gaussian and Poisson noise (color or gray), JPEG compression, then the same again with other
parameters, and a last resize to the target size with an optional sinc (ringing) filter and a last JPEG, in random
order. Every random choice comes from one numpy Generator, so a run resumes exactly. Kernels differ per sample; a
resize applies to the whole batch (its shape must be shared).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from gancli import imageio


@dataclass
class RoundConfig:
    blur_prob: float = 1.0
    kernel_sizes: tuple[int, ...] = (7, 9, 11, 13, 15, 17, 19, 21)
    kernel_probs: tuple[float, float, float, float] = (0.45, 0.25, 0.15, 0.15)  # iso, aniso, generalized, plateau
    sigma: tuple[float, float] = (0.2, 3.0)
    beta_generalized: tuple[float, float] = (0.5, 4.0)
    beta_plateau: tuple[float, float] = (1.0, 2.0)
    sinc_prob: float = 0.1
    resize_probs: tuple[float, float, float] = (0.2, 0.7, 0.1)  # up, down, keep
    resize_range: tuple[float, float] = (0.15, 1.5)
    gaussian_noise_prob: float = 0.5
    noise_sigma: tuple[float, float] = (1.0, 30.0)  # in 8-bit levels
    poisson_scale: tuple[float, float] = (0.05, 3.0)
    gray_noise_prob: float = 0.4
    jpeg_quality: tuple[int, int] = (30, 95)


FIRST = RoundConfig()
SECOND = RoundConfig(blur_prob=0.8, sigma=(0.2, 1.5), sinc_prob=0.1, resize_probs=(0.3, 0.4, 0.3),
                     resize_range=(0.3, 1.2), noise_sigma=(1.0, 25.0), poisson_scale=(0.05, 2.5))
FINAL_SINC_PROB = 0.8


# ----------------------------------------------------------------------------------------------------- kernels


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    r = np.arange(size) - (size - 1) / 2
    return np.meshgrid(r, r, indexing="xy")


def gaussian_kernel(size: int, sigma_x: float, sigma_y: float, theta: float, beta: float = 2.0,
                    plateau: bool = False) -> np.ndarray:
    """A normalized (size, size) kernel: anisotropic Gaussian rotated by theta; beta != 2 gives the generalized
    Gaussian exp(-0.5 * d^beta); plateau=True gives 1 / (1 + d^beta)."""
    x, y = _grid(size)
    c, s = math.cos(theta), math.sin(theta)
    u, v = c * x + s * y, -s * x + c * y
    d2 = (u / sigma_x) ** 2 + (v / sigma_y) ** 2
    k = 1 / (1 + d2 ** (beta / 2)) if plateau else np.exp(-0.5 * d2 ** (beta / 2))
    return (k / k.sum()).astype(np.float32)


def sinc_kernel(size: int, cutoff: float) -> np.ndarray:
    """A circular low-pass (2-D jinc) kernel with cutoff in radians per pixel, windowed and normalized."""
    pi = math.pi
    x, y = _grid(size)
    r = np.sqrt(x**2 + y**2)
    with np.errstate(divide="ignore", invalid="ignore"):
        k = cutoff * _bessel_j1(cutoff * r) / (2 * pi * r)
    k[r == 0] = cutoff**2 / (4 * pi)
    window = np.outer(np.hanning(size + 2)[1:-1], np.hanning(size + 2)[1:-1])
    k = k * window
    return (k / k.sum()).astype(np.float32)


def _bessel_j1(x: np.ndarray) -> np.ndarray:
    """Bessel J1 by its integral form (no SciPy needed): J1(x) = 1/pi * int_0^pi cos(t - x sin t) dt."""
    t = np.linspace(0, np.pi, 257)
    vals = np.cos(t[None, :] - x.reshape(-1, 1) * np.sin(t[None, :]))
    integral = (vals[:, 1:] + vals[:, :-1]).sum(axis=1) * (t[1] - t[0]) / 2  # trapezoid rule
    return (integral / np.pi).reshape(x.shape)


def random_kernel(rng: np.random.Generator, cfg: RoundConfig) -> np.ndarray:
    size = int(rng.choice(cfg.kernel_sizes))
    kind = rng.choice(4, p=np.array(cfg.kernel_probs) / sum(cfg.kernel_probs))
    if rng.random() < cfg.sinc_prob:
        cutoff = rng.uniform(math.pi / 3, math.pi) if size < 13 else rng.uniform(math.pi / 5, math.pi)
        return sinc_kernel(size, cutoff)
    sx = rng.uniform(*cfg.sigma)
    if kind == 0:
        return gaussian_kernel(size, sx, sx, 0.0)
    sy, theta = rng.uniform(*cfg.sigma), rng.uniform(-math.pi, math.pi)
    if kind == 1:
        return gaussian_kernel(size, sx, sy, theta)
    if kind == 2:
        return gaussian_kernel(size, sx, sy, theta, beta=rng.uniform(*cfg.beta_generalized))
    return gaussian_kernel(size, sx, sy, theta, beta=rng.uniform(*cfg.beta_plateau), plateau=True)


def apply_kernels(x: torch.Tensor, kernels: list[np.ndarray]) -> torch.Tensor:
    """Convolve each sample of x (B, C, H, W) with its own kernel (reflect padding); kernels may differ in size."""
    size = max(k.shape[0] for k in kernels)
    padded = np.zeros((len(kernels), size, size), np.float32)
    for i, k in enumerate(kernels):
        o = (size - k.shape[0]) // 2
        padded[i, o : o + k.shape[0], o : o + k.shape[0]] = k
    # Through the FFT: per-sample kernels of up to 21x21 make a grouped convolution ~20x slower on the CPU. The
    # reflect padding is at least the kernel radius, so the circular wrap never reaches the kept centre.
    b, c, h, w = x.shape
    pad = size // 2
    y = F.pad(x, (pad, pad, pad, pad), mode="reflect" if pad < min(h, w) else "replicate")  # tiny inputs
    hp, wp = y.shape[2], y.shape[3]
    k = torch.zeros(b, 1, hp, wp, dtype=x.dtype, device=x.device)
    k[:, 0, :size, :size] = torch.from_numpy(padded).to(x)
    k = torch.roll(k, shifts=(-pad, -pad), dims=(2, 3))  # kernel centre at the origin
    out = torch.fft.irfft2(torch.fft.rfft2(y) * torch.fft.rfft2(k), s=(hp, wp))
    return out[:, :, pad : pad + h, pad : pad + w]


# ----------------------------------------------------------------------------------------- resize, noise, JPEG

_MODES = ("area", "bilinear", "bicubic")


def random_resize(x: torch.Tensor, rng: np.random.Generator, cfg: RoundConfig) -> torch.Tensor:
    kind = rng.choice(3, p=np.array(cfg.resize_probs) / sum(cfg.resize_probs))
    lo, hi = cfg.resize_range
    scale = rng.uniform(1, hi) if kind == 0 else rng.uniform(lo, 1) if kind == 1 else 1.0
    return resize(x, (max(4, round(x.shape[2] * scale)), max(4, round(x.shape[3] * scale))), _MODES[rng.integers(3)])


def resize(x: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    if tuple(x.shape[2:]) == size:
        return x
    kw = {} if mode == "area" else {"align_corners": False, "antialias": True}
    return F.interpolate(x, size=size, mode=mode, **kw)


def add_noise(x: torch.Tensor, rng: np.random.Generator, cfg: RoundConfig) -> torch.Tensor:
    """Per sample: Gaussian (sigma in 8-bit levels) or Poisson (scale x photon shot noise), color or gray."""
    b, c, h, w = x.shape
    arr = x.detach().cpu().numpy()
    out = np.empty_like(arr)
    for i in range(b):
        gray = rng.random() < cfg.gray_noise_prob
        xi = arr[i]
        if rng.random() < cfg.gaussian_noise_prob:
            sigma = rng.uniform(*cfg.noise_sigma) / 255
            noise = rng.standard_normal((1, h, w) if gray else (c, h, w), dtype=np.float32) * sigma
        else:  # shot noise of an 8-bit signal (256 levels as photon counts), scaled
            scale = rng.uniform(*cfg.poisson_scale)
            base = np.clip(xi.mean(axis=0, keepdims=True) if gray else xi, 0, 1)
            noise = ((rng.poisson(base * 256) / 256).astype(np.float32) - base) * scale
        out[i] = xi + noise
    return torch.from_numpy(out).to(x).clamp_(0, 1)


def jpeg(x: torch.Tensor, rng: np.random.Generator, quality: tuple[int, int]) -> torch.Tensor:
    """JPEG-compress each sample at its own random quality (through Pillow, 8-bit)."""
    arr = (x.clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    out = np.stack([imageio.jpeg_roundtrip(a, int(rng.integers(quality[0], quality[1] + 1))) for a in arr])
    return torch.from_numpy(out).permute(0, 3, 1, 2).to(x).div(255)


# ---------------------------------------------------------------------------------------------------- pipeline


def _round(x: torch.Tensor, rng: np.random.Generator, cfg: RoundConfig) -> torch.Tensor:
    if rng.random() < cfg.blur_prob:
        x = apply_kernels(x, [random_kernel(rng, cfg) for _ in range(x.shape[0])])
    x = random_resize(x, rng, cfg)
    x = add_noise(x, rng, cfg)
    return jpeg(x, rng, cfg.jpeg_quality)


def degrade(hr: torch.Tensor, scale: int, rng: np.random.Generator) -> torch.Tensor:
    """(B, 3, H, W) in [0, 1] -> (B, 3, H/scale, W/scale) in [0, 1], quantized to 8 bits, two rounds of damage."""
    b, _, h, w = hr.shape
    x = _round(hr, rng, FIRST)
    x = _round(x, rng, SECOND) if rng.random() < 0.8 else x
    target = (h // scale, w // scale)
    mode = _MODES[rng.integers(3)]
    sinc = rng.random() < FINAL_SINC_PROB
    kernels = [sinc_kernel(int(rng.choice((7, 9, 11, 13, 15, 17, 19, 21))), rng.uniform(math.pi / 3, math.pi))
               for _ in range(b)] if sinc else None
    if rng.random() < 0.5:  # resize (+ sinc) then JPEG
        x = resize(x, target, mode)
        x = apply_kernels(x, kernels) if kernels else x
        x = jpeg(x, rng, SECOND.jpeg_quality)
    else:  # JPEG then resize (+ sinc)
        x = jpeg(x, rng, SECOND.jpeg_quality)
        x = resize(x, target, mode)
        x = apply_kernels(x, kernels) if kernels else x
    return torch.round(x.clamp(0, 1) * 255) / 255
