"""The weights that ship: listed, intact, loadable, and better than bicubic on a real photo."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gancli import checkpoints, metrics, shipped
from gancli.imageio import Picture
from gancli.tasks.upscale import upscale_picture

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "grace_hopper.jpg"


def test_every_manifest_entry_is_intact_and_loads():
    models = shipped.shipped_models()
    assert models, "no shipped models"
    for m in models:
        model, info = checkpoints.load_model(shipped.verify(m))
        assert (info.task, info.scale) == (m.task, m.scale)
    assert shipped.find(None, "upscale", 4).default


def test_default_upscaler_beats_bicubic_on_a_photo():
    m = shipped.find(None, "upscale", 4)
    model, info = checkpoints.load_model(shipped.verify(m))
    hr = Image.open(EXAMPLE).convert("RGB").crop((192, 120, 320, 248))  # 128x128: face and collar
    lr = hr.resize((32, 32), Image.Resampling.BICUBIC)
    sr = upscale_picture(model, Picture(np.asarray(lr)), 4, device=torch.device("cpu")).pixels
    bic = np.asarray(lr.resize((128, 128), Image.Resampling.BICUBIC))

    def t(a):
        return torch.from_numpy(a.astype(np.float32) / 255).permute(2, 0, 1)[None]

    gt = t(np.asarray(hr))
    assert metrics.psnr_y(t(sr), gt, 4) > metrics.psnr_y(t(bic), gt, 4) + 0.3


def test_damaged_weights_are_refused(tmp_path, monkeypatch):
    m = shipped.find(None, "upscale", 4)
    shutil.copy(m.path.parent / "manifest.json", tmp_path / "manifest.json")
    data = bytearray(m.path.read_bytes())
    data[-10] ^= 0xFF
    (tmp_path / m.file).write_bytes(bytes(data))
    monkeypatch.setattr(shipped, "weights_dir", lambda: tmp_path)
    with pytest.raises(shipped.ShippedModelError, match="damaged"):
        shipped.verify(m)
