"""`--compile`: compiled inference agrees with eager; a compiler failure falls back loudly, never silently."""

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from gancli import checkpoints, compiled
from gancli.cli import app
from gancli.imageio import Picture
from gancli.tasks.upscale import upscale_picture
from tests.conftest import gradient_rgb, tiny_sr
from tests.test_inpaint import tiny_inpainter

CPU = torch.device("cpu")
HAS_CXX = any(shutil.which(c) for c in ("c++", "g++", "clang++"))


def _failing_compile(error: BaseException):
    def fake_compile(model):
        def run(*args, **kwargs):
            raise error
        return run
    return fake_compile


def test_compile_failure_falls_back_to_eager_and_says_so_once(monkeypatch):
    monkeypatch.setattr(torch, "compile", _failing_compile(RuntimeError("InvalidCxxCompiler: no compiler\nmore")))
    model, warnings = tiny_sr(), []
    net = compiled.Compiled(model, warnings.append)
    assert net.receptive_radius == model.receptive_radius and net.config is model.config
    pic = Picture(gradient_rgb(30, 40))
    out = upscale_picture(net, pic, 4, device=CPU, tile=16)  # several tiles: several calls
    ref = upscale_picture(model, pic, 4, device=CPU, tile=16)
    assert np.array_equal(out.pixels, ref.pixels)
    assert net.failed == "InvalidCxxCompiler: no compiler"
    assert warnings == ["torch.compile failed (InvalidCxxCompiler: no compiler); running without it"]
    assert list(net.state_dict()) == [f"eager.{k}" for k in model.state_dict()]  # parameters listed once


def test_out_of_memory_is_not_a_compile_failure(monkeypatch):
    """The tiler halves its tile on a CUDA out-of-memory error: the wrapper must let it through, not go eager."""
    monkeypatch.setattr(torch, "compile", _failing_compile(torch.cuda.OutOfMemoryError("simulated")))
    net = compiled.Compiled(tiny_sr(), lambda msg: pytest.fail(msg))
    with pytest.raises(torch.cuda.OutOfMemoryError):
        net(torch.rand(1, 3, 8, 8))
    assert net.failed is None


@pytest.mark.parametrize("command", ["upscale", "inpaint"])
def test_cli_compile_failure_is_reported_in_json(command, monkeypatch, tmp_path, tiny_weights):
    monkeypatch.setattr(torch, "compile", _failing_compile(RuntimeError("no compiler")))
    src = tmp_path / "a.png"
    Image.fromarray(gradient_rgb(20, 24)).save(src)
    if command == "upscale":
        args, size = ["--weights", str(tiny_weights)], (96, 80)
    else:
        weights = tmp_path / "tiny_inpaint.safetensors"
        checkpoints.save_model(tiny_inpainter(), weights, task="inpaint", name="tiny-inpaint", description="",
                               provenance={})
        args, size = ["--weights", str(weights), "--box", "4,4,8,8"], (24, 20)
    r = CliRunner().invoke(app, [command, str(src), "-o", str(tmp_path / "b.png"), *args, "--compile", "--json"])
    assert r.exit_code == 0, r.output
    record = json.loads(r.stdout.strip().splitlines()[-1])
    assert record["status"] == "ok" and record["compiled"] is False
    assert r.stderr.count("torch.compile failed (no compiler); running without it") == 1
    assert Image.open(tmp_path / "b.png").size == size


@pytest.mark.skipif(not HAS_CXX, reason="inductor needs a C++ compiler on the CPU")
def test_real_compile_agrees_with_eager_across_tile_shapes():
    model, warnings = tiny_sr(), []
    net = compiled.Compiled(model, warnings.append)
    for h, w, tile in ((24, 24, 1000), (30, 50, 16)):  # one shape, then edge tiles of other shapes (a recompile)
        pic = Picture(gradient_rgb(h, w))
        out = upscale_picture(net, pic, 4, device=CPU, tile=tile).pixels.astype(int)
        ref = upscale_picture(model, pic, 4, device=CPU, tile=tile).pixels.astype(int)
        assert np.abs(out - ref).max() <= 1  # float rounding of fused kernels: within 1/255
    assert warnings == [] and net.failed is None
