"""Disk and permission faults: an output folder that cannot be written, a full disk (RLIMIT_FSIZE), an input that
disappears or changes mid-run, two processes writing into one folder. The affected items fail with one clear line
each, the others are done, no file is corrupted or half-written, and the exit code says so."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from gancli import imageio
from gancli.cli import app
from tests.conftest import gradient_rgb
from tests.robustness.conftest import ONE_THREAD, stray_lines, tally, temp_files

runner = CliRunner()


def make_inputs(folder: Path, sides: list[int]) -> list[Path]:
    folder.mkdir()
    paths = []
    for i, side in enumerate(sides):
        paths.append(folder / f"{i:02d}.png")
        Image.fromarray(gradient_rgb(side, side, seed=i)).save(paths[-1])
    return paths


def records(stdout: str) -> dict[str, dict]:
    return {Path(rec["input"]).name: rec for rec in map(json.loads, stdout.splitlines())}


def test_output_folder_that_cannot_be_created(tmp_path, sr_weights):
    """-o under a path whose parent is a regular file (what root cannot write either): every item fails, each named
    once, and the file in the way is untouched."""
    make_inputs(tmp_path / "in", [8, 8, 8])
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    for target in (f"{blocker}/sub/", str(blocker / "one.png")):
        args = [str(tmp_path / "in")] if target.endswith("/") else [str(tmp_path / "in" / "00.png")]
        r = runner.invoke(app, ["upscale", *args, "-o", target, "--weights", str(sr_weights), "--json", *ONE_THREAD])
        assert r.exit_code == 1 and "Traceback" not in r.stderr and not stray_lines(r.stderr), r.stderr
        recs = records(r.stdout)
        assert all(rec["status"] == "failed" and "a file is in the way" in rec["error"] for rec in recs.values())
        assert sum(line.startswith("error: ") for line in r.stderr.splitlines()) == len(recs)
        assert blocker.read_text() == "a file where a folder should be"
        tally("output folder cannot be created (parent is a file)", "every item failed, one line each, exit 1")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only folder; covered by the parent-is-a-file"
                    " case above")
def test_read_only_output_folder(tmp_path, sr_weights):
    make_inputs(tmp_path / "in", [8, 8])
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o555)
    try:
        r = runner.invoke(app, ["upscale", str(tmp_path / "in"), "-o", str(out), "--weights", str(sr_weights), "--json",
                                *ONE_THREAD])
    finally:
        out.chmod(0o755)
    assert r.exit_code == 1 and not stray_lines(r.stderr), r.stderr
    assert all("Permission denied" in rec["error"] for rec in records(r.stdout).values())
    assert list(out.iterdir()) == []
    tally("read-only output folder (non-root)", "every item failed, one line each, exit 1")


def _limit_file_size(limit: int):
    def preexec() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing us
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return preexec


def test_a_real_process_with_a_full_disk_and_broken_inputs(tmp_path, sr_weights):
    """A real process (where C libraries such as libpng and OpenCV write straight to file descriptor 2) under a
    file-size limit (the disk 'fills up' at 20 kB per file), over good small and large images and every broken file
    of the corpus: small outputs are written; large ones and broken inputs fail with exactly one 'error:' line each;
    stderr has nothing else but warnings and the summary; no truncated output or temp file remains; exit code 1."""
    from tests.robustness.hostile import RGB, corpus
    from tests.robustness.test_hostile_images import write_corpus

    d = tmp_path / "in"
    broken = write_corpus(d, [c for c in corpus() if not c.ok])
    rgb16 = RGB.astype(np.uint16) * 257
    png16 = imageio.encode(imageio.Picture(rgb16), "PNG")[0]
    (d / "broken_no_iend16.png").write_bytes(png16[:-12])  # Pillow decodes it; OpenCV's libpng complains on stderr
    tif16 = imageio.encode(imageio.Picture(rgb16), "TIFF")[0]
    (d / "broken_truncated16.tif").write_bytes(tif16[: len(tif16) * 2 // 3])
    sides = {"small_a.png": 6, "large_a.png": 48, "small_b.png": 6, "large_b.png": 48, "small_c.png": 6}
    for name, side in sides.items():  # 24x24 outputs fit in 20 kB; noisy 192x192 ones do not
        Image.fromarray(gradient_rgb(side, side, seed=side)).save(d / name)
    out = tmp_path / "out"
    files = sorted(str(p) for p in d.iterdir())  # named one by one: a folder scan would skip .gif
    cmd = [sys.executable, "-m", "gancli", "upscale", *files, "-o", str(out), "--format", "png", "--weights",
           str(sr_weights), "--json", *ONE_THREAD]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, preexec_fn=_limit_file_size(20_000))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr and not stray_lines(proc.stderr), proc.stderr
    recs = records(proc.stdout)
    failed = {name for name, rec in recs.items() if rec["status"] == "failed"}
    assert failed == set(broken.values()) | {"broken_no_iend16.png", "broken_truncated16.tif", "large_a.png",
                                             "large_b.png"}
    assert all("File too large" in recs[name]["error"] for name in ("large_a.png", "large_b.png"))
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == len(failed) and all(sum(name in line for line in errors) == 1 for name in failed)
    assert f"3 done, 0 skipped, {len(failed)} failed" in proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["small_a.png", "small_b.png", "small_c.png"]
    for p in out.iterdir():
        Image.open(p).load()
    tally("disk full (RLIMIT_FSIZE, EFBIG), real process", "3 small written, 2 large failed cleanly, exit 1")
    tally("broken images, real process (C libraries' stderr)", f"{len(failed) - 2} files, one line each, no stray line")


def test_input_disappears_or_changes_mid_run(tmp_path, sr_weights, monkeypatch):
    """While item 0 is upscaled, input 2 is deleted, input 3 is truncated and input 4 becomes a folder: those three
    fail (named, with the reason), the others are done, exit 1."""
    from gancli.tasks import upscale as upscale_task

    paths = make_inputs(tmp_path / "in", [8] * 6)
    real, calls = upscale_task.upscale_picture, []

    def upscale_and_sabotage(*args, **kwargs):
        if not calls:
            paths[2].unlink()
            paths[3].write_bytes(paths[3].read_bytes()[:40])
            paths[4].unlink()
            paths[4].mkdir()
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(upscale_task, "upscale_picture", upscale_and_sabotage)
    out = tmp_path / "out"
    r = runner.invoke(app, ["upscale", *map(str, paths), "-o", str(out), "--weights", str(sr_weights), "--json",
                            *ONE_THREAD])
    assert r.exit_code == 1 and not stray_lines(r.stderr), r.stderr
    recs = records(r.stdout)
    assert [recs[f"0{i}.png"]["status"] for i in range(6)] == ["ok", "ok", "failed", "failed", "failed", "ok"]
    assert "No such file" in recs["02.png"]["error"] and "not a readable image" in recs["03.png"]["error"]
    assert "is a folder" in recs["04.png"]["error"]
    assert sorted(p.name for p in out.iterdir()) == ["00.png", "01.png", "05.png"]
    tally("input deleted / truncated / replaced mid-run", "3 items failed, named; the other 3 done; exit 1")


def test_two_processes_write_into_the_same_folder(tmp_path, sr_weights):
    """A second run starts while the first is writing into the same folder, over the same inputs: both succeed, every
    output is complete and equal to a single run's, no temp file is left (neither run removes the other's)."""
    make_inputs(tmp_path / "in", [24] * 24)
    w = ["--weights", str(sr_weights), *ONE_THREAD]
    ref = tmp_path / "ref"
    assert runner.invoke(app, ["upscale", str(tmp_path / "in"), "-o", f"{ref}/", *w]).exit_code == 0
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "gancli", "upscale", str(tmp_path / "in"), "-o", f"{out}/", *w, "-q"]
    first = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and first.poll() is None and not temp_files(out):
        time.sleep(0.0005)
    second = runner.invoke(app, ["upscale", str(tmp_path / "in"), "-o", f"{out}/", *w, "-q"])
    overlapped = first.poll() is None  # the first was still writing when the second finished
    _, first_err = first.communicate(timeout=60)  # reads and closes the pipe (no unclosed-file warning later)
    assert first.returncode == 0 and not stray_lines(first_err)
    assert second.exit_code == 0 and not stray_lines(second.stderr), second.stderr
    assert not temp_files(out)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in ref.iterdir())
    for p in ref.iterdir():
        assert np.array_equal(np.asarray(Image.open(out / p.name)), np.asarray(Image.open(p))), p.name
    tally("two processes, one output folder", "both exit 0; 24/24 outputs complete and equal"
          + (" (runs overlapped to the end)" if overlapped else ""))
