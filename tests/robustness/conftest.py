"""Shared pieces of the robustness suite: tiny models made once, the CLI contract every item must meet, a hard
per-call time limit, and a tally of the cases tried (GANCLI_ROBUSTNESS_TALLY=file.json writes it, for docs)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
from collections import Counter
from pathlib import Path

import pytest
import torch
import typer
from hypothesis import HealthCheck

from gancli import atomic, checkpoints, imageio, models
from gancli.cli import register_inpaint
from tests.conftest import app_with, tiny_sr

# Hypothesis: the same examples on every run (CI is reproducible), nothing stored between runs, and no deadline of
# its own (the hard limit below bounds every call instead; hypothesis' deadline would flake on a busy machine).
FUZZ = dict(derandomize=True, database=None, deadline=None, print_blob=True,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
SECONDS_PER_FILE = 10.0  # the hard time bound for one file; real ones take milliseconds
# Tiny models on tiny images: one thread is 5-10x faster than all cores (and leaves CI's other jobs alone).
ONE_THREAD = ["--threads", "1"]
SUMMARY = re.compile(r"^\d+ done, \d+ skipped, \d+ failed$")
PROGRESS = re.compile(r"^(ok|skipped) .+ -> .+ \(\d+\.\d+ s\)$")  # one plain line per item when not on a terminal


def stray_lines(stderr: str) -> list[str]:
    """stderr lines that are none of: 'error: ...', 'warning: ...', a progress line, the summary."""
    return [line for line in stderr.strip().splitlines()
            if line and not line.startswith(("error: ", "warning: ")) and not SUMMARY.match(line)
            and not PROGRESS.match(line)]

_TALLY: Counter = Counter()


def tally(kind: str, outcome: str) -> None:
    """Count one case tried: kind (a row of docs/robustness.md) and its outcome."""
    _TALLY[f"{kind} | {outcome}"] += 1


@pytest.fixture(scope="session", autouse=True)
def _write_tally():
    yield
    path = os.environ.get("GANCLI_ROBUSTNESS_TALLY")
    if path:
        Path(path).write_text(json.dumps(dict(sorted(_TALLY.items())), indent=1) + "\n")


class Hang(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds: float = SECONDS_PER_FILE):
    """Raise Hang in this (main) thread if the block runs longer than `seconds`: a hang fails the test, not CI."""

    def on_alarm(signum, frame):  # noqa: ARG001
        raise Hang(f"took more than {seconds} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture(scope="session")
def sr_weights(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("weights") / "tiny_x4.safetensors"
    checkpoints.save_model(tiny_sr(), path, task="upscale", name="tiny-x4", provenance={"parameters": 1})
    return path


@pytest.fixture(scope="session")
def inpaint_weights(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    net = models.build("inpaint_ffc", {"base": 8, "max_channels": 16, "num_blocks": 1})
    path = tmp_path_factory.mktemp("weights") / "tiny_inpaint.safetensors"
    checkpoints.save_model(net, path, task="inpaint", name="tiny-inpaint")
    return path


@pytest.fixture(scope="session")
def inpaint_app() -> typer.Typer:
    """An app with the inpaint command (registered on the real app only once an inpaint model ships)."""
    return app_with(register_inpaint)


def temp_files(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(atomic.TMP_PREFIX)] if folder.exists() else []


def check_item_contract(exit_code: int, stderr: str, output: Path, n_items: int = 1) -> str:
    """What every single-item run must show, whatever its input: exit 0 with a complete, decodable output, or exit 1
    with exactly one 'error:' line that names the input and no output at all; never a traceback or a stray line (a
    Python warning, a C library's message), and no temporary file left. Returns 'ok' or 'failed'."""
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert not stray_lines(stderr), stderr
    assert not temp_files(output.parent), stderr
    if exit_code == 0:
        assert not errors, stderr
        imageio.load(output, max_pixels=2**40)  # complete and decodable
        return "ok"
    assert exit_code == 1, (exit_code, stderr)
    assert len(errors) == n_items, stderr
    assert not output.exists(), stderr
    return "failed"
