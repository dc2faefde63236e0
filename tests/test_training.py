import json

import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from gancli import checkpoints, models
from gancli.cli import app
from gancli.training.config import TrainConfig
from gancli.training.engine import Trainer, lr_at
from gancli.training.upscale import UpscaleTask

CPU = torch.device("cpu")


def tiny_cfg(data_dir, **kw):
    return TrainConfig(data=[str(data_dir)], model={"scale": 2, "num_feat": 8, "num_conv": 1}, steps=6, batch=2,
                       patch=8, warmup=2, eval_every=3, val_count=2, **kw)


def make_trainer(cfg, run_dir):
    torch.manual_seed(cfg.seed)
    task = UpscaleTask(cfg, CPU, log=lambda m: None)
    return Trainer(cfg, task, run_dir, CPU, log=lambda m: None)


@pytest.mark.parametrize("gan,streaming", [(False, None), (True, None), (False, 0), (False, 2)])
def test_resume_gives_the_same_weights(data_dir, tmp_path, gan, streaming):
    """Also with the streaming sampler (data over the memory budget), in-process and with 2 worker processes, and
    with the realistic degradations (their RNG is part of the state) in the GAN case."""
    extra = {"gan_weight": 0.1, "disc": {"num_feat": 4, "num_down": 2}, "degradation": "realistic"} if gan else {}
    if streaming is not None:
        extra |= {"data_memory_gb": 0.0, "data_workers": streaming}
    cfg = tiny_cfg(data_dir, **extra)
    straight = make_trainer(cfg, tmp_path / "a")
    (tmp_path / "a").mkdir()
    straight.run()

    (tmp_path / "b").mkdir()
    first = make_trainer(cfg, tmp_path / "b")
    first.run(max_steps=4)
    assert first.step == 4
    torch.manual_seed(12345)  # a resumed process starts from other RNG states; the checkpoint must restore them
    second = make_trainer(cfg, tmp_path / "b")
    assert second.resume() and second.step == 4
    if streaming is not None:
        assert type(second.task.sampler).__name__ == "StreamingPatchSampler"
    second.run()
    assert second.step == straight.step == 6
    for (k, a), b in zip(straight.model.state_dict().items(), second.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    for a, b in zip(straight.ema.state_dict().values(), second.ema.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    if gan:
        for a, b in zip(straight.disc.state_dict().values(), second.disc.state_dict().values(), strict=True):
            assert torch.equal(a, b)
        logged = [json.loads(line) for line in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
        assert any("d_loss" in r and "g_adv" in r for r in logged)


def test_generator_step_leaves_no_gradient_in_the_discriminator(data_dir, tmp_path):
    cfg = tiny_cfg(data_dir, gan_weight=0.1, disc={"num_feat": 4, "num_down": 2})
    (tmp_path / "r").mkdir()
    tr = make_trainer(cfg, tmp_path / "r")
    real_d_loss, seen = tr.task.d_loss, []

    def spy(out, batch, disc):
        seen.append([p.grad is None for p in disc.parameters()])  # what G's backward left in D
        return real_d_loss(out, batch, disc)

    tr.task.d_loss = spy
    before = [p.detach().clone() for p in tr.disc.parameters()]
    tr.run(max_steps=2)
    assert len(seen) == 2 and all(all(step) for step in seen)
    assert any(not torch.equal(a, p) for a, p in zip(before, tr.disc.parameters(), strict=True))  # D did train


def test_lr_schedule():
    cfg = TrainConfig(steps=100, warmup=10, lr=1e-3, min_lr_ratio=0.1)
    assert lr_at(cfg, 0) == pytest.approx(1e-4)
    assert lr_at(cfg, 10) == pytest.approx(1e-3)
    assert lr_at(cfg, 100) == pytest.approx(1e-4)
    assert lr_at(cfg, 55) < lr_at(cfg, 30)


def test_non_finite_loss_rolls_back(data_dir, tmp_path):
    cfg = tiny_cfg(data_dir)
    (tmp_path / "r").mkdir()
    tr = make_trainer(cfg, tmp_path / "r")
    tr.run(max_steps=3)
    real_loss = tr.task.g_loss
    calls = {"n": 0}

    def flaky(out, batch, disc):
        calls["n"] += 1
        loss, logs = real_loss(out, batch, disc)
        return (loss * float("nan"), logs) if calls["n"] == 1 else (loss, logs)

    tr.task.g_loss = flaky
    tr.run()
    assert tr.step == 6 and tr.rollbacks == 1 and tr.lr_scale == 0.5


def test_cli_train_resume_and_export(data_dir, tmp_path):
    runner = CliRunner()
    run = tmp_path / "run"
    args = ["train", "--data", str(data_dir), "--run", str(run), "--steps", "4", "--batch", "2", "--patch", "8",
            "--scale", "2", "--model-config", '{"num_feat": 8, "num_conv": 1}', "--eval-every", "2",
            "--val-count", "2", "--threads", "1"]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.stderr
    assert json.loads((run / "config.json").read_text())["steps"] == 4
    r = runner.invoke(app, ["train", "--run", str(run), "--steps", "6"])  # resume: data etc. come from config.json
    assert r.exit_code == 0, r.stderr
    assert "resumed" in r.stderr and checkpoints.load_state(run / "last.safetensors")["step"] == 6
    out = tmp_path / "exported.safetensors"
    r = runner.invoke(app, ["export", str(run), "-o", str(out), "--name", "mine"])
    assert r.exit_code == 0, r.stderr
    model, info = checkpoints.load_model(out)
    assert info.name == "mine" and info.scale == 2 and info.provenance["steps"] in (2, 4, 6)
    r = runner.invoke(app, ["upscale", str(data_dir / "0.png"), "-o", str(tmp_path / "up.png"), "--weights", str(out)])
    assert r.exit_code == 0, r.stderr
    assert Image.open(tmp_path / "up.png").size == (128, 96)


def test_train_usage_errors(tmp_path):
    runner = CliRunner()
    r = runner.invoke(app, ["train", "--run", str(tmp_path / "empty")])
    assert r.exit_code == 2 and "--data is required" in r.stderr
    r = runner.invoke(app, ["train", "--data", str(tmp_path / "nope"), "--run", str(tmp_path / "x")])
    assert r.exit_code == 1 and "does not exist" in r.stderr
    assert r.stderr.count("does not exist") == 1, r.stderr  # one line on stderr, not the log's copy as well
    assert "does not exist" in (tmp_path / "x" / "train.log").read_text()


def test_config_file_print_config_and_precedence(data_dir, tmp_path):
    runner = CliRunner()
    toml = tmp_path / "cfg.toml"
    toml.write_text(f'data = ["{data_dir}"]\nsteps = 77\nbatch = 3\n\n[model]\nnum_feat = 8\nscale = 2\n')
    r = runner.invoke(app, ["train", "--config", str(toml), "--batch", "5", "--run", str(tmp_path / "r"),
                            "--print-config"])
    assert r.exit_code == 0, r.stderr
    assert "steps = 77" in r.stdout and "batch = 5" in r.stdout and "num_feat = 8" in r.stdout
    again = tmp_path / "again.toml"
    again.write_text(r.stdout)  # the printed config reads back
    r2 = runner.invoke(app, ["train", "--config", str(again), "--run", str(tmp_path / "r"), "--print-config"])
    assert r2.stdout == r.stdout
    toml.write_text("stepz = 3\n")
    r = runner.invoke(app, ["train", "--config", str(toml), "--print-config"])
    assert r.exit_code == 2 and "stepz" in r.stderr


def test_dry_run_trains_nothing(data_dir, tmp_path):
    r = CliRunner().invoke(app, ["train", "--data", str(data_dir), "--run", str(tmp_path / "r"), "--dry-run",
                                 "--val-count", "2", "--patch", "8"])
    assert r.exit_code == 0, r.stderr
    assert '"training_images": 4' in r.stdout and '"validation_images": 2' in r.stdout
    assert not (tmp_path / "r" / "last.safetensors").exists()


def test_progress_plot_samples_new_and_init_from(data_dir, tmp_path):
    runner = CliRunner()
    run = tmp_path / "run"
    base = ["train", "--data", str(data_dir), "--run", str(run), "--steps", "4", "--batch", "2", "--patch", "8",
            "--scale", "2", "--model-config", '{"num_feat": 8, "num_conv": 1}', "--eval-every", "2",
            "--val-count", "2"]
    assert runner.invoke(app, base).exit_code == 0
    assert Image.open(run / "progress.png").size == (900, 560)
    sheets = sorted((run / "samples").iterdir())
    assert [p.name for p in sheets] == ["step0000002.png", "step0000004.png"]
    # 2 validation images (rows) x [bicubic | model | truth]; 48-px LR crops at x2 (these small images are stretched)
    assert Image.open(sheets[0]).size == (3 * 96, 2 * 96)
    lines = (run / "metrics.jsonl").read_text().splitlines()
    r = runner.invoke(app, base + ["--new", "--steps", "2"])
    assert r.exit_code == 0 and "new run" in r.stderr
    assert len((run / "metrics.jsonl").read_text().splitlines()) < len(lines)  # --new starts the metrics afresh
    runner.invoke(app, ["export", str(run), "-o", str(tmp_path / "m.safetensors")])
    run2 = tmp_path / "run2"
    r = runner.invoke(app, ["train", "--data", str(data_dir), "--run", str(run2), "--steps", "2", "--batch", "2",
                            "--patch", "8", "--init-from", str(tmp_path / "m.safetensors"), "--eval-every", "1",
                            "--val-count", "2"])
    assert r.exit_code == 0, r.stderr
    assert "initialised from" in r.stderr
    assert json.loads((run2 / "config.json").read_text())["model"]["num_feat"] == 8  # taken from the file
    r = runner.invoke(app, ["train", "--run", str(run2), "--init-from", str(tmp_path / "m.safetensors")])
    assert r.exit_code == 1 and "--new" in r.stderr


def test_init_from_another_scale_transfers_the_body(data_dir, tmp_path):
    src = tmp_path / "x2.safetensors"
    torch.manual_seed(3)
    x2 = models.build("compact_sr", {"scale": 2, "num_feat": 8, "num_conv": 1})
    checkpoints.save_model(x2, src, task="upscale", name="x2", description="", provenance={})
    run = tmp_path / "run"
    r = CliRunner().invoke(app, ["train", "--data", str(data_dir), "--run", str(run), "--steps", "1", "--batch", "2",
                                 "--patch", "8", "--init-from", str(src), "--scale", "3", "--eval-every", "1",
                                 "--val-count", "2", "--lr", "0"])
    assert r.exit_code == 0, r.stderr
    assert "2 tensor(s) of another shape start fresh: body.4.bias, body.4.weight" in r.stderr
    cfg = json.loads((run / "config.json").read_text())["model"]
    assert cfg["scale"] == 3 and cfg["num_feat"] == 8  # the file's architecture, the scale given now
    model, _ = checkpoints.load_model(run / "best.safetensors")
    for key, value in x2.state_dict().items():  # lr 0: every tensor of the same shape is the file's
        if key.startswith("body.4."):
            assert model.state_dict()[key].shape != value.shape
        else:
            assert torch.equal(model.state_dict()[key], value), key


def test_sigterm_saves_and_exits_143(data_dir, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "gancli", "train", "--data", str(data_dir), "--run", str(run), "--steps", "100000",
           "--batch", "2", "--patch", "8", "--scale", "2", "--model-config", '{"num_feat": 8, "num_conv": 1}',
           "--eval-every", "100000", "--val-count", "2", "--threads", "1"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and not (run / "metrics.jsonl").exists():
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert err.count("interrupted by signal 15") == 1 and "Traceback" not in err
    state = checkpoints.load_state(run / "last.safetensors")
    assert state["step"] >= 50


@pytest.mark.parametrize("streaming", [False, True])
def test_broken_and_small_images_are_skipped_and_counted(data_dir, tmp_path, streaming):
    from gancli.training.data import PatchSampler, StreamingPatchSampler, list_images

    (data_dir / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnope")
    Image.new("RGB", (4, 4)).save(data_dir / "tiny.png")
    (data_dir / ".hidden.png").write_bytes(b"ignored")
    files = list_images([data_dir])
    assert len(files) == 8 and not any(f.name.startswith(".") for f in files)
    warnings = []
    make = (lambda fs, **kw: StreamingPatchSampler(fs, 16, 0, 4, workers=0, **kw)) if streaming else (
        lambda fs, **kw: PatchSampler(fs, 16, seed=0, **kw))
    sampler = make(files, warn=warnings.append)
    assert len(sampler.images) == 6 and len(sampler.skipped) == 2
    assert "skipped 2 of 8" in warnings[0] and "broken.png" in warnings[0] and "tiny.png" in warnings[0]
    assert sampler.batch(4).shape == (4, 3, 16, 16)
    with pytest.raises(ValueError, match="no usable training image"):
        make([data_dir / "broken.png"])


def test_list_file(data_dir, tmp_path):
    from gancli.training.data import list_images

    lst = tmp_path / "train.txt"
    lst.write_text(f"# my picks\n{data_dir / '0.png'}\ndata/1.png  # relative to the list file\n")
    assert [p.name for p in list_images([lst])] == ["0.png", "1.png"]
    lst.write_text("data/missing.png\n")
    with pytest.raises(FileNotFoundError, match="missing.png"):
        list_images([lst])


def test_kill_9_never_corrupts_the_last_checkpoint(data_dir, tmp_path):
    """kill -9 at random moments of a run that checkpoints every step: the last checkpoint always loads."""
    import os
    import random
    import signal
    import subprocess
    import sys
    import time

    run = tmp_path / "run"
    cfg = tmp_path / "cfg.toml"
    cfg.write_text("checkpoint_minutes = 0.0\neval_every = 100000\n")
    cmd = [sys.executable, "-m", "gancli", "train", "--config", str(cfg), "--data", str(data_dir), "--run", str(run),
           "--steps", "100000", "--batch", "2", "--patch", "8", "--scale", "2", "--model-config",
           '{"num_feat": 8, "num_conv": 1}', "--val-count", "2", "--threads", "1", "-q"]
    rng = random.Random(0)
    steps = []
    for _ in range(3):
        last = run / "last.safetensors"
        before = last.stat().st_mtime_ns if last.exists() else 0
        proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while time.time() < deadline and (not last.exists() or last.stat().st_mtime_ns == before):
            time.sleep(0.01)  # until this process has saved at least once
        time.sleep(0.2 + 0.5 * rng.random())
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        steps.append(checkpoints.load_state(run / "last.safetensors")["step"])  # loads: not corrupted
    assert steps == sorted(steps) and steps[-1] > steps[0]  # each restart resumed and went on
    proc = subprocess.run(cmd[:-7] + ["--steps", str(steps[-1] + 1), "--batch", "2", "--patch", "8", "-q"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert not list(run.glob(".gancli-tmp-*"))  # stale temp files of killed saves are cleaned up


def test_export_last_takes_the_latest_ema(data_dir, tmp_path):
    run = tmp_path / "run"
    r = CliRunner().invoke(app, ["train", "--data", str(data_dir), "--run", str(run), "--steps", "3", "--batch", "2",
                                 "--patch", "8", "--scale", "2", "--model-config", '{"num_feat": 8, "num_conv": 1}',
                                 "--eval-every", "1", "--val-count", "2", "--lr", "0.05"])
    assert r.exit_code == 0, r.stderr
    r = CliRunner().invoke(app, ["export", str(run), "-o", str(tmp_path / "last.safetensors"), "--last", "--fp32"])
    assert r.exit_code == 0, r.stderr
    model, info = checkpoints.load_model(tmp_path / "last.safetensors")
    state = checkpoints.load_state(run / "last.safetensors")
    assert info.provenance["steps"] == 3 and info.provenance["val"] is None
    for k, v in model.state_dict().items():
        assert torch.equal(v, state["ema"][k]), k


def test_keep_evals_writes_every_validation(data_dir, tmp_path):
    cfg = tiny_cfg(data_dir, keep_evals=True)
    (tmp_path / "run").mkdir()
    (tmp_path / "plain").mkdir()
    trainer = make_trainer(cfg, tmp_path / "run")
    trainer.run()
    evals = sorted(p.name for p in (tmp_path / "run" / "evals").iterdir())
    assert evals == ["step0000003.safetensors", "step0000006.safetensors"]
    for name, step in zip(evals, (3, 6), strict=True):
        model, info = checkpoints.load_model(tmp_path / "run" / "evals" / name)
        assert info.provenance["steps"] == step and "val" in info.provenance
    for key, value in trainer.ema.state_dict().items():  # the last file holds the EMA generator as it ends
        assert torch.equal(model.state_dict()[key], value), key
    make_trainer(tiny_cfg(data_dir), tmp_path / "plain").run()
    assert not (tmp_path / "plain" / "evals").exists()
