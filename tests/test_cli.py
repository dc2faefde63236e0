import io
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from gancli import atomic, devices
from gancli.cli import app
from tests.conftest import gradient_rgb

runner = CliRunner()


def invoke(*args, **kw):
    return runner.invoke(app, [str(a) for a in args], **kw)


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    Image.fromarray(gradient_rgb(20, 24, seed=1)).save(d / "a.png")
    Image.fromarray(gradient_rgb(16, 16, seed=2)).save(d / "b.jpg", quality=90)
    (d / "c.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")  # corrupt
    (d / "notes.txt").write_text("not an image: ignored by suffix")
    return d


def test_help_does_not_import_torch():
    code = ("import sys\nfrom gancli.cli import app\n"
            "for argv in (['--help'], ['upscale', '--help'], ['train', '--help']):\n"
            "    try:\n        app(argv)\n    except SystemExit:\n        pass\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


AUTO_DEVICE = str(devices.pick_device("auto"))  # what --device auto takes here (cuda on a GPU machine)


def test_folder_with_corrupt_file(folder, tmp_path, tiny_weights):
    out = tmp_path / "out"
    r = invoke("upscale", folder, "-o", f"{out}/", "--weights", tiny_weights, "--json")
    assert r.exit_code == 1
    records = [json.loads(line) for line in r.stdout.splitlines()]
    assert [Path_name(rec["input"]) for rec in records] == ["a.png", "b.jpg", "c.png"]  # deterministic order
    status = {Path_name(rec["input"]): rec for rec in records}
    assert status["a.png"]["status"] == "ok" and status["a.png"]["out_size"] == [96, 80]
    assert status["a.png"]["mode"] == "RGB 8-bit" and status["a.png"]["device"] == AUTO_DEVICE
    assert status["b.jpg"]["status"] == "ok" and status["c.png"]["status"] == "failed"
    assert "c.png" in status["c.png"]["error"] and status["a.png"]["model"] == "tiny-x4"
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.jpg"]  # no output for the failed item
    assert Image.open(out / "a.png").size == (96, 80)
    assert "c.png" in r.stderr and "Traceback" not in r.stderr


def Path_name(p):
    return p.replace("\\", "/").rsplit("/", 1)[-1]


def test_single_file_default_name_outscale_and_size(folder, tiny_weights):
    r = invoke("upscale", folder / "a.png", "--weights", tiny_weights)
    assert r.exit_code == 0, r.stderr
    assert Image.open(folder / "a_x4.png").size == (96, 80)
    r = invoke("upscale", folder / "a.png", "--weights", tiny_weights, "--outscale", "2", "-q")
    assert r.exit_code == 0 and Image.open(folder / "a_x2.png").size == (48, 40)
    r = invoke("upscale", folder / "a.png", "--weights", tiny_weights, "--width", "30", "-o", folder / "w.webp")
    assert r.exit_code == 0 and Image.open(folder / "w.webp").size == (30, 25)


def test_stdin_to_stdout(folder, tiny_weights):
    data = (folder / "a.png").read_bytes()
    r = invoke("upscale", "-", "-o", "-", "--weights", tiny_weights, "--format", "png", input=data)
    assert r.exit_code == 0, r.stderr
    assert Image.open(io.BytesIO(r.stdout_bytes)).size == (96, 80)


@pytest.mark.parametrize("args,match", [
    (["missing.png"], "does not exist"),
    (["*.nothing"], "no file matches"),
    (["IN/a.png", "-o", "IN/a.png"], "overwrite an input"),
    (["IN/a.png", "--outscale", "2", "--width", "5"], "exclusive"),
    (["IN/a.png", "-o", "IN/out.gif"], "no image suffix"),
    (["IN/a.png", "--device", "cuda:7"], "cuda"),
    (["IN/a.png", "--json", "-o", "-"], "cannot be combined"),
    (["IN/a.png", "IN/b.jpg", "-o", "IN/notes.txt"], "is a file"),
    (["IN/a.png", "-o", "IN/notes.txt/"], "is a file, but a trailing '/' asks for a folder"),
])
def test_usage_errors_exit_2(folder, tiny_weights, args, match, monkeypatch):
    monkeypatch.chdir(folder.parent)
    args = [a.replace("IN", "in") for a in args]
    r = invoke("upscale", *args, "--weights", tiny_weights)
    assert r.exit_code == 2, r.stderr
    assert match in r.stderr.lower() and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_bad_weights_exit_2(folder, tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x80\x04K\x01.")
    r = invoke("upscale", folder / "a.png", "--weights", bad)
    assert r.exit_code == 2 and "not a safetensors file" in r.stderr


def test_skip_existing_redoes_broken_outputs(folder, tmp_path, tiny_weights):
    out = tmp_path / "out"
    out.mkdir()
    Image.new("RGB", (3, 3)).save(out / "a.png")  # a valid existing output: kept
    (out / "b.jpg").write_bytes(b"\xff\xd8\xff truncated")  # a broken one: redone
    r = invoke("upscale", folder / "a.png", folder / "b.jpg", "-o", out, "--weights", tiny_weights,
               "--skip-existing", "--json")
    assert r.exit_code == 0, r.stderr
    status = {Path_name(json.loads(line)["input"]): json.loads(line)["status"] for line in r.stdout.splitlines()}
    assert status == {"a.png": "skipped", "b.jpg": "ok"}
    assert Image.open(out / "a.png").size == (3, 3) and Image.open(out / "b.jpg").size == (64, 64)


def test_failed_write_leaves_no_partial_file(folder, tmp_path, tiny_weights, monkeypatch):
    from gancli import imageio

    real = imageio.write

    def half_then_fail(pic, fp, *args, **kw):
        real(pic, fp, *args, **kw)
        fp.truncate(fp.tell() // 2)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(imageio, "write", half_then_fail)
    out = tmp_path / "out"
    r = invoke("upscale", folder / "a.png", folder / "b.jpg", "-o", out, "--weights", tiny_weights)
    assert r.exit_code == 1 and "No space left" in r.stderr
    assert list(out.iterdir()) == []  # neither a truncated output nor a temp file
    assert not any(p.name.startswith(atomic.TMP_PREFIX) for p in out.iterdir())


def test_alpha_16bit_and_metadata_through_cli(tmp_path, tiny_weights):
    arr = np.random.default_rng(0).integers(0, 65536, (12, 10, 4), dtype=np.uint16)
    from gancli import imageio

    imageio.save(imageio.Picture(arr[..., :3], arr[..., 3], icc_profile=b"fake-icc-for-test"), tmp_path / "x.png")
    r = invoke("upscale", tmp_path / "x.png", "-o", tmp_path / "y.png", "--weights", tiny_weights)
    assert r.exit_code == 0, r.stderr
    back = imageio.load(tmp_path / "y.png")
    assert back.bit_depth == 16 and back.alpha is not None and back.size == (40, 48)
    assert back.icc_profile == b"fake-icc-for-test"


def test_models_lists_shipped(monkeypatch):
    r = invoke("models", "--json")
    assert r.exit_code == 0
    rows = json.loads(r.stdout)
    assert any(row["task"] == "upscale" and row["default"] for row in rows)
    for row in rows:
        assert row["bytes"] and row["description"]


def test_sigterm_mid_batch_leaves_only_complete_outputs(folder, tmp_path, tiny_weights):
    """A batch killed with SIGTERM exits 143, leaves no temp file, and --skip-existing completes it."""
    import os
    import signal
    import time

    src = tmp_path / "many"
    src.mkdir()
    for i in range(40):
        Image.fromarray(gradient_rgb(64, 64, seed=i)).save(src / f"{i:02d}.png")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "gancli", "upscale", str(src), "-o", str(out), "--weights", str(tiny_weights), "-q"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60

    def finished():
        return [p for p in out.glob("*.png") if not p.name.startswith(atomic.TMP_PREFIX)] if out.exists() else []

    while time.time() < deadline and len(finished()) < 3:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "Traceback" not in err
    names = [p.name for p in out.iterdir()]
    assert not any(n.startswith(atomic.TMP_PREFIX) for n in names) and 3 <= len(names) < 40
    for p in out.iterdir():
        Image.open(p).load()  # every output present is complete
    r = invoke("upscale", src, "-o", out, "--weights", tiny_weights, "--skip-existing", "--json")
    assert r.exit_code == 0
    status = [json.loads(line)["status"] for line in r.stdout.splitlines()]
    assert status.count("skipped") == len(names) and len(list(out.iterdir())) == 40
