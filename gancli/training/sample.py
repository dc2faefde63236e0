"""The sample task for the trainer: an unconditional (or class-conditional) GAN on a set of whole images.

Generator and discriminator from gancli.models.gan; hinge loss; R1 penalty on real images every R1_EVERY steps (lazy,
weighted up to match); DiffAugment on everything D sees; optionally a mode-seeking term (`diversity_weight`), a coverage
term (`coverage_weight`: IMLE's nearest-sample loss, as in Inclusive GAN), LeCam regularisation of D (`lecam_weight`), a
second discriminator on frozen ImageNet features (`projected_weight`, gancli.training.projected) and, with a
minibatch-std discriminator (`disc.mbstd`), batches laid out so that each std group holds one class. The engine's EMA
generator is what is evaluated, exported and sampled. Evaluation (fast enough to run during training, not the
benchmark): a Fréchet distance between EMA samples and held-out real images in a 64-dimensional PCA space of pixels
fitted on the real images, and diversity ratios (mean pairwise distance of samples / of real images; overall and, for
class-conditional models, within a class) whose collapse warns of mode collapse.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from gancli import models
from gancli.models import gan
from gancli.training import diffaug
from gancli.training.config import TrainConfig
from gancli.training.image_sets import load_image_set, split_holdout

R1_EVERY = 4
EVAL_SEEDS = 1000  # EMA samples per evaluation (seeds 0..999: comparable across evaluations and runs)
COLLAPSE_RATIO = 0.5  # samples less than half as varied as real images: warn


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to the rows of a and b."""
    from numpy.linalg import eigvalsh

    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    # tr(sqrt(s1 s2)) from the eigenvalues of sqrt(s1) s2 sqrt(s1) (symmetric, so stable)
    w, v = np.linalg.eigh(s1)
    r1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    tr_sqrt = np.sqrt(np.clip(eigvalsh(r1 @ s2 @ r1), 0, None)).sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt)


class PixelPCA:
    """Images' raw pixels in [0, 1] projected on the principal axes of a reference set's (the in-run distance's space;
    bench/emoji_quality.py's pixel FD). distance(images): the Fréchet distance of their projections to the
    reference's."""

    def __init__(self, real: np.ndarray, dims: int = 64) -> None:
        x = real.reshape(len(real), -1).astype(np.float32) / 255
        self.mean = x.mean(0)
        self.axes = np.linalg.svd(x - self.mean, full_matrices=False)[2][:dims].T
        self.real = (x - self.mean) @ self.axes

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return (images.reshape(len(images), -1).astype(np.float32) / 255 - self.mean) @ self.axes

    def distance(self, images: np.ndarray) -> float:
        return frechet(self(images), self.real)


class ArraySampler:
    """Random whole images (and labels) from arrays held in memory; resumable by its RNG state.

    With labels and group > 1, a batch of B is laid out as B/group classes drawn at random, each given to images
    i, i + B/group, i + 2B/group, ... : the discriminator's minibatch-std groups (gan.py) then hold one class each, so
    a generator that ignores its latent within a class (while the classes still differ) shows a zero spread there.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray | None, seed: int, group: int = 1,
                 mirror: bool = False) -> None:
        self.images, self.labels, self.mirror = images, labels, mirror
        self.rng = np.random.default_rng(seed)
        self.group = group if labels is not None else 1
        self.by_class = ([np.flatnonzero(labels == c) for c in range(int(labels.max()) + 1)] if self.group > 1
                         else [])

    @property
    def pixels(self) -> int:
        return int(np.prod(self.images.shape[:3]))

    def batch(self, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.group > 1 and n % self.group == 0:
            anchors = self.rng.integers(0, len(self.images), size=n // self.group)  # classes as often as in the data
            pools = [self.by_class[int(c)] for c in self.labels[anchors]]
            idx = np.stack([p[self.rng.integers(0, len(p), size=self.group)] for p in pools], axis=1).reshape(-1)
        else:
            idx = self.rng.integers(0, len(self.images), size=n)
        x = torch.from_numpy(self.images[idx]).permute(0, 3, 1, 2).float().div_(255)
        if self.mirror:
            flip = torch.from_numpy(self.rng.random(n) < 0.5)
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
        y = None if self.labels is None else torch.from_numpy(self.labels[idx])
        return x, y

    def state_dict(self) -> dict:
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]

    def reseed(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)


def _thumb(x: torch.Tensor) -> torch.Tensor:
    """The coverage term's view of an image batch for its nearest-sample search: 16x16 averages, flattened."""
    return F.adaptive_avg_pool2d(x.float(), 16).flatten(1)


class SampleTask:
    name = "sample"

    def __init__(self, cfg: TrainConfig, device: torch.device, log=print) -> None:
        self.cfg, self.device, self.log = cfg, device, log
        size = int(cfg.model.get("image_size", 32))
        net_size = gan.net_size(size)  # 28 stays 28 (7x7 bottom); 36 (bottom 9) is padded to 64
        data = load_image_set(cfg.data, size, cfg.image_fit)
        for s in data.skipped[:5]:
            log(f"skipped {s}")
        images = data.images
        if net_size != size:  # padded for the network, cropped back when sampling
            p0 = (net_size - size) // 2
            images = np.pad(images, ((0, 0), (p0, net_size - size - p0), (p0, net_size - size - p0), (0, 0)))
        held_out = cfg.eval_images > 0
        if held_out:
            train_idx, held_idx = split_holdout(len(images), cfg.eval_images, cfg.seed)
            if len(held_idx) == 0:  # under 5 images: none can be spared
                log(f"only {len(images)} images: none held out, evaluated against the training images")
                held_out = False
        if not held_out:  # small data: train on everything, evaluate against the training images (as FID on ADA)
            train_idx = held_idx = np.arange(len(images))
        self.classes = data.classes
        labels = data.labels
        # training images per class, recorded in the model file for `gancli sample --label-mix data`
        self.class_counts = ([] if labels is None else
                             np.bincount(labels[train_idx], minlength=len(self.classes)).tolist())
        self.sampler = ArraySampler(images[train_idx], None if labels is None else labels[train_idx], cfg.seed,
                                    group=int(cfg.disc.get("mbstd", 0)) or 1, mirror=cfg.mirror)
        self.held = images[held_idx]
        self.held_labels = None if labels is None else labels[held_idx]
        self.val_files = list(held_idx) if held_out else []  # what describe() counts as held out
        held_text = f"{len(held_idx)} held out for evaluation" if held_out else "evaluated against them"
        log(f"data: {len(train_idx)} training images, {held_text}, {size}x{size}x"
            f"{data.channels}" + (f", {len(self.classes)} classes ({', '.join(self.classes[:10])})" if self.classes
                                  else ""))
        gen = {"latent_dim": 128, **cfg.model, "image_size": net_size, "channels": data.channels,
               "num_classes": len(self.classes), "crop": size if size != net_size else 0}
        self.model = models.build(cfg.arch, gen).to(device)
        disc = {**cfg.disc, "image_size": net_size, "channels": data.channels, "num_classes": len(self.classes)}
        self.discriminator = models.build("gan_disc", disc)
        self.projected = cfg.projected_weight > 0
        if self.projected:
            from gancli.training.projected import ProjectedHeads, WithProjected

            heads = ProjectedHeads(data.channels, net_size, len(self.classes), seed=cfg.seed)
            self.discriminator = WithProjected(self.discriminator, heads)
        self.discriminator.to(device)
        self.policy = diffaug.parse_policy(cfg.diffaugment)
        self.latent_dim = self.model.config.latent_dim
        self.steps_done = 0
        self.lecam_avg: list[float] | None = None  # moving averages of D's mean output on [real, fake] images
        self._fit_pca()

    # ------------------------------------------------------------------------------------------------- data
    def next_batch(self) -> dict[str, torch.Tensor]:
        real, labels = self.sampler.batch(self.cfg.batch)
        z = torch.randn(self.cfg.batch, self.latent_dim)
        batch = {"real": real.to(self.device), "z": z.to(self.device)}
        if labels is not None:
            batch["labels"] = labels.to(self.device)
        return batch

    def state_dict(self) -> dict:
        out = {"steps_done": self.steps_done}
        if self.lecam_avg is not None:
            out["lecam_avg"] = list(self.lecam_avg)
        return out

    def load_state_dict(self, state: dict) -> None:
        self.steps_done = int(state["steps_done"])
        self.lecam_avg = [float(v) for v in state["lecam_avg"]] if "lecam_avg" in state else None

    def reseed(self, seed: int) -> None:
        self.sampler.reseed(seed)

    # ----------------------------------------------------------------------------------------------- losses
    def generate(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The batch's samples; with the coverage term's own search (coverage_pool > 0), followed by the matched samples
        of half its real images (coverage_pool 0 picks them from the batch in g_loss)."""
        z, labels = batch["z"], batch.get("labels")
        if self.cfg.coverage_weight > 0 and self.cfg.coverage_pool > 0:
            zm, lm = self._nearest_latents(model, batch)
            z = torch.cat([z, zm])
            labels = None if labels is None else torch.cat([labels, lm])
        return model(z, labels)

    @torch.no_grad()
    def _nearest_latents(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]
                         ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """For each of the first half of the real images, the latent (of coverage_pool fresh ones, same class) whose
        sample is nearest to it at 16x16 (IMLE's search; the generator being trained, its current state)."""
        real = batch["real"][: max(1, len(batch["real"]) // 2)]
        k, m = self.cfg.coverage_pool, len(real)
        z = torch.randn(m * k, self.latent_dim, device=real.device)  # candidate j of real i at row i * k + j
        labels = batch.get("labels")
        lm = None if labels is None else labels[:m]
        cand = model(z, None if lm is None else lm.repeat_interleave(k))
        dist = (_thumb(cand).view(m, k, -1) - _thumb(real)[:, None]).pow(2).sum(2)
        pick = dist.argmin(1) + torch.arange(m, device=real.device) * k
        return z[pick], lm

    def _nearest_in_batch(self, fake: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """coverage_pool 0: for each of the first half of the real images, the batch's own sample of its class nearest
        to it at 16x16 (samples are drawn with the real images' labels, so each image has at least one candidate)."""
        real = batch["real"][: max(1, len(batch["real"]) // 2)]
        with torch.no_grad():
            dist = torch.cdist(_thumb(real), _thumb(fake.detach()))
            labels = batch.get("labels")
            if labels is not None:
                dist = dist.masked_fill(labels[: len(real), None] != labels[None, : len(fake)], math.inf)
            pick = dist.argmin(1)
        return fake[pick]

    def g_loss(self, fake: torch.Tensor, batch: dict[str, torch.Tensor], disc: torch.nn.Module | None
               ) -> tuple[torch.Tensor, dict[str, float]]:
        fake, matched = fake[: len(batch["z"])], fake[len(batch["z"]) :]
        if self.cfg.coverage_weight > 0 and self.cfg.coverage_pool == 0:
            matched = self._nearest_in_batch(fake, batch)
        seen = diffaug.augment(fake, self.policy)
        if self.projected:
            score, proj = disc(seen, batch.get("labels"), projected=True)
            loss = -score.float().mean() - self.cfg.projected_weight * proj.float().mean()
            logs = {"g_adv": -score.float().mean().item(), "g_proj": -proj.float().mean().item()}
        else:
            score = disc(seen, batch.get("labels")).float()
            loss = -score.mean()
            logs = {"g_adv": loss.item()}
        if self.cfg.diversity_weight > 0 and len(fake) >= 2:
            # images i and i + B/2 share a class when batches are grouped in an even group (ArraySampler, mbstd 4;
            # other pairs may differ in class): a generator that maps their latents to one image pays
            # 1 / (image distance / latent distance)
            h = len(fake) // 2
            z = batch["z"]
            ratio = (fake[:h] - fake[h : 2 * h]).abs().mean() / (z[:h] - z[h : 2 * h]).abs().mean()
            loss = loss + self.cfg.diversity_weight / (ratio.float() + 1e-5)
            logs["ms_ratio"] = ratio.item()
        if len(matched):  # coverage: each matched sample towards its real image (plain L1, unaugmented)
            matched, target = matched.float(), batch["real"][: len(matched)].float()
            if self.cfg.coverage_size:
                size = min(self.cfg.coverage_size, target.shape[-1])
                matched, target = F.adaptive_avg_pool2d(matched, size), F.adaptive_avg_pool2d(target, size)
            cover = F.l1_loss(matched, target)
            loss = loss + self.cfg.coverage_weight * cover
            logs["cover_l1"] = cover.item()
        return loss, logs

    def d_loss(self, fake: torch.Tensor, batch: dict[str, torch.Tensor], disc: torch.nn.Module
               ) -> tuple[torch.Tensor, dict[str, float]]:
        labels = batch.get("labels")
        real_in = batch["real"]
        fake = fake[: len(batch["z"])]  # the coverage term's matched samples are not shown to D
        lazy_r1 = self.cfg.r1_gamma > 0 and self.steps_done % R1_EVERY == 0
        if lazy_r1:
            real_in = real_in.detach().requires_grad_(True)
        real_aug = diffaug.augment(real_in, self.policy)
        recon_w = self.discriminator.config.recon
        both = {"projected": True} if self.projected else {}  # WithProjected: (own output, projected logits)
        real = disc(real_aug, labels, recon=recon_w > 0, **both)
        fake_s = disc(diffaug.augment(fake, self.policy), labels, **both)
        if self.projected:
            (real, real_p), (fake_s, fake_p) = real, fake_s
        if recon_w > 0:  # the decoder rebuilds what D was shown (the augmented image), at half size
            real, rebuilt = real
            recon = F.l1_loss(rebuilt.float(), F.avg_pool2d(real_aug.detach() * 2 - 1, 2).float())
        real, fake_s = real.float(), fake_s.float()
        loss = F.relu(1 - real).mean() + F.relu(1 + fake_s).mean()
        logs = {"d_real": real.mean().item(), "d_fake": fake_s.mean().item()}
        if self.projected:
            real_p, fake_p = real_p.float(), fake_p.float()
            loss = loss + self.cfg.projected_weight * (F.relu(1 - real_p).mean() + F.relu(1 + fake_p).mean())
            logs |= {"dp_real": real_p.mean().item(), "dp_fake": fake_p.mean().item()}
        if recon_w > 0:
            loss = loss + recon_w * recon
            logs["d_recon"] = recon.item()
        if self.cfg.lecam_weight > 0:
            reg = self._lecam(real, fake_s, logs["d_real"], logs["d_fake"])
            loss = loss + self.cfg.lecam_weight * reg
            logs["lecam"] = reg.item()
        if lazy_r1:
            (grad,) = torch.autograd.grad(real.sum(), real_in, create_graph=True)
            r1 = grad.pow(2).flatten(1).sum(1).mean()
            loss = loss + self.cfg.r1_gamma / 2 * r1 * R1_EVERY
            logs["r1"] = r1.item()
        self.steps_done += 1
        return loss, logs

    def _lecam(self, real: torch.Tensor, fake: torch.Tensor, real_mean: float, fake_mean: float) -> torch.Tensor:
        """LeCam's term: D's outputs on real images above the moving average of its outputs on fakes, and on fakes
        below that of reals, are penalised quadratically; the averages take this step's means (already logged, so no
        second device sync) first (the first step starts them)."""
        means = [real_mean, fake_mean]
        if self.lecam_avg is None:
            self.lecam_avg = means
        else:
            d = self.cfg.lecam_decay
            self.lecam_avg = [d * a + (1 - d) * m for a, m in zip(self.lecam_avg, means, strict=True)]
        avg_real, avg_fake = self.lecam_avg
        return F.relu(real - avg_fake).pow(2).mean() + F.relu(avg_real - fake).pow(2).mean()

    # ------------------------------------------------------------------------------------------- evaluation
    def _fit_pca(self) -> None:
        self.pixels = PixelPCA(self.held)
        x = self.held.reshape(len(self.held), -1).astype(np.float32) / 255
        self.real_spread = _mean_pair_distance(x)
        self.real_class_spread = (None if self.held_labels is None else
                                  _class_pair_distance(x, self.held_labels, len(self.classes)))

    @torch.no_grad()
    def samples(self, model: torch.nn.Module, seeds: list[int], labels: list[int] | None = None) -> np.ndarray:
        """(N, S, S, C) uint8 at the network's size (before the crop to the data size)."""
        model.eval()
        out = []
        for i in range(0, len(seeds), 250):
            z = model.sample_latents(seeds[i : i + 250]).to(self.device)
            y = None
            if model.conditional:
                lab = labels[i : i + 250] if labels is not None else [s % len(self.classes) for s in seeds[i : i + 250]]
                y = torch.tensor(lab, device=self.device)
            out.append((model(z, y).clamp(0, 1) * 255 + 0.5).byte().permute(0, 2, 3, 1).cpu().numpy())
        return np.concatenate(out)

    def evaluate(self, model: torch.nn.Module) -> dict[str, float]:
        drawn = self.samples(model, list(range(EVAL_SEEDS)))
        fd = self.pixels.distance(drawn)
        fake = drawn.reshape(EVAL_SEEDS, -1).astype(np.float32) / 255
        diversity = _mean_pair_distance(fake) / max(self.real_spread, 1e-8)
        if diversity < COLLAPSE_RATIO:
            self.log(f"warning: samples are {diversity:.2f}x as varied as real images: possible mode collapse")
        out = {"fd_pca": round(fd, 4), "diversity": round(diversity, 4)}
        if self.real_class_spread:  # within one class (samples of seed s have label s % classes)
            k = len(self.classes)
            cd = _class_pair_distance(fake, np.arange(EVAL_SEEDS) % k, k) / self.real_class_spread
            out["class_diversity"] = round(cd, 4)
            if cd < COLLAPSE_RATIO:
                self.log(f"warning: samples of one class are {cd:.2f}x as varied as real ones: the generator "
                         "ignores its latent (mode collapse within classes)")
        return {**out, "score": -round(fd, 4)}

    def sample_sheet(self, model: torch.nn.Module, rows: int = 8) -> np.ndarray:
        """rows x rows samples of fixed seeds (one class per row for conditional models), RGB on grey."""
        n = rows * rows
        labels = [(i // rows) % len(self.classes) for i in range(n)] if self.classes else None
        x = self.samples(model, list(range(n)), labels)
        return grid(x, rows)

    def provenance(self) -> dict:
        """Added to the exported model's provenance: what `gancli sample --label` needs."""
        out = {"classes": self.classes, "image_size": int(self.cfg.model.get("image_size", 32))}
        if self.classes:
            out["class_counts"] = [int(c) for c in self.class_counts]
        return out

    def export_info(self) -> dict[str, str]:
        kind = f"class-conditional ({len(self.classes)} classes)" if self.classes else "unconditional"
        return {"task": "sample", "name": "sample", "description": f"{kind} image GAN"}


def _mean_pair_distance(x: np.ndarray, pairs: int = 2000) -> float:
    rng = np.random.default_rng(0)
    i, j = rng.integers(0, len(x), pairs), rng.integers(0, len(x), pairs)
    keep = i != j
    return float(np.sqrt(((x[i[keep]] - x[j[keep]]) ** 2).sum(1)).mean())


def _class_pair_distance(x: np.ndarray, labels: np.ndarray, classes: int) -> float:
    """Mean pairwise distance within each class, averaged over the classes present."""
    d = [_mean_pair_distance(x[labels == c], 200) for c in range(classes) if (labels == c).sum() >= 2]
    return float(np.mean(d)) if d else 0.0


def grid(x: np.ndarray, cols: int, pad: int = 2, alpha: bool = False) -> np.ndarray:
    """(N, S, S, C) uint8 -> one sheet, gray expanded to RGB. RGBA images: composited on mid grey into an RGB sheet,
    or with alpha=True kept as an RGBA sheet whose padding is transparent."""
    n, s, _, c = x.shape
    keep = alpha and c == 4
    if c == 4 and not keep:
        a = x[..., 3:].astype(np.float32) / 255
        x = (x[..., :3] * a + 128 * (1 - a) + 0.5).astype(np.uint8)
    elif c == 1:
        x = np.repeat(x, 3, axis=3)
    rows = math.ceil(n / cols)
    sheet = np.full((rows * (s + pad) + pad, cols * (s + pad) + pad, 4 if keep else 3), 255, np.uint8)
    if keep:
        sheet[..., 3] = 0
    for k in range(n):
        r, q = divmod(k, cols)
        sheet[pad + r * (s + pad) : pad + r * (s + pad) + s, pad + q * (s + pad) : pad + q * (s + pad) + s] = x[k]
    return sheet
