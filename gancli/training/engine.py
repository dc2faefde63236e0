"""The training loop: resumable, interruptible, with an EMA generator, validation and metrics.

A run directory holds:
  config.json         the resolved configuration
  last.safetensors    the complete training state (step, model, EMA, optimizer, LR scale, RNG and data states)
  best.safetensors    the EMA generator at its best validation score, as a model file (`upscale --weights` reads it)
  metrics.jsonl       one JSON line per log interval and per validation
  progress.png        loss and validation score over the steps, redrawn at every validation
  samples/            a sample sheet per validation (fixed inputs, so sheets are comparable), if the task makes one
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
from gancli.training import plots
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
    """Owns the step loop for a supervised generator.

    task must provide: model (nn.Module), sampler (with state_dict/load_state_dict), loss(model, step) -> tensor,
    evaluate(model) -> dict of metrics with a "score" (higher is better), export_info() -> dict (task, name, ...).
    """

    def __init__(self, cfg: TrainConfig, task: Any, run_dir: Path, device: torch.device, log: Callable[[str], None],
                 on_step: Callable[[int, dict[str, Any] | None], None] | None = None):
        self.cfg, self.task, self.run_dir, self.device, self.log = cfg, task, run_dir, device, log
        self.on_step = on_step  # called after every step with the step and, at log intervals, the logged record
        self.sinks: list[Callable[[dict[str, Any]], None]] = []  # more receivers of metric records (TensorBoard)
        self.model: nn.Module = task.model
        self.ema: nn.Module = copy.deepcopy(self.model).requires_grad_(False)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, betas=(0.9, 0.99))
        self.step = 0
        self.lr_scale = 1.0  # lowered after a rollback from a non-finite loss
        self.rollbacks = 0
        self.best_score = -math.inf
        self.cpu_seconds = 0.0
        self.wall_seconds = 0.0
        self._signal: int | None = None

    # -------------------------------------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict(),
            "opt": self.opt.state_dict(),
            "lr_scale": self.lr_scale,
            "rollbacks": self.rollbacks,
            "best_score": self.best_score if math.isfinite(self.best_score) else None,
            "cpu_seconds": self.cpu_seconds,
            "wall_seconds": self.wall_seconds,
            "data": self.task.sampler.state_dict(),
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
        self.task.sampler.load_state_dict(state["data"])
        torch.set_rng_state(state["rng"]["torch"])
        np.random.set_state(state["rng"]["numpy"])
        random.setstate(state["rng"]["python"])

    @property
    def last_path(self) -> Path:
        return self.run_dir / "last.safetensors"

    def save(self) -> None:
        checkpoints.save_state(self.state_dict(), self.last_path)

    def resume(self) -> bool:
        if not self.last_path.exists():
            return False
        self.load_state_dict(checkpoints.load_state(self.last_path))
        return True

    def export_best(self, metrics: dict[str, float]) -> None:
        info = self.task.export_info()
        provenance = self.provenance() | {"val": metrics}
        checkpoints.save_model(
            self.ema, self.run_dir / "best.safetensors", task=info["task"], name=info.get("name", ""),
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
        }

    # --------------------------------------------------------------------------------------------------- loop
    def _on_signal(self, signum, frame) -> None:  # noqa: ARG002
        self._signal = signum

    def _metrics(self, record: dict[str, Any]) -> None:
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
        self.ema.eval()
        metrics = self.task.evaluate(self.ema)
        score = metrics["score"]
        improved = score > self.best_score
        if improved:
            self.best_score = score
            self.export_best(metrics)
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
        t_log, c_log, s_log, loss_sum = time.monotonic(), time.process_time(), self.step, 0.0
        self.model.train()
        try:
            while self.step < stop_at:
                t0, c0 = time.monotonic(), time.process_time()
                lr = lr_at(cfg, self.step) * self.lr_scale
                for g in self.opt.param_groups:
                    g["lr"] = lr
                loss = self.task.loss(self.model, self.step)
                if not torch.isfinite(loss):
                    self._rollback(float(loss))
                    continue
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.grad_clip > 0:
                    nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
                self.opt.step()
                self.step += 1
                self._update_ema()
                loss_sum += loss.item()
                self.wall_seconds += time.monotonic() - t0
                self.cpu_seconds += time.process_time() - c0
                rec = None
                if self.step % log_every == 0 or self.step == stop_at:
                    n, dt = self.step - s_log, time.monotonic() - t_log
                    rec = {"step": self.step, "loss": loss_sum / max(1, n), "lr": lr, "steps_per_s": n / dt,
                           "cpu_util": (time.process_time() - c_log) / dt}
                    self._metrics(rec)
                    t_log, c_log, s_log, loss_sum = time.monotonic(), time.process_time(), self.step, 0.0
                if self.on_step is not None:
                    self.on_step(self.step, rec)
                if self.step % cfg.eval_every == 0 or self.step == cfg.steps:
                    self._validate()
                    self.model.train()
                    self.save()
                    last_ckpt = time.monotonic()
                elif time.monotonic() - last_ckpt > cfg.checkpoint_minutes * 60:
                    self.save()
                    last_ckpt = time.monotonic()
                if self._signal is not None:
                    self.save()
                    raise TrainingInterrupted(self._signal, self.step)
                if deadline is not None and time.monotonic() > deadline:
                    self.log(f"time budget of {minutes} min reached at step {self.step}")
                    break
            self.save()
        finally:
            for s, h in old.items():
                signal.signal(s, h)

    def _rollback(self, value: float) -> None:
        self.rollbacks += 1
        if self.rollbacks > 3 or not self.last_path.exists():
            raise TrainingDiverged(f"loss is {value} at step {self.step}; gave up after {self.rollbacks - 1} rollbacks")
        rollbacks, lr_scale = self.rollbacks, self.lr_scale
        self.load_state_dict(checkpoints.load_state(self.last_path))
        self.rollbacks, self.lr_scale = rollbacks, lr_scale * 0.5
        self.log(f"loss is {value}: rolled back to step {self.step}, LR scale now {self.lr_scale}")
