"""Inpainting: only hole pixels change (bit-exact elsewhere), any size/mode, the command's mask options, and the
training task through the shared engine (resume == uninterrupted)."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from gancli import checkpoints, models
from gancli.cli import register_inpaint
from gancli.imageio import Picture
from gancli.tasks.inpaint import hole_windows, inpaint_picture
from gancli.training.config import TrainConfig
from gancli.training.engine import Trainer
from gancli.training.inpaint import InpaintTask
from tests.conftest import app_with, gradient_rgb

CPU = torch.device("cpu")
TINY = {"base": 8, "max_channels": 16, "num_blocks": 1}


def tiny_inpainter(seed: int = 0):
    torch.manual_seed(seed)
    return models.build("inpaint_ffc", TINY).eval()


@pytest.fixture
def inpaint_weights(tmp_path):
    path = tmp_path / "tiny_inpaint.safetensors"
    checkpoints.save_model(tiny_inpainter(), path, task="inpaint", name="tiny-inpaint", description="",
                           provenance={})
    return path


def test_the_model_keeps_known_pixels_and_takes_any_size():
    net = tiny_inpainter()
    x = torch.rand(1, 3, 37, 51)
    m = torch.zeros(1, 1, 37, 51)
    m[..., 10:20, 5:30] = 1
    with torch.no_grad():
        y = net(x, m)
    assert y.shape == x.shape
    assert torch.equal(y[m.expand_as(y) == 0], x[m.expand_as(x) == 0])
    assert not torch.equal(y, x)


def test_telea_prefill_starts_the_net_as_the_classical_fill():
    """prefill = "telea": with a zero head the output is exactly OpenCV's Telea fill; the net learns a correction."""
    import cv2

    torch.manual_seed(0)
    net = models.build("inpaint_ffc", TINY | {"prefill": "telea"}).eval()
    rgb = gradient_rgb(40, 56)
    hole = np.zeros((40, 56), bool)
    hole[10:25, 20:40] = True
    x = torch.from_numpy(rgb.astype(np.float32) / 255).permute(2, 0, 1)[None]
    m = torch.from_numpy(hole.astype(np.float32))[None, None]
    torch.nn.init.zeros_(net.head.weight)
    torch.nn.init.zeros_(net.head.bias)
    with torch.no_grad():
        out = net(x, m)
    masked = rgb.copy()
    masked[hole] = 0
    telea = cv2.inpaint(masked, hole.astype(np.uint8) * 255, 3, cv2.INPAINT_TELEA)
    got = (out[0].permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    assert np.array_equal(got[hole], telea[hole]) and np.array_equal(got[~hole], rgb[~hole])
    with pytest.raises(ValueError, match="unknown prefill"):
        models.build("inpaint_ffc", TINY | {"prefill": "mean"})


@pytest.mark.parametrize("kind", ["rgb8", "gray8", "rgb16", "rgba"])
def test_only_hole_pixels_change(kind):
    rgb = gradient_rgb(70, 90)
    pixels = {"rgb8": rgb, "gray8": rgb[..., :1], "rgb16": rgb.astype(np.uint16) * 257, "rgba": rgb}[kind]
    alpha = np.full((70, 90), 200, np.uint8) if kind == "rgba" else None
    hole = np.zeros((70, 90), bool)
    hole[20:40, 30:60] = True
    out = inpaint_picture(tiny_inpainter(), Picture(pixels.copy(), alpha), hole, device=CPU, opaque_hole=True)
    assert out.pixels.dtype == pixels.dtype and out.pixels.shape == pixels.shape
    assert np.array_equal(out.pixels[~hole], pixels[~hole])
    assert not np.array_equal(out.pixels[hole], pixels[hole])
    if kind == "rgba":
        assert (out.alpha[hole] == 255).all() and (out.alpha[~hole] == 200).all()


def test_far_apart_holes_get_small_windows_and_large_windows_are_downscaled():
    hole = np.zeros((3000, 4000), bool)
    hole[100:110, 100:120] = True
    hole[2800:2850, 3900:3950] = True
    wins = hole_windows(hole)
    assert len(wins) == 2 and all((w.y1 - w.y0) * (w.x1 - w.x0) <= 300 * 300 for w in wins)
    near = np.zeros((600, 600), bool)
    near[100:110, 100:110] = near[150:160, 150:160] = True
    assert len(hole_windows(near)) == 1  # overlapping context windows merge
    big = np.zeros((300, 900), bool)
    big[50:250, 100:800] = True  # a window wider than work_size runs downscaled and still fills every hole pixel
    rgb = gradient_rgb(300, 900)
    out = inpaint_picture(tiny_inpainter(), Picture(rgb.copy()), big, device=CPU, work_size=128)
    assert np.array_equal(out.pixels[~big], rgb[~big]) and not np.array_equal(out.pixels[big], rgb[big])


def cli():
    return app_with(register_inpaint)


def write(path, arr):
    Image.fromarray(arr).save(path)
    return str(path)


def test_inpaint_command_with_a_mask_file_boxes_and_alpha(tmp_path, inpaint_weights):
    img = write(tmp_path / "a.png", gradient_rgb(48, 64))
    mask = np.zeros((48, 64), np.uint8)
    mask[10:20, 10:30] = 255
    write(tmp_path / "m.png", mask)
    runner, w = CliRunner(), ["--weights", str(inpaint_weights)]
    r = runner.invoke(cli(), ["inpaint", img, "--mask", str(tmp_path / "m.png"), "-o", str(tmp_path / "o.png"),
                              "--json", *w])
    assert r.exit_code == 0, r.stderr
    rec = json.loads(r.stdout)
    assert rec["status"] == "ok" and rec["hole_fraction"] == pytest.approx(200 / (48 * 64), abs=1e-6)
    out, src = np.asarray(Image.open(tmp_path / "o.png")), np.asarray(Image.open(img))
    assert np.array_equal(out[mask == 0], src[mask == 0]) and not np.array_equal(out[mask > 0], src[mask > 0])
    # boxes alone; the same hole as the mask file gives the same output
    r = runner.invoke(cli(), ["inpaint", img, "--box", "10,10,20,10", "-o", str(tmp_path / "b.png"), *w])
    assert r.exit_code == 0, r.stderr
    assert np.array_equal(np.asarray(Image.open(tmp_path / "b.png")), out)
    # the transparent part of an RGBA image is the hole, and comes back opaque
    rgba = np.dstack([gradient_rgb(48, 64), np.where(mask > 0, 0, 255).astype(np.uint8)])
    write(tmp_path / "t.png", rgba)
    r = runner.invoke(cli(), ["inpaint", str(tmp_path / "t.png"), "--mask-from-alpha", "-o", str(tmp_path / "t2.png"),
                              *w])
    assert r.exit_code == 0, r.stderr
    assert (np.asarray(Image.open(tmp_path / "t2.png"))[..., 3] == 255).all()


def test_inpaint_command_mask_folder_beside_the_images(tmp_path, inpaint_weights):
    d = tmp_path / "photos"
    d.mkdir()
    for name in ("x", "y"):
        write(d / f"{name}.png", gradient_rgb(40, 40, seed=len(name)))
        m = np.zeros((40, 40), np.uint8)
        m[5:15, 5:15] = 255
        write(d / f"{name}_mask.png", m)
    r = CliRunner().invoke(cli(), ["inpaint", str(d), "--mask", str(d), "-o", str(tmp_path / "out") + "/", "--json",
                                   "--weights", str(inpaint_weights)])
    assert r.exit_code == 0, r.stderr
    recs = [json.loads(line) for line in r.stdout.splitlines()]
    assert [rec["input"].rsplit("/", 1)[1] for rec in recs] == ["x.png", "y.png"]  # the masks are not inputs
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["x.png", "y.png"]


def test_inpaint_command_errors(tmp_path, inpaint_weights):
    img = write(tmp_path / "a.png", gradient_rgb(48, 64))
    write(tmp_path / "small.png", np.zeros((10, 10), np.uint8))
    write(tmp_path / "empty.png", np.zeros((48, 64), np.uint8))
    runner, w = CliRunner(), ["--weights", str(inpaint_weights)]
    cases = [
        ([img], 2, "give --mask, --mask-from-alpha or --box"),
        ([img, "--mask", str(tmp_path / "nope.png")], 2, "no such file"),
        ([img, "--mask", str(tmp_path / "small.png")], 1, "--resize-mask"),
        ([img, "--mask-from-alpha"], 1, "no alpha"),
        ([img, "--mask", str(tmp_path / "empty.png"), "-o", str(tmp_path / "empty.png")], 2, "overwrite a mask"),
        ([img, "--box", "1,2,3"], 2, "x,y,w,h"),
    ]
    for args, code, message in cases:
        r = runner.invoke(cli(), ["inpaint", *args, *w])
        assert r.exit_code == code and message in r.stderr, (args, r.exit_code, r.stderr)
        assert len(r.stderr.strip().splitlines()) <= 2, r.stderr  # one line (plus the batch summary)
    assert not (tmp_path / "a_inpainted.png").exists()
    r = runner.invoke(cli(), ["inpaint", img, "--mask", str(tmp_path / "small.png"), "--resize-mask", *w])
    assert r.exit_code == 0, r.stderr
    r = runner.invoke(cli(), ["inpaint", img, "--mask", str(tmp_path / "empty.png"), "-o", str(tmp_path / "c.png"),
                              *w])
    assert r.exit_code == 0 and "no hole" in r.stderr
    assert np.array_equal(np.asarray(Image.open(tmp_path / "c.png")), np.asarray(Image.open(img)))
    from gancli import shipped

    if not any(m.task == "inpaint" for m in shipped.shipped_models()):
        r = runner.invoke(cli(), ["inpaint", img, "--box", "0,0,5,5"])
        assert r.exit_code == 2 and "no shipped inpaint model" in r.stderr


@pytest.mark.parametrize("model, ssim", [(TINY, 0.0), (TINY | {"prefill": "telea"}, 0.2)],
                         ids=["plain", "prefill-ssim"])
def test_inpaint_training_resumes_exactly(data_dir, tmp_path, model, ssim):
    cfg = TrainConfig(task="inpaint", data=[str(data_dir)], model=model, steps=5, batch=2, patch=32, warmup=2,
                      eval_every=3, val_count=2, gan_weight=0.1, disc={"num_feat": 4, "num_down": 2},
                      ssim_weight=ssim)

    def trainer(run_dir):
        torch.manual_seed(cfg.seed)
        return Trainer(cfg, InpaintTask(cfg, CPU, log=lambda m: None), run_dir, CPU, log=lambda m: None)

    (tmp_path / "a").mkdir()
    straight = trainer(tmp_path / "a")
    straight.run()
    (tmp_path / "b").mkdir()
    trainer(tmp_path / "b").run(max_steps=3)
    torch.manual_seed(999)
    second = trainer(tmp_path / "b")
    assert second.resume() and second.step == 3
    second.run()
    for (k, a), b in zip(straight.model.state_dict().items(), second.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    logged = [json.loads(line) for line in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert any("l1_hole" in r and "d_loss" in r for r in logged)
    assert any("ssim_loss" in r for r in logged) == (ssim > 0)
    assert any("val" in r and "l1_hole" in r["val"] for r in logged)


def test_the_command_default_work_size_is_the_library_default():
    from gancli import cli
    from gancli.tasks import inpaint

    assert cli.INPAINT_WORK_SIZE == inpaint.WORK_SIZE
