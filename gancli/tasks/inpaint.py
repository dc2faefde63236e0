"""Inpainting of whole images of any size: the model runs on the region around each hole, not on the whole image.

Holes are grouped by connected components whose context windows overlap; each group's window (the holes' bounding
box plus a margin of context, at least `min_context` pixels a side when the image allows) is run through the model,
downscaled first if its longer side exceeds `work_size` (the scale the model was trained at) and the result upscaled
back. Only hole pixels are written into a copy of the input: every pixel outside the hole is returned bit-exact, in
the input's dtype (8 or 16 bits), gray stays gray, alpha is kept (and made opaque inside the hole when the hole came
from transparency). A 4000x3000 photo with a small hole costs what a small image with that hole costs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gancli.imageio import Picture

# Longest side of a window the model sees; larger windows are downscaled to it. Full resolution beats downscaling
# (bench/inpaint_quality.py --work-size): this only bounds time and memory for very large holes.
WORK_SIZE = 1024
MIN_CONTEXT = 256  # a window is grown to at least this side (image permitting) so the model sees the scene


@dataclass
class Window:
    y0: int
    x0: int
    y1: int
    x1: int

    def overlaps(self, o: Window) -> bool:
        return self.y0 < o.y1 and o.y0 < self.y1 and self.x0 < o.x1 and o.x0 < self.x1

    def union(self, o: Window) -> Window:
        return Window(min(self.y0, o.y0), min(self.x0, o.x0), max(self.y1, o.y1), max(self.x1, o.x1))


def _context(y0: int, x0: int, y1: int, x1: int, h: int, w: int, min_context: int) -> Window:
    """The hole box (y0, x0, y1, x1) grown by half its size (at least 32 px), to min_context a side, clipped."""

    def grow(a: int, b: int, n: int) -> tuple[int, int]:
        size = b - a
        pad = max(32, size // 2)
        a, b = a - pad, b + pad
        if b - a < min_context:
            extra = min_context - (b - a)
            a, b = a - extra // 2, b + extra - extra // 2
        if a < 0:
            a, b = 0, b - a
        if b > n:
            a, b = a - (b - n), n
        return max(0, a), min(n, b)

    (wy0, wy1), (wx0, wx1) = grow(y0, y1, h), grow(x0, x1, w)
    return Window(wy0, wx0, wy1, wx1)


def hole_windows(mask: np.ndarray, min_context: int = MIN_CONTEXT) -> list[Window]:
    """Context windows covering every hole pixel of mask (H, W) bool; overlapping windows are merged."""
    import cv2

    h, w = mask.shape
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    windows = []
    for i in range(1, count):
        x, y, bw, bh = stats[i, :4]
        windows.append(_context(int(y), int(x), int(y + bh), int(x + bw), h, w, min_context))
    merged = True
    while merged:  # merge until no two windows overlap (few windows: quadratic is fine)
        merged = False
        out: list[Window] = []
        for win in windows:
            for j, o in enumerate(out):
                if win.overlaps(o):
                    out[j], merged = o.union(win), True
                    break
            else:
                out.append(win)
        windows = out
    return windows


def _to_float(a: np.ndarray, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    peak = 65535.0 if a.dtype == np.uint16 else 255.0
    t = torch.from_numpy(np.ascontiguousarray(a).astype(np.float32) / peak).permute(2, 0, 1)[None]
    if t.shape[1] == 1:
        t = t.expand(-1, 3, -1, -1)
    return t.to(device=device, dtype=dtype)


@torch.no_grad()
def _fill_window(model: nn.Module, rgb: np.ndarray, hole: np.ndarray, device: torch.device, dtype: torch.dtype,
                 work_size: int) -> np.ndarray:
    """Generated pixels for a window: rgb (h, w, C) uint8/uint16, hole (h, w) bool -> (h, w, C) same dtype."""
    h, w = hole.shape
    x = _to_float(rgb, device, dtype)
    m = torch.from_numpy(hole.astype(np.float32))[None, None].to(device=device, dtype=dtype)
    scale = min(1.0, work_size / max(h, w))
    if scale < 1:
        size = (max(8, round(h * scale)), max(8, round(w * scale)))
        xs = F.interpolate(x, size=size, mode="area")
        ms = (F.interpolate(m, size=size, mode="area") > 0).to(dtype)  # any hole pixel makes a small pixel a hole
        out = model(xs.contiguous(memory_format=torch.channels_last), ms.contiguous(memory_format=torch.channels_last))
        out = F.interpolate(out.float(), size=(h, w), mode="bicubic", align_corners=False)
    else:
        out = model(x.contiguous(memory_format=torch.channels_last), m.contiguous(memory_format=torch.channels_last))
    out = out.float().clamp_(0, 1)
    if rgb.shape[2] == 1:
        out = out.mean(dim=1, keepdim=True)
    peak = 65535.0 if rgb.dtype == np.uint16 else 255.0
    return out[0].permute(1, 2, 0).mul_(peak).round_().cpu().numpy().astype(rgb.dtype)


def inpaint_picture(model: nn.Module, pic: Picture, hole: np.ndarray, *, device: torch.device,
                    dtype: torch.dtype = torch.float32, work_size: int = WORK_SIZE, min_context: int = MIN_CONTEXT,
                    opaque_hole: bool = False, on_window: Callable[[int, int], None] | None = None) -> Picture:
    """Fill hole (H, W) bool of pic. Pixels outside the hole come back unchanged (bit-exact).

    opaque_hole: set alpha to opaque inside the hole (the hole was the transparent part of the image).
    on_window(done, total) reports progress.
    """
    h, w = hole.shape
    if (w, h) != pic.size:
        raise ValueError(f"the mask is {w}x{h}, the image {pic.size[0]}x{pic.size[1]}")
    pixels = pic.pixels.copy()
    windows = hole_windows(hole, min_context)
    for i, win in enumerate(windows):
        rows, cols = slice(win.y0, win.y1), slice(win.x0, win.x1)
        sub_hole = hole[rows, cols]
        filled = _fill_window(model, pic.pixels[rows, cols], sub_hole, device, dtype, work_size)
        pixels[rows, cols][sub_hole] = filled[sub_hole]
        if on_window:
            on_window(i + 1, len(windows))
    alpha = pic.alpha
    if alpha is not None and opaque_hole:
        alpha = alpha.copy()
        alpha[hole] = np.iinfo(alpha.dtype).max
    return Picture(pixels, alpha, icc_profile=pic.icc_profile, exif=pic.exif, dpi=pic.dpi,
                   source_format=pic.source_format)
