"""Data-parallel training: 2 CPU processes with gloo, started by torchrun, stay in sync and resume exactly."""

import subprocess
import sys

import pytest
import torch

from gancli import checkpoints, devices
from gancli.training import distributed


def torchrun(run_dir, data_dir, steps, *extra):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "gancli",
           "train", "--data", str(data_dir), "--run-dir", str(run_dir), "--steps", str(steps), "--batch", "2",
           "--patch", "8", "--scale", "2", "--model-config", '{"num_feat": 8, "num_conv": 1}', "--eval-every", "4",
           "--val-count", "2", "--device", "cpu", *extra]  # gloo even where a GPU is visible
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stderr


def test_two_ranks_stay_in_sync_and_resume_exactly(data_dir, tmp_path):
    err = torchrun(tmp_path / "straight", data_dir, 8)
    assert "2 ranks in sync: max parameter difference 0" in err
    assert err.count("step 8: validation") == 1  # rank 0 alone reports
    torchrun(tmp_path / "resumed", data_dir, 4)
    err = torchrun(tmp_path / "resumed", data_dir, 8)
    assert "resumed" in err and "not bit-exact" not in err
    a = checkpoints.load_state(tmp_path / "straight" / "last.safetensors")
    b = checkpoints.load_state(tmp_path / "resumed" / "last.safetensors")
    assert a["step"] == b["step"] == 8 and len(a["ranks"]) == 2
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k


def test_more_ranks_than_gpus_is_a_clear_error(monkeypatch):
    # seen on a one-GPU machine: the second rank's set_device(1) failed with "invalid device ordinal"
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(devices.DeviceError, match="--nproc_per_node=1"):
        distributed.from_environment("auto")
