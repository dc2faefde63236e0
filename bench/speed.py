"""Seconds to upscale a 512x512 photo x4 on this machine, next to Pillow, and GFLOP/s against a matmul ceiling.

    python bench/speed.py            # every shipped upscale model
    python bench/speed.py --weights runs/x4_compact/best.safetensors

Reports, per model: median seconds of the model alone (tiled inference, as the CLI runs it), the conv GFLOP of
one pass, achieved GFLOP/s and its ratio to a 2048^3 float32 matmul measured in the same run, and the wall time of
the whole command (`gancli upscale in.png -o out.png`: start-up, decode, model, PNG encode).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, ROOT, conv_flops, machine, matmul_gflops, timeit  # noqa: E402

from gancli import checkpoints, devices, shipped  # noqa: E402
from gancli.imageio import Picture  # noqa: E402
from gancli.tasks.upscale import upscale_picture  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image", type=Path, default=DATA / "train" / "pypi_samples" / "skimage_astronaut.png")
    ap.add_argument("--weights", type=Path, action="append", default=[])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    devices.set_threads(0)
    img = Image.open(args.image).convert("RGB").resize((512, 512), Image.Resampling.LANCZOS)
    arr = np.asarray(img)
    ceiling = matmul_gflops()
    print(f"# 512x512 -> 2048x2048, {machine()}")
    print(f"# float32 matmul 2048^3: {ceiling:.1f} GFLOP/s (the ceiling below)")
    print("| method | seconds (model) | GFLOP | GFLOP/s | of matmul | seconds (whole command) |")
    print("|---|---|---|---|---|---|")
    for name, flt in (("Pillow bicubic", Image.Resampling.BICUBIC), ("Pillow Lanczos", Image.Resampling.LANCZOS)):
        t = timeit(lambda f=flt: img.resize((2048, 2048), f), repeat=args.repeat)
        print(f"| {name} | {t:.3f} | - | - | - | - |")
    entries = [(m.name, shipped.verify(m)) for m in shipped.shipped_models() if m.task == "upscale"]
    entries += [(str(w), w) for w in args.weights]
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.png"
        img.save(src)
        for name, path in entries:
            model, info = checkpoints.load_model(path)
            model = model.to(memory_format=torch.channels_last)
            pic = Picture(arr)
            t = timeit(lambda m=model, p=pic, s=info.scale: upscale_picture(m, p, s, device=torch.device("cpu")),
                       repeat=args.repeat)
            gflop = conv_flops(model, (1, 3, 512, 512)) / 1e9
            cmd = [sys.executable, "-m", "gancli", "upscale", str(src), "-o", str(Path(tmp) / "out.png"),
                   "--weights", str(path), "-q"]
            walls = []
            for _ in range(3):
                t0 = time.perf_counter()
                subprocess.run(cmd, check=True, cwd=ROOT)
                walls.append(time.perf_counter() - t0)
            wall = sorted(walls)[1]
            print(f"| {name} (x{info.scale}) | {t:.3f} | {gflop:.1f} | {gflop / t:.1f} | {gflop / t / ceiling:.2f} "
                  f"| {wall:.2f} |", flush=True)


if __name__ == "__main__":
    main()
