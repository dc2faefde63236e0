"""Training data: images held in memory as uint8, random patches cut on the fly, with a resumable RNG."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from gancli import imageio


def list_images(sources: list[str | Path]) -> list[Path]:
    """Every image file under the given folders (recursive, hidden files skipped), or named in list files (one path
    a line, relative to the list file; '#' starts a comment). Sorted and de-duplicated, so runs are reproducible."""
    files: set[Path] = set()
    for src in sources:
        src = Path(src)
        if src.is_dir():
            files.update(p for p in src.rglob("*") if p.is_file() and not p.name.startswith(".")
                         and p.suffix.lower() in imageio.IMAGE_SUFFIXES)
        elif src.is_file():
            for line in src.read_text().splitlines():
                line = line.split("#", 1)[0].strip()
                if line:
                    p = Path(line) if Path(line).is_absolute() else src.parent / line
                    if not p.is_file():
                        raise FileNotFoundError(f"{src}: listed image {line} does not exist")
                    files.add(p)
        else:
            raise FileNotFoundError(f"data folder {src} does not exist")
    return sorted(files)


def split_validation(files: list[Path], count: int) -> tuple[list[Path], list[Path]]:
    """Hold out `count` files spread evenly over the sorted list: (train, val). Never the benchmark sets."""
    if count <= 0 or len(files) < 2 * count:
        return files, []
    step = len(files) / count
    val_idx = {int(i * step + step / 2) for i in range(count)}
    return [f for i, f in enumerate(files) if i not in val_idx], [f for i, f in enumerate(files) if i in val_idx]


class PatchSampler:
    """Random (HR patch) batches from in-memory images.

    Images whose shorter side is at least `halve_above` pixels are downscaled by 2 on load (it removes the JPEG noise
    of large photos). Images are drawn with probability proportional to sqrt(area): large photos give more patches
    but do not drown small ones. Patches get a random flip and 90-degree rotation.
    """

    def __init__(self, files: list[Path], patch: int, seed: int, halve_above: int = 800, warn=None) -> None:
        self.patch = patch
        self.images: list[np.ndarray] = []
        self.skipped: list[str] = []  # files that failed to decode or are smaller than a patch
        for f in files:
            try:
                img = imageio.read_rgb_array(f, halve_above=halve_above)
            except Exception as e:  # noqa: BLE001 - Pillow raises many types for broken files; skip, count, say
                self.skipped.append(f"{f} (unreadable: {str(e).splitlines()[0] if str(e) else type(e).__name__})")
                continue
            if min(img.shape[:2]) >= patch:
                self.images.append(img)
            else:
                self.skipped.append(f"{f} (smaller than the {patch}x{patch} patch)")
        if warn and self.skipped:
            warn(f"skipped {len(self.skipped)} of {len(files)} training images: " + "; ".join(self.skipped[:5])
                 + (" ..." if len(self.skipped) > 5 else ""))
        if not self.images:
            raise ValueError(f"no usable training image among {len(files)} files (each must decode and be at least"
                             f" {patch}x{patch} pixels)")
        w = np.array([math.sqrt(i.shape[0] * i.shape[1]) for i in self.images])
        self.weights = w / w.sum()
        self.rng = np.random.default_rng(seed)

    @property
    def pixels(self) -> int:
        return sum(i.shape[0] * i.shape[1] for i in self.images)

    def batch(self, n: int) -> torch.Tensor:
        """(n, 3, patch, patch) float32 in [0, 1]."""
        p = self.patch
        out = np.empty((n, p, p, 3), dtype=np.uint8)
        idx = self.rng.choice(len(self.images), size=n, p=self.weights)
        for j, i in enumerate(idx):
            img = self.images[i]
            y = self.rng.integers(0, img.shape[0] - p + 1)
            x = self.rng.integers(0, img.shape[1] - p + 1)
            crop = img[y : y + p, x : x + p]
            k = int(self.rng.integers(0, 8))
            if k & 4:
                crop = crop[:, ::-1]
            out[j] = np.rot90(crop, k & 3)
        return torch.from_numpy(out).permute(0, 3, 1, 2).float().div_(255)

    def state_dict(self) -> dict:
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
