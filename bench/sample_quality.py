"""Sample quality of image GANs on 28x28 gray data (MNIST, Fashion-MNIST): gancli's sample models next to the
MLP GAN baseline (bench/mlp_gan.py) and a real-data noise floor.

Standard Inception FID cannot be computed here: no Inception weights can be downloaded on this project's machines
(../shared/data/README.md), and an ImageNet network says little about 28x28 digits anyway. So the distances are
taken on the features of a classifier trained on the data set itself, once, with a fixed seed, and cached in
bench/out/ (keyed by the training images' sha256): 5 conv layers (3x3: 32, 64 stride 2, 64, 128 stride 2, 128;
BatchNorm + ReLU; no pooling but the strides), global average + linear; 1 epoch of AdamW, one-cycle schedule (peak
lr 2e-3), batch 128: 99.19 % MNIST test accuracy in about 110 CPU seconds (printed on every run). The numbers are
comparable only with each other, at the same sample count, with the same cached classifier; never with published
FIDs.

Sets: every method draws 10 000 images (gancli generators: seeds 0..9999 through `sample_latents`, and for
class-conditional models the label seed % 10, so 1000 per class, as `gancli sample` does; the output is clamped,
centre-cropped from the network's 32x32 to the data's 28x28 when the model says so, and quantised to 8 bits, as
`gancli sample` writes it. MLP baseline: z ~ N(0, I) from a fixed seed, (tanh + 1) / 2, quantised). They are
compared with 10 000 held-out real images (x_test). The noise floor row is the same metrics for 10 000 real
training images (a fixed random choice from x_train) against x_test: what "perfect" looks like at this sample size.

Metrics:
  feature FD   Fréchet distance (bench/fid.py `frechet_distance`) on the spatially averaged activations of conv
               layers 1, 3 and 5 concatenated (32 + 64 + 128 = 224-d), each layer first divided by its real test
               images' RMS standard deviation, so that the deep layer's larger activations do not drown the early
               ones (unscaled, layer 5 made ~96 % of the sum). The early layers respond to pixel-level texture, so
               salt-and-pepper noise, which max-pooled LeNet features barely see, moves them. The JSON also holds
               the (scaled) FD of each of the 5 layers alone. Lower is better.
  patch FD     Fréchet distance between 20 000 7x7 pixel patches (49-d, pixels in [0, 1]) of each set, cut at the
               same fixed-seed (image, y, x) positions in every set: local statistics, stroke edges and noise.
  TV ratio     mean total variation (sum of |horizontal| + |vertical| neighbour differences, pixels in [0, 1]) of
               the generated images / of the real test images: > 1 noisy or ragged, < 1 blurry; 1 is best.
  coverage     the classifier's predicted labels over the 10 000 samples: normalised entropy H / ln 10 (1 = every
               class equally often), then (smallest - largest class fraction). Real MNIST test: about 0.999.
  label acc    class-conditional models only: the fraction of samples the classifier assigns the asked label
               (the noise floor row: the classifier's accuracy on real training images).
  samples/s    images generated per second on the CPU with --threads, latents included (batch 250; the clock is
               shared with whatever else runs on the machine).

    python bench/mlp_gan.py --minutes 30 --threads 2   # the same CPU minutes and threads as the gancli model had
    python bench/sample_quality.py --threads 2 --mlp bench/out/mlp_gan.safetensors --sheet bench/out/sample_sheet.png
    python bench/sample_quality.py --weights runs/digits/best.safetensors --mlp bench/out/mlp_gan.safetensors \\
        --json bench/out/sample_quality.json --sheet bench/out/sample_sheet.png
    python bench/sample_quality.py --data FASHION_IDX_FOLDER --weights runs/fashion/best.safetensors \\
        --mlp bench/out/mlp_gan_fashion.safetensors   # Fashion-MNIST (apt-get install dataset-fashion-mnist; dpkg -L)
    python bench/sample_quality.py --threads 1 --weights /tmp/helper_digits/best.safetensors \\
        --mlp bench/out/mlp_gan.safetensors --samples 2000                              # smoke test
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, ConvFeatures, cached_net, fit_classifier, machine, side_by_side  # noqa: E402
from fid import frechet_distance  # noqa: E402
from mlp_gan import LATENT, MNIST, SIDE, load_generator, load_split  # noqa: E402

from gancli import checkpoints, devices, shipped  # noqa: E402
from gancli.tasks.sample import generate  # noqa: E402
from gancli.training.sample import grid  # noqa: E402

OUT = ROOT / "bench" / "out"
CLASSIFIER_VERSION = 1  # bump when the classifier or its training changes: the cache key includes it
CLASSIFIER_EPOCHS = 1  # > 99 % on MNIST already; 2 would double the one-off cost (~3 CPU minutes)
CLASSIFIER_BATCH = 128
FEATURE_LAYERS = (0, 2, 4)  # conv layers whose averaged activations make the FD features (32 + 64 + 128)
SAMPLES = 10_000
MIN_SAMPLES = 1000  # the FD over 224 dimensions needs well over 224 samples per set
PATCH = 7
PATCHES = 20_000
SEED = 0
GEN_BATCH = 250
SHEET_ZOOM = 2


# ------------------------------------------------------------------------------------------------ the classifier


def FeatureNet(classes: int = 10) -> ConvFeatures:  # noqa: N802 (a constructor)
    """forward(x (B, 1, 28, 28) in [0, 1]) -> (logits (B, classes), [averaged activations (B, C_i) per layer])."""
    return ConvFeatures([(1, 32, 1), (32, 64, 2), (64, 64, 1), (64, 128, 2), (128, 128, 1)], classes)


def _to_input(images: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(images).float().div_(255).unsqueeze(1)  # (N, 28, 28) uint8 -> (N, 1, 28, 28) [0, 1]
    return x.contiguous(memory_format=torch.channels_last)  # about 1.4x faster convolutions on the CPU


@torch.no_grad()
def classify(net: ConvFeatures, images: np.ndarray, batch: int = 500) -> tuple[np.ndarray, list[np.ndarray]]:
    """(predicted labels (N,), [per-layer features (N, C_i) float64]) of (N, 28, 28) uint8 images."""
    preds, feats = [], []
    for i in range(0, len(images), batch):
        logits, pooled = net(_to_input(images[i : i + batch]))
        preds.append(logits.argmax(1).numpy())
        feats.append([p.double().numpy() for p in pooled])
    return np.concatenate(preds), [np.concatenate([f[k] for f in feats]) for k in range(len(feats[0]))]


def train_classifier(x: np.ndarray, y: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, log=print
                     ) -> tuple[ConvFeatures, dict]:
    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    classes = int(y.max()) + 1
    net = FeatureNet(classes).to(memory_format=torch.channels_last)
    per_epoch = len(x) // CLASSIFIER_BATCH
    wall, cpu = time.perf_counter(), time.process_time()
    order = np.empty(0, np.int64)

    def batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
        nonlocal order
        if step % per_epoch == 0:
            order = rng.permutation(len(x))
        idx = order[step % per_epoch * CLASSIFIER_BATCH : (step % per_epoch + 1) * CLASSIFIER_BATCH]
        return _to_input(x[idx]), torch.from_numpy(y[idx])

    fit_classifier(net, CLASSIFIER_EPOCHS * per_epoch, batch, log)
    preds, _ = classify(net, x_test)
    info = {"test_accuracy": round(float((preds == y_test).mean()), 5), "epochs": CLASSIFIER_EPOCHS,
            "seconds": round(time.perf_counter() - wall, 1), "cpu_seconds": round(time.process_time() - cpu, 1),
            "threads": torch.get_num_threads(), "version": CLASSIFIER_VERSION}
    return net, info


def cached_classifier(data: Path, x: np.ndarray, y: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
                      log=print) -> tuple[ConvFeatures, dict]:
    """The data set's feature classifier: trained once, then loaded from bench/out/classifier-*.safetensors."""
    digest = hashlib.sha256(x.tobytes() + y.tobytes()).hexdigest()[:12]
    path = OUT / f"classifier-v{CLASSIFIER_VERSION}-{data.stem}-{digest}.safetensors"

    def train() -> tuple[ConvFeatures, dict]:
        log(f"training the feature classifier on {len(x)} images ({CLASSIFIER_EPOCHS} epochs; cached in {path})")
        return train_classifier(x, y, x_test, y_test, log)

    return cached_net(path, lambda: FeatureNet(int(y.max()) + 1), train)


# --------------------------------------------------------------------------------------------------- the methods


@dataclass
class Drawn:
    name: str
    images: np.ndarray  # (N, 28, 28) uint8
    asked: np.ndarray | None  # (N,) the labels asked of a class-conditional model (or real labels), else None
    seconds: float | None  # time to generate them (None for real data)


@torch.no_grad()
def draw_gancli(path: Path, name: str, n: int, classes: int) -> Drawn:
    """n samples of a gancli sample model, as `gancli sample --seeds 0-(n-1)` makes them (see module docstring)."""
    net, info = checkpoints.load_model(path)
    if info.task != "sample":
        raise ValueError(f"{path}: a {info.task!r} model, not a sample model")
    if net.config.channels != 1:
        raise ValueError(f"{path}: a {net.config.channels}-channel model; this benchmark is for gray 28x28 data")
    if net.conditional and net.config.num_classes != classes:
        raise ValueError(f"{path}: {net.config.num_classes} classes, the data set has {classes}")
    seeds = list(range(n))
    asked = np.array([s % net.config.num_classes for s in seeds]) if net.conditional else None
    out = []
    start = time.perf_counter()
    for i in range(0, n, GEN_BATCH):
        y = asked[i : i + GEN_BATCH].tolist() if net.conditional else None
        out.append(generate(net, net.sample_latents(seeds[i : i + GEN_BATCH]), y)[..., 0])  # as `gancli sample`
    seconds = time.perf_counter() - start
    images = np.concatenate(out)
    if images.shape[1:] != (SIDE, SIDE):
        raise ValueError(f"{path}: samples are {images.shape[1]}x{images.shape[2]}, the data is {SIDE}x{SIDE}")
    return Drawn(name, images, asked, seconds)


@torch.no_grad()
def draw_mlp(path: Path, name: str, n: int) -> Drawn:
    g = load_generator(path)
    z = torch.randn(n, LATENT, generator=torch.Generator().manual_seed(SEED))
    out = []
    start = time.perf_counter()
    for i in range(0, n, GEN_BATCH):
        x = ((g(z[i : i + GEN_BATCH]) + 1) / 2).clamp(0, 1)  # (B, 784) in [0, 1]
        out.append((x * 255 + 0.5).byte().view(-1, SIDE, SIDE).numpy())
    return Drawn(name, np.concatenate(out), None, time.perf_counter() - start)


# --------------------------------------------------------------------------------------------------- the metrics


def patches(images: np.ndarray, where: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    """(P, 49) float64 in [0, 1]: the 7x7 patches at (image, y, x) positions `where`."""
    i, y, x = where
    dy, dx = np.meshgrid(np.arange(PATCH), np.arange(PATCH), indexing="ij")
    return images[i[:, None, None], y[:, None, None] + dy, x[:, None, None] + dx].reshape(len(i), -1) / 255.0


def total_variation(images: np.ndarray) -> float:
    """Mean over images of sum |x[r, c+1] - x[r, c]| + |x[r+1, c] - x[r, c]|, pixels in [0, 1]."""
    x = images.astype(np.float32) / 255
    return float((np.abs(np.diff(x, axis=2)).sum((1, 2)) + np.abs(np.diff(x, axis=1)).sum((1, 2))).mean())


@dataclass
class Reference:
    feats: list[np.ndarray]  # per layer, already divided by `scales`
    scales: list[float]  # per layer: the RMS over channels of the real images' standard deviations
    patches: np.ndarray
    tv: float
    where: tuple[np.ndarray, np.ndarray, np.ndarray]
    classes: int


def reference(net: ConvFeatures, images: np.ndarray, classes: int) -> Reference:
    rng = np.random.default_rng(SEED)
    n = len(images)
    where = (rng.integers(0, n, PATCHES), rng.integers(0, SIDE - PATCH + 1, PATCHES),
             rng.integers(0, SIDE - PATCH + 1, PATCHES))
    _, feats = classify(net, images)
    scales = [float(np.sqrt(f.var(0).mean())) for f in feats]
    return Reference([f / c for f, c in zip(feats, scales, strict=True)], scales, patches(images, where),
                     total_variation(images), where, classes)


def evaluate(net: ConvFeatures, ref: Reference, drawn: Drawn) -> dict:
    if len(drawn.images) != len(ref.feats[0]):
        raise ValueError(f"{drawn.name}: {len(drawn.images)} samples, the reference has {len(ref.feats[0])}")
    preds, feats = classify(net, drawn.images)
    feats = [f / c for f, c in zip(feats, ref.scales, strict=True)]
    sel = [feats[k] for k in FEATURE_LAYERS]
    fd = frechet_distance(np.concatenate(sel, 1), np.concatenate([ref.feats[k] for k in FEATURE_LAYERS], 1))
    per_layer = {f"conv{k + 1}": round(frechet_distance(feats[k], ref.feats[k]), 4) for k in range(len(feats))}
    frac = np.bincount(preds, minlength=ref.classes) / len(preds)
    nz = frac[frac > 0]
    entropy = max(0.0, float(-(nz * np.log(nz)).sum() / math.log(ref.classes)))  # max: no "-0.000"
    return {
        "method": drawn.name,
        "samples": len(drawn.images),
        "feature_fd": round(fd, 4),
        "feature_fd_per_layer": per_layer,
        "patch_fd": round(frechet_distance(patches(drawn.images, ref.where), ref.patches), 5),
        "tv_ratio": round(total_variation(drawn.images) / ref.tv, 4),
        "coverage_entropy": round(entropy, 4),
        "class_fraction_min": round(float(frac.min()), 4),
        "class_fraction_max": round(float(frac.max()), 4),
        "class_fractions": [round(float(f), 4) for f in frac],
        "label_accuracy": None if drawn.asked is None else round(float((preds == drawn.asked).mean()), 4),
        "samples_per_s": None if drawn.seconds is None else round(len(drawn.images) / drawn.seconds, 1),
    }


def table(rows: list[dict]) -> str:
    lines = ["| method | feature FD | patch FD | TV ratio | class coverage | label accuracy | samples/s |",
             "|---|---:|---:|---:|---|---:|---:|"]
    for r in rows:
        cov = (f"{r['coverage_entropy']:.3f} ({100 * r['class_fraction_min']:.1f}-"
               f"{100 * r['class_fraction_max']:.1f} %)")
        acc = "-" if r["label_accuracy"] is None else f"{100 * r['label_accuracy']:.1f} %"
        speed = "-" if r["samples_per_s"] is None else f"{r['samples_per_s']:.0f}"
        lines.append(f"| {r['method']} | {r['feature_fd']:.2f} | {r['patch_fd']:.4f} | {r['tv_ratio']:.3f} | {cov} |"
                     f" {acc} | {speed} |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------------ the sheet


def panel(drawn: Drawn, rows: int = 10) -> np.ndarray:
    """rows x rows samples (row = class when labels are known), (H, W, 3) uint8, zoomed SHEET_ZOOM times."""
    if drawn.asked is not None:
        idx = np.concatenate([np.flatnonzero(drawn.asked == c)[:rows] for c in range(rows)])
    else:
        idx = np.arange(rows * rows)
    sheet = grid(drawn.images[idx][..., None], rows)
    return sheet.repeat(SHEET_ZOOM, 0).repeat(SHEET_ZOOM, 1)


def write_sheet(drawn: list[Drawn], path: Path) -> None:
    """The methods' panels side by side, each under a caption row with its name (PIL's default font)."""
    side_by_side([panel(d) for d in drawn], [d.name for d in drawn], path)


# ----------------------------------------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=MNIST, help="an .npz (x_train, y_train, x_test, y_test) or idx folder")
    ap.add_argument("--weights", type=Path, action="append", default=[], help="a gancli sample model (repeatable)")
    ap.add_argument("--mlp", type=Path, action="append", default=[], help="a bench/mlp_gan.py generator (repeatable)")
    ap.add_argument("--no-shipped", action="store_true", help="skip the shipped sample models (else: those trained "
                    "on --data)")
    ap.add_argument("--samples", type=int, default=SAMPLES, help="images per set (fewer only for smoke tests)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: every core)")
    ap.add_argument("--json", type=Path, help="write the results here")
    ap.add_argument("--sheet", type=Path, help="write a side-by-side sample sheet (PNG) here")
    args = ap.parse_args()

    def log(s: str) -> None:
        print(s, file=sys.stderr)

    devices.set_threads(args.threads)
    x_train, y_train = load_split(args.data, "train")
    x_test, y_test = load_split(args.data, "test")
    if y_train is None or y_test is None:
        raise SystemExit(f"{args.data}: the classifier needs labels (y_train, y_test)")
    classes = int(y_train.max()) + 1
    n = args.samples
    if not MIN_SAMPLES <= n <= min(len(x_test), len(x_train) // 2):
        raise SystemExit(f"--samples {n}: give {MIN_SAMPLES}..{min(len(x_test), len(x_train) // 2)}")
    net, cinfo = cached_classifier(args.data, x_train, y_train, x_test, y_test, log)
    log(f"feature classifier: test accuracy {100 * cinfo['test_accuracy']:.2f} % (trained in {cinfo['seconds']} s,"
        f" {cinfo['cpu_seconds']} CPU s, {cinfo['threads']} threads)")

    rng = np.random.default_rng(SEED)
    test_idx = np.sort(rng.choice(len(x_test), n, replace=False)) if n < len(x_test) else np.arange(len(x_test))
    ref = reference(net, x_test[test_idx], classes)
    floor_idx = np.sort(rng.choice(len(x_train), n, replace=False))
    sets = [Drawn("real: x_train vs x_test (noise floor)", x_train[floor_idx], y_train[floor_idx], None)]
    if not args.no_shipped:
        for m in shipped.shipped_models():  # those trained on this data set (their provenance names it)
            path = shipped.verify(m) if m.task == "sample" else None
            if path and Path(args.data).name in str(checkpoints.read_model_info(path).provenance.get("data", "")):
                sets.append(draw_gancli(path, f"gancli {m.name}", n, classes))
    for path in args.weights:
        sets.append(draw_gancli(path, f"gancli {path.parent.name}/{path.name}", n, classes))
    for path in args.mlp:
        sets.append(draw_mlp(path, f"MLP GAN {path.name}", n))
    if len(sets) == 1:
        log("no generator to evaluate (no shipped sample model; give --weights or --mlp): noise floor only")

    rows = []
    for drawn in sets:
        rows.append(evaluate(net, ref, drawn))
        log(f"{drawn.name}: feature FD {rows[-1]['feature_fd']:.2f}")
    print(f"Sample quality on {args.data.name} ({n} samples per set vs {n} of x_test; {machine()}; feature"
          f" classifier test accuracy {100 * cinfo['test_accuracy']:.2f} %)\n")
    print(table(rows))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"data": str(args.data), "samples": n, "machine": machine(),
                                         "classifier": cinfo, "results": rows}, indent=2) + "\n")
    if args.sheet:
        real = Drawn("real (x_test)", x_test[test_idx], y_test[test_idx], None)
        write_sheet([real] + sets[1:], args.sheet)
        log(f"wrote {args.sheet}")


if __name__ == "__main__":
    main()
