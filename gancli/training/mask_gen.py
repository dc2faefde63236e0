"""Random free-form masks for inpainting training (True = hole), drawn from a numpy Generator so a run resumes exactly.

Four kinds, drawn with the probabilities in KIND_PROBS:
- thin   (0.30): 2-6 irregular strokes, each a random walk of 4-12 segments 10-40 px long, 3-15 px wide, round joints;
- thick  (0.25): 1-4 such strokes of 4-10 segments 15-60 px long, 15-50 px wide;
- boxes  (0.20): 1-3 rectangles, each side 10-50 % of the image's side;
- mixed  (0.25): 1-4 thin strokes plus 1-3 thick strokes (3-8 segments), 1-3 boxes, or both (1/3 each).
Lengths and widths are for a 256 px image and scale with min(h, w) / 256; box sides scale with each side.
A draw whose hole covers less than 1 % or more than 60 % of the image is redrawn (under one draw in a hundred), so
every mask's hole ratio lies in [0.01, 0.6]; at 256x256 the median is about 17 %, and one mask in five is over 27 %.
Nothing here reads a file: the evaluation masks never enter training.
"""

from __future__ import annotations

import cv2
import numpy as np

KINDS = ("thin", "thick", "boxes", "mixed")
KIND_PROBS = (0.30, 0.25, 0.20, 0.25)
MIN_RATIO, MAX_RATIO = 0.01, 0.6  # a draw outside this hole ratio is redrawn
MAX_DRAWS = 100  # then a centred box of a quarter of the image (never reached in practice)


def random_mask(h: int, w: int, rng: np.random.Generator, kind: str | None = None) -> np.ndarray:
    """An (h, w) bool free-form mask, True = hole; `kind` one of KINDS, or None to draw it (see the module docstring).

    >>> random_mask(256, 256, np.random.default_rng(0)).mean()  # the hole ratio, in [0.01, 0.6]
    """
    return random_mask_and_kind(h, w, rng, kind)[0]


def random_mask_and_kind(h: int, w: int, rng: np.random.Generator,
                         kind: str | None = None) -> tuple[np.ndarray, str]:
    """(mask, kind): random_mask and which of KINDS it drew."""
    if kind is None:
        kind = KINDS[rng.choice(len(KINDS), p=KIND_PROBS)]
    elif kind not in KINDS:
        raise ValueError(f"unknown mask kind {kind!r} (use one of {', '.join(KINDS)})")
    for _ in range(MAX_DRAWS):
        canvas = np.zeros((h, w), dtype=np.uint8)
        _draw(canvas, kind, rng)
        mask = canvas > 0
        if MIN_RATIO <= mask.mean() <= MAX_RATIO:
            return mask, kind
    mask = np.zeros((h, w), dtype=bool)
    mask[h // 4:h - h // 4, w // 4:w - w // 4] = True
    return mask, kind


def batch_masks(n: int, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """(n, h, w) bool: n independent random_mask draws."""
    out = np.empty((n, h, w), dtype=bool)
    for i in range(n):
        out[i] = random_mask(h, w, rng)
    return out


def _draw(canvas: np.ndarray, kind: str, rng: np.random.Generator) -> None:
    if kind == "thin":
        _strokes(canvas, rng, count=(2, 6), segments=(4, 12), length=(10, 40), width=(3, 15))
    elif kind == "thick":
        _strokes(canvas, rng, count=(1, 4), segments=(4, 10), length=(15, 60), width=(15, 50))
    elif kind == "boxes":
        _boxes(canvas, rng)
    else:  # mixed
        _strokes(canvas, rng, count=(1, 4), segments=(4, 12), length=(10, 40), width=(3, 15))
        extra = rng.integers(1, 4)  # 1: thick, 2: boxes, 3: both
        if extra & 1:
            _strokes(canvas, rng, count=(1, 3), segments=(3, 8), length=(15, 60), width=(15, 50))
        if extra & 2:
            _boxes(canvas, rng, count=(1, 3))


def _strokes(canvas: np.ndarray, rng: np.random.Generator, count: tuple[int, int], segments: tuple[int, int],
             length: tuple[float, float], width: tuple[float, float]) -> None:
    """Random walks of straight segments, with a disc at every joint (round joints and ends); sizes at 256 px."""
    h, w = canvas.shape
    scale = min(h, w) / 256
    for _ in range(rng.integers(count[0], count[1] + 1)):
        thickness = max(1, round(rng.uniform(*width) * scale))
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        angle = rng.uniform(0, 2 * np.pi)
        points = [(x, y)]
        for _ in range(rng.integers(segments[0], segments[1] + 1)):
            angle += rng.normal(0, 0.9)  # mostly smooth, sometimes a sharp turn
            step = rng.uniform(*length) * scale
            nx, ny = x + step * np.cos(angle), y + step * np.sin(angle)
            if not (0 <= nx < w and 0 <= ny < h):  # turn back at the edge
                angle += np.pi
                nx, ny = np.clip(nx, 0, w - 1), np.clip(ny, 0, h - 1)
            x, y = nx, ny
            points.append((x, y))
        pts = [(int(round(px)), int(round(py))) for px, py in points]
        for a, b in zip(pts[:-1], pts[1:], strict=True):
            cv2.line(canvas, a, b, 255, thickness, lineType=cv2.LINE_8)
        for p in pts:
            cv2.circle(canvas, p, thickness // 2, 255, -1, lineType=cv2.LINE_8)


def _boxes(canvas: np.ndarray, rng: np.random.Generator, count: tuple[int, int] = (1, 3)) -> None:
    """Axis-aligned rectangles, each side 10-50 % of the image's side, anywhere inside the image."""
    h, w = canvas.shape
    for _ in range(rng.integers(count[0], count[1] + 1)):
        bw = max(1, round(rng.uniform(0.1, 0.5) * w))
        bh = max(1, round(rng.uniform(0.1, 0.5) * h))
        x = rng.integers(0, w - bw + 1)
        y = rng.integers(0, h - bh + 1)
        canvas[y:y + bh, x:x + bw] = 255
