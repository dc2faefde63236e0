"""The CUDA paths, end to end: every shipped model through the CLI on the CPU and on a CUDA GPU, outputs compared.

    python bench/cuda_check.py --out bench/out/cuda_check      # needs a CUDA GPU; report.json in --out

CI has no GPU, so this is not a test: it reports. Per shipped model, the same command runs with `--device cpu` and
with `--device cuda` (`--precision fp32` and `auto`, which is bf16 on a GPU that has it), and the outputs are
compared pixel by pixel against the CPU's (max and mean absolute difference in 8-bit levels, PSNR). Sampling is
compared per seed, and on the GPU a seed drawn alone must give the image it gives inside a batch. Training runs each
task (and the photo GAN recipe) for a few steps on the GPU from images the script writes itself (no data set
needed), then resumes. Timings (warm, wall clock, one image) are printed beside, for a 1024x1024 input; the GPU
numbers are what this script saw, not a benchmark of peers.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
UPSCALE = ["photo-x4", "compact-x4", "photo-x2", "compact-x2"]
UPSCALE_MODELS = UPSCALE
SAMPLE = ["digits", "fashion", "emoji"]
TARGET = "cuda"  # --target cpu: a dry run of this script on a machine without a GPU (compares the CPU with itself)


def gancli(*args: str) -> tuple[int, float, str, str]:
    """Run the installed CLI; return (exit code, wall seconds, stderr tail, stdout)."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "gancli", *args], capture_output=True, text=True)
    return proc.returncode, time.perf_counter() - start, (proc.stderr or "")[-600:], proc.stdout


def compare(a: Path, b: Path) -> dict:
    x = np.asarray(Image.open(a)).astype(np.float64)
    y = np.asarray(Image.open(b)).astype(np.float64)
    if x.shape != y.shape:
        return {"shape_cpu": list(x.shape), "shape_cuda": list(y.shape), "same_shape": False}
    d = np.abs(x - y)
    mse = float((d**2).mean())
    row = {"same_shape": True, "max_abs": float(d.max()), "mean_abs": round(float(d.mean()), 4),
           "psnr_db": round(10 * math.log10(255**2 / mse), 2) if mse > 0 else math.inf}
    if x.ndim == 3 and x.shape[2] == 4:  # what shows: color weighted by alpha (a transparent pixel's color is moot)
        vx = np.concatenate([x[..., :3] * x[..., 3:] / 255, x[..., 3:]], axis=2)
        vy = np.concatenate([y[..., :3] * y[..., 3:] / 255, y[..., 3:]], axis=2)
        row["visible_max_abs"] = round(float(np.abs(vx - vy).max()), 2)
    return row


def make_inputs(work: Path) -> dict[str, Path]:
    src = Image.open(ROOT / "examples" / "grace_hopper.jpg").convert("RGB")
    small = src.resize((256, 300), Image.Resampling.BICUBIC)
    paths = {"small": work / "small.png", "big": work / "big.png", "rgba": work / "rgba.png"}
    small.save(paths["small"])
    src.resize((1024, 1024), Image.Resampling.BICUBIC).save(paths["big"])
    rgba = small.convert("RGBA")
    alpha = np.tile(np.linspace(0, 255, 256, dtype=np.uint8), (300, 1))
    rgba.putalpha(Image.fromarray(alpha))
    rgba.save(paths["rgba"])
    # a training folder per task: tiles of the photo; two class folders of flat shapes for the sample task
    photos = work / "train_photos"
    photos.mkdir()
    for i in range(8):
        src.rotate(7 * i).crop((40, 40, 440, 440)).save(photos / f"p{i}.png")
    rng = np.random.default_rng(0)
    for cls in ("discs", "squares"):
        (work / "train_shapes" / cls).mkdir(parents=True)
        for i in range(24):
            im = np.zeros((32, 32, 4), np.uint8)
            c, r = rng.integers(10, 22, 2), int(rng.integers(5, 10))
            yy, xx = np.mgrid[:32, :32]
            inside = ((yy - c[0]) ** 2 + (xx - c[1]) ** 2 < r * r) if cls == "discs" else (
                (abs(yy - c[0]) < r) & (abs(xx - c[1]) < r))
            im[inside] = [*rng.integers(0, 256, 3), 255]
            Image.fromarray(im, "RGBA").save(work / "train_shapes" / cls / f"{i}.png")
    return paths


def three_ways(args: list[str], stem: Path) -> dict:
    """One CLI command on the CPU, on the target in fp32 and in its auto precision; outputs compared to the CPU's."""
    row, outs = {}, {}
    for label, extra in (("cpu", ["--device", "cpu"]), ("cuda_fp32", ["--device", TARGET, "--precision", "fp32"]),
                         ("cuda_auto", ["--device", TARGET])):
        outs[label] = stem.with_name(f"{stem.name}_{label}.png")
        rc, _, err, _ = gancli(*args, "-o", str(outs[label]), "-q", *extra)
        row[f"rc_{label}"] = rc
        if rc:
            row[f"error_{label}"] = err
    for label in ("cuda_fp32", "cuda_auto"):
        if row["rc_cpu"] == 0 and row[f"rc_{label}"] == 0:
            row[label] = compare(outs["cpu"], outs[label])
    return row


def check_upscale(work: Path, inputs: dict[str, Path], report: dict) -> None:
    for model in UPSCALE_MODELS:
        for name in ("small", "rgba"):
            row = three_ways(["upscale", str(inputs[name]), "--model", model], work / f"up_{model}_{name}")
            report["upscale"][f"{model}/{name}"] = row
            print(model, name, json.dumps(row), flush=True)


def check_inpaint(work: Path, inputs: dict[str, Path], report: dict) -> None:
    for name in ("small", "rgba"):
        row = three_ways(["inpaint", str(inputs[name]), "--box", "90,60,70,80", "--box", "20,200,120,20"],
                         work / f"in_{name}")
        report["inpaint"][name] = row
        print("inpaint", name, json.dumps(row), flush=True)


def check_sample(work: Path, report: dict) -> None:
    for model in SAMPLE:
        row = {}
        dirs = {d: work / f"s_{model}_{d}" for d in ("cpu", "cuda", "cuda_alone")}
        rc_cpu, _, err_cpu, _ = gancli("sample", "--model", model, "--seeds", "0-31", "-o", f"{dirs['cpu']}/", "-q",
                                    "--device", "cpu")
        rc_gpu, _, err_gpu, _ = gancli("sample", "--model", model, "--seeds", "0-31", "-o", f"{dirs['cuda']}/", "-q",
                                    "--device", TARGET)
        rc_one, _, err_one, _ = gancli("sample", "--model", model, "--seeds", "7", "-o", f"{dirs['cuda_alone']}/", "-q",
                                    "--device", TARGET)
        row.update(rc_cpu=rc_cpu, rc_cuda=rc_gpu, rc_cuda_alone=rc_one)
        for rc, err, key in ((rc_cpu, err_cpu, "cpu"), (rc_gpu, err_gpu, "cuda"), (rc_one, err_one, "alone")):
            if rc:
                row[f"error_{key}"] = err
        if not (rc_cpu or rc_gpu):
            diffs = [compare(dirs["cpu"] / f"seed{s:04d}.png", dirs["cuda"] / f"seed{s:04d}.png") for s in range(32)]
            row["cpu_vs_cuda_max_abs"] = max(d["max_abs"] for d in diffs)
            row["cpu_vs_cuda_mean_abs"] = round(float(np.mean([d["mean_abs"] for d in diffs])), 4)
        if not (rc_gpu or rc_one):
            row["cuda_alone_vs_batch"] = compare(dirs["cuda"] / "seed0007.png", dirs["cuda_alone"] / "seed0007.png")
        report["sample"][model] = row
        print("sample", model, json.dumps(row), flush=True)


def check_train(work: Path, report: dict) -> None:
    runs = {
        "upscale": ["--task", "upscale", "--data", str(work / "train_photos"), "--batch", "4", "--patch", "32",
                    "--val-count", "2"],
        # the GAN recipe of the shipped photo-x4 (realistic degradation, perceptual + PatchGAN), data overridden
        "upscale-gan": ["--config", str(ROOT / "configs" / "photo-x4-gan.toml"), "--data", str(work / "train_photos"),
                        "--batch", "4", "--patch", "32", "--val-count", "2"],
        "inpaint": ["--task", "inpaint", "--data", str(work / "train_photos"), "--batch", "4", "--val-count", "2"],
        "sample": ["--task", "sample", "--data", str(work / "train_shapes"), "--batch", "8"],
    }
    for task, args in runs.items():
        run = work / f"run_{task}"
        rc1, t1, err1, _ = gancli("train", *args, "--run", str(run), "--steps", "20", "--eval-every", "10", "--device",
                               TARGET, "-q")
        rc2, t2, err2, _ = gancli("train", "--run", str(run), "--steps", "30", "--device", TARGET, "-q")
        row = {"rc_first": rc1, "rc_resume": rc2, "seconds": round(t1 + t2, 1)}
        if rc1:
            row["error_first"] = err1
        if rc2:
            row["error_resume"] = err2
        metrics = run / "metrics.jsonl"
        if metrics.exists():
            lines = [json.loads(x) for x in metrics.read_text().splitlines() if x.strip()]
            row["last_step"] = max((x.get("step", 0) for x in lines), default=0)
            row["finite"] = all(math.isfinite(v) for x in lines for v in x.values() if isinstance(v, float))
        row["best_exists"] = (run / "best.safetensors").exists()
        report["train"][task] = row
        print("train", task, json.dumps(row), flush=True)


def timings(work: Path, inputs: dict[str, Path], report: dict) -> None:
    for label, extra in (("cuda_auto", ["--device", TARGET]), ("cuda_fp32", ["--device", TARGET, "--precision",
                         "fp32"])):
        for model in ("photo-x4", "compact-x2"):
            out = work / f"t_{model}_{label}.png"
            args = ["upscale", str(inputs["big"]), "--model", model, "-o", str(out), "-q", "--json", *extra]
            gancli(*args)  # a first run fills the file and kernel caches; the second is timed
            rc, wall, _, stdout = gancli(*args)
            rec = {}
            for line in stdout.splitlines():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    pass
            report["timings"][f"upscale {model} 1024x1024 {label}"] = {
                "rc": rc, "process_wall_s": round(wall, 2),
                "record": {k: v for k, v in rec.items() if "second" in k or k in ("device", "dtype", "tile")}}
            print("timing", model, label, json.dumps(report["timings"][f"upscale {model} 1024x1024 {label}"]),
                  flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "cuda_check")
    ap.add_argument("--target", default="cuda", help="the device under test (cpu: a dry run of this script)")
    ap.add_argument("--upscale-models", nargs="+", default=UPSCALE, help="shipped upscale models to compare")
    ap.add_argument("--skip", nargs="*", default=[], choices=["upscale", "inpaint", "sample", "train", "timings"])
    args = ap.parse_args()
    import torch

    global TARGET, UPSCALE_MODELS
    TARGET, UPSCALE_MODELS = args.target, args.upscale_models
    if TARGET.startswith("cuda") and not torch.cuda.is_available():
        print("cuda_check: no CUDA GPU here (torch.cuda.is_available() is False)", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    work = args.out / "work"
    work.mkdir(exist_ok=True)
    cuda = torch.cuda.is_available()
    report = {"torch": torch.__version__, "gpu": torch.cuda.get_device_name(0) if cuda else None,
              "bf16": cuda and torch.cuda.is_bf16_supported(), "target": TARGET,
              "upscale": {}, "inpaint": {}, "sample": {}, "train": {}, "timings": {}}
    print(json.dumps({k: report[k] for k in ("torch", "gpu", "bf16")}), flush=True)
    inputs = make_inputs(work)
    steps = {"upscale": check_upscale, "inpaint": check_inpaint, "sample": lambda w, i, r: check_sample(w, r),
             "train": lambda w, i, r: check_train(w, r), "timings": timings}
    for name, fn in steps.items():
        if name in args.skip:
            continue
        start = time.perf_counter()
        fn(work, inputs, report)
        print(f"-- {name}: {time.perf_counter() - start:.1f} s", flush=True)
        (args.out / "report.json").write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
