"""Start or resume a training run in a run folder: the part of `gancli train` below the command line."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from gancli import checkpoints
from gancli.atomic import TMP_PREFIX
from gancli.training.config import TrainConfig
from gancli.training.distributed import DistContext, barrier
from gancli.training.engine import Trainer

TASKS = {  # task name -> its class (imported when used)
    "upscale": "gancli.training.upscale:UpscaleTask",
    "inpaint": "gancli.training.inpaint:InpaintTask",
    "sample": "gancli.training.sample:SampleTask",
}

RUN_FILES = ("last.safetensors", "best.safetensors", "metrics.jsonl", "progress.png")


def make_task(cfg: TrainConfig, device: torch.device, log: Callable[[str], None]) -> Any:
    import importlib

    module, cls = TASKS[cfg.task].split(":")
    return getattr(importlib.import_module(module), cls)(cfg, device, log)


def init_config_from(path: Path, cfg: TrainConfig, model_over: dict[str, Any] | None = None) -> TrainConfig:
    """For --init-from: the run takes the architecture and config of the model file (the file's task must match),
    changed only by the model options given now (e.g. --scale 2 from an x4 file: layers whose shape changes start
    fresh, see open_run). From a run folder (pretraining, then fine-tuning on other data) it takes the generator's
    and the discriminator's config from the folder's config.json; the discriminator options given now win."""
    if path.is_dir():
        src = run_source_config(path)
        if src.task != cfg.task:
            raise ValueError(f"--init-from {path} is a run of task {src.task!r}; this run trains {cfg.task!r}")
        return TrainConfig.from_dict({**cfg.__dict__, "arch": src.arch, "model": {**src.model, **(model_over or {})},
                                      "disc": {**src.disc, **cfg.disc}})
    info = checkpoints.read_model_info(path)
    if info.task != cfg.task:
        raise ValueError(f"--init-from {path} is a {info.task!r} model; this run trains {cfg.task!r}")
    return TrainConfig.from_dict({**cfg.__dict__, "arch": info.arch, "model": {**info.config, **(model_over or {})}})


def run_source_config(path: Path) -> TrainConfig:
    """The config of a run folder given to --init-from, which must hold a training state (last.safetensors)."""
    if not (path / "last.safetensors").is_file() or not (path / "config.json").is_file():
        raise ValueError(f"--init-from {path}: a folder must be a training run (config.json and last.safetensors)")
    return TrainConfig.from_dict(json.loads((path / "config.json").read_text()))


def init_weights(trainer: Trainer, path: Path, log: Callable[[str], None]) -> None:
    """Copy the weights of a model file (generator and EMA), or of a run folder's last training state (generator,
    EMA and, when both runs have one, discriminator) into a new run. Tensors of another shape start fresh; the
    optimizers, step count and LR schedule start afresh. What was started from (its steps and CPU-hours) is kept in
    the new run's state and in the provenance of every file it exports."""
    parts = "generator and EMA"
    if path.is_dir():
        state = checkpoints.load_state(path / "last.safetensors")
        source = str(path / "last.safetensors")
        fresh = checkpoints.load_state_strict(trainer.model, state["model"], source, True)
        checkpoints.load_state_strict(trainer.ema, state["ema"], source, True)
        if trainer.disc is not None and state.get("disc") is not None:
            fresh += [f"disc.{k}" for k in checkpoints.load_state_strict(trainer.disc, state["disc"],
                                                                         f"{source} (discriminator)", True)]
            parts = "generator, EMA and discriminator"
        elif trainer.disc is not None:
            parts += "; the source has no discriminator, this run's starts fresh"
        trainer.init_info = {"from": str(path), "steps": int(state["step"]),
                             "cpu_hours": round(float(state["cpu_seconds"]) / 3600, 3)}
    else:
        model, info = checkpoints.load_model(path)
        fresh = checkpoints.load_state_strict(trainer.model, model.state_dict(), str(path), True)
        checkpoints.load_state_strict(trainer.ema, trainer.model.state_dict(), str(path))
        trainer.init_info = {"from": str(path)} | {k: info.provenance[k] for k in ("steps", "cpu_hours")
                                                    if k in info.provenance}
    log(f"initialised from {path} ({parts})" + (f"; {len(fresh)} tensor(s) of another shape start fresh: "
                                                f"{', '.join(fresh)}" if fresh else ""))


def open_run(cfg: TrainConfig, run_dir: Path, device: torch.device, *, new: bool, init_from: Path | None,
             log: Callable[[str], None], on_step=None, dist_ctx: DistContext | None = None) -> Trainer:
    """Build the task and trainer; resume from run_dir unless `new`; write the resolved config.json.

    Under torchrun every rank calls this; only rank 0 touches the run folder.
    """
    ctx = dist_ctx or DistContext()
    run_dir.mkdir(parents=True, exist_ok=True)
    resumable = (run_dir / "last.safetensors").exists() and not new
    barrier(ctx)  # every rank has decided before rank 0 may clear the folder
    if ctx.main:
        for stale in run_dir.glob(f"{TMP_PREFIX}*"):  # left by a process killed (-9) in the middle of a save
            stale.unlink(missing_ok=True)
    torch.manual_seed(cfg.seed)
    task = make_task(cfg, device, log)
    trainer = Trainer(cfg, task, run_dir, device, log, on_step, ctx)
    if resumable:
        if init_from is not None:
            raise ValueError(f"{run_dir} already has a checkpoint; --init-from starts a new run: add --new or use"
                             " another --run")
        trainer.resume()
        log(f"resumed {run_dir} at step {trainer.step} on {device}")
    else:
        if ctx.main:
            for name in RUN_FILES:  # a new run does not inherit the old one's files
                (run_dir / name).unlink(missing_ok=True)
        if init_from is not None:
            init_weights(trainer, init_from, log)
        log(f"new run in {run_dir} on {device}" + (f", {ctx.world} processes" if ctx.enabled else ""))
    if ctx.main:
        (run_dir / "config.json").write_text(cfg.to_json())
    barrier(ctx)
    return trainer


def describe(cfg: TrainConfig, device: torch.device, log: Callable[[str], None]) -> dict[str, Any]:
    """What --dry-run reports: data found, model size, work per step; loads the data but trains nothing."""
    task = make_task(cfg, device, log)
    params = sum(p.numel() for p in task.model.parameters())
    return {"task": cfg.task, "parameters": params, "training_images": len(task.sampler.images),
            "training_megapixels": round(task.sampler.pixels / 1e6, 1), "validation_images": len(task.val_files),
            "device": str(device)}


def add_tensorboard(trainer: Trainer, log: Callable[[str], None]) -> bool:
    """Also log scalars to run_dir/tensorboard when the tensorboard package is installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return False
    writer = SummaryWriter(str(trainer.run_dir / "tensorboard"))

    def sink(record: dict[str, Any]) -> None:
        step = record["step"]
        for key, value in record.items():
            if key == "val":
                for k, v in value.items():
                    writer.add_scalar(f"val/{k}", v, step)
            elif isinstance(value, (int, float)) and not isinstance(value, bool) and key != "step":
                writer.add_scalar(f"train/{key}", value, step)
        writer.flush()

    trainer.sinks.append(sink)
    log(f"TensorBoard logs in {trainer.run_dir / 'tensorboard'}")
    return True
