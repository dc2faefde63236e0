"""Folder throughput: images per minute of `gancli upscale` and `gancli inpaint` over a folder of photos, the CPU
utilization during the run, and its peak resident memory for a small and a large folder (it must not grow with the
folder: the batch pipeline holds at most three images at a time).

The photos: --count JPEGs (quality 90) of --size, cut from the training photos of ../shared/data/train (timing only,
no quality is measured), each a different crop. Inpaint uses one mask for every image (--mask FILE): three strokes
and a box, about 3 % of the image. Each command runs once as a child process; wall time from the parent, CPU time
and peak RSS from the child's rusage. Utilization = CPU seconds / (wall seconds x cores).

    python bench/throughput.py                        # 100 photos of 1024x768, and a 10-photo folder for memory
    python bench/throughput.py --count 20 --small 5   # quicker
    python bench/throughput.py --compile              # each command also with --compile (a cold compiler cache)

With --compile every command runs a second time with `--compile`, each such run with an empty inductor cache of its
own (TORCHINDUCTOR_CACHE_DIR): the compile time in these rows is the worst case, a machine's first compiled run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, ROOT  # noqa: E402


def make_photos(folder: Path, count: int, w: int, h: int) -> None:
    sources = sorted((DATA / "train" / "debian_wallpapers").glob("*.jpg"))
    if not sources:
        sys.exit(f"no training photos under {DATA}: set GANCLI_DATA to the shared data folder")
    rng = np.random.default_rng(0)
    folder.mkdir()
    for i in range(count):
        with Image.open(sources[i % len(sources)]) as im:
            im = im.convert("RGB")
            im.draft("RGB", (2 * w, 2 * h))
            scale = max(w / im.width, h / im.height) * rng.uniform(1.0, 1.6)
            im = im.resize((max(w, round(im.width * scale)), max(h, round(im.height * scale))), Image.LANCZOS)
            x, y = rng.integers(0, im.width - w + 1), rng.integers(0, im.height - h + 1)
            im.crop((x, y, x + w, y + h)).save(folder / f"photo{i:04d}.jpg", quality=90)


def make_mask(path: Path, w: int, h: int) -> None:
    m = np.zeros((h, w), np.uint8)
    cv2.line(m, (w // 10, h // 5), (w // 2, h // 2), 255, 12)
    cv2.line(m, (w // 2, 4 * h // 5), (9 * w // 10, 3 * h // 5), 255, 8)
    cv2.line(m, (w // 3, 9 * h // 10), (w // 3 + 60, h // 3), 255, 6)
    m[h // 8 : h // 8 + 60, 3 * w // 4 : 3 * w // 4 + 90] = 255
    Image.fromarray(m).save(path)


# rusage's peak RSS of children is the largest child's so far: a fresh wrapper process per run reports its own.
WRAPPER = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
           "r = resource.getrusage(resource.RUSAGE_CHILDREN); print(r.ru_utime + r.ru_stime, r.ru_maxrss)")


def run(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, float]:
    """(wall s, CPU s, peak RSS MB) of one child process."""
    t = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", WRAPPER, *cmd], check=True, cwd=ROOT, capture_output=True, text=True,
                         env=env)
    wall = time.perf_counter() - t
    cpu, rss = res.stdout.split()[-2:]
    return wall, float(cpu), int(rss) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--small", type=int, default=10, help="size of the folder for the memory comparison")
    ap.add_argument("--size", default="1024x768")
    ap.add_argument("--commands", default="inpaint,upscale")
    ap.add_argument("--compile", action="store_true", help="also run each command with --compile (cold cache)")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    cores = os.cpu_count() or 1
    print(f"# Folder throughput, {args.size} JPEG photos, {cores} cores\n")
    print("| command | photos | wall s | images/min | CPU utilization | peak RSS MB |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        make_photos(t / "small", args.small, w, h)
        make_photos(t / "big", args.count, w, h)
        make_mask(t / "mask.png", w, h)
        for name in args.commands.split(","):
            for compiled in (False, True) if args.compile else (False,):
                extra = {"inpaint": ["--mask", str(t / "mask.png")], "upscale": []}[name]
                for folder, n in (("small", args.small), ("big", args.count)):
                    out = t / f"out_{name}_{folder}_{compiled}"
                    cmd = [sys.executable, "-m", "gancli", name, str(t / folder), "-o", f"{out}/", "-q", *extra]
                    env = None
                    if compiled:
                        cmd.append("--compile")
                        env = os.environ | {"TORCHINDUCTOR_CACHE_DIR": tempfile.mkdtemp(dir=tmp)}
                    wall, cpu, rss = run(cmd, env)
                    label = f"{name} --compile" if compiled else name
                    print(f"| {label} | {n} | {wall:.1f} | {60 * n / wall:.1f} | {100 * cpu / (wall * cores):.0f} % "
                          f"| {rss:.0f} |", flush=True)


if __name__ == "__main__":
    main()
