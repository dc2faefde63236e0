"""Training throughput of the shipped x4 recipe: does the data pipeline keep both cores on the model?

    python bench/train_speed.py [--steps 30] [--threads 1,2]

Measures, on the real training data, the time to cut and degrade one batch (HR patches -> bicubic LR), the time of
one optimizer step on a ready batch, and the full step as `gancli train` runs it; converts the step to conv GFLOP/s
(forward + backward = 3x forward) against a float32 matmul measured in the same run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, conv_flops, machine, matmul_gflops  # noqa: E402

from gancli import devices, models  # noqa: E402
from gancli.training.data import PatchSampler, list_images  # noqa: E402
from gancli.training.degrade import bicubic_down  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--patch", type=int, default=48)
    ap.add_argument("--model-config", default='{"num_feat": 48, "num_conv": 10}')
    ap.add_argument("--threads", default="1,2", help="thread counts to measure, comma-separated")
    args = ap.parse_args()
    import json

    devices.set_threads(0)
    scale = 4
    files = list_images([DATA / "train" / d for d in ("debian_wallpapers", "pypi_samples", "BSD200", "T91")])
    t0 = time.perf_counter()
    sampler = PatchSampler(files, args.patch * scale, seed=0)
    load_s = time.perf_counter() - t0
    model = models.build("compact_sr", {**json.loads(args.model_config), "scale": scale})
    model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)

    def data():
        hr = sampler.batch(args.batch)
        return bicubic_down(hr, scale), hr

    def step(lr, hr):
        loss = F.l1_loss(model(lr.contiguous(memory_format=torch.channels_last)), hr)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    gflop = 3 * conv_flops(model, (args.batch, 3, args.patch, args.patch)) / 1e9
    print(f"# x4 compact_sr {args.model_config}, batch {args.batch} x {args.patch}px LR, {machine()}")
    print(f"# loading {len(sampler.images)} training images into memory: {load_s:.1f} s "
          f"({sampler.pixels / 1e6:.0f} MP); {gflop:.1f} GFLOP per step (forward + backward)")
    print("| threads | part | ms per step | steps/s | GFLOP/s | of matmul |")
    print("|---|---|---|---|---|---|")
    for threads in (int(t) for t in args.threads.split(",")):
        torch.set_num_threads(threads)
        ceiling = matmul_gflops()
        for _ in range(3):
            step(*data())
        t = time.perf_counter()
        for _ in range(args.steps):
            data()
        data_s = (time.perf_counter() - t) / args.steps
        batch = data()
        t = time.perf_counter()
        for _ in range(args.steps):
            step(*batch)
        model_s = (time.perf_counter() - t) / args.steps
        t, c = time.perf_counter(), time.process_time()
        for _ in range(args.steps):
            step(*data())
        full_s = (time.perf_counter() - t) / args.steps
        util = (time.process_time() - c) / (full_s * args.steps)
        print(f"| {threads} | data only (crop, flip, bicubic LR) | {data_s * 1e3:.1f} | - | - | - |")
        print(f"| {threads} | model step on a fixed batch | {model_s * 1e3:.1f} | {1 / model_s:.2f} | "
              f"{gflop / model_s:.1f} | {gflop / model_s / ceiling:.2f} |")
        print(f"| {threads} | full training step | {full_s * 1e3:.1f} | {1 / full_s:.2f} | {gflop / full_s:.1f} | "
              f"{gflop / full_s / ceiling:.2f} |")
        print(f"#   {threads} thread(s): matmul ceiling {ceiling:.1f} GFLOP/s; CPU use during full steps "
              f"{util:.2f} cores; data share of a full step {data_s / full_s:.0%}", flush=True)


if __name__ == "__main__":
    main()
