"""Interruptions: a batch killed with -9 at random moments and resumed with --skip-existing ends with every output
present, decodable and equal to an uninterrupted run's, and no temporary file anywhere. --skip-existing redoes
outputs that do not decode. (SIGTERM of a batch: tests/test_cli.py; kill -9 and SIGTERM of training:
tests/test_training.py.)"""

from __future__ import annotations

import fcntl
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from gancli import atomic
from gancli.cli import app
from tests.conftest import gradient_rgb
from tests.robustness.conftest import ONE_THREAD, tally, temp_files

runner = CliRunner()


def make_inputs(folder: Path, n: int, side: int = 40) -> list[Path]:
    folder.mkdir()
    paths = []
    for i in range(n):
        paths.append(folder / f"{i:03d}.png")
        Image.fromarray(gradient_rgb(side, side, seed=i)).save(paths[-1])
    return paths


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


def finished(folder: Path) -> list[Path]:
    return [p for p in folder.glob("*.png") if not p.name.startswith(atomic.TMP_PREFIX)] if folder.exists() else []


def test_kill_9_a_batch_of_50_at_a_random_moment_then_resume(tmp_path, sr_weights):
    """kill -9 after a random number of outputs (seeded), while an output is being written; then the same command with
    --skip-existing. (Kills at other moments: test_kill_9_in_the_middle_of_an_atomic_write_keeps_the_old_file in
    tests/test_checkpoints.py, and the SIGTERM test in tests/test_cli.py.)"""
    src = tmp_path / "in"
    make_inputs(src, 50)
    w = ["--weights", str(sr_weights), *ONE_THREAD]
    clean = tmp_path / "clean"
    r = runner.invoke(app, ["upscale", str(src), "-o", f"{clean}/", *w])
    assert r.exit_code == 0, r.stderr
    out = tmp_path / "out"
    target = random.Random(8).randint(5, 40)  # a random moment, the same on every run
    cmd = [sys.executable, "-m", "gancli", "upscale", str(src), "-o", f"{out}/", *w, "-q"]
    proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None and (len(finished(out)) < target or not temp_files(out)):
        time.sleep(0.0005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done, left_behind = len(finished(out)), len(temp_files(out))
    assert 0 < done < 50, "the kill must land mid-batch"
    for p in finished(out):  # whatever is under an output name is complete
        Image.open(p).load()
    if not left_behind:  # the write finished just before the kill: leave what a killed writer leaves (unlocked)
        (out / f"{atomic.TMP_PREFIX}planted.png").write_bytes(b"half a PNG")
    r = runner.invoke(app, ["upscale", str(src), "-o", f"{out}/", *w, "--skip-existing", "--json"])
    assert r.exit_code == 0, r.stderr
    status = [json.loads(line)["status"] for line in r.stdout.splitlines()]
    assert status.count("skipped") == done and status.count("ok") == 50 - done
    assert not temp_files(out), temp_files(out)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in clean.iterdir())
    for p in clean.iterdir():
        assert np.array_equal(pixels(out / p.name), pixels(p)), p.name
    tally("kill -9 of a 50-file batch, resumed with --skip-existing",
          f"killed after {done} outputs, mid-write; 50/50 outputs equal a clean run, no temp file left")


def test_skip_existing_redoes_outputs_that_do_not_decode(tmp_path, sr_weights):
    """Outputs left by another tool (or a crash elsewhere), in every format: truncated at any point, empty, or not
    images at all, are redone; a complete one is kept."""
    src = tmp_path / "in"
    make_inputs(src, 1, side=16)
    for i in range(1, 8):
        (src / f"{i:03d}.png").write_bytes((src / "000.png").read_bytes())
    w = ["--weights", str(sr_weights), *ONE_THREAD]
    cases = 0
    for fmt in ("png", "jpg", "webp", "tif", "bmp"):
        ref = tmp_path / f"ref.{fmt}"
        assert runner.invoke(app, ["upscale", str(src / "000.png"), "-o", str(ref), *w]).exit_code == 0
        data = ref.read_bytes()
        out = tmp_path / f"out_{fmt}"
        out.mkdir()
        damaged = [data[:n] for n in (0, 8, len(data) // 4, len(data) // 2, len(data) - 16, len(data) - 4)]
        damaged += [os.urandom(len(data))]
        for i, bad in enumerate(damaged):
            (out / f"{i:03d}.{fmt}").write_bytes(bad)
        (out / f"007.{fmt}").write_bytes(data)  # complete: kept
        r = runner.invoke(app, ["upscale", str(src), "-o", str(out), "--format", fmt, *w, "--skip-existing", "--json"])
        assert r.exit_code == 0, r.stderr
        status = [json.loads(line)["status"] for line in r.stdout.splitlines()]
        assert status == ["ok"] * len(damaged) + ["skipped"], (fmt, status)
        assert r.stderr.count("does not decode: redoing it") == len(damaged)
        for i in range(8):
            assert np.array_equal(pixels(out / f"{i:03d}.{fmt}"), pixels(ref)), (fmt, i)
        cases += len(damaged)
    tally("--skip-existing with damaged outputs (5 formats x 7 damages)", f"{cases} redone, complete ones kept")


def test_stale_temp_files_are_removed_but_a_live_writers_are_not(tmp_path):
    stale = tmp_path / f"{atomic.TMP_PREFIX}dead.png"
    stale.write_bytes(b"x")
    live = tmp_path / f"{atomic.TMP_PREFIX}live.png"
    live.write_bytes(b"y")
    with open(live, "rb") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)  # as atomic_path holds it while another process writes
        assert atomic.remove_stale(tmp_path) == 1
        assert live.exists() and not stale.exists()
    assert atomic.remove_stale(tmp_path) == 1 and not live.exists()
    with atomic.atomic_path(tmp_path / "target.png") as tmp:  # atomic_path's own file is locked while in use
        tmp.write_bytes(b"z")
        assert atomic.remove_stale(tmp_path) == 0 and tmp.exists()
    assert (tmp_path / "target.png").read_bytes() == b"z" and temp_files(tmp_path) == []
    tally("stale temp files vs a live writer's", "stale removed, live kept")
