"""The training loop: resumable, interruptible, with an EMA generator, validation and metrics.

A run directory holds:
  config.json         the resolved configuration
  last.safetensors    the complete training state (step, model, EMA, optimizer, LR scale, RNG and data states)
  best.safetensors    the EMA generator at its best validation score, as a model file (`upscale --weights` reads it)
  metrics.jsonl       one JSON line per log interval and per validation
  progress.png        loss and validation score over the steps, redrawn at every validation
  samples/            a sample sheet per validation (fixed inputs, so sheets are comparable), if the task makes one
  evals/              with keep_evals, the EMA generator of every validation as a model file (stepNNNNNNN.safetensors)
Rerunning the same command continues from last.safetensors.
"""

from __future__ import annotations

import copy
import json
import math
import random
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from gancli import checkpoints, imageio
from gancli.training import distributed, plots
from gancli.training.config import TrainConfig


class TrainingInterrupted(Exception):
    """Raised after a checkpoint was written because of SIGINT/SIGTERM; `exit_code` is 130 or 143."""

    def __init__(self, signum: int, step: int) -> None:
        self.exit_code = 128 + signum
        self.step = step
        super().__init__(f"interrupted by signal {signum} at step {step}; checkpoint saved, rerun to resume")


class TrainingDiverged(RuntimeError):
    pass


def lr_at(cfg: TrainConfig, step: int) -> float:
    """Linear warm-up then cosine decay from cfg.lr to cfg.lr * cfg.min_lr_ratio at cfg.steps."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t)))


class Trainer:
    """Owns the step loop: generator step, then (for GAN tasks) discriminator step, EMA, validation, checkpoints.

    A task provides:
      model (the generator), discriminator (nn.Module or None), sampler (state_dict / load_state_dict),
      next_batch() -> dict of tensors, generate(G, batch) -> output,
      g_loss(output, batch, D) -> (loss, {name: float}), d_loss(output.detach(), batch, D) -> (loss, {name: float}),
      evaluate(G) -> {"score": higher is better, ...}, export_info() -> {"task", "name", "description"};
      reseed(seed) (a rank's own data stream under torchrun);
      optionally sample_sheet(G) -> (H, W, 3) uint8 and state_dict() / load_state_dict() for its own state.
    Mixed precision runs on CUDA only (cfg.amp); the CPU trains in float32.
    """

    def __init__(self, cfg: TrainConfig, task: Any, run_dir: Path, device: torch.device, log: Callable[[str], None],
                 on_step: Callable[[int, dict[str, Any] | None], None] | None = None,
                 dist_ctx: distributed.DistContext | None = None):
        self.cfg, self.task, self.run_dir, self.device, self.log = cfg, task, run_dir, device, log
        self.dist = dist_ctx or distributed.DistContext()
        self.on_step = on_step  # called after every step with the step and, at log intervals, the logged record
        self.sinks: list[Callable[[dict[str, Any]], None]] = []  # more receivers of metric records (TensorBoard)
        self.model: nn.Module = task.model
        self.disc: nn.Module | None = getattr(task, "discriminator", None)
        self.ema: nn.Module = copy.deepcopy(self.model).requires_grad_(False)
        betas = tuple(cfg.betas)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, betas=betas)
        self.opt_d = None if self.disc is None else torch.optim.Adam(self.disc.parameters(), lr=cfg.d_lr or cfg.lr,
                                                                     betas=betas)
        self.use_amp = cfg.amp and device.type == "cuda"
        self.amp_dtype = (torch.bfloat16 if self.use_amp and torch.cuda.is_bf16_supported() else torch.float16)
        # Loss scaling only for float16; a disabled scaler passes losses and steps through unchanged.
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp and self.amp_dtype == torch.float16)
        self.step = 0
        self.lr_scale = 1.0  # lowered after a rollback from a non-finite loss
        self.rollbacks = 0
        self.best_score = -math.inf
        self.cpu_seconds = 0.0
        self.init_info: dict[str, Any] | None = None  # --init-from: the file or run started from (gancli.training.run)
        self.wall_seconds = 0.0
        self._signal: int | None = None
        # What the step runs: DistributedDataParallel wrappers under torchrun, the modules themselves otherwise.
        self.g_train: nn.Module = self.model
        self.d_train: nn.Module | None = self.disc
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [device.index] if device.type == "cuda" else None
            self.g_train = DDP(self.model, device_ids=ids)
            if self.disc is not None:
                self.d_train = DDP(self.disc, device_ids=ids)
            task.reseed(cfg.seed + 7919 * self.dist.rank)  # each rank its own patches (and damage)
            torch.manual_seed(cfg.seed + self.dist.rank)

    # -------------------------------------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """The complete training state. Under torchrun this is a collective call (every rank's RNG is gathered)."""
        ranks = None
        if self.dist.enabled:
            mine = json.dumps({"data": self.task.sampler.state_dict(), "rng": distributed.rng_state_json(),
                               "task": self.task.state_dict() if hasattr(self.task, "state_dict") else None})
            ranks = distributed.gather_strings(self.dist, mine, self.device)
        return {
            "ranks": ranks,
            "step": self.step,
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict(),
            "opt": self.opt.state_dict(),
            "lr_scale": self.lr_scale,
            "rollbacks": self.rollbacks,
            "best_score": self.best_score if math.isfinite(self.best_score) else None,
            "cpu_seconds": self.cpu_seconds,
            "wall_seconds": self.wall_seconds,
            "init": self.init_info,
            "data": self.task.sampler.state_dict(),
            "disc": None if self.disc is None else self.disc.state_dict(),
            "opt_d": None if self.opt_d is None else self.opt_d.state_dict(),
            "scaler": self.scaler.state_dict(),
            "task": self.task.state_dict() if hasattr(self.task, "state_dict") else None,
            "rng": {
                "torch": torch.get_rng_state(),
                "numpy": np.random.get_state(legacy=False),
                "python": random.getstate(),
            },
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step = int(state["step"])
        checkpoints.load_state_strict(self.model, state["model"], "model state")
        checkpoints.load_state_strict(self.ema, state["ema"], "EMA state")
        self.opt.load_state_dict(state["opt"])
        self.lr_scale = float(state["lr_scale"])
        self.rollbacks = int(state["rollbacks"])
        self.best_score = -math.inf if state["best_score"] is None else float(state["best_score"])
        self.cpu_seconds = float(state["cpu_seconds"])
        self.wall_seconds = float(state["wall_seconds"])
        self.init_info = state.get("init")
        self.task.sampler.load_state_dict(state["data"])
        if self.disc is not None:
            if state.get("disc") is None:
                raise checkpoints.CheckpointError(
                    "the checkpoint has no discriminator, but this run trains one: to add adversarial training to a "
                    "finished run, export it and start a new run with --init-from FILE")
            checkpoints.load_state_strict(self.disc, state["disc"], "discriminator state")
            self.opt_d.load_state_dict(state["opt_d"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        if state.get("task") is not None and hasattr(self.task, "load_state_dict"):
            self.task.load_state_dict(state["task"])
        torch.set_rng_state(state["rng"]["torch"])
        np.random.set_state(state["rng"]["numpy"])
        random.setstate(state["rng"]["python"])
        ranks = state.get("ranks")
        if self.dist.enabled:
            if ranks and len(ranks) == self.dist.world:
                mine = json.loads(ranks[self.dist.rank])
                self.task.sampler.load_state_dict(mine["data"])
                distributed.set_rng_state_json(mine["rng"])
                if mine.get("task") is not None:
                    self.task.load_state_dict(mine["task"])
            else:
                self.task.reseed(self.cfg.seed + 7919 * self.dist.rank + self.step)
                self.log(f"the checkpoint was written by {len(ranks) if ranks else 1} process(es), this run has "
                         f"{self.dist.world}: data order is reseeded, so the continuation is not bit-exact")

    @property
    def last_path(self) -> Path:
        return self.run_dir / "last.safetensors"

    def save(self) -> None:
        state = self.state_dict()  # collective under torchrun: every rank takes part
        if self.dist.main:
            checkpoints.save_state(state, self.last_path)
        distributed.barrier(self.dist)

    def resume(self) -> bool:
        if not self.last_path.exists():
            return False
        self.load_state_dict(checkpoints.load_state(self.last_path))
        return True

    def export_ema(self, metrics: dict[str, float], path: Path) -> None:
        """The EMA generator as a model file (best.safetensors, or one of evals/), its validation in the provenance."""
        info = self.task.export_info()
        provenance = self.provenance() | {"val": metrics}
        checkpoints.save_model(
            self.ema, path, task=info["task"], name=info.get("name", ""),
            description=info.get("description", ""), provenance=provenance,
        )

    def provenance(self) -> dict[str, Any]:
        return {
            "data": self.cfg.data,
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "steps": self.step,
            "cpu_hours": round(self.cpu_seconds / 3600, 3),
            "wall_hours": round(self.wall_seconds / 3600, 3),
            "config": json.loads(self.cfg.to_json()),
        } | ({"init_from": self.init_info} if self.init_info else {}) | (
            self.task.provenance() if hasattr(self.task, "provenance") else {})

    # --------------------------------------------------------------------------------------------------- loop
    def _on_signal(self, signum, frame) -> None:  # noqa: ARG002
        self._signal = signum

    def _metrics(self, record: dict[str, Any]) -> None:
        if not self.dist.main:
            return
        with open(self.run_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        for sink in self.sinks:
            sink(record)

    def _update_ema(self) -> None:
        decay = min(self.cfg.ema, (1 + self.step) / (10 + self.step))
        with torch.no_grad():
            for e, p in zip(self.ema.parameters(), self.model.parameters(), strict=True):
                e.lerp_(p, 1 - decay)
            for e, b in zip(self.ema.buffers(), self.model.buffers(), strict=True):
                e.copy_(b)

    def _validate(self) -> None:
        if not self.dist.main:
            return
        self.ema.eval()
        metrics = self.task.evaluate(self.ema)
        score = metrics["score"]
        improved = score > self.best_score
        if improved:
            self.best_score = score
            self.export_ema(metrics, self.run_dir / "best.safetensors")
        if self.cfg.keep_evals:
            (self.run_dir / "evals").mkdir(exist_ok=True)
            self.export_ema(metrics, self.run_dir / "evals" / f"step{self.step:07d}.safetensors")
        self._metrics({"step": self.step, "val": metrics, "best": improved})
        self.log(f"step {self.step}: validation {json.dumps(metrics)}{' (best)' if improved else ''}")
        sheet = getattr(self.task, "sample_sheet", None)
        if sheet is not None:
            (self.run_dir / "samples").mkdir(exist_ok=True)
            imageio.save(imageio.Picture(sheet(self.ema)), self.run_dir / "samples" / f"step{self.step:07d}.png")
        plots.plot_progress(self.run_dir / "metrics.jsonl", self.run_dir / "progress.png")

    def run(self, max_steps: int | None = None, minutes: float | None = None, log_every: int = 50) -> None:
        """Train until cfg.steps (or max_steps more steps, or `minutes` of wall time); checkpoint on the way out."""
        cfg = self.cfg
        stop_at = cfg.steps if max_steps is None else min(cfg.steps, self.step + max_steps)
        deadline = None if minutes is None else time.monotonic() + minutes * 60
        old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        last_ckpt = time.monotonic()
        t_log, c_log, s_log, sums = time.monotonic(), time.process_time(), self.step, {}
        self.model.train()
        if self.disc is not None:
            self.disc.train()
        try:
            while self.step < stop_at:
                t0, c0 = time.monotonic(), time.process_time()
                lr = lr_at(cfg, self.step) * self.lr_scale
                for g in self.opt.param_groups:
                    g["lr"] = lr
                if self.opt_d is not None:
                    for g in self.opt_d.param_groups:
                        # the discriminator follows the same schedule from its own peak (--lr 0 freezes both)
                        g["lr"] = lr * cfg.d_lr / cfg.lr if cfg.d_lr is not None and cfg.lr > 0 else lr
                logs = self._train_step()
                if logs is None:
                    continue  # rolled back after a non-finite loss
                self.step += 1
                self._update_ema()
                for k, v in logs.items():
                    sums[k] = sums.get(k, 0.0) + v
                self.wall_seconds += time.monotonic() - t0
                self.cpu_seconds += time.process_time() - c0
                rec = None
                if self.step % log_every == 0 or self.step == stop_at:
                    n, dt = self.step - s_log, time.monotonic() - t_log
                    rec = {"step": self.step, **{k: v / max(1, n) for k, v in sums.items()}, "lr": lr,
                           "steps_per_s": n / dt, "cpu_util": (time.process_time() - c_log) / dt}
                    self._metrics(rec)
                    t_log, c_log, s_log, sums = time.monotonic(), time.process_time(), self.step, {}
                if self.on_step is not None:
                    self.on_step(self.step, rec)
                if self.step % cfg.eval_every == 0 or self.step == cfg.steps:
                    self._validate()
                    self.model.train()
                    if self.disc is not None:
                        self.disc.train()
                    self.save()
                    last_ckpt = time.monotonic()
                elif time.monotonic() - last_ckpt > cfg.checkpoint_minutes * 60:
                    self.save()
                    last_ckpt = time.monotonic()
                stop, out_of_time = distributed.any_rank(
                    self.dist, [self._signal is not None, deadline is not None and time.monotonic() > deadline],
                    self.device)
                if stop:
                    self.save()
                    raise TrainingInterrupted(self._signal or signal.SIGTERM, self.step)
                if out_of_time:
                    self.log(f"time budget of {minutes} min reached at step {self.step}")
                    break
            self.save()
            if self.dist.enabled:
                diff = distributed.max_parameter_difference(self.dist, self.model)
                self.log(f"{self.dist.world} ranks in sync: max parameter difference {diff:g}")
        finally:
            for s, h in old.items():
                signal.signal(s, h)

    def _autocast(self):
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype, enabled=self.use_amp)

    def _optimize(self, loss: torch.Tensor, opt: torch.optim.Optimizer, params) -> None:
        opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.cfg.grad_clip > 0:
            self.scaler.unscale_(opt)
            nn.utils.clip_grad_norm_(params, self.cfg.grad_clip)
        self.scaler.step(opt)
        opt.zero_grad(set_to_none=True)  # free the gradients now; the other network's step must not see them

    def _train_step(self) -> dict[str, float] | None:
        """One generator step and, for GAN tasks, one discriminator step. None after a non-finite loss rollback."""
        task, disc = self.task, self.disc
        batch = task.next_batch()
        with self._autocast():
            out = task.generate(self.g_train, batch)
            if disc is not None:
                disc.requires_grad_(False)  # G's adversarial loss must not train D (and D needs no DDP sync here)
            loss_g, logs = task.g_loss(out, batch, disc)
        if distributed.any_rank(self.dist, [not torch.isfinite(loss_g).item()], self.device)[0]:
            self._rollback(loss_g.item())
            return None
        self._optimize(loss_g, self.opt, self.model.parameters())
        logs = {"loss": loss_g.item(), **logs}
        if disc is not None:
            disc.requires_grad_(True)
            with self._autocast():
                loss_d, logs_d = task.d_loss(out.detach(), batch, self.d_train)
            if distributed.any_rank(self.dist, [not torch.isfinite(loss_d).item()], self.device)[0]:
                self._rollback(loss_d.item())
                return None
            self._optimize(loss_d, self.opt_d, disc.parameters())
            logs |= {"d_loss": loss_d.item(), **logs_d}
        self.scaler.update()
        return logs

    def _rollback(self, value: float) -> None:
        self.rollbacks += 1
        if self.rollbacks > 3 or not self.last_path.exists():
            raise TrainingDiverged(f"loss is {value} at step {self.step}; gave up after {self.rollbacks - 1} rollbacks")
        rollbacks, lr_scale = self.rollbacks, self.lr_scale
        self.load_state_dict(checkpoints.load_state(self.last_path))
        self.rollbacks, self.lr_scale = rollbacks, lr_scale * 0.5
        self.log(f"loss is {value}: rolled back to step {self.step}, LR scale now {self.lr_scale}")
