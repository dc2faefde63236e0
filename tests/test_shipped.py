"""The weights that ship: listed, intact, loadable, and better than bicubic on a real photo."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import gancli.cli  # noqa: F401  (registers inpaint/sample against the real weights before a fixture fakes them)
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


def test_fidelity_upscaler_beats_bicubic_on_a_photo():
    m = shipped.find("compact-x4", "upscale", 4)
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


@pytest.fixture
def fake_shipped(tmp_path, monkeypatch):
    """A weights folder with a 'photo' x4 model whose --denoise partner is a 'fidelity' x4 model (tiny, random)."""
    import hashlib
    import json

    from tests.conftest import tiny_sr

    d = tmp_path / "weights"
    d.mkdir()
    entries = []
    for name, seed, partner in (("photo", 1, "fidelity"), ("fidelity", 2, None), ("lone", 3, None), ("two", 4, None)):
        scale = 2 if name == "two" else 4
        checkpoints.save_model(tiny_sr(scale, seed=seed), d / f"{name}.safetensors", task="upscale", name=name,
                               description="", provenance={})
        entry = {"name": name, "file": f"{name}.safetensors", "task": "upscale", "scale": scale, "description": "",
                 "sha256": hashlib.sha256((d / f"{name}.safetensors").read_bytes()).hexdigest(),
                 "default": name in ("photo", "two")}
        entries.append(entry | ({"denoise_partner": partner} if partner else {}))
    (d / "manifest.json").write_text(json.dumps({"models": entries}))
    monkeypatch.setattr(shipped, "weights_dir", lambda: d)
    shipped.shipped_models.cache_clear()
    yield d
    shipped.shipped_models.cache_clear()


def test_denoise_blends_the_weights_of_the_photo_model_and_its_partner(fake_shipped, tmp_path):
    from typer.testing import CliRunner

    from gancli.cli import app
    from tests.conftest import gradient_rgb

    Image.fromarray(gradient_rgb(24, 20)).save(tmp_path / "in.png")
    runner = CliRunner()

    def run(*opts):
        out = tmp_path / "out.png"
        # --device cpu: the expected image below is computed on the CPU (a GPU differs by a level or two)
        r = runner.invoke(app, ["upscale", str(tmp_path / "in.png"), "-o", str(out), "--json", "--device", "cpu",
                                *opts])
        assert r.exit_code == 0, r.stderr
        return np.asarray(Image.open(out)).astype(int), r.stdout

    photo, _ = run()
    fidelity, _ = run("--model", "fidelity")
    half, record = run("--denoise", "0.5")
    assert '"photo (denoise 0.5)"' in record
    assert np.array_equal(run("--denoise", "1")[0], photo)
    assert np.array_equal(run("--denoise", "0")[0], fidelity)
    assert not np.array_equal(half, photo) and not np.array_equal(half, fidelity)
    a, b = checkpoints.load_model(fake_shipped / "photo.safetensors")[0], checkpoints.load_model(
        fake_shipped / "fidelity.safetensors")[0]
    checkpoints.blend_models(a, b, 0.5)
    expected = upscale_picture(a, Picture(np.asarray(Image.open(tmp_path / "in.png"))), 4,
                               device=torch.device("cpu")).pixels
    assert np.abs(half - expected.astype(int)).max() <= 1
    for opts, message in ((("--model", "lone", "--denoise", "0.3"), "no --denoise control"),
                          (("--weights", str(fake_shipped / "photo.safetensors"), "--denoise", "0.3"), "not --weights"),
                          (("--denoise", "1.5"), "less than or equal to 1")):
        r = runner.invoke(app, ["upscale", str(tmp_path / "in.png"), "-o", str(tmp_path / "x.png"), *opts])
        assert r.exit_code == 2 and message in r.stderr, (opts, r.stderr)
        assert not (tmp_path / "x.png").exists()


def test_blending_refuses_different_architectures():
    from tests.conftest import tiny_sr

    with pytest.raises(checkpoints.CheckpointError, match="different architectures"):
        checkpoints.blend_models(tiny_sr(4), tiny_sr(2), 0.5)


def test_scale_picks_the_native_model_and_small_outscales_use_x2(fake_shipped, tmp_path):
    import json

    from typer.testing import CliRunner

    from gancli.cli import app
    from tests.conftest import gradient_rgb

    Image.fromarray(gradient_rgb(24, 20)).save(tmp_path / "in.png")
    runner = CliRunner()
    for opts, model, size in (([], "photo", [80, 96]), (["--scale", "2"], "two", [40, 48]),
                              (["--outscale", "1.5"], "two", [30, 36]), (["--outscale", "3"], "photo", [60, 72])):
        r = runner.invoke(app, ["upscale", str(tmp_path / "in.png"), "-o", str(tmp_path / "o.png"), "--json", *opts])
        assert r.exit_code == 0, r.stderr
        rec = json.loads(r.stdout)
        assert (rec["model"], rec["out_size"]) == (model, size), opts


def test_default_x4_and_x2_are_photo_models_with_a_fidelity_partner():
    """The photo models blend with their partner under --denoise: same architecture, and a visibly different result
    on a damaged photo (their measured difference in quality is bench/photo_quality.py's job)."""
    import io

    for scale in (4, 2):
        photo = shipped.find(None, "upscale", scale)
        assert photo.name.startswith("photo") and photo.denoise_partner, photo
        partner = shipped.find(photo.denoise_partner, "upscale", scale)
        p_model, f_model = (checkpoints.load_model(shipped.verify(m))[0] for m in (photo, partner))
        hr = Image.open(EXAMPLE).convert("RGB").crop((192, 120, 320, 248))
        buf = io.BytesIO()
        hr.resize((64, 64), Image.Resampling.BICUBIC).save(buf, "JPEG", quality=50)
        lr = np.asarray(Image.open(buf).convert("RGB"))
        a, b = (upscale_picture(m, Picture(lr), scale, device=torch.device("cpu")).pixels.astype(float)
                for m in (p_model, f_model))
        assert np.abs(a - b).mean() > 1.0
        checkpoints.blend_models(p_model, f_model, 0.5)  # same architecture: the blend is defined


def _shipped_inpaint():
    models = [m for m in shipped.shipped_models() if m.task == "inpaint"]
    if not models:
        pytest.skip("no inpaint model ships")
    return shipped.find(None, "inpaint")


def test_shipped_inpainter_fills_holes_better_than_the_classical_fills():
    """On the example photo, strokes and a box: lower L1 in the hole than cv2 Telea and Navier-Stokes."""
    import cv2

    from gancli.tasks.inpaint import inpaint_picture

    model, info = checkpoints.load_model(shipped.verify(_shipped_inpaint()))
    gt = np.asarray(Image.open(EXAMPLE).convert("RGB"))
    canvas = np.zeros(gt.shape[:2], np.uint8)
    cv2.line(canvas, (60, 80), (400, 300), 255, 9)
    cv2.line(canvas, (100, 500), (450, 420), 255, 15)
    canvas[200:260, 300:380] = 255
    hole = canvas > 0
    masked = gt.copy()
    masked[hole] = 0
    ours = inpaint_picture(model, Picture(masked), hole, device=torch.device("cpu")).pixels
    assert np.array_equal(ours[~hole], gt[~hole])

    def l1(out):
        return np.abs(out[hole].astype(float) - gt[hole]).mean()

    for flag in (cv2.INPAINT_TELEA, cv2.INPAINT_NS):
        assert l1(ours) < l1(cv2.inpaint(masked, canvas, 3, flag))


def test_inpaint_command_is_registered_once_a_model_ships(tmp_path):
    from typer.testing import CliRunner

    from gancli.cli import app

    _shipped_inpaint()
    Image.open(EXAMPLE).convert("RGB").save(tmp_path / "in.png")
    r = CliRunner().invoke(app, ["inpaint", str(tmp_path / "in.png"), "--box", "100,100,40,30", "-o",
                                 str(tmp_path / "out.png"), "--json"])
    assert r.exit_code == 0, r.stderr
    rec = json.loads(r.stdout.strip().splitlines()[-1])
    assert rec["status"] == "ok" and rec["model"] == _shipped_inpaint().name
    a, b = np.asarray(Image.open(tmp_path / "in.png")), np.asarray(Image.open(tmp_path / "out.png"))
    keep = np.ones(a.shape[:2], bool)
    keep[100:130, 100:140] = False
    assert np.array_equal(a[keep], b[keep]) and not np.array_equal(a[~keep], b[~keep])


def test_shipped_sample_model_draws_reproducible_labelled_images(tmp_path):
    from typer.testing import CliRunner

    from gancli.cli import app

    models = [m for m in shipped.shipped_models() if m.task == "sample"]
    if not models:
        pytest.skip("no sample model ships")
    m = shipped.find(None, "sample")
    runner = CliRunner()
    r = runner.invoke(app, ["sample", "--model", m.name, "--seeds", "0-3", "-o", f"{tmp_path}/a/", "--json"])
    assert r.exit_code == 0, r.stderr
    r2 = runner.invoke(app, ["sample", "--model", m.name, "--seeds", "3", "-o", f"{tmp_path}/b/"])
    assert r2.exit_code == 0, r2.stderr
    files = sorted((tmp_path / "a").glob("seed*.png"))
    assert [f.name for f in files] == [f"seed{i:04d}.png" for i in range(4)]
    with Image.open(files[3]) as a, Image.open(tmp_path / "b" / "seed0003.png") as b:
        assert np.array_equal(np.asarray(a), np.asarray(b))  # the same seed alone or in a batch
        assert a.text["gancli:seed"] == "3" and a.text["gancli:model"] == m.name


@pytest.mark.parametrize("name", [m.name for m in shipped.shipped_models() if m.task == "sample"])
def test_every_shipped_sample_model_draws_its_size_channels_and_named_classes(name, tmp_path):
    from typer.testing import CliRunner

    from gancli import checkpoints
    from gancli.cli import app

    info = checkpoints.read_model_info(shipped.verify(shipped.find(name, "sample")))
    size, classes = info.provenance["image_size"], info.provenance.get("classes") or []
    channels = info.config["channels"]
    args = ["sample", "--model", name, "--seeds", "0,1", "-o", f"{tmp_path}/", "--json"]
    r = CliRunner().invoke(app, [*args, "--label", classes[-1]] if classes else args)
    assert r.exit_code == 0, r.stderr
    with Image.open(tmp_path / "seed0001.png") as im:
        assert im.size == (size, size) and im.mode == {1: "L", 3: "RGB", 4: "RGBA"}[channels]
        assert not classes or im.text["gancli:label"] == classes[-1]
        px = np.asarray(im)
        assert px.std() > 5  # an image, not a flat field
