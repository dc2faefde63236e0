import json
import pickle
import random
import struct

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from gancli import checkpoints
from gancli.checkpoints import CheckpointError
from tests.conftest import tiny_sr


def test_model_round_trip_and_fp16(tmp_path):
    model = tiny_sr()
    for dtype in (None, torch.float16):
        path = tmp_path / f"m{dtype}.safetensors"
        checkpoints.save_model(model, path, task="upscale", name="t", provenance={"steps": 3}, dtype=dtype)
        loaded, info = checkpoints.load_model(path)
        assert info.arch == "compact_sr" and info.scale == 4 and info.task == "upscale"
        assert info.provenance == {"steps": 3} and info.config["num_feat"] == 8
        x = torch.rand(1, 3, 8, 8)
        tol = 0 if dtype is None else 2e-3
        torch.testing.assert_close(loaded(x), model.eval()(x), atol=tol, rtol=tol)


def _write(path, tensors, meta):
    save_file(tensors, str(path), metadata=meta)
    return path


def test_strict_load_lists_differences(tmp_path):
    model = tiny_sr()
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    first = next(iter(sd))
    sd.pop(first)
    sd["extra.weight"] = torch.zeros(1)
    meta = {"format": checkpoints.MODEL_FORMAT, "arch": "compact_sr", "config": json.dumps(
        {"scale": 4, "num_feat": 8, "num_conv": 2}), "provenance": "{}", "task": "upscale", "scale": "4"}
    with pytest.raises(CheckpointError) as e:
        checkpoints.load_model(_write(tmp_path / "a.safetensors", sd, meta))
    assert f"missing: {first}" in str(e.value) and "unexpected: extra.weight" in str(e.value)
    meta_wide = dict(meta, config=json.dumps({"scale": 4, "num_feat": 16, "num_conv": 2}))
    with pytest.raises(CheckpointError, match="wrong shape"):
        checkpoints.load_model(_write(tmp_path / "b.safetensors", model.state_dict(), meta_wide))


@pytest.mark.parametrize("meta_patch,match", [
    ({"arch": "nope"}, "unknown architecture"),
    ({"config": "{broken"}, "not valid JSON"),
    ({"format": "other"}, "not a gancli model"),
    ({"config": json.dumps({"scale": 4, "bogus": 1})}, "no config field"),
])
def test_bad_metadata(tmp_path, meta_patch, match):
    meta = {"format": checkpoints.MODEL_FORMAT, "arch": "compact_sr", "config": "{}", "provenance": "{}",
            "task": "upscale", "scale": "4"} | meta_patch
    with pytest.raises(CheckpointError, match=match):
        checkpoints.load_model(_write(tmp_path / "m.safetensors", tiny_sr().state_dict(), meta))


def test_hostile_files(tmp_path):
    pkl = tmp_path / "evil.safetensors"
    pkl.write_bytes(pickle.dumps({"a": 1}))
    huge = tmp_path / "huge.safetensors"
    huge.write_bytes(struct.pack("<Q", 2**60) + b"{}")
    good = tmp_path / "good.safetensors"
    checkpoints.save_model(tiny_sr(), good, task="upscale")
    trunc = tmp_path / "trunc.safetensors"
    trunc.write_bytes(good.read_bytes()[:-100])
    for path, match in [(pkl, "not a safetensors"), (huge, "not a safetensors"), (trunc, "truncated"),
                        (tmp_path / "missing.safetensors", "cannot read")]:
        with pytest.raises(CheckpointError, match=match):
            checkpoints.load_model(path)


def test_training_state_round_trip(tmp_path):
    model = tiny_sr()
    opt = torch.optim.Adam(model.parameters())
    model(torch.rand(1, 3, 8, 8)).mean().backward()
    opt.step()
    state = {"step": 7, "opt": opt.state_dict(), "rng": {"torch": torch.get_rng_state(),
             "numpy": np.random.get_state(legacy=False), "python": random.getstate()}, "none": None,
             "tuple": (1, 2.5, "x")}
    checkpoints.save_state(state, tmp_path / "s.safetensors")
    back = checkpoints.load_state(tmp_path / "s.safetensors")
    assert back["step"] == 7 and back["tuple"] == (1, 2.5, "x") and back["none"] is None
    opt2 = torch.optim.Adam(model.parameters())
    opt2.load_state_dict(back["opt"])
    assert torch.equal(opt2.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
    random.setstate(back["rng"]["python"])
    np.random.set_state(back["rng"]["numpy"])
    torch.set_rng_state(back["rng"]["torch"])


def test_atomic_save_leaves_old_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "m.safetensors"
    checkpoints.save_model(tiny_sr(), path, task="upscale", name="old")

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoints, "save_file", boom)
    with pytest.raises(OSError):
        checkpoints.save_model(tiny_sr(), path, task="upscale", name="new")
    assert checkpoints.read_model_info(path).name == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


def test_kill_9_in_the_middle_of_an_atomic_write_keeps_the_old_file(tmp_path):
    """A process killed while writing through atomic_path leaves the previous file whole (and only a temp file)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    target = tmp_path / "last.safetensors"
    checkpoints.save_state({"step": 1, "w": torch.ones(3)}, target)
    code = ("import sys, time\nfrom gancli.atomic import atomic_path\n"
            "with atomic_path(sys.argv[1]) as tmp, open(tmp, 'wb') as f:\n"
            "    for _ in range(1000):\n        f.write(b'x' * 1000); f.flush(); time.sleep(0.01)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(target)])
    deadline = time.time() + 30
    while time.time() < deadline and not any(p.name.startswith(".gancli-tmp-") and p.stat().st_size > 0
                                             for p in tmp_path.iterdir()):
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert checkpoints.load_state(target)["step"] == 1
