"""PSNR / SSIM on Y for Set5 and Set14 (x4 by default), bicubic next to every shipped upscale model.

Protocol (../shared/data/README.md): crop HR to a multiple of the scale, LR = bicubic downscale (Pillow, 8-bit),
upscale, Y (BT.601), shave `scale` pixels at every border, PSNR / SSIM on Y.

    python bench/sr_quality.py                      # shipped models, x4
    python bench/sr_quality.py --weights runs/x4_compact/best.safetensors
    python bench/sr_quality.py --json results.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, machine  # noqa: E402

from gancli import checkpoints, metrics, shipped  # noqa: E402
from gancli.imageio import Picture  # noqa: E402
from gancli.tasks.upscale import upscale_picture  # noqa: E402

# Published numbers (Set5 PSNR, SSIM, Set14 PSNR, SSIM; None = not published), from each paper's tables (MATLAB
# bicubic LR: within ~0.05 dB of this protocol, not measured here). ESPCN's paper reports x3/x4 only and no SSIM.
PUBLISHED = {
    2: [("FSRCNN", "12K", (37.00, 0.9558, 32.63, 0.9088)), ("CARN", "1.6M", (37.76, 0.9590, 33.52, 0.9166)),
        ("IMDN", "694K", (38.00, 0.9605, 33.63, 0.9177))],
    4: [("FSRCNN", "12K", (30.71, 0.8657, 27.59, 0.7535)), ("ESPCN", "25K", (30.90, None, 27.73, None)),
        ("CARN", "1.6M", (32.13, 0.8937, 28.60, 0.7806)), ("IMDN", "715K", (32.21, 0.8948, 28.58, 0.7811))],
}


def to_tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a.astype(np.float32) / 255).permute(2, 0, 1)[None]


def evaluate(upscaler, folder: Path, scale: int) -> dict[str, float]:
    psnrs, ssims = [], []
    for f in sorted(folder.glob("*.png")):
        hr = Image.open(f).convert("RGB")
        w, h = hr.width // scale * scale, hr.height // scale * scale
        hr = hr.crop((0, 0, w, h))
        lr = hr.resize((w // scale, h // scale), Image.Resampling.BICUBIC)
        sr = upscaler(np.asarray(lr), scale)
        a, b = to_tensor(sr), to_tensor(np.asarray(hr))
        psnrs.append(float(metrics.psnr_y(a, b, shave=scale)[0]))
        ssims.append(float(metrics.ssim_y(a, b, shave=scale)[0]))
    return {"psnr_y": round(float(np.mean(psnrs)), 3), "ssim_y": round(float(np.mean(ssims)), 4)}


def bicubic(lr: np.ndarray, scale: int) -> np.ndarray:
    im = Image.fromarray(lr)
    return np.asarray(im.resize((im.width * scale, im.height * scale), Image.Resampling.BICUBIC))


def model_upscaler(path: Path):
    model, info = checkpoints.load_model(path)
    model = model.to(memory_format=torch.channels_last)

    def run(lr: np.ndarray, scale: int) -> np.ndarray:
        assert scale == info.scale, f"{path} is x{info.scale}"
        return upscale_picture(model, Picture(lr), scale, device=torch.device("cpu")).pixels

    return run, info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--weights", type=Path, action="append", default=[], help="extra model files to evaluate")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    sets = {name: DATA / "bench" / name for name in ("Set5", "Set14")}
    for d in sets.values():
        if not d.is_dir():
            sys.exit(f"{d} not found: set GANCLI_DATA to the shared data folder")
    rows = [("bicubic (Pillow)", "-", bicubic)]
    for m in shipped.shipped_models():
        if m.task == "upscale" and m.scale == args.scale:
            fn, info = model_upscaler(shipped.verify(m))
            rows.append((m.name, info.provenance.get("parameters", "?"), fn))
    for w in args.weights:
        fn, info = model_upscaler(w)
        rows.append((str(w), info.provenance.get("parameters", "?"), fn))
    results = []
    print(f"# x{args.scale}, PSNR-Y / SSIM-Y, {machine()}")
    print("| model | params | Set5 PSNR | Set5 SSIM | Set14 PSNR | Set14 SSIM |")
    print("|---|---|---|---|---|---|")
    for name, params, fn in rows:
        r = {s: evaluate(fn, d, args.scale) for s, d in sets.items()}
        results.append({"model": name, "parameters": params, **r})
        print(f"| {name} | {params} | {r['Set5']['psnr_y']:.2f} | {r['Set5']['ssim_y']:.4f} | "
              f"{r['Set14']['psnr_y']:.2f} | {r['Set14']['ssim_y']:.4f} |", flush=True)
    for name, params, nums in PUBLISHED.get(args.scale, []):
        cells = " | ".join("-" if v is None else (f"{v:.2f}" if v > 1 else f"{v:.4f}") for v in nums)
        print(f"| {name} (published) | {params} | {cells} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
