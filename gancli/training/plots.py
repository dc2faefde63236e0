"""progress.png: training loss and the validation score over the steps, drawn with Pillow (no plotting library)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from gancli import imageio

W, PANEL_H, MARGIN = 900, 280, 60


def _panel(draw: ImageDraw.ImageDraw, top: int, title: str, xs: list[float], ys: list[float], color: str,
           log_y: bool, font) -> None:
    left, right, bottom = MARGIN + 10, W - 20, top + PANEL_H - 40
    ptop = top + 28
    draw.text((left, top + 6), title, fill="black", font=font)
    draw.rectangle([left, ptop, right, bottom], outline="#888888")
    if len(xs) < 1:
        draw.text((left + 10, ptop + 10), "no data yet", fill="#888888", font=font)
        return
    vals = [math.log10(max(y, 1e-12)) for y in ys] if log_y else list(ys)
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(vals), max(vals)
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:
        y0, y1 = y0 - 0.5, y1 + 0.5
    pad = (y1 - y0) * 0.05
    y0, y1 = y0 - pad, y1 + pad

    def px(x: float, y: float) -> tuple[float, float]:
        return left + (x - x0) / (x1 - x0) * (right - left), bottom - (y - y0) / (y1 - y0) * (bottom - ptop)

    for i in range(5):  # horizontal grid lines with labels
        yv = y0 + (y1 - y0) * i / 4
        _, yy = px(x0, yv)
        draw.line([left, yy, right, yy], fill="#e4e4e4")
        label = f"{10 ** yv:.4g}" if log_y else f"{yv:.4g}"
        draw.text((4, yy - 6), label, fill="black", font=font)
    for i in range(5):
        xv = x0 + (x1 - x0) * i / 4
        xx, _ = px(xv, y0)
        draw.text((xx - 15, bottom + 4), f"{xv:.0f}", fill="black", font=font)
    points = [px(x, y) for x, y in zip(xs, vals, strict=True)]
    if len(points) == 1:
        x, y = points[0]
        draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=color)
    else:
        draw.line(points, fill=color, width=2)


def plot_progress(metrics_path: Path, out_path: Path) -> None:
    """Redraw out_path from metrics.jsonl: training loss (log scale) and validation score against the step."""
    steps, losses, vsteps, scores = [], [], [], []
    if metrics_path.exists():
        for line in metrics_path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if "loss" in rec:
                steps.append(rec["step"])
                losses.append(rec["loss"])
            elif "val" in rec:
                vsteps.append(rec["step"])
                scores.append(rec["val"].get("score", float("nan")))
    img = Image.new("RGB", (W, 2 * PANEL_H), "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    _panel(draw, 0, "training loss (log scale) / step", steps, losses, "#1f77b4", True, font)
    _panel(draw, PANEL_H, "validation score (higher is better) / step", vsteps, scores, "#d62728", False, font)
    imageio.save(imageio.Picture(np.asarray(img)), out_path)
