"""The resolved configuration of a training run: defaults < saved run config < options given now."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_ARCH = {"upscale": "compact_sr", "inpaint": "inpaint_ffc", "sample": "gan_gen"}


@dataclass
class TrainConfig:
    task: str = "upscale"  # what the run trains: upscale, inpaint or sample
    data: list[str] = field(default_factory=list)  # image folders
    arch: str = ""  # registry name of the generator ("": the task's default, see DEFAULT_ARCH)
    model: dict[str, Any] = field(default_factory=dict)  # its config (scale etc.), see gancli.models
    steps: int = 20000  # total optimizer steps; the LR schedule is laid over them
    batch: int = 16  # patches per step
    patch: int = 48  # low-resolution patch side (the HR patch is patch * scale)
    lr: float = 5e-4  # peak Adam learning rate
    warmup: int = 300  # linear LR warm-up steps, then cosine decay to lr * min_lr_ratio
    min_lr_ratio: float = 0.02
    ema: float = 0.999  # decay of the exported EMA copy, ramped in as min(ema, (1+t)/(10+t)) at step t
    grad_clip: float = 1.0  # max gradient norm (0: off)
    seed: int = 0
    val_count: int = 16  # training images held out for validation (never benchmark sets)
    eval_every: int = 500  # steps between validation runs (each also writes a checkpoint)
    checkpoint_minutes: float = 5.0  # and a checkpoint at least this often
    keep_evals: bool = False  # also keep the EMA generator of every validation as evals/stepNNNNNNN.safetensors
    #                           (float32 model files: 5.8 MB each for the emoji models), to pick a step by a benchmark
    #                           rather than by the in-run score
    halve_above: int = 800  # training images with a shorter side >= this are downscaled by 2 on load
    max_short_side: int = 0  # then downscaled so the shorter side is at most this (0: off; whole scenes per patch)
    data_memory_gb: float = 4.0  # decoded training images up to this size are held in memory, else streamed
    data_workers: int = 2  # DataLoader worker processes when streaming
    degradation: str = "bicubic"  # upscale: how LR inputs are made: bicubic, or realistic (blur, noise, JPEG, x2)
    perceptual_weight: float = 0.0  # weight of the EfficientNet-Lite0 feature loss (needs gancli[train])
    ssim_weight: float = 0.0  # inpaint: weight of 1 - SSIM (on Y) over the windows touching the hole
    gan_weight: float = 0.0  # weight of the adversarial loss on the generator (0: no discriminator)
    disc: dict[str, Any] = field(default_factory=dict)  # PatchDiscriminator config (see gancli.models)
    d_lr: float | None = None  # discriminator learning rate (default: lr)
    betas: list[float] = field(default_factory=lambda: [0.9, 0.99])  # Adam's (G and D); GANs on small data: [0, 0.99]
    image_fit: str = "crop"  # sample: images not square at the model's size are centre-cropped, or "pad"ded
    r1_gamma: float = 0.0  # sample: weight of the R1 gradient penalty on real images (lazy, every 4 steps)
    diversity_weight: float = 0.0  # sample: mode seeking (MSGAN), w * |z1 - z2| / |G(z1) - G(z2)|, pairs of a class
    diffaugment: str = "translation,cutout,color"  # sample: DiffAugment policy on all D inputs ("" = off)
    projected_weight: float = 0.0  # sample: weight of a second discriminator on frozen EfficientNet-Lite0 features
    #                                (Projected GAN; gancli.training.projected; needs gancli[train]); 0: off.
    #                                It lowers distances taken on those same features without better images: judge
    #                                such runs on bench/emoji_quality.py's tw and pixel columns, and by eye
    coverage_weight: float = 0.0  # sample: IMLE coverage term (Inclusive GAN): for half the batch's real images, the
    #                               nearest of coverage_pool samples of the image's class (16x16 pixels) is pulled to
    #                               it by an L1 loss of this weight, so that every training image has a sample near
    #                               it (against mode collapse and blob-like samples on small data); 0: off
    coverage_pool: int = 8  # sample: candidate latents drawn per real image for that nearest-sample search; 0: search
    #                         the batch's own samples of the image's class instead (no extra generator passes: the
    #                         term at no cost; the matched samples are also shown to D, the batch's class shares set
    #                         how many candidates each image has)
    coverage_size: int = 0  # sample: the side to which the matched sample and its real image are average-pooled
    #                         before that L1 (e.g. 16: the term then asks for each image's layout and colours and
    #                         leaves its details to the discriminator); 0: full resolution
    lecam_weight: float = 0.0  # sample: LeCam regularisation (Tseng et al. 2021, for GANs on limited data): D's outputs
    #                            on real images are pulled toward the moving average of its outputs on fakes and vice
    #                            versa, w * (mean(relu(D(x) - avg_fake)^2) + mean(relu(avg_real - D(G(z)))^2)); 0: off
    lecam_decay: float = 0.99  # sample: decay of those moving averages (one update a step)
    mirror: bool = False  # sample: half the real images flipped left-right (StyleGAN2-ADA's --mirror: twice the data
    #                       where a mirrored picture is as valid, e.g. emoji; not for digits or text)
    eval_images: int = 1000  # sample: images held out for the in-run Fréchet distance (0: none, compare with the
    #                          training images themselves, for small sets where every image is needed to train)
    amp: bool = True  # mixed precision on CUDA (bfloat16 where supported, else float16 with loss scaling)

    def __post_init__(self) -> None:
        if self.eval_images < 0:
            raise ValueError(f"eval_images must be 0 or more, got {self.eval_images}")
        if self.coverage_pool < 0:
            raise ValueError(f"coverage_pool must be 0 (the batch's own samples) or more, got {self.coverage_pool}")
        if self.lecam_weight < 0 or not 0 <= self.lecam_decay < 1:
            raise ValueError(f"lecam_weight must be 0 or more and lecam_decay in [0, 1), got {self.lecam_weight} and "
                             f"{self.lecam_decay}")
        if self.coverage_size < 0:
            raise ValueError(f"coverage_size must be 0 (full resolution) or more, got {self.coverage_size}")
        if not self.arch:
            if self.task not in DEFAULT_ARCH:
                raise ValueError(f"unknown task {self.task!r} (known: {', '.join(DEFAULT_ARCH)})")
            self.arch = DEFAULT_ARCH[self.task]

    @property
    def scale(self) -> int:
        return int(self.model.get("scale", 4))

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown training option(s): {', '.join(unknown)}")
        return cls(**d)


def load_toml(path: Path) -> dict[str, Any]:
    """A --config file: top-level keys are TrainConfig fields; [model] holds the architecture's config."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    try:
        with open(path, "rb") as f:
            values = tomllib.load(f)
    except OSError as e:
        raise ValueError(f"--config {path}: cannot read: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"--config {path}: not valid TOML ({e})") from None
    TrainConfig.from_dict(values)  # reject unknown keys early, naming them
    return values


def to_toml(cfg: TrainConfig) -> str:
    """The config as TOML that --config reads back."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        raise TypeError(f"cannot write {type(v).__name__} as TOML")

    d = dataclasses.asdict(cfg)
    tables = {k: d.pop(k) for k in ("model", "disc")}
    lines = [f"{k} = {value(v)}" for k, v in d.items() if v is not None]
    for name, table in tables.items():
        lines += ["", f"[{name}]"] + [f"{k} = {value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def resolve(run_dir: Path, overrides: dict[str, Any], new: bool, file_values: dict[str, Any] | None = None
            ) -> TrainConfig:
    """Defaults < the run's saved config.json (when resuming) < a --config file < options given (those not None)."""
    layers: list[dict[str, Any]] = []
    saved = run_dir / "config.json"
    if saved.exists() and not new:
        layers.append(json.loads(saved.read_text()))
    layers.append(file_values or {})
    layers.append({k: v for k, v in overrides.items() if v is not None})
    merged: dict[str, Any] = {}
    for layer in layers:
        tables = {k: {**merged.get(k, {}), **layer.get(k, {})} for k in ("model", "disc")}
        merged.update(layer)
        merged.update(tables)
    return TrainConfig.from_dict(merged)
