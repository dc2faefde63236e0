"""Whole-image data sets for GAN training (the sample task): folders, .npz arrays and MNIST-style idx files.

Sources (one or more `--data`):
  - a folder of images; when every image sits in a sub-folder and there are at least two sub-folders, the
    sub-folder names are the classes (class-conditional training);
  - a list file (one image path a line, as for the other tasks);
  - an .npz file with `x_train` (N, H, W[, C]) uint8 and optionally `y_train` (N,) integer labels (the test split of
    the file is left alone: it is for evaluation);
  - a folder with `train-images-idx3-ubyte[.gz]` and `train-labels-idx1-ubyte[.gz]` (MNIST, Fashion-MNIST).
Images are brought to `size` x `size`: "crop" scales the shorter side to `size` and cuts the centre, "pad" scales
the longer side to `size` and pads (transparent for RGBA, black otherwise). The channel count follows the data:
1 when every image is gray, 4 when any has alpha, else 3.
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gancli import imageio
from gancli.training.data import list_images


@dataclass
class ImageSet:
    images: np.ndarray  # (N, size, size, C) uint8
    labels: np.ndarray | None  # (N,) int64, or None for unconditional data
    classes: list[str]  # class names (empty when unconditional)
    skipped: list[str]

    @property
    def channels(self) -> int:
        return self.images.shape[3]


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte idx file")
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _find(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def _fit(img: np.ndarray, size: int, fit: str) -> np.ndarray:
    """(h, w, C) uint8 -> (size, size, C) by centre crop or pad (see module docstring)."""
    h, w, c = img.shape
    if (h, w) == (size, size):
        return img
    if fit == "pad" and max(h, w) <= size:  # small images (e.g. 28x28 digits in 32x32) are padded, not scaled
        scaled = img
    else:
        f = size / (min(h, w) if fit == "crop" else max(h, w))
        new = (max(1, round(w * f)), max(1, round(h * f)))
        pic = imageio.resize(imageio.Picture(img[..., :3] if c == 4 else img, img[..., 3] if c == 4 else None), new)
        scaled = pic.pixels if pic.alpha is None else np.concatenate([pic.pixels, pic.alpha[..., None]], axis=-1)
    h, w = scaled.shape[:2]
    if fit == "crop":
        y, x = (h - size) // 2, (w - size) // 2
        return scaled[y : y + size, x : x + size]
    out = np.zeros((size, size, c), np.uint8)
    y, x = (size - h) // 2, (size - w) // 2
    out[y : y + h, x : x + w] = scaled
    return out


def _from_arrays(x: np.ndarray, y: np.ndarray | None, size: int, fit: str) -> tuple[np.ndarray, np.ndarray | None]:
    if x.ndim == 3:
        x = x[..., None]
    return np.stack([_fit(a, size, fit) for a in x]), (None if y is None else y.astype(np.int64))


def load_image_set(sources: list[str], size: int, fit: str = "crop") -> ImageSet:
    if fit not in ("crop", "pad"):
        raise ValueError(f"fit must be crop or pad, got {fit!r}")
    arrays, labels, classes, skipped = [], [], [], []
    conditional: bool | None = None
    for src in map(Path, sources):
        arrays_xy = None
        if src.suffix == ".npz":
            with np.load(src) as z:
                if "x_train" not in z:
                    raise ValueError(f"{src}: an .npz data set needs an x_train array")
                arrays_xy = z["x_train"], (z["y_train"] if "y_train" in z else None)
        elif src.is_dir() and _find(src, "train-images-idx3-ubyte"):
            lab = _find(src, "train-labels-idx1-ubyte")
            arrays_xy = _read_idx(_find(src, "train-images-idx3-ubyte")), (_read_idx(lab) if lab else None)
        if arrays_xy is not None:  # arrays with integer labels 0..K-1 (or none)
            x, y = _from_arrays(*arrays_xy, size, fit)
            arrays.append(x)
            labels.append(y)
            conditional = (y is not None) if conditional is None else conditional and y is not None
            if y is not None and not classes:
                classes = [str(i) for i in range(int(y.max()) + 1)]
            continue
        files = list_images([src])
        subdirs = sorted({f.relative_to(src).parts[0] for f in files if len(f.relative_to(src).parts) > 1}) \
            if src.is_dir() else []
        by_class = src.is_dir() and len(subdirs) >= 2 and all(len(f.relative_to(src).parts) > 1 for f in files)
        imgs, ys = [], []
        for f in files:
            try:
                pic = imageio.load(f)
            except imageio.ImageReadError as e:
                skipped.append(f"{f} ({str(e).splitlines()[0]})")
                continue
            px = pic.pixels if pic.bit_depth == 8 else (pic.pixels >> 8).astype(np.uint8)
            a = pic.alpha if pic.alpha is None or pic.bit_depth == 8 else (pic.alpha >> 8).astype(np.uint8)
            img = px if a is None else np.concatenate([np.repeat(px, 3, axis=2) if px.shape[2] == 1 else px,
                                                       a[..., None]], axis=-1)
            imgs.append(img)
            if by_class:
                cls = f.relative_to(src).parts[0]
                if cls not in classes:
                    classes.append(cls)
                ys.append(classes.index(cls))
        if imgs:
            channels = max(i.shape[2] for i in imgs)  # alpha first, so padding is transparent
            arrays.append(np.stack([_fit(_to_channels(i, channels), size, fit) for i in imgs]))
            labels.append(np.array(ys, np.int64) if by_class else None)
            conditional = by_class if conditional is None else conditional and by_class
    if not arrays:
        raise ValueError(f"no usable images in {', '.join(sources)}")
    channels = max(a.shape[3] for a in arrays)
    images = np.concatenate([_to_channels_batch(a, channels) for a in arrays])
    lab = np.concatenate(labels) if conditional else None
    return ImageSet(images, lab, classes if conditional else [], skipped)


def _to_channels(img: np.ndarray, c: int) -> np.ndarray:
    return _to_channels_batch(img[None], c)[0]


def _to_channels_batch(x: np.ndarray, c: int) -> np.ndarray:
    """(N, H, W, c0) -> (N, H, W, c): gray to RGB by repetition, an opaque alpha added where missing."""
    have = x.shape[3]
    if have == c:
        return x
    if have == 1:
        x = np.repeat(x, 3, axis=3)
    if c == 4 and x.shape[3] == 3:
        x = np.concatenate([x, np.full(x.shape[:3] + (1,), 255, np.uint8)], axis=3)
    return x


def split_holdout(n: int, count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, held out): `count` images picked by a fixed permutation, for in-run evaluation."""
    perm = np.random.default_rng((seed, 77)).permutation(n)
    count = min(count, n // 5)
    return np.sort(perm[count:]), np.sort(perm[:count])
