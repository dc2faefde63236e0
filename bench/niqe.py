"""NIQE (Mittal et al., 2013), the no-reference naturalness score: lower is more natural.

The implementation and the pristine-image model are scikit-video's (`skvideo.measure.niqe` and its
`niqe_image_params.mat`, BSD-3). scikit-video 1.1.11 no longer runs on current NumPy/SciPy: it calls
`scipy.misc.imresize` (removed in SciPy 1.3) and `np.int` (removed in NumPy 1.24). This module puts both back,
each exactly as it behaved (imresize with mode "F" resized a float image through Pillow with the named filter;
np.int was int), and calls scikit-video unchanged. Needs `pip install scikit-video scipy`.

scikit-video's NIQE is not bit-compatible with the MATLAB reference (its feature extraction differs in details), so
its numbers compare methods with each other in one table; they are not comparable with NIQE values in papers.
It needs grayscale images larger than 192x192 (it works on 96x96 patches at two scales).
"""

from __future__ import annotations

import warnings

import numpy as np
from PIL import Image


def _imresize(arr, size, interp="bicubic", mode="F"):
    """scipy.misc.imresize as scikit-video uses it: a float32 image scaled by `size` with Pillow's filter."""
    assert mode == "F" and isinstance(size, float), "only the call scikit-video makes is supported"
    filters = {"nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR,
               "bicubic": Image.Resampling.BICUBIC}
    im = Image.fromarray(np.asarray(arr, np.float32), mode="F")
    w, h = (np.array(im.size) * size).astype(int)
    return np.asarray(im.resize((int(w), int(h)), filters[interp]))


def _patch() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import scipy.misc
    scipy.misc.imresize = _imresize
    if not hasattr(np, "int"):
        np.int = int


def niqe(rgb: np.ndarray) -> float:
    """NIQE of an RGB uint8 (H, W, 3) image (on its luma, ITU-R 601 like Pillow's "L")."""
    _patch()
    try:
        import skvideo.measure
    except ImportError as e:
        raise SystemExit("NIQE needs: pip install scikit-video scipy") from e
    gray = np.asarray(Image.fromarray(rgb).convert("L"), np.float32)
    return float(skvideo.measure.niqe(gray)[0])
