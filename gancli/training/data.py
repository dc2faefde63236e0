"""Training data: random patches from a set of images, with a resumable position.

Two samplers with one interface (batch(n), state_dict(), load_state_dict(), reseed(seed), images, pixels, skipped):
- PatchSampler holds every image in memory as uint8 and cuts patches in the training process: on a 2-core machine
  this keeps both cores on the model (measured in bench/train_speed.py);
- StreamingPatchSampler, for data sets larger than the memory budget, decodes images in DataLoader worker
  processes, several patches per decoded image; batch k is a pure function of (seed, k), so resuming needs only the
  position.
make_sampler picks one by the data's decoded size.
"""

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


def _report(total: int, usable: int, skipped: list[str], patch: int, warn) -> None:
    """Warn once about skipped images (counted, the first few named); no usable image at all is an error."""
    if warn and skipped:
        warn(f"skipped {len(skipped)} of {total} training images: " + "; ".join(skipped[:5])
             + (" ..." if len(skipped) > 5 else ""))
    if not usable:
        raise ValueError(f"no usable training image among {total} files (each must decode and be at least"
                         f" {patch}x{patch} pixels)")


class PatchSampler:
    """Random (HR patch) batches from in-memory images.

    Images whose shorter side is at least `halve_above` pixels are downscaled by 2 on load (it removes the JPEG noise
    of large photos). Images are drawn with probability proportional to sqrt(area): large photos give more patches
    but do not drown small ones. Patches get a random flip and 90-degree rotation.
    """

    def __init__(self, files: list[Path], patch: int, seed: int, halve_above: int = 800, warn=None,
                 max_short_side: int = 0) -> None:
        self.patch = patch
        self.images: list[np.ndarray] = []
        self.skipped: list[str] = []  # files that failed to decode or are smaller than a patch
        for f in files:
            try:
                img = imageio.read_rgb_array(f, halve_above, max_short_side)
            except Exception as e:  # noqa: BLE001 - Pillow raises many types for broken files; skip, count, say
                self.skipped.append(f"{f} (unreadable: {str(e).splitlines()[0] if str(e) else type(e).__name__})")
                continue
            if min(img.shape[:2]) >= patch:
                self.images.append(img)
            else:
                self.skipped.append(f"{f} (smaller than the {patch}x{patch} patch)")
        _report(len(files), len(self.images), self.skipped, patch, warn)
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

    def reseed(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)


def _augment(crop: np.ndarray, k: int) -> np.ndarray:
    """One of the 8 flips/rotations of a square (p, p, 3) crop."""
    if k & 4:
        crop = crop[:, ::-1]
    return np.rot90(crop, k & 3)


class _BatchDataset(torch.utils.data.Dataset):
    """Item k is a whole batch of HR patches, decoded from files chosen by np.random.default_rng((seed, k))."""

    def __init__(self, files: list[Path], weights: np.ndarray, patch: int, batch: int, seed: int, halve_above: int,
                 patches_per_image: int, max_short_side: int = 0) -> None:
        self.files, self.weights, self.patch, self.batch = files, weights, patch, batch
        self.seed, self.halve_above, self.per_image = seed, halve_above, patches_per_image
        self.max_short_side = max_short_side

    def __len__(self) -> int:
        return 2**62

    def __getitem__(self, k: int) -> tuple[torch.Tensor, list[str]]:
        rng = np.random.default_rng((self.seed, k))
        p, out, failed = self.patch, np.empty((self.batch, self.patch, self.patch, 3), np.uint8), []
        j = 0
        while j < self.batch:
            if len(failed) > 20 + 4 * len(self.files):  # every file broke since the scan: stop, do not spin
                raise RuntimeError(f"no usable training image: {len(failed)} reads failed in a row ({failed[0]})")
            f = self.files[rng.choice(len(self.files), p=self.weights)]
            try:
                img = imageio.read_rgb_array(f, self.halve_above, self.max_short_side)
            except Exception as e:  # noqa: BLE001 - a file that broke since the scan: skip it, report it
                failed.append(f"{f} ({str(e).splitlines()[0] if str(e) else type(e).__name__})")
                continue
            if min(img.shape[:2]) < p:
                failed.append(f"{f} (smaller than the patch)")
                continue
            for _ in range(min(self.per_image, self.batch - j)):
                y = rng.integers(0, img.shape[0] - p + 1)
                x = rng.integers(0, img.shape[1] - p + 1)
                out[j] = _augment(img[y : y + p, x : x + p], int(rng.integers(0, 8)))
                j += 1
        return torch.from_numpy(out).permute(0, 3, 1, 2), failed


class _From(torch.utils.data.Sampler):
    def __init__(self, start: int) -> None:
        self.start = start

    def __iter__(self):
        k = self.start
        while True:
            yield k
            k += 1


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)


class StreamingPatchSampler:
    """Patches decoded on the fly in `workers` DataLoader processes (0: in this process), for large data sets."""

    def __init__(self, files: list[Path], patch: int, seed: int, batch: int, halve_above: int = 800,
                 workers: int = 2, patches_per_image: int = 4, warn=None, max_short_side: int = 0) -> None:
        self.patch, self.batch_size, self.halve_above, self.workers = patch, batch, halve_above, workers
        self.max_short_side = max_short_side
        self.per_image, self.warn = patches_per_image, warn
        self.images: list[Path] = []
        self.skipped: list[str] = []
        areas = []
        for f in files:
            try:
                w, h = imageio.probe_size(f)
            except Exception as e:  # noqa: BLE001
                self.skipped.append(f"{f} (unreadable: {str(e).splitlines()[0] if str(e) else type(e).__name__})")
                continue
            w, h = imageio.training_size(w, h, halve_above, max_short_side)
            if min(w, h) < patch:
                self.skipped.append(f"{f} (smaller than the {patch}x{patch} patch)")
                continue
            self.images.append(f)
            areas.append(w * h)
        _report(len(files), len(self.images), self.skipped, patch, warn)
        self.pixels = int(sum(areas))
        w = np.sqrt(np.array(areas, dtype=np.float64))
        self.weights = w / w.sum()
        self.seed, self.position, self._iter, self._reported = seed, 0, None, set()

    def _loader(self):
        ds = _BatchDataset(self.images, self.weights, self.patch, self.batch_size, self.seed, self.halve_above,
                           self.per_image, self.max_short_side)
        return iter(torch.utils.data.DataLoader(
            ds, batch_size=None, sampler=_From(self.position), num_workers=self.workers,
            prefetch_factor=2 if self.workers else None, worker_init_fn=_worker_init if self.workers else None))

    def batch(self, n: int) -> torch.Tensor:
        """(n, 3, patch, patch) float32 in [0, 1]; n must be the batch size given at construction."""
        if n != self.batch_size:
            raise ValueError(f"this sampler makes batches of {self.batch_size}, not {n}")
        if self._iter is None:
            self._iter = self._loader()
        hr, failed = next(self._iter)
        self.position += 1
        for f in failed:
            if f not in self._reported and self.warn:
                self.warn(f"skipped training image {f}")
            self._reported.add(f)
        return hr.float().div_(255)

    def state_dict(self) -> dict:
        return {"position": self.position, "seed": self.seed}

    def load_state_dict(self, state: dict) -> None:
        self.position, self.seed, self._iter = int(state["position"]), int(state["seed"]), None

    def reseed(self, seed: int) -> None:
        self.seed, self._iter = seed, None


def make_sampler(files: list[Path], patch: int, seed: int, batch: int, halve_above: int, memory_gb: float,
                 workers: int, warn=None, max_short_side: int = 0):
    """PatchSampler when the decoded images fit in `memory_gb`, else StreamingPatchSampler with `workers`."""
    total = 0
    for f in files:
        try:
            w, h = imageio.probe_size(f)
        except Exception:  # noqa: BLE001 - the sampler itself reports unreadable files
            continue
        w, h = imageio.training_size(w, h, halve_above, max_short_side)
        total += w * h * 3
    if total <= memory_gb * 1e9:
        return PatchSampler(files, patch, seed, halve_above, warn=warn, max_short_side=max_short_side)
    if warn:
        warn(f"the training images take {total / 1e9:.1f} GB decoded, over the {memory_gb:g} GB budget: "
             f"streaming them through {workers} worker process(es)")
    return StreamingPatchSampler(files, patch, seed, batch, halve_above, workers, warn=warn,
                                 max_short_side=max_short_side)
