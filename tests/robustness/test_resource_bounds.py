"""Resource bounds: a 10,000-file folder is streamed (memory grows with the list of names only, by a small constant
per file; decoded images never outlive their item), and a large image is upscaled tile by tile (no float copy of the
whole image, every tile window bounded). The measured peak of a 4000x3000 photo is in README (bench/memory.py)."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import tracemalloc
import weakref
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from typer.testing import CliRunner

from gancli import imageio
from gancli.cli import app
from gancli.tasks import upscale as upscale_task
from tests.conftest import gradient_rgb, tiny_sr
from tests.robustness.conftest import ONE_THREAD, tally

PER_FILE_BYTES = 3_000  # the budget per file of a batch: its names and its record, nothing of its pixels

# Run in a fresh process without torch (fast to start): plan and run a batch over the first 1,000 files of a folder,
# then over all 10,000, each item decoding its image as the commands do; print the peak resident memory (VmHWM, which
# unlike ru_maxrss does not inherit the forking parent's) after each.
STREAM_SCRIPT = """
import sys
from gancli import batch, console, imageio
console.quiet = True

def hwm():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM"))

def process(it, report_part):
    pic = imageio.load(it.input)
    it.in_size, it.out_size, it.extra["mode"] = list(pic.size), [4 * s for s in pic.size], pic.mode

files = batch.expand_inputs([sys.argv[1]])
for n in (1_000, 10_000):
    items = batch.plan_outputs(files[:n], sys.argv[2], "x4", None)
    assert batch.run(items, process, skip_existing=False, as_json=False, label="t") == 0
    del items
    print(hwm())
"""


def test_a_10000_file_folder_is_streamed(tmp_path):
    """10,000 images (48x48 RGB: 6.9 kB decoded each) planned and decoded one by one: the peak memory of 10,000 is
    that of 1,000 plus a small constant per file (its name and record), far less than one decoded image per file."""
    d = tmp_path / "many"
    d.mkdir()
    Image.fromarray(gradient_rgb(48, 48)).save(d / "00000.png")
    for i in range(1, 10_000):
        os.link(d / "00000.png", d / f"{i:05d}.png")  # 10,000 names, one file's worth of disk
    proc = subprocess.run([sys.executable, "-c", STREAM_SCRIPT, str(d), f"{tmp_path / 'out'}/"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    small, large = map(int, proc.stdout.split())
    per_file = (large - small) / 9_000
    assert per_file < PER_FILE_BYTES, f"{per_file:.0f} bytes per file"
    tally("10,000-file folder (decoded one by one, VmHWM)",
          f"{per_file:.0f} bytes per file above 1,000 files (budget 3,000; a decoded image is 6,912)")


def test_decoded_images_never_outlive_their_item(tmp_path, sr_weights, monkeypatch):
    """Through the real command, pipelined (item k+1 decodes while k computes and k-1 is written): when item k+1 is
    loaded, the pixels of items 0..k-2 (read and upscaled) are gone, so memory holds at most three items' images."""
    d = tmp_path / "in"
    d.mkdir()
    for i in range(8):
        Image.fromarray(gradient_rgb(24, 24, seed=i)).save(d / f"{i}.png")
    alive: list[tuple[int, weakref.ref]] = []
    real_load, real_upscale = imageio.load, upscale_task.upscale_picture

    def load(path, *args, **kwargs):  # no gc.collect(): freed by reference counting, at once, or it is a leak
        k = int(Path(path).stem)
        held = sorted({i for i, r in alive if r() is not None})
        assert all(i >= k - 2 for i in held), f"loading item {k}: pixels of items {held} are still held"
        pic = real_load(path, *args, **kwargs)
        alive.append((k, weakref.ref(pic.pixels)))
        return pic

    def upscale(model, pic, *args, **kwargs):
        k = next(i for i, r in alive if r() is pic.pixels)
        out = real_upscale(model, pic, *args, **kwargs)
        alive.append((k, weakref.ref(out.pixels)))
        return out

    monkeypatch.setattr(imageio, "load", load)
    monkeypatch.setattr(upscale_task, "upscale_picture", upscale)
    r = CliRunner().invoke(app, ["upscale", str(d), "-o", str(tmp_path / "out"), "--weights", str(sr_weights),
                                 *ONE_THREAD])
    assert r.exit_code == 0, r.stderr
    assert len(alive) == 16
    tally("decoded images held at once (8-image batch, weakrefs)",
          "at most three items' (decoding k+1, computing k, writing k-1)")


def test_a_large_image_is_tiled_within_its_memory_bound(monkeypatch):
    """A 480x320 RGBA image, tile 64: numpy memory peaks at the output (assembled in 8 bits) plus a few tile
    windows, never a float copy of the image; and the model never sees more than one tile plus its margin."""
    model = tiny_sr()
    h, w, tile = 320, 480, 64
    rgb = np.ascontiguousarray(np.tile(gradient_rgb(h, 60), (1, 8, 1)))
    pic = imageio.Picture(rgb, np.full((h, w), 200, np.uint8))
    margin = upscale_task.receptive_radius(model) + 1
    windows = []
    real_run_tile = upscale_task._run_tile

    def run_tile(net, x, alpha):
        windows.append(tuple(x.shape[-2:]))
        return real_run_tile(net, x, alpha)

    monkeypatch.setattr(upscale_task, "_run_tile", run_tile)
    torch.set_num_threads(1)
    gc.collect()
    tracemalloc.start()
    try:
        out = upscale_task.upscale_picture(model, pic, 4, device=torch.device("cpu"), tile=tile)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    output_bytes = out.pixels.nbytes + out.alpha.nbytes  # 9.8 MB: the result itself, in 8 bits
    window_bytes = (tile + 2 * margin) ** 2 * 4 * 16 * 4  # one window, float32, 4 channels, x4 upscaled
    assert peak < output_bytes + 4 * window_bytes, (peak, output_bytes, window_bytes)
    assert peak < 0.5 * h * w * 16 * 4 * 4  # a float32 copy of the whole RGBA output would be 39 MB
    assert len(windows) == 5 * 8 and max(a * b for a, b in windows) <= (tile + 2 * margin) ** 2
    tally("large image, tiled (480x320 RGBA, tile 64)",
          f"peak {peak / 1e6:.1f} MB for a {output_bytes / 1e6:.1f} MB result; 40 tiles of <= 64+2x{margin} px")
