"""Shared fixtures: tiny models and small synthetic images, all made in a temp dir (no data sets needed)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gancli.checkpoints import save_model
from gancli.models import build


def tiny_sr(scale: int = 4, seed: int = 0):
    torch.manual_seed(seed)
    return build("compact_sr", {"scale": scale, "num_feat": 8, "num_conv": 2})


@pytest.fixture
def tiny_weights(tmp_path):
    path = tmp_path / "tiny_x4.safetensors"
    save_model(tiny_sr(), path, task="upscale", name="tiny-x4", description="test model",
               provenance={"parameters": 1})
    return path


def gradient_rgb(h: int = 40, w: int = 56, seed: int = 0) -> np.ndarray:
    """(h, w, 3) uint8 with smooth gradients and some texture."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x * 255 / w, y * 255 / h, (x + y) * 127 / (w + h) + 64], axis=-1)
    img = img + rng.normal(0, 12, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture
def data_dir(tmp_path):
    """A folder of six 64x48 training images."""
    from PIL import Image

    d = tmp_path / "data"
    d.mkdir()
    for i in range(6):
        Image.fromarray(gradient_rgb(48, 64, seed=i)).save(d / f"{i}.png")
    return d


def app_with(*registers):
    """A Typer app with the given commands (e.g. gancli.cli.register_inpaint): the real app registers inpaint and
    sample only once a model for them ships, so their tests build their own."""
    import typer

    app = typer.Typer()

    @app.callback()
    def _main() -> None:
        pass

    for register in registers:
        register(app)
    return app
