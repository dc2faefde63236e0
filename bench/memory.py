"""Peak resident memory of `gancli upscale` on a 4000x3000 photo x4 (16000x12000 PNG out).

    python bench/memory.py [--weights FILE] [--size 4000x3000]

The input is made from a training photo tiled and mirrored to the size, written to a temp folder.
Peak RSS is the child process's ru_maxrss (Linux: kilobytes).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, ROOT  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="4000x3000")
    ap.add_argument("--weights", type=Path)
    ap.add_argument("--format", default="png")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    src = np.asarray(Image.open(DATA / "train" / "pypi_samples" / "skimage_astronaut.png").convert("RGB"))
    tile = np.concatenate([src, src[:, ::-1]], axis=1)
    tile = np.concatenate([tile, tile[::-1]], axis=0)
    big = np.tile(tile, (h // tile.shape[0] + 1, w // tile.shape[1] + 1, 1))[:h, :w]
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
        inp, out = Path(tmp) / "big.png", Path(tmp) / f"big_x4.{args.format}"
        Image.fromarray(big).save(inp, compress_level=1)
        del big
        cmd = [sys.executable, "-m", "gancli", "upscale", str(inp), "-o", str(out), "-q"]
        if args.weights:
            cmd += ["--weights", str(args.weights)]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, cwd=ROOT)
        wall = time.perf_counter() - t0
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        Image.MAX_IMAGE_PIXELS = None  # our own output: no bomb
        ow, oh = Image.open(out).size
        print(f"| {w}x{h} -> {ow}x{oh} {args.format.upper()} | peak RSS {peak_mb:.0f} MB | {wall:.1f} s |")


if __name__ == "__main__":
    main()
