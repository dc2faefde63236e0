"""Super-resolution of whole images of any size, tile by tile, with bounded memory.

Each output tile is computed from an input window that extends `margin` pixels past the tile on every side, where
margin >= the model's receptive radius. Every output pixel therefore sees exactly the context it would see in one
pass over the whole image, so tiles need no blending and tiled output equals untiled output (up to float rounding).
The result is written tile by tile into a preallocated uint8/uint16 array: there is never a float copy of the image.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gancli.imageio import Picture

CPU_TILE = 512  # input pixels per tile side on the CPU: big enough to amortize the margin, small enough for cache


def receptive_radius(model: nn.Module) -> int:
    return int(getattr(model, "receptive_radius", 16))


def auto_tile(model: nn.Module, device: torch.device, dtype: torch.dtype) -> int:
    """A tile side (input pixels) that fits the device: fixed on CPU, from free memory on CUDA."""
    if device.type != "cuda":
        return CPU_TILE
    free, _ = torch.cuda.mem_get_info(device)
    width = int(getattr(getattr(model, "config", None), "num_feat", 64))
    scale = int(getattr(getattr(model, "config", None), "scale", 4))
    bytes_per_px = torch.finfo(dtype).bits // 8 * (4 * width + 2 * 3 * scale * scale) * 2  # batch of 2 (alpha)
    side = int(math.sqrt(free * 0.4 / bytes_per_px))
    return max(64, min(2048, side // 16 * 16))


def _to_float(a: np.ndarray, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(h, w, C) uint8/uint16 -> (1, C, h, w) in [0, 1] on device."""
    peak = 65535.0 if a.dtype == np.uint16 else 255.0
    t = torch.from_numpy(np.ascontiguousarray(a).astype(np.float32)).permute(2, 0, 1)[None]
    if device.type == "cuda":
        t = t.pin_memory()  # page-locked, so the copy to the GPU is a real asynchronous DMA
    return t.to(device=device, dtype=dtype, non_blocking=True).div_(peak)


def _to_uint(t: torch.Tensor, dtype: np.dtype) -> np.ndarray:
    """(1, C, h, w) in [0, 1] -> (h, w, C) uint8/uint16."""
    peak = 65535.0 if dtype == np.uint16 else 255.0
    t = t.float().clamp_(0, 1).mul_(peak).round_()
    return t[0].permute(1, 2, 0).cpu().numpy().astype(dtype)


@torch.no_grad()
def _run_tile(
    model: nn.Module, rgb: torch.Tensor, alpha: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """rgb (1, C, h, w) with C in {1, 3}, alpha (1, 1, h, w) or None -> upscaled, alpha premultiplied in and out."""
    gray = rgb.shape[1] == 1
    x = rgb.expand(-1, 3, -1, -1) if gray else rgb
    if alpha is None:
        y = model(x.contiguous(memory_format=torch.channels_last))
        y_alpha = None
    else:
        # Premultiply so transparent pixels (whose color is arbitrary, often black) do not bleed into edges.
        batch = torch.cat([x * alpha, alpha.expand(-1, 3, -1, -1)], dim=0)
        # un-premultiply in float32: at 1/255 alpha, a bf16 division turned rounding noise into full-scale color
        out = model(batch.contiguous(memory_format=torch.channels_last)).float()
        y_alpha = out[1:].mean(dim=1, keepdim=True).clamp_(0, 1)
        y = out[:1] / y_alpha.clamp_min(1 / 1024)
        y = torch.where(y_alpha > 1 / 1024, y, torch.zeros_like(y))
    if gray:
        y = y.mean(dim=1, keepdim=True)
    return y, y_alpha


COLOR_FIX_SIGMA = 2.0  # input pixels: colors are matched at scales coarser than this
COLOR_FIX_RADIUS = 7  # extra context the color fix needs: 3 sigma of the blur + 1 for the bilinear upsampling


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (B, C, h, w), radius 3 sigma, replicate padding."""
    r = int(3 * sigma)
    g = torch.exp(-((torch.arange(-r, r + 1, dtype=x.dtype, device=x.device) / sigma) ** 2) / 2)
    g = g / g.sum()
    c = x.shape[1]
    x = F.pad(x, (r, r, r, r), mode="replicate")
    x = F.conv2d(x, g.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, g.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def color_fix(y: torch.Tensor, x: torch.Tensor, scale: int) -> torch.Tensor:
    """Give the upscaled y (1, C, h*s, w*s) the low-frequency color of its input x (1, C, h, w).

    The difference between the blurred input and the blurred, area-downscaled output is upscaled and added: detail
    stays the model's, color casts and brightness drift (a common complaint about GAN upscalers) go.
    """
    diff = _blur(x.float(), COLOR_FIX_SIGMA) - _blur(F.avg_pool2d(y.float(), scale), COLOR_FIX_SIGMA)
    return y + F.interpolate(diff, scale_factor=scale, mode="bilinear", align_corners=False).to(y.dtype)


def upscale_picture(
    model: nn.Module,
    pic: Picture,
    scale: int,
    *,
    device: torch.device,
    dtype: torch.dtype = torch.float32,
    tile: int = 0,
    fix_color: bool = False,
    on_tile: Callable[[int, int], None] | None = None,
) -> Picture:
    """Upscale a Picture by the model's native `scale`, tile by tile. tile=0 picks a size for the device.

    Keeps gray as gray, alpha as alpha, the bit depth, and the metadata. On CUDA an out-of-memory error halves the
    tile and starts over. fix_color=True restores the input's low-frequency color (see color_fix).
    on_tile(done, total) reports progress.
    """
    tile = tile or auto_tile(model, device, dtype)
    while True:
        try:
            return _upscale_tiled(model, pic, scale, device, dtype, tile, on_tile, fix_color)
        except torch.cuda.OutOfMemoryError:
            if tile <= 32:
                raise
            torch.cuda.empty_cache()
            tile //= 2


def _upscale_tiled(model, pic, scale, device, dtype, tile, on_tile, fix_color=False) -> Picture:
    h, w, c = pic.pixels.shape
    margin = receptive_radius(model) + 1 + (COLOR_FIX_RADIUS if fix_color else 0)
    out = np.empty((h * scale, w * scale, c), dtype=pic.pixels.dtype)
    out_alpha = None if pic.alpha is None else np.empty((h * scale, w * scale), dtype=pic.alpha.dtype)
    ys, xs = range(0, h, tile), range(0, w, tile)
    total, done = len(ys) * len(xs), 0
    for y0 in ys:
        for x0 in xs:
            y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
            wy0, wx0 = max(0, y0 - margin), max(0, x0 - margin)
            wy1, wx1 = min(h, y1 + margin), min(w, x1 + margin)
            rgb = _to_float(pic.pixels[wy0:wy1, wx0:wx1], device, dtype)
            alpha = None if pic.alpha is None else _to_float(pic.alpha[wy0:wy1, wx0:wx1, None], device, dtype)
            y, ya = _run_tile(model, rgb, alpha)
            if fix_color:
                y = color_fix(y, rgb, scale)
            cy, cx = (y0 - wy0) * scale, (x0 - wx0) * scale
            ch, cw = (y1 - y0) * scale, (x1 - x0) * scale
            out_rows, out_cols = slice(y0 * scale, y1 * scale), slice(x0 * scale, x1 * scale)
            out[out_rows, out_cols] = _to_uint(y[..., cy : cy + ch, cx : cx + cw], out.dtype)
            if out_alpha is not None:
                a = _to_uint(ya[..., cy : cy + ch, cx : cx + cw], out_alpha.dtype)
                out_alpha[out_rows, out_cols] = a[..., 0]
            done += 1
            if on_tile:
                on_tile(done, total)
    return Picture(out, out_alpha, icc_profile=pic.icc_profile, exif=pic.exif, dpi=pic.dpi,
                   source_format=pic.source_format)
