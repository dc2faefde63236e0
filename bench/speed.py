"""Seconds to upscale a 512x512 photo x4 on this machine, next to Pillow and Real-ESRGAN, and GFLOP/s against a
matmul ceiling.

    python bench/speed.py            # every shipped upscale model, Pillow, and the Real-ESRGAN peers
    python bench/speed.py --weights runs/x4_compact/best.safetensors --no-peers
    python bench/speed.py --compile  # also torch.compile (inductor) each model: compile time and steady state
    python bench/speed.py --no-peers --only-others  # just the second table (inpaint and sample models)

The peers (bench/peers.py: Real-ESRGAN x4plus and animevideov3 through ncnn on the CPU, every core) run on the same
512x512 input in the same run; `speedup vs x4plus` is x4plus's seconds over each method's. Seconds per output
megapixel: the model's seconds over the output's megapixels (x4 of 512x512: 4.19 MP; x2: 1.05 MP).

A second table covers the other shipped models: inpaint-ffc filling a 192x256 box in the same 512x512 photo (its
window is the whole image; output megapixels = the image's), and every sample model drawing a batch of 256 images
(output megapixels = the images'). Their GFLOP count every Conv2d and Linear (inpaint-ffc's FFTs are not counted:
a few percent of its work), measured on the call itself.

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
from common import DATA, ROOT, conv_flops, counted_flops, machine, matmul_gflops, timeit  # noqa: E402

from gancli import checkpoints, devices, shipped  # noqa: E402
from gancli.imageio import Picture  # noqa: E402
from gancli.tasks.upscale import upscale_picture  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image", type=Path, default=DATA / "train" / "pypi_samples" / "skimage_astronaut.png")
    ap.add_argument("--weights", type=Path, action="append", default=[])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-peers", action="store_true", help="skip Real-ESRGAN (x4plus takes minutes on a CPU)")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile'd models")
    ap.add_argument("--only-others", action="store_true", help="only the inpaint and sample models' table")
    args = ap.parse_args()
    devices.set_threads(0)
    img = Image.open(args.image).convert("RGB").resize((512, 512), Image.Resampling.LANCZOS)
    arr = np.asarray(img)
    ceiling = matmul_gflops()
    print(f"# 512x512 -> 2048x2048, {machine()}")
    print(f"# float32 matmul 2048^3: {ceiling:.1f} GFLOP/s (the ceiling below)")
    rows: list[tuple[str, float, str]] = []  # (name, seconds, rest of the row)
    for name, flt in (("Pillow bicubic", Image.Resampling.BICUBIC), ("Pillow Lanczos", Image.Resampling.LANCZOS)):
        t = timeit(lambda f=flt: img.resize((2048, 2048), f), repeat=args.repeat)
        rows.append((f"{name} (x4)", t, "- | - | - | - |"))
    if not args.no_peers:
        from peers import PEERS, NcnnUpscaler

        for peer in PEERS:
            up = NcnnUpscaler(peer)
            t = timeit(lambda u=up: u.upscale(arr), repeat=1 if peer.endswith("x4plus") else args.repeat)
            rows.append((f"Real-ESRGAN {peer} (ncnn, x4)", t, "- | - | - | - |"))
    entries = [(m.name, shipped.verify(m)) for m in shipped.shipped_models() if m.task == "upscale"]
    entries += [(str(w), w) for w in args.weights]
    if args.only_others:
        rows, entries = [], []
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
            rows.append((f"gancli {name} (x{info.scale})", t, f"{gflop:.1f} | {gflop / t:.1f} | "
                         f"{gflop / t / ceiling:.2f} | {wall:.2f} |"))
            print(f"{name}: {t:.3f} s", file=sys.stderr, flush=True)
            if args.compile:
                cm = torch.compile(model)
                t0 = time.perf_counter()
                upscale_picture(cm, pic, info.scale, device=torch.device("cpu"))
                first = time.perf_counter() - t0
                tc = timeit(lambda m=cm, p=pic, s=info.scale: upscale_picture(m, p, s, device=torch.device("cpu")),
                            repeat=args.repeat)
                rows.append((f"gancli {name} (x{info.scale}), torch.compile", tc,
                             f"{gflop:.1f} | {gflop / tc:.1f} | {gflop / tc / ceiling:.2f} | first call {first:.1f} "
                             "(compile) |"))
    x4plus = next((t for n, t, _ in rows if "x4plus" in n), None)
    print("| method | seconds (model) | s per output MP | speedup vs x4plus | GFLOP | GFLOP/s | of matmul | "
          "seconds (whole command) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, t, rest in rows:
        scale = 2 if "(x2)" in name else 4
        mp = (512 * scale) ** 2 / 1e6
        speedup = f"{x4plus / t:.0f}x" if x4plus else "-"
        print(f"| {name} | {t:.3f} | {t / mp:.3f} | {speedup} | {rest}")
    other_models(arr, ceiling, args.repeat, args.compile)


def other_models(arr: np.ndarray, ceiling: float, repeat: int, compile_too: bool) -> None:
    """The inpaint and sample models: seconds, seconds per output MP, counted GFLOP, GFLOP/s and of the ceiling."""
    from gancli.tasks.inpaint import inpaint_picture
    from gancli.tasks.sample import generate

    cpu = torch.device("cpu")
    hole = np.zeros(arr.shape[:2], dtype=bool)
    hole[160:352, 128:384] = True  # 19 % of the image
    print("\n| model | task | work | seconds | s per output MP | GFLOP | GFLOP/s | of matmul |")
    print("|---|---|---|---|---|---|---|---|")
    for m in shipped.shipped_models():
        if m.task not in ("inpaint", "sample"):
            continue
        model, _ = checkpoints.load_model(shipped.verify(m))
        model = model.to(memory_format=torch.channels_last)
        if m.task == "inpaint":
            work, mp = "512x512, 19 % hole", arr.shape[0] * arr.shape[1] / 1e6

            def call(net):
                return inpaint_picture(net, Picture(arr), hole, device=cpu)
        else:
            z = model.sample_latents(list(range(256)))
            labels = [i % model.config.num_classes for i in range(256)] if model.conditional else None
            side = int(getattr(model.config, "crop", 0)) or model.config.image_size
            work, mp = f"256 images of {side}x{side}", 256 * side * side / 1e6

            def call(net, z=z, labels=labels):
                with torch.no_grad():
                    return generate(net, z, labels, device=cpu)
        gflop = counted_flops(model, lambda c=call, n=model: c(n)) / 1e9
        variants = [("", model)]
        if compile_too:
            variants.append((", torch.compile", torch.compile(model)))
        for suffix, net in variants:
            t0 = time.perf_counter()
            call(net)
            first = time.perf_counter() - t0
            t = timeit(lambda c=call, n=net: c(n), repeat=repeat)
            note = f" (first call {first:.1f} s)" if suffix else ""
            print(f"| {m.name}{suffix}{note} | {m.task} | {work} | {t:.3f} | {t / mp:.3f} | {gflop:.1f} | "
                  f"{gflop / t:.1f} | {gflop / t / ceiling:.2f} |", flush=True)


if __name__ == "__main__":
    main()
