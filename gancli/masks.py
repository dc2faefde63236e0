"""Inpainting masks: where each input image gets its hole from, and the mask as a bool array (True = hole).

A mask comes from a mask file (`--mask FILE`, one for every image), a folder of masks matched by file name
(`--mask DIR`), the image's own transparency (`--mask-from-alpha`) or rectangles (`--box x,y,w,h`, repeatable, also
added to a mask file's or the alpha's hole). `resolve_masks` checks the whole command line up front and gives one
`MaskSource` per image; `MaskSource.load(picture)` builds that image's mask only when the image is processed, in this
order: threshold (and invert) the mask file or the alpha, fit it to the image size, add the boxes, dilate.

Every problem raises `MaskError`, one line that names the file(s) involved.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gancli import imageio

Box = tuple[int, int, int, int]  # x, y, width, height in image pixels; (x, y) is the top-left corner
MASK_SUFFIXES = ("", "_mask", "-mask")  # --mask DIR: for image STEM.EXT, the mask is STEM{one of these}.<image suffix>


class MaskError(ValueError):
    """A mask that cannot be made: a bad option, a missing or unreadable mask file, a size mismatch, ..."""


# ------------------------------------------------------------------------------------------------ mask from pixels


def _cut(threshold: int, dtype: np.dtype) -> int:
    """The 0..255 threshold on the pixels' own scale: for 16 bits, value > cut exactly when round(value / 257) > t."""
    if not (isinstance(threshold, (int, np.integer)) and 0 <= threshold <= 255):
        raise MaskError(f"mask threshold must be a whole number from 0 to 255, got {threshold!r}")
    return int(threshold) * 257 + 128 if dtype == np.uint16 else int(threshold)


def mask_from_picture(pic: imageio.Picture, threshold: int = 127, invert: bool = False) -> np.ndarray:
    """A mask image -> (H, W) bool, True = hole: the pixels brighter than `threshold` (0..255, also for 16-bit files).

    - gray: hole where value > threshold. Palette and 1-bit files arrive from imageio as RGB or gray.
    - color: a pixel is a hole when ANY channel is on the hole side, i.e. the max over channels > threshold (with
      invert: the min over channels <= threshold). So a red or blue stroke counts as well as a white one, on black
      (or, with invert, on white); luminance would miss a pure blue stroke (its luminance is 29).
    - with alpha, when the visible pixels (alpha > 0) all have the same color and the alpha varies, the alpha IS the
      mask (a brush layer exported by an editor): hole where alpha > threshold, i.e. painted = hole.
      Otherwise the color is composited over the no-hole color (black, or white with invert) before the rule above:
      a transparent pixel is never a hole.
    - invert=True: the dark pixels are the hole; for gray masks and for the alpha rule it flips the result exactly.

    >>> mask_from_picture(imageio.load("mask.png")).mean()  # the hole's share of the image
    """
    pixels, alpha = pic.pixels, pic.alpha  # (H, W, C) uint8/uint16; (H, W) or None
    cut = _cut(threshold, pixels.dtype)
    top = 65535 if pixels.dtype == np.uint16 else 255
    if alpha is not None and alpha.min() != alpha.max() and _uniform(pixels[alpha > 0]):
        hole = alpha > cut
        return ~hole if invert else hole
    value = pixels.min(axis=2) if invert else pixels.max(axis=2)  # (H, W)
    if alpha is not None and alpha.min() < top:
        a = alpha.astype(np.float32) / top
        value = value * a + (top if invert else 0) * (1 - a)
    return value <= cut if invert else value > cut


def _uniform(colors: np.ndarray) -> bool:
    """(N, C): all rows equal."""
    return bool((colors == colors[:1]).all())


def mask_from_alpha(pic: imageio.Picture, threshold: int = 127, name: str = "image") -> np.ndarray:
    """The transparent part of an image as its hole: (H, W) bool, True where alpha <= threshold (0..255 scale).

    The default 127 makes every pixel under half opacity (alpha < 128) a hole. An image without alpha is a MaskError.
    """
    if pic.alpha is None:
        raise MaskError(f"{name}: has no alpha channel (--mask-from-alpha needs a transparent hole; "
                        "give --mask or --box instead)")
    return pic.alpha <= _cut(threshold, pic.alpha.dtype)


# ----------------------------------------------------------------------------------------------------------- boxes


def parse_box(text: str) -> Box:
    """'x,y,w,h' -> (x, y, w, h): whole numbers, x, y >= 0 and w, h > 0. E.g. parse_box("10,20,64,48")."""
    parts = [p.strip() for p in str(text).split(",")]
    try:
        if len(parts) != 4:
            raise ValueError
        x, y, w, h = (int(p) for p in parts)
    except ValueError:
        raise MaskError(f"--box {text!r}: expected x,y,w,h as four whole numbers, e.g. --box 10,20,64,48") from None
    if x < 0 or y < 0 or w <= 0 or h <= 0:
        raise MaskError(f"--box {text!r}: x and y must be >= 0, width and height > 0")
    return x, y, w, h


def boxes_mask(size: tuple[int, int], boxes: Sequence[Box | str], name: str = "image") -> np.ndarray:
    """(H, W) bool with the boxes as hole; size is the image's (width, height).

    A box partly outside the image is clipped to it; a box wholly outside is a MaskError.
    """
    width, height = size
    mask = np.zeros((height, width), dtype=bool)
    for box in boxes:
        x, y, w, h = parse_box(box) if isinstance(box, str) else box
        if x >= width or y >= height:
            raise MaskError(f"{name}: --box {x},{y},{w},{h} lies outside the {width}x{height} image")
        mask[y:y + h, x:x + w] = True
    return mask


# ---------------------------------------------------------------------------------------------------- size, growth


def fit_mask(mask: np.ndarray, size: tuple[int, int], resize: bool = False, mask_name: str = "mask",
             image_name: str = "image") -> np.ndarray:
    """Check that an (h, w) mask fits an image of size (width, height); resize=True stretches it (nearest neighbour)."""
    width, height = size
    mh, mw = mask.shape
    if (mw, mh) == (width, height):
        return mask
    if not resize:
        raise MaskError(f"mask {mask_name} is {mw}x{mh} but image {image_name} is {width}x{height}; "
                        "give --resize-mask to stretch the mask to the image")
    rows = np.minimum(((np.arange(height) + 0.5) * mh / height).astype(np.intp), mh - 1)  # source pixel centres
    cols = np.minimum(((np.arange(width) + 0.5) * mw / width).astype(np.intp), mw - 1)
    return mask[rows[:, None], cols[None, :]]


def dilate(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Grow the hole by `pixels` in every direction, with a regular octagon (the nearest to a disc that is cheap).

    Exactly `pixels` along the axes, about `pixels` along the diagonals: the octagon lies between the discs of radius
    `pixels` and 1.08 * `pixels`. It is a square of half-side s = round(0.414 * pixels) grown by a diamond of radius
    pixels - s, each built from a few shifted ORs whose step doubles: O(H * W * log(pixels)), about 0.3 s for a
    4000x3000 mask grown by 50 pixels.
    """
    if pixels < 0:
        raise MaskError(f"mask dilation must be >= 0 pixels, got {pixels}")
    if pixels == 0 or not mask.any():
        return mask.copy()
    height, width = mask.shape
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1  # the hole's bounding box
    pad = pixels
    work = np.zeros((y1 - y0 + 2 * pad, x1 - x0 + 2 * pad), dtype=bool)  # room to grow past the image's edges too
    work[pad:-pad, pad:-pad] = mask[y0:y1, x0:x1]
    square = round(pixels * (math.sqrt(2) - 1))
    work = _grow_diamond(work, pixels - square)
    work = _grow_square(work, square)
    out = np.zeros_like(mask)
    oy0, ox0 = max(y0 - pad, 0), max(x0 - pad, 0)
    oy1, ox1 = min(y1 + pad, height), min(x1 + pad, width)
    out[oy0:oy1, ox0:ox1] = work[oy0 - (y0 - pad):oy1 - (y0 - pad), ox0 - (x0 - pad):ox1 - (x0 - pad)]
    return out


def _shift_or(src: np.ndarray, out: np.ndarray, step: int, axis: int) -> None:
    """out |= src shifted by +step and by -step along axis (in place)."""
    if step >= src.shape[axis]:
        return
    if axis == 0:
        out[step:] |= src[:-step]
        out[:-step] |= src[step:]
    else:
        out[:, step:] |= src[:, :-step]
        out[:, :-step] |= src[:, step:]


def _grow_square(mask: np.ndarray, radius: int) -> np.ndarray:
    """Dilate by the (2r+1)^2 square: per axis, a segment of half-length a plus the points {-d, 0, d} with d <= 2a+1
    is the segment of half-length a+d, so a = 0, 1, 4, 13, 40, ..."""
    for axis in (0, 1):
        done = 0
        while done < radius:
            step = min(2 * done + 1, radius - done)
            grown = mask.copy()
            _shift_or(mask, grown, step, axis)
            mask, done = grown, done + step
    return mask


def _grow_diamond(mask: np.ndarray, radius: int) -> np.ndarray:
    """Dilate by the diamond |dx| + |dy| <= r: a diamond of radius a plus the 5 points {0, (+-d, 0), (0, +-d)} with
    d <= a+1 is the diamond of radius a+d, so a = 0, 1, 3, 7, 15, ..."""
    done = 0
    while done < radius:
        step = min(done + 1, radius - done)
        grown = mask.copy()
        _shift_or(mask, grown, step, 0)
        _shift_or(mask, grown, step, 1)
        mask, done = grown, done + step
    return mask


def is_empty(mask: np.ndarray) -> bool:
    """True when the mask has no hole pixel (the image can be copied through unchanged)."""
    return not mask.any()


# --------------------------------------------------------------------------------------------- one source per image


@dataclass
class MaskSource:
    """How one input image gets its mask. Nothing is read until `load`."""

    image: str  # the input image, as given
    mask_file: str | None = None  # a mask image to threshold, or None
    from_alpha: bool = False  # the image's own alpha: transparent = hole
    boxes: tuple[Box, ...] = ()  # added to the hole
    threshold: int = 127  # 0..255, for the mask file and the alpha
    invert: bool = False  # flip the mask file's (or the alpha's) hole; boxes are always holes
    dilate: int = 0  # grow the final hole by this many pixels
    resize: bool = False  # stretch a mask file of another size to the image (nearest neighbour)
    max_pixels: int = imageio.DEFAULT_MAX_PIXELS
    cache: dict | None = field(default=None, repr=False, compare=False)  # shared by all images of one --mask FILE

    @property
    def label(self) -> str:
        """A short description for reports, e.g. 'masks/photo.png + 2 boxes'."""
        parts = [self.mask_file] if self.mask_file else ["alpha"] if self.from_alpha else []
        if self.boxes:
            parts.append(f"{len(self.boxes)} box{'es' if len(self.boxes) > 1 else ''}")
        return " + ".join(parts)

    def load(self, image: imageio.Picture) -> np.ndarray:
        """The final (H, W) bool mask for `image` (this source's input, already loaded), True = hole."""
        if self.mask_file is not None:
            mask = self._read_mask_file()
            mask = fit_mask(mask, image.size, self.resize, mask_name=self.mask_file, image_name=self.image)
        elif self.from_alpha:
            mask = mask_from_alpha(image, self.threshold, name=self.image)
            mask = ~mask if self.invert else mask
        else:
            mask = np.zeros((image.size[1], image.size[0]), dtype=bool)
        if self.boxes:
            mask = mask | boxes_mask(image.size, self.boxes, name=self.image)
        return dilate(mask, self.dilate) if self.dilate else mask

    def _read_mask_file(self) -> np.ndarray:
        if self.cache is not None and self.mask_file in self.cache:
            return self.cache[self.mask_file].copy()  # the caller may write into its mask
        try:
            pic = imageio.load(self.mask_file, max_pixels=self.max_pixels)
        except imageio.ImageReadError as e:
            raise MaskError(f"mask {e}") from None
        mask = mask_from_picture(pic, self.threshold, self.invert)
        if self.cache is not None:
            self.cache[self.mask_file] = mask.copy()
        return mask


def resolve_masks(images: list[str], mask: str | None = None, from_alpha: bool = False, boxes: Sequence[str] = (),
                  *, threshold: int = 127, invert: bool = False, dilate: int = 0, resize: bool = False,
                  max_pixels: int = imageio.DEFAULT_MAX_PIXELS) -> list[MaskSource]:
    """One MaskSource per input image, from the command line's mask options; every usage problem is a MaskError.

    mask: a file (the mask of every image) or a folder, where the mask of image `a/b/photo.jpg` is the one file among
    `photo.*`, `photo_mask.*` and `photo-mask.*` (any image suffix, in either case). Zero or two matching files are
    errors, reported for all images in one message. An image never serves as its own mask (masks may sit beside
    their images in the same folder). from_alpha: each image's transparency. boxes: 'x,y,w,h' strings, added to the
    hole of the mask or the alpha, or the only hole when neither is given.
    A single mask file is read here (a broken one fails before any work); folder masks are read image by image.
    """
    if mask is None and not from_alpha and not boxes:
        raise MaskError("give --mask, --mask-from-alpha or --box")
    if mask is not None and from_alpha:
        raise MaskError("give --mask or --mask-from-alpha, not both")
    if invert and mask is None and not from_alpha:
        raise MaskError("invert needs --mask or --mask-from-alpha (boxes are always holes)")
    _cut(threshold, np.dtype(np.uint8))
    if dilate < 0:
        raise MaskError(f"mask dilation must be >= 0 pixels, got {dilate}")
    parsed = tuple(parse_box(b) for b in boxes)
    common = dict(from_alpha=from_alpha, boxes=parsed, threshold=threshold, invert=invert, dilate=dilate,
                  resize=resize, max_pixels=max_pixels)
    if mask is None:
        return [MaskSource(image, **common) for image in images]
    path = Path(mask)
    if path.is_dir():
        found = _match_folder(images, path)
        return [MaskSource(image, mask_file=f, **common) for image, f in zip(images, found, strict=True)]
    if not path.exists():
        raise MaskError(f"--mask {mask}: no such file or folder")
    real = os.path.realpath(mask)
    if any(image != imageio.STDIO and os.path.realpath(image) == real for image in images):
        raise MaskError(f"--mask {mask} is also one of the input images")
    cache: dict = {}
    sources = [MaskSource(image, mask_file=mask, cache=cache, **common) for image in images]
    if sources:
        sources[0]._read_mask_file()  # fail now, once, rather than once per image
    return sources


def _match_folder(images: list[str], folder: Path) -> list[str]:
    """The mask file of each image in `folder`, matched by stem (see resolve_masks)."""
    if imageio.STDIO in images:
        raise MaskError(f"stdin has no file name to match a mask in {folder}/; give --mask FILE")
    by_stem: dict[str, list[Path]] = {}
    for f in sorted(folder.iterdir()):
        if f.is_file() and not f.name.startswith(".") and f.suffix.lower() in imageio.IMAGE_SUFFIXES:
            by_stem.setdefault(f.stem, []).append(f)
    if not by_stem:
        raise MaskError(f"--mask folder {folder}/ has no images ({', '.join(sorted(imageio.IMAGE_SUFFIXES))})")
    found, missing, ambiguous = [], [], []
    for image in images:
        stem, real = Path(image).stem, os.path.realpath(image)
        candidates = [str(f) for suffix in MASK_SUFFIXES for f in by_stem.get(stem + suffix, [])
                      if os.path.realpath(f) != real]
        if not candidates:
            missing.append(image)
        elif len(candidates) > 1:
            ambiguous.append(f"{image} matches {len(candidates)} masks ({', '.join(candidates)})")
        found.append(candidates[0] if len(candidates) == 1 else "")
    problems = []
    if missing:
        named = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        problems.append(f"no mask in {folder}/ for {len(missing)} image{'s' if len(missing) > 1 else ''}: "
                        f"{named} (looked for STEM.*, STEM_mask.*, STEM-mask.*)")
    problems += ambiguous[:10] + ([f"{len(ambiguous) - 10} more ambiguous"] if len(ambiguous) > 10 else [])
    if problems:
        raise MaskError("; ".join(problems))
    return found
