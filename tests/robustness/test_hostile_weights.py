"""Hostile weight files: each is a clear CheckpointError (exit 2 on the command line, nothing written), nothing in
them is executed, and nothing allocates more than the file holds. tests/test_checkpoints.py has the first cases
(pickle, huge header length, truncation, bad metadata, key and shape differences); this adds the rest and fuzzing."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import resource
import struct
import time
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from safetensors.torch import save_file
from typer.testing import CliRunner

from gancli import checkpoints, shipped
from gancli.checkpoints import CheckpointError
from gancli.cli import app
from tests.conftest import gradient_rgb, tiny_sr
from tests.robustness.conftest import FUZZ, ONE_THREAD, tally, time_limit

runner = CliRunner()
GOOD_META = {"format": checkpoints.MODEL_FORMAT, "arch": "compact_sr", "task": "upscale", "scale": "4",
             "config": json.dumps({"scale": 4, "num_feat": 8, "num_conv": 2}), "provenance": "{}"}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def refuse(path: Path, match: str, seconds: float = 2.0) -> str:
    """load_model must raise CheckpointError (matching), quickly, and without raising the process' peak memory by
    more than 200 MB (every hostile file here is kilobytes: gigabytes would mean it was trusted)."""
    before, t0 = peak_rss_mb(), time.perf_counter()
    with time_limit(), pytest.raises(CheckpointError, match=match) as e:
        checkpoints.load_model(path)
    assert peak_rss_mb() - before < 200, f"{path.name} raised peak memory by {peak_rss_mb() - before:.0f} MB"
    assert time.perf_counter() - t0 < seconds, f"{path.name} took {time.perf_counter() - t0:.1f} s"
    return str(e.value)


class Payload:
    """Unpickling this runs os.system: proof that a file was unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def raw_safetensors(header: dict | bytes, body: bytes = b"", length: int | None = None) -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if length is None else length) + raw + body


def test_pickles_are_never_unpickled(tmp_path):
    marker = tmp_path / "executed"
    payload = pickle.dumps({"state_dict": Payload(marker)})
    for name in ("evil.safetensors", "evil.pt", "evil.pth", "evil.ckpt"):
        (tmp_path / name).write_bytes(payload)
        assert "never loads pickles" in refuse(tmp_path / name, "not a safetensors file")
    torch.save({"w": torch.zeros(2)}, tmp_path / "torch_save.safetensors")  # a real torch.save file (a zip of pickles)
    refuse(tmp_path / "torch_save.safetensors", "not a safetensors file")
    src = tmp_path / "a.png"
    Image.fromarray(gradient_rgb(8, 8)).save(src)
    r = runner.invoke(app, ["upscale", str(src), "-o", str(tmp_path / "out.png"), "--weights",
                            str(tmp_path / "evil.safetensors"), *ONE_THREAD])
    assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1 and "never loads pickles" in r.stderr
    assert not marker.exists() and not (tmp_path / "out.png").exists()
    tally("hostile weights: pickles (.safetensors, .pt, torch.save)", "refused, payload never run")


def test_no_code_path_can_unpickle():
    """The package never calls pickle.load(s), and torch.load only with weights_only=True (its safe unpickler)."""
    root = Path(checkpoints.__file__).resolve().parent
    for path in root.rglob("*.py"):
        text = path.read_text()
        assert "pickle.load" not in text, path
        for line in (line for line in text.splitlines() if "torch.load(" in line):
            assert "weights_only=True" in line, f"{path}: {line.strip()}"
    tally("hostile weights: static check (pickle.load / torch.load)", "none in gancli/")


@pytest.mark.parametrize("name,data,match", [
    ("header_2^64-1", struct.pack("<Q", 2**64 - 1) + b"{}", "not a safetensors file"),
    ("header_just_over_limit", struct.pack("<Q", checkpoints.MAX_HEADER_BYTES + 1) + b"{}", "not a safetensors file"),
    ("header_longer_than_file", struct.pack("<Q", 1000) + b"{}" * 10, "not a safetensors file"),
    ("header_not_json", raw_safetensors(b"\xff\xfe not json"), "header is not JSON"),
    ("header_deeply_nested", raw_safetensors(b"[" * 200_000), "header is not JSON"),
    ("header_a_list", raw_safetensors(b"[1, 2]"), "not a JSON object"),
    ("entry_not_an_object", raw_safetensors({"w": 5}), "corrupt safetensors header"),
    ("offsets_past_the_end", raw_safetensors({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 2**40]}}),
     "truncated"),
    ("shape_of_a_terabyte", raw_safetensors({"w": {"dtype": "F32", "shape": [2**38], "data_offsets": [0, 16]}},
                                            b"\0" * 16), "cannot read tensors"),
    ("unknown_dtype", raw_safetensors({"w": {"dtype": "Q99", "shape": [4], "data_offsets": [0, 16]}}, b"\0" * 16),
     "cannot read tensors"),
    ("overlapping_tensors", raw_safetensors({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                                             "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}},
                                            b"\0" * 24), "cannot read tensors"),
    ("metadata_not_strings", raw_safetensors({"__metadata__": {"format": 5}}), "cannot read tensors"),
    ("only_8_bytes", struct.pack("<Q", 0), "not a safetensors file"),
    ("empty", b"", "not a safetensors file"),
])
def test_hostile_safetensors_structure(tmp_path, name, data, match):
    path = tmp_path / f"{name}.safetensors"
    path.write_bytes(data)
    refuse(path, match)
    tally("hostile weights: safetensors structure (header length, JSON, offsets, dtypes)", "refused, one message")


@pytest.mark.parametrize("name,patch,match", [
    ("unknown_arch", {"arch": "stylegan9"}, "unknown architecture"),
    ("config_broken_json", {"config": "{'scale': 4"}, "not valid JSON"),
    ("config_deeply_nested", {"config": "[" * 100_000}, "not valid JSON"),
    ("config_not_object", {"config": "[4]"}, "must be JSON objects"),
    ("config_unknown_field", {"config": json.dumps({"scale": 4, "evil": "__import__('os')"})}, "no config field"),
    ("config_wrong_type", {"config": json.dumps({"scale": 4, "num_feat": "8"})}, "cannot build"),
    ("config_negative", {"config": json.dumps({"scale": 4, "num_feat": -8, "num_conv": 2})}, "cannot build"),
    ("config_wide_1GB", {"config": json.dumps({"scale": 4, "num_feat": 3_000, "num_conv": 2})}, "wrong shape"),
    ("config_wide_10TB", {"config": json.dumps({"scale": 4, "num_feat": 500_000, "num_conv": 2})}, "wrong shape"),
    ("config_deep_million_layers", {"config": json.dumps({"scale": 4, "num_feat": 8, "num_conv": 10**6})},
     "far more tensors"),
    ("scale_not_int", {"scale": "four"}, "not an integer"),
    ("no_format", {"format": "something-else"}, "not a gancli model file"),
    ("provenance_broken", {"provenance": "{"}, "not valid JSON"),
])
def test_hostile_metadata(tmp_path, name, patch, match):
    """The metadata is not trusted: a config that asks for 10 GB of weights or a million layers is refused without
    building them (the architecture is first built on the meta device and checked against the file)."""
    path = tmp_path / f"{name}.safetensors"
    save_file(tiny_sr().state_dict(), str(path), metadata=GOOD_META | patch)
    refuse(path, match)
    tally("hostile weights: metadata (arch, config JSON, huge/deep configs)", "refused, one message")


def test_wrong_shapes_and_keys_are_listed(tmp_path):
    sd = {k: v.clone() for k, v in tiny_sr().state_dict().items()}
    sd["body.0.weight"] = torch.zeros(8, 3, 5, 5)
    sd["head.extra"] = torch.zeros(1)
    path = tmp_path / "m.safetensors"
    save_file(sd, str(path), metadata=GOOD_META)
    message = refuse(path, "do not match")
    assert "unexpected: head.extra" in message and "body.0.weight: file (8, 3, 5, 5) vs model (8, 3, 3, 3)" in message
    tally("hostile weights: wrong shapes / extra keys", "refused, every difference listed")


@pytest.fixture(scope="module")
def good_model_bytes(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("m") / "good.safetensors"
    checkpoints.save_model(tiny_sr(), path, task="upscale", name="good")
    return path.read_bytes()


@settings(max_examples=150, **FUZZ)
@given(data=st.data())
def test_fuzzed_model_files(tmp_path_factory, good_model_bytes, data):
    """A real model file truncated anywhere, or with bytes overwritten in its header (JSON, metadata) or its tensor
    data: it loads (changed weights are still a valid file) or fails with CheckpointError; never another exception.
    (Changed weights are caught where it matters: shipped files by their sha256.)"""
    blob = bytearray(good_model_bytes)
    header_end = 8 + struct.unpack("<Q", blob[:8])[0]
    how = data.draw(st.sampled_from(["truncate", "overwrite_header", "overwrite_data"]))
    if how == "truncate":
        del blob[data.draw(st.integers(0, len(blob) - 1)):]
    else:
        lo, hi = (0, header_end) if how == "overwrite_header" else (header_end, len(blob))
        for _ in range(data.draw(st.integers(1, 4))):
            at = data.draw(st.integers(lo, hi - 1))
            run = data.draw(st.binary(min_size=1, max_size=6))
            blob[at:at + len(run)] = run
    path = tmp_path_factory.mktemp("fuzz") / "m.safetensors"
    path.write_bytes(bytes(blob))
    with time_limit():
        try:
            checkpoints.load_model(path)
            outcome = "loaded (a valid file)"
        except CheckpointError as e:
            assert str(e).startswith(str(path)), str(e)
            outcome = "refused, one message"
    tally(f"fuzzed model files ({how})", outcome)


@pytest.fixture
def shipped_copy(tmp_path, monkeypatch):
    """A copy of the shipped weights folder that the test may damage."""
    d = tmp_path / "weights"
    d.mkdir()
    for m in shipped.shipped_models():
        (d / m.file).write_bytes(m.path.read_bytes())
    (d / "manifest.json").write_text((shipped.weights_dir() / "manifest.json").read_text())
    monkeypatch.setattr(shipped, "weights_dir", lambda: d)
    shipped.shipped_models.cache_clear()
    yield d
    shipped.shipped_models.cache_clear()


def test_shipped_weights_match_the_manifest_and_weights_readme():
    readme = (shipped.weights_dir() / "README.md").read_text()
    for m in shipped.shipped_models():
        assert hashlib.sha256(m.path.read_bytes()).hexdigest() == m.sha256
        assert m.sha256 in readme, f"{m.file}: sha256 not in weights/README.md"
    tally("shipped weights: sha256 vs manifest and weights/README.md", "all match")


def test_damaged_shipped_weights_and_manifest_are_clear_errors(tmp_path, shipped_copy):
    src = tmp_path / "a.png"
    Image.fromarray(gradient_rgb(8, 8)).save(src)
    out = tmp_path / "out.png"
    entry = shipped.find(None, "upscale")
    data = bytearray((shipped_copy / entry.file).read_bytes())
    damaged = {
        "one flipped bit": lambda: (shipped_copy / entry.file).write_bytes(bytes(data[:-5] + bytes([data[-5] ^ 1])
                                                                                + data[-4:])),
        "truncated": lambda: (shipped_copy / entry.file).write_bytes(bytes(data[: len(data) // 2])),
        "missing": lambda: (shipped_copy / entry.file).unlink(),
        "manifest not JSON": lambda: (shipped_copy / "manifest.json").write_text("{oops"),
        "manifest wrong fields": lambda: (shipped_copy / "manifest.json").write_text('{"models": [{"nom": 1}]}'),
    }
    expected = {"one flipped bit": "damaged", "truncated": "damaged", "missing": "missing",
                "manifest not JSON": "manifest.json is damaged", "manifest wrong fields": "manifest.json is damaged"}
    for what, damage in damaged.items():
        damage()
        shipped.shipped_models.cache_clear()
        r = runner.invoke(app, ["upscale", str(src), "-o", str(out), *ONE_THREAD])
        assert r.exit_code == 2 and expected[what] in r.stderr and "Traceback" not in r.stderr, (what, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 and not out.exists()
        tally("shipped weights: damaged file or manifest (upscale)", "exit 2, one line, nothing written")
    r = runner.invoke(app, ["models"])
    assert r.exit_code == 1 and "manifest.json is damaged" in r.stderr and "Traceback" not in r.stderr
    tally("shipped weights: damaged manifest (models)", "exit 1, one line")


TINY_CONFIGS = {"compact_sr": {"num_feat": 8, "num_conv": 2}, "patch_disc": {"num_feat": 8, "num_down": 2},
                "inpaint_ffc": {"base": 8, "max_channels": 16, "num_blocks": 1},
                "gan_gen": {"image_size": 8, "base": 16, "min_channels": 8, "latent_dim": 8},
                "gan_disc": {"image_size": 8, "base": 8, "max_channels": 16}}


def test_every_registered_architecture_still_loads_exactly(tmp_path):
    """The checks above reject no real file: a model of every architecture in the registry saves and loads back with
    identical tensors (the meta-device build and the registration count accept it)."""
    from gancli import models

    for arch in models.ARCHITECTURES:
        torch.manual_seed(0)
        model = models.build(arch, TINY_CONFIGS.get(arch, {}))  # a new architecture: its default config
        path = tmp_path / f"{arch}.safetensors"
        checkpoints.save_model(model, path, task="test")
        loaded, info = checkpoints.load_model(path)
        assert info.arch == arch
        for (key, a), b in zip(model.state_dict().items(), loaded.state_dict().values(), strict=True):
            assert torch.equal(a, b), (arch, key)
    tally("registered architectures through the hostile-file checks", f"all {len(models.ARCHITECTURES)} load exactly")
