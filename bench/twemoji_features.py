"""A feature network trained on Twemoji itself, for bench/emoji_quality.py: distances that no ImageNet network shapes.

The emoji benchmark's main distances use EfficientNet-Lite0's ImageNet features (the only pretrained image network
installable offline here). A generator trained against those same features (`projected_weight`, a Projected GAN)
can lower those distances without drawing better emoji, so this second feature space is learnt from the data set
itself, as bench/sample_quality.py does for digits: a small CNN classifies every Twemoji image in
../shared/data/emoji (3,781 of its 3,786 files: emoji.json's nine categories but "Component", skin-tone variants
with their emoji) by category, trained once with a fixed seed and cached in bench/out/ (keyed by the images' sha256).
Every 10th emoji (by emoji.json order, with its variants: 371 images) is held out for the accuracy printed with the
numbers (84.9 % in session 10; 30 epochs, 13.2 CPU-minutes at 1 thread, once: the first run of the benchmark pays it).

Input: RGB composited over white, plus alpha (4 channels), 64x64. Network: six 3x3 conv layers (32, 64 stride 2, 64,
128 stride 2, 128, 256 stride 2; BatchNorm + ReLU; no pooling but the strides), global average + linear; training
augments with random shifts of up to 6 pixels and left-right flips. Features: the spatial means of layers 2, 4 and 6
(64 + 128 + 256 = 448-d), each divided by its RMS standard deviation over the real images the benchmark compares
with, so that no layer drowns the others.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ConvFeatures, cached_net, fit_classifier  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EMOJI = ROOT.parent / "shared" / "data" / "emoji"
OUT = ROOT / "bench" / "out"
VERSION = 1
SEED = 0
EPOCHS = 30
BATCH = 64
TAPS = (1, 3, 5)  # layers whose spatial means are the features


def TwemojiNet(classes: int) -> ConvFeatures:  # noqa: N802 (a constructor)
    """forward(x (B, 4, 64, 64): RGB over white and alpha, in [0, 1]) -> (logits, [spatial means of TAPS])."""
    return ConvFeatures([(4, 32, 1), (32, 64, 2), (64, 64, 1), (64, 128, 2), (128, 128, 1), (128, 256, 2)], classes,
                        TAPS)


def to_input(images: np.ndarray) -> torch.Tensor:
    """(N, 64, 64, 4) uint8 RGBA -> (N, 4, 64, 64) float: RGB over white, alpha."""
    x = torch.from_numpy(images).float().div_(255).permute(0, 3, 1, 2)
    a = x[:, 3:]
    return torch.cat([x[:, :3] * a + (1 - a), a], dim=1).contiguous(memory_format=torch.channels_last)


def load_twemoji(folder: Path = EMOJI) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """(images (N, 64, 64, 4) uint8, category labels (N,), held-out mask (N,), category names)."""
    entries = json.loads((folder / "emoji.json").read_text())
    names = sorted({e["category"] for e in entries} - {"Component"})
    images, labels, held = [], [], []
    for k, e in enumerate(entries):
        if e["category"] not in names:
            continue
        files = [e["image"]] + [v["image"] for v in (e.get("skin_variations") or {}).values()]
        for name in files:
            path = folder / "twemoji-64" / name
            if not path.exists():
                continue
            with Image.open(path) as im:
                images.append(np.asarray(im.convert("RGBA").resize((64, 64), Image.LANCZOS)))
            labels.append(names.index(e["category"]))
            held.append(k % 10 == 0)
    return np.stack(images), np.array(labels), np.array(held), names


def _shift_flip(x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Random shifts of up to 6 pixels (white, transparent fill) and left-right flips, per image."""
    out = torch.empty_like(x)
    fill = torch.tensor([1.0, 1.0, 1.0, 0.0]).view(4, 1, 1)
    for i in range(len(x)):
        dy, dx = rng.integers(-6, 7, size=2)
        img = torch.roll(x[i], shifts=(int(dy), int(dx)), dims=(1, 2))
        if dy > 0:
            img[:, :dy] = fill
        elif dy < 0:
            img[:, dy:] = fill
        if dx > 0:
            img[:, :, :dx] = fill
        elif dx < 0:
            img[:, :, dx:] = fill
        out[i] = img.flip(2) if rng.random() < 0.5 else img
    return out


def train(images: np.ndarray, labels: np.ndarray, held: np.ndarray, classes: int, log=print
          ) -> tuple[ConvFeatures, dict]:
    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    x_all = to_input(images)
    train_idx = np.flatnonzero(~held)
    net = TwemojiNet(classes).to(memory_format=torch.channels_last)
    per_epoch = len(train_idx) // BATCH
    wall, cpu = time.perf_counter(), time.process_time()
    order = train_idx

    def batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
        nonlocal order
        if step % per_epoch == 0:
            order = rng.permutation(train_idx)
        idx = order[step % per_epoch * BATCH : (step % per_epoch + 1) * BATCH]
        x = _shift_flip(x_all[idx], rng).contiguous(memory_format=torch.channels_last)
        return x, torch.from_numpy(labels[idx])

    fit_classifier(net, EPOCHS * per_epoch, batch, log, log_every=200)
    with torch.no_grad():
        preds = net(x_all[held])[0].argmax(1).numpy()
    info = {"held_out_accuracy": round(float((preds == labels[held]).mean()), 4), "held_out": int(held.sum()),
            "trained_on": int((~held).sum()), "classes": classes, "epochs": EPOCHS,
            "seconds": round(time.perf_counter() - wall, 1), "cpu_seconds": round(time.process_time() - cpu, 1),
            "version": VERSION}
    return net, info


def cached(log=print) -> tuple[ConvFeatures, dict]:
    """The Twemoji feature network: trained once, then loaded from bench/out/twemoji-*.safetensors."""
    images, labels, held, names = load_twemoji()
    digest = hashlib.sha256(images.tobytes() + labels.tobytes()).hexdigest()[:12]
    path = OUT / f"twemoji-v{VERSION}-{digest}.safetensors"

    def fit() -> tuple[ConvFeatures, dict]:
        log(f"training the Twemoji feature network on {int((~held).sum())} images, {len(names)} categories "
            f"({EPOCHS} epochs; cached in {path})")
        return train(images, labels, held, len(names), log)

    return cached_net(path, lambda: TwemojiNet(len(names)), fit)


@torch.no_grad()
def features(net: ConvFeatures, images: np.ndarray, batch: int = 250) -> list[np.ndarray]:
    """[per-tap features (N, C_i) float64] of (N, 64, 64, 4) uint8 RGBA images."""
    out = []
    for i in range(0, len(images), batch):
        out.append([p.double().numpy() for p in net(to_input(images[i : i + batch]))[1]])
    return [np.concatenate([o[k] for o in out]) for k in range(len(TAPS))]
