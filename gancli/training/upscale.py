"""The upscale task for the trainer: HR patches, LR inputs by bicubic downscaling or realistic damage, L1 loss
(plus a hinge GAN loss when gan_weight > 0), PSNR-Y validation on held-out images degraded the same way."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from gancli import imageio, metrics, models
from gancli.training import realistic
from gancli.training.config import TrainConfig
from gancli.training.data import list_images, make_sampler, split_validation
from gancli.training.degrade import bicubic_down


class UpscaleTask:
    name = "upscale"

    def __init__(self, cfg: TrainConfig, device: torch.device, log=print) -> None:
        self.cfg, self.device = cfg, device
        self.scale = cfg.scale
        files = list_images(cfg.data)
        if not files:
            raise ValueError(f"no images found in {', '.join(cfg.data)}")
        train_files, self.val_files = split_validation(files, cfg.val_count)
        self.sampler = make_sampler(train_files, cfg.patch * self.scale, cfg.seed, cfg.batch, cfg.halve_above,
                                    cfg.data_memory_gb, cfg.data_workers, warn=log)
        log(f"data: {len(self.sampler.images)} training images ({self.sampler.pixels / 1e6:.1f} MP), "
            f"{len(self.val_files)} held out for validation")
        if cfg.degradation not in ("bicubic", "realistic"):
            raise ValueError(f"unknown degradation {cfg.degradation!r} (use bicubic or realistic)")
        self.degrade_rng = np.random.default_rng((cfg.seed, 1))
        self.val = []
        for i, f in enumerate(list(self.val_files)):
            try:
                self.val.append(self._val_pair(f, i))
            except Exception:  # noqa: BLE001 - a broken validation image is dropped like a broken training one
                log(f"skipped validation image {f}: unreadable")
                self.val_files.remove(f)
        self.model = models.build(cfg.arch, {**cfg.model, "scale": self.scale}).to(device)
        self.model = self.model.to(memory_format=torch.channels_last)
        self.perceptual = None
        if cfg.perceptual_weight > 0:
            from gancli.training.perceptual import PerceptualLoss

            self.perceptual = PerceptualLoss().to(device, memory_format=torch.channels_last)
        self.discriminator = None
        if cfg.gan_weight > 0:
            self.discriminator = models.build("patch_disc", cfg.disc).to(device, memory_format=torch.channels_last)

    def _val_pair(self, path: Path, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """A centre crop and its LR input, made like the training inputs (realistic damage from a fixed seed per
        image, so validations are comparable across steps and runs)."""
        img = imageio.read_rgb_array(path, halve_above=self.cfg.halve_above)
        side = min(256, min(img.shape[:2])) // self.scale * self.scale  # a centre crop keeps validation quick
        y, x = (img.shape[0] - side) // 2, (img.shape[1] - side) // 2
        hr = torch.from_numpy(img[y : y + side, x : x + side].copy()).permute(2, 0, 1)[None].float() / 255
        if self.cfg.degradation == "realistic":
            return realistic.degrade(hr, self.scale, np.random.default_rng((1234, index))), hr
        return bicubic_down(hr, self.scale), hr

    def next_batch(self) -> dict[str, torch.Tensor]:
        hr = self.sampler.batch(self.cfg.batch)
        if self.cfg.degradation == "realistic":
            lr = realistic.degrade(hr, self.scale, self.degrade_rng)
        else:
            lr = bicubic_down(hr, self.scale)
        return {"hr": hr.to(self.device, non_blocking=True), "lr": lr.to(self.device, non_blocking=True)}

    def state_dict(self) -> dict:
        return {"degrade_rng": self.degrade_rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.degrade_rng.bit_generator.state = state["degrade_rng"]

    def reseed(self, seed: int) -> None:
        """A rank of its own: other patches and other damage than the other ranks."""
        self.sampler.reseed(seed)
        self.degrade_rng = np.random.default_rng((seed, 1))

    def generate(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return model(batch["lr"].contiguous(memory_format=torch.channels_last))

    def g_loss(self, sr: torch.Tensor, batch: dict[str, torch.Tensor], disc: torch.nn.Module | None
               ) -> tuple[torch.Tensor, dict[str, float]]:
        """L1 to the ground truth, plus perceptual and hinge adversarial terms when their weights are set."""
        l1 = F.l1_loss(sr.float(), batch["hr"])
        loss, logs = l1, {}
        if self.perceptual is not None:
            p = self.perceptual(sr.float(), batch["hr"])
            loss, logs = loss + self.cfg.perceptual_weight * p, logs | {"l1": l1.item(), "perceptual": p.item()}
        if disc is not None:
            adv = -disc(sr).float().mean()
            loss, logs = loss + self.cfg.gan_weight * adv, logs | {"l1": l1.item(), "g_adv": adv.item()}
        return loss, logs

    def d_loss(self, sr: torch.Tensor, batch: dict[str, torch.Tensor], disc: torch.nn.Module
               ) -> tuple[torch.Tensor, dict[str, float]]:
        """Hinge loss: real scores pushed above +1, fake below -1."""
        real, fake = disc(batch["hr"]).float(), disc(sr).float()
        loss = F.relu(1 - real).mean() + F.relu(1 + fake).mean()
        return loss, {"d_real": real.mean().item(), "d_fake": fake.mean().item()}

    @torch.no_grad()
    def evaluate(self, model: torch.nn.Module) -> dict[str, float]:
        """PSNR-Y on the held-out crops; with a perceptual loss also its feature distance, which is then the score
        (lower distance = higher score): PSNR falls as a GAN invents plausible detail, so it cannot pick a GAN's best
        checkpoint."""
        psnrs, dists = [], []
        for lr, hr in self.val:
            sr = model(lr.to(self.device)).clamp(0, 1)
            sr = torch.round(sr * 255) / 255
            psnrs.append(float(metrics.psnr_y(sr.cpu(), hr, shave=self.scale)[0]))
            if self.perceptual is not None:
                dists.append(float(self.perceptual(sr, hr.to(self.device))))
        psnr = round(sum(psnrs) / max(1, len(psnrs)), 4)
        if not dists:
            return {"psnr_y": psnr, "score": psnr}
        dist = round(sum(dists) / len(dists), 4)
        return {"psnr_y": psnr, "perceptual": dist, "score": -dist}

    @torch.no_grad()
    def sample_sheet(self, model: torch.nn.Module, count: int = 4, crop: int = 48) -> np.ndarray:
        """Rows of [bicubic | model | ground truth] on fixed centre crops of the first validation images.

        Returns (rows * crop * scale, 3 * crop * scale, 3) uint8.
        """
        s, rows = self.scale, []
        for lr, hr in self.val[:count]:
            _, _, h, w = lr.shape
            c = min(crop, h, w)
            y, x = (h - c) // 2, (w - c) // 2
            lr_c = lr[..., y : y + c, x : x + c]
            hr_c = hr[..., y * s : (y + c) * s, x * s : (x + c) * s]
            bic = F.interpolate(lr_c, scale_factor=s, mode="bicubic", align_corners=False)
            sr = model(lr_c.to(self.device)).cpu()
            row = torch.cat([bic, sr, hr_c], dim=-1).clamp(0, 1)
            if c != crop:  # a validation image smaller than the crop: stretch its row to the sheet's width
                row = F.interpolate(row, size=(crop * s, 3 * crop * s), mode="nearest")
            rows.append(row)
        if not rows:
            return np.zeros((crop * s, 3 * crop * s, 3), np.uint8)
        sheet = torch.cat(rows, dim=-2)[0]
        return (sheet.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)

    def export_info(self) -> dict[str, str]:
        return {"task": "upscale", "name": f"x{self.scale}", "description": f"x{self.scale} upscaler (L1, bicubic)"}
