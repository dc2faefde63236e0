"""The inpaint task for the trainer: photo patches with random free-form holes, the fast-Fourier generator, and a
mask-aware PatchGAN discriminator.

Losses on the generator: L1 inside the hole (normalized by the hole's area) plus a small L1 outside (the raw output
there is discarded at inference, but keeping it close keeps the seam quiet), 1 - SSIM over the windows touching the
hole when ssim_weight > 0, the EfficientNet-Lite0 perceptual distance of the composite when perceptual_weight > 0,
and a hinge adversarial loss when gan_weight > 0. The
discriminator sees the composite and the mask, so it judges the filled region against its surroundings.
Validation: held-out images with fixed masks (one per hole-size band), L1 inside the hole and PSNR over the image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from gancli import imageio, metrics, models
from gancli.training import mask_gen
from gancli.training.config import TrainConfig
from gancli.training.data import list_images, make_sampler, split_validation

VAL_SIDE = 256  # validation crops (centre of each held-out image, after max_short_side)
OUTSIDE_WEIGHT = 0.1  # weight of the L1 term outside the hole


class InpaintTask:
    name = "inpaint"

    def __init__(self, cfg: TrainConfig, device: torch.device, log=print) -> None:
        self.cfg, self.device = cfg, device
        files = list_images(cfg.data)
        if not files:
            raise ValueError(f"no images found in {', '.join(cfg.data)}")
        train_files, self.val_files = split_validation(files, cfg.val_count)
        self.sampler = make_sampler(train_files, cfg.patch, cfg.seed, cfg.batch, cfg.halve_above, cfg.data_memory_gb,
                                    cfg.data_workers, warn=log, max_short_side=cfg.max_short_side)
        log(f"data: {len(self.sampler.images)} training images ({self.sampler.pixels / 1e6:.1f} MP), "
            f"{len(self.val_files)} held out for validation")
        self.mask_rng = np.random.default_rng((cfg.seed, 2))
        self.val: list[tuple[torch.Tensor, torch.Tensor]] = []
        for i, f in enumerate(list(self.val_files)):
            try:
                self.val.append(self._val_pair(f, i))
            except Exception:  # noqa: BLE001 - a broken validation image is dropped like a broken training one
                log(f"skipped validation image {f}: unreadable or too small")
                self.val_files.remove(f)
        self.model = models.build(cfg.arch, cfg.model).to(device, memory_format=torch.channels_last)
        self.perceptual = None
        if cfg.perceptual_weight > 0:
            from gancli.training.perceptual import PerceptualLoss

            self.perceptual = PerceptualLoss().to(device, memory_format=torch.channels_last)
        self.discriminator = None
        if cfg.gan_weight > 0:
            disc = {"in_channels": 4, **cfg.disc}
            self.discriminator = models.build("patch_disc", disc).to(device, memory_format=torch.channels_last)

    def _val_pair(self, path: Path, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        img = imageio.read_rgb_array(path, self.cfg.halve_above, self.cfg.max_short_side)
        side = min(VAL_SIDE, min(img.shape[:2])) // 8 * 8
        if side < 32:
            raise ValueError("too small")
        y, x = (img.shape[0] - side) // 2, (img.shape[1] - side) // 2
        image = torch.from_numpy(img[y : y + side, x : x + side].copy()).permute(2, 0, 1)[None].float() / 255
        mask = mask_gen.random_mask(side, side, np.random.default_rng((4321, index)))
        return image, torch.from_numpy(mask)[None, None].float()

    def next_batch(self) -> dict[str, torch.Tensor]:
        image = self.sampler.batch(self.cfg.batch)
        n, _, h, w = image.shape
        mask = torch.from_numpy(mask_gen.batch_masks(n, h, w, self.mask_rng)[:, None]).float()
        return {"image": image.to(self.device, non_blocking=True), "mask": mask.to(self.device, non_blocking=True)}

    def state_dict(self) -> dict:
        return {"mask_rng": self.mask_rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.mask_rng.bit_generator.state = state["mask_rng"]

    def reseed(self, seed: int) -> None:
        self.sampler.reseed(seed)
        self.mask_rng = np.random.default_rng((seed, 2))

    def generate(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The raw generated image (the composite is formed in the losses, where the mask is at hand)."""
        cl = torch.channels_last
        return model(batch["image"].contiguous(memory_format=cl), batch["mask"].contiguous(memory_format=cl), raw=True)

    @staticmethod
    def composite(raw: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        m = batch["mask"]
        return batch["image"] * (1 - m) + raw * m

    def g_loss(self, raw: torch.Tensor, batch: dict[str, torch.Tensor], disc: torch.nn.Module | None
               ) -> tuple[torch.Tensor, dict[str, float]]:
        m, image = batch["mask"], batch["image"]
        err = (raw.float() - image).abs()
        hole = (err * m).sum() / (3 * m.sum()).clamp_min(1)
        outside = (err * (1 - m)).sum() / (3 * (1 - m).sum()).clamp_min(1)
        loss = hole + OUTSIDE_WEIGHT * outside
        logs = {"l1_hole": hole.item(), "l1_outside": outside.item()}
        comp = self.composite(raw, batch)
        if self.cfg.ssim_weight > 0:
            # 1 - SSIM over the windows that touch the hole: penalises texture that does not match the structure
            # there (SSIM falls for uncorrelated detail), which the adversarial and perceptual terms invite.
            smap = metrics.ssim_map_y(comp.float(), image)
            near = F.max_pool2d(m, 11, stride=1)  # the map's valid windows (10 px smaller) with any hole pixel
            s = ((1 - smap) * near).sum() / near.sum().clamp_min(1)
            loss, logs = loss + self.cfg.ssim_weight * s, logs | {"ssim_loss": s.item()}
        if self.perceptual is not None:
            p = self.perceptual(comp.float(), image)
            loss, logs = loss + self.cfg.perceptual_weight * p, logs | {"perceptual": p.item()}
        if disc is not None:
            adv = -disc(torch.cat([comp, m], dim=1)).float().mean()
            loss, logs = loss + self.cfg.gan_weight * adv, logs | {"g_adv": adv.item()}
        return loss, logs

    def d_loss(self, raw: torch.Tensor, batch: dict[str, torch.Tensor], disc: torch.nn.Module
               ) -> tuple[torch.Tensor, dict[str, float]]:
        """Hinge loss on (image, mask) pairs: the real image with the same mask against the composite."""
        m = batch["mask"]
        real = disc(torch.cat([batch["image"], m], dim=1)).float()
        fake = disc(torch.cat([self.composite(raw, batch), m], dim=1)).float()
        loss = F.relu(1 - real).mean() + F.relu(1 + fake).mean()
        return loss, {"d_real": real.mean().item(), "d_fake": fake.mean().item()}

    @torch.no_grad()
    def evaluate(self, model: torch.nn.Module) -> dict[str, float]:
        """L1 inside the hole (x100, lower is better) and PSNR of the whole image; the perceptual distance of the
        composite when the run has a perceptual loss. Score: minus the perceptual distance if present, else minus
        the hole L1."""
        l1s, psnrs, dists = [], [], []
        for image, mask in self.val:
            image, mask = image.to(self.device), mask.to(self.device)
            out = torch.round(model(image, mask).clamp(0, 1) * 255) / 255
            l1s.append(float(((out - image).abs() * mask).sum() / (3 * mask.sum()).clamp_min(1)) * 100)
            psnrs.append(float(metrics.psnr_y(out.cpu(), image.cpu(), shave=0)[0]))
            if self.perceptual is not None:
                dists.append(float(self.perceptual(out, image)))
        res = {"l1_hole": round(float(np.mean(l1s)), 4) if l1s else 0.0,
               "psnr_y": round(float(np.mean(psnrs)), 4) if psnrs else 0.0}
        if dists:
            res["perceptual"] = round(float(np.mean(dists)), 4)
            return res | {"score": -res["perceptual"]}
        return res | {"score": -res["l1_hole"]}

    @torch.no_grad()
    def sample_sheet(self, model: torch.nn.Module, count: int = 4, side: int = 160) -> np.ndarray:
        """Rows of [input with the hole in grey | result | ground truth] for the first validation images."""
        rows = []
        for image, mask in self.val[:count]:
            out = model(image.to(self.device), mask.to(self.device)).cpu().clamp(0, 1)
            shown = image * (1 - mask) + 0.5 * mask
            row = torch.cat([shown, out, image], dim=-1)
            rows.append(F.interpolate(row, size=(side, 3 * side), mode="area"))
        if not rows:
            return np.zeros((side, 3 * side, 3), np.uint8)
        sheet = torch.cat(rows, dim=-2)[0]
        return (sheet.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)

    def export_info(self) -> dict[str, str]:
        return {"task": "inpaint", "name": "inpaint", "description": "inpainting (fast Fourier generator)"}
