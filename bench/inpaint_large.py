"""Inpainting cost against image size: a 4000x3000 photo with a small hole next to a 512x512 image with the same hole.

The model runs on a context window around each hole (gancli/tasks/inpaint.py), so the model's cost depends on the
hole, not on the image. Measured: the inpaint_picture call alone (median of 3 runs after a warm-up) and the whole
`gancli inpaint` command (one run each: start-up, decoding, model, PNG encoding, atomic write), for the same hole: an
ellipse of 120x80 pixels plus a 6 px wide stroke, placed at the same offset from the centre. The images are Kodak24's
kodim01 resized (Lanczos) to 512x512 and 4000x3000: timing only, no quality is measured here.

    python bench/inpaint_large.py
    python bench/inpaint_large.py --weights runs/inpaint/best.safetensors --threads 1
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, machine, timeit  # noqa: E402

from gancli import checkpoints, devices, shipped  # noqa: E402
from gancli.imageio import Picture  # noqa: E402
from gancli.tasks.inpaint import inpaint_picture  # noqa: E402

SIZES = ((512, 512), (4000, 3000))


def make_hole(w: int, h: int) -> np.ndarray:
    hole = np.zeros((h, w), np.uint8)
    cx, cy = w // 2 + 40, h // 2 - 30
    cv2.ellipse(hole, (cx, cy), (60, 40), 20, 0, 360, 255, -1)
    cv2.line(hole, (cx - 100, cy + 60), (cx + 90, cy + 20), 255, 6)
    return hole > 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", type=Path, help="an inpaint model file (default: the shipped default model)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads, for the call and the command (0: all)")
    args = ap.parse_args()
    devices.set_threads(args.threads)
    path = args.weights or shipped.verify(shipped.find(None, "inpaint"))
    model, _ = checkpoints.load_model(path)
    model = model.to(memory_format=torch.channels_last)
    src = Image.open(DATA / "bench" / "Kodak24" / "kodim01.png").convert("RGB")
    print(f"# Inpainting cost against image size ({machine()})\n")
    print("| image | hole pixels | inpaint_picture (s) | whole command (s) |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for w, h in SIZES:
            rgb = np.asarray(src.resize((w, h), Image.LANCZOS))
            hole = make_hole(w, h)
            pic = Picture(rgb)
            call = timeit(lambda pic=pic, hole=hole: inpaint_picture(model, pic, hole, device=torch.device("cpu")),
                          repeat=3)
            image, mask, out = (Path(tmp) / f"{n}_{w}.png" for n in ("in", "mask", "out"))
            Image.fromarray(rgb).save(image, compress_level=1)
            Image.fromarray(hole.astype(np.uint8) * 255).save(mask)
            cmd = [sys.executable, "-m", "gancli", "inpaint", str(image), "--mask", str(mask), "-o", str(out), "-q",
                   "--threads", str(args.threads)]
            if args.weights:
                cmd += ["--weights", str(args.weights)]
            t = time.perf_counter()
            subprocess.run(cmd, check=True)
            whole = time.perf_counter() - t
            print(f"| {w}x{h} | {int(hole.sum())} | {call:.3f} | {whole:.2f} |")


if __name__ == "__main__":
    main()
