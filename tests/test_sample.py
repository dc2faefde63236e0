"""Unconditional / class-conditional GANs: reproducible sampling, data loading, exact resume, the sample command."""

import gzip
import json
import struct

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import typer
from PIL import Image
from typer.testing import CliRunner

from gancli import checkpoints, models
from gancli.cli import parse_seeds, register_sample
from gancli.tasks.sample import generate
from gancli.training import diffaug
from gancli.training.config import TrainConfig
from gancli.training.engine import Trainer
from gancli.training.image_sets import load_image_set
from gancli.training.sample import SampleTask, frechet
from tests.conftest import app_with, gradient_rgb

CPU = torch.device("cpu")
TINY_G = {"image_size": 16, "base": 16, "min_channels": 8, "latent_dim": 8}
TINY_D = {"base": 8, "max_channels": 16}


def test_a_seed_gives_the_same_image_in_any_batch():
    torch.manual_seed(0)
    g = models.build("gan_gen", {**TINY_G, "channels": 4}).eval()
    with torch.no_grad():
        alone = g(g.sample_latents([7]))
        among = g(g.sample_latents([1, 2, 7, 9]))
    assert alone.shape == (1, 4, 16, 16)
    assert torch.allclose(alone[0], among[2], atol=1e-6)
    assert not torch.allclose(among[0], among[1])


def test_conditional_models_need_labels_and_use_them():
    torch.manual_seed(0)
    g = models.build("gan_gen", {**TINY_G, "num_classes": 3}).eval()
    z = g.sample_latents([1, 1])
    with torch.no_grad():
        a = g(z, torch.tensor([0, 2]))
    assert not torch.allclose(a[0], a[1])
    with pytest.raises(ValueError, match="labels"):
        g(z)
    d = models.build("gan_disc", {**TINY_D, "image_size": 16, "num_classes": 3})
    assert d(a, torch.tensor([0, 1])).shape == (2,)



@pytest.mark.parametrize("cond", [None, "concat", "mul"])
def test_truncation_moves_samples_toward_their_class_mean(cond):
    # z is pixel-normalised before the first layer, so scaling z (what --truncation did until session 16) changed
    # nothing; psi must act after the normalisation: psi 0 gives one image per class, psi 1 the untruncated ones.
    torch.manual_seed(0)
    extra = {"num_classes": 2, "cond": cond} if cond else {}
    g = models.build("gan_gen", {**TINY_G, **extra}).eval()
    z = g.sample_latents([1, 2, 3])
    y = torch.tensor([1, 1, 1]) if cond else None
    with torch.no_grad():
        full, half, mean = g(z, y), g(z, y, truncation=0.5), g(z, y, truncation=0.0)
        other = g(z, torch.tensor([0, 0, 0]), truncation=0.0) if cond else None
    assert torch.equal(g(z, y, truncation=1.0), full)
    assert torch.allclose(mean[0], mean[1], atol=1e-6) and torch.allclose(mean[0], mean[2], atol=1e-6)
    assert (half - mean).abs().mean() < (full - mean).abs().mean()
    assert not torch.allclose(half, full)
    if cond == "concat":
        assert not torch.allclose(other[0], mean[0])  # the class survives psi 0
    images = generate(g, z, y.tolist() if cond else None, truncation=0.0)  # what `gancli sample` calls
    assert (images[0] == images[1]).all() and (images[0] == images[2]).all()
def test_native_sizes_and_the_light_options():
    from gancli.models.gan import bottom_size, net_size

    assert bottom_size(28) == (7, 2) and bottom_size(32) == (4, 3) and bottom_size(48) == (6, 3)
    assert [net_size(s) for s in (28, 32, 40, 36, 48, 64, 100, 6)] == [28, 32, 40, 64, 48, 64, 128, 8]
    torch.manual_seed(0)
    g = models.build("gan_gen", {**TINY_G, "image_size": 28, "channels": 1, "num_classes": 3, "convs": 1,
                                 "cond": "concat"}).eval()
    assert len(g.blocks) == 2 and all(len(b) == 1 for b in g.blocks)
    z = g.sample_latents([4, 4, 5])
    with torch.no_grad():
        a = g(z, torch.tensor([0, 2, 0]))
        alone = g(z[2:], torch.tensor([0]))
    assert a.shape == (3, 1, 28, 28) and not torch.allclose(a[0], a[1])  # the label changes the image
    assert torch.allclose(a[2], alone[0], atol=1e-6)  # and the batch does not
    with pytest.raises(ValueError, match="cond"):
        models.build("gan_gen", {**TINY_G, "cond": "sum"})
    d = models.build("gan_disc", {**TINY_D, "image_size": 28, "channels": 1, "num_classes": 3, "convs": 0,
                                  "mbstd": 4})
    x = torch.rand(8, 1, 28, 28)
    assert d(x, torch.zeros(8, dtype=torch.long)).shape == (8,) and d(x[:3], None).shape == (3,)
    same = x[:1].expand(4, -1, -1, -1)  # a collapsed batch: the minibatch-std channel is zero
    from gancli.models.gan import _minibatch_std

    assert _minibatch_std(same, 4).abs().max() < 1e-3 < _minibatch_std(x[:4], 4).min()


def test_bilinear_generator_and_blurred_discriminator():
    from gancli.models.gan import Blur

    torch.manual_seed(0)
    g = models.build("gan_gen", {**TINY_G, "num_classes": 3, "upsample": "bilinear"}).eval()
    z = g.sample_latents([3, 3, 8])
    with torch.no_grad():
        a = g(z, torch.tensor([0, 1, 1]))
        alone = g(z[2:], torch.tensor([1]))
    assert a.shape == (3, 3, 16, 16) and torch.allclose(a[2], alone[0], atol=1e-6)
    torch.manual_seed(0)
    nearest = models.build("gan_gen", {**TINY_G, "num_classes": 3}).eval()
    nearest.load_state_dict(g.state_dict())  # the same weights: only the upsampling differs
    with torch.no_grad():
        assert not torch.allclose(nearest(z, torch.tensor([0, 1, 1])), a, atol=1e-3)
    with pytest.raises(ValueError, match="upsample"):
        models.build("gan_gen", {**TINY_G, "upsample": "bicubic"})

    flat, stripes = torch.full((1, 2, 8, 8), 0.3), torch.zeros(1, 2, 8, 8)
    stripes[..., ::2, :] = 1  # the Nyquist frequency: what a stride-2 conv can alias to a constant
    blur = Blur(2)
    assert torch.allclose(blur(flat), flat)  # passes constants (borders too)
    assert blur(stripes)[..., 2:-2, :].std() < 0.3 * stripes.std()  # and stops the finest stripes
    plain = models.build("gan_disc", {**TINY_D, "image_size": 16})
    blurred = models.build("gan_disc", {**TINY_D, "image_size": 16, "blur": True})
    assert sum(isinstance(m, Blur) for m in blurred.modules()) == 2
    assert blurred(torch.rand(2, 3, 16, 16)).shape == (2,)
    assert not any("kernel" in k for k in blurred.state_dict())  # the filter is fixed, not saved
    assert sum(p.numel() for p in plain.parameters()) == sum(p.numel() for p in blurred.parameters())


def test_skip_generator_sums_an_image_from_every_level(tmp_path):
    """skip: each level's 1x1 image added to the enlarged sum of the coarser ones; with the coarse images zeroed it
    is the plain generator; a seed's image stays independent of its batch; the option survives a model file."""
    torch.manual_seed(0)
    small = {**TINY_G, "image_size": 32, "num_classes": 2, "cond": "concat"}
    g = models.build("gan_gen", {**small, "skip": True}).eval()
    assert len(g.to_images) == 3  # 4x4, 8x8, 16x16; the 32x32 level's is to_image
    z, y = g.sample_latents([5, 6, 7]), torch.tensor([0, 1, 1])
    with torch.no_grad():
        a = g(z, y)
        assert a.shape == (3, 3, 32, 32) and torch.allclose(a[2], g(z[2:], y[2:])[0], atol=1e-6)
        coarse = g.to_images[0]
        coarse.bias += 1.0  # a constant at 4x4 shifts every pixel of the (pre-tanh) image alike
        shifted = g(z, y)
        assert not torch.allclose(shifted, a, atol=1e-3)
        assert torch.allclose(torch.atanh(shifted * 2 - 1) - torch.atanh(a * 2 - 1), torch.ones_like(a), atol=1e-3)
        for conv in g.to_images:
            conv.weight.zero_()
            conv.bias.zero_()
        plain = models.build("gan_gen", small).eval()
        plain.load_state_dict({k: v for k, v in g.state_dict().items() if not k.startswith("to_images.")})
        assert torch.allclose(plain(z, y), g(z, y), atol=1e-6)
    path = tmp_path / "skip.safetensors"
    checkpoints.save_model(g, path, task="sample", name="skip")
    back = checkpoints.load_model(path)[0]
    assert back.config.skip and torch.allclose(back(z, y), g(z, y), atol=1e-6)


def test_skip_excitation_and_the_reconstructing_discriminator():
    torch.manual_seed(0)
    small = {**TINY_G, "image_size": 32}
    g = models.build("gan_gen", {**small, "num_classes": 3, "sle": True}).eval()
    assert list(g.sle) == ["3"]  # the 32x32 level, gated from the 4x4 bottom (16x16 has no level 3 below it)
    z = g.sample_latents([3, 3, 8])
    with torch.no_grad():
        a = g(z, torch.tensor([0, 1, 1]))
        alone = g(z[2:], torch.tensor([1]))
    assert a.shape == (3, 3, 32, 32) and torch.allclose(a[2], alone[0], atol=1e-6)
    plain = models.build("gan_gen", {**small, "num_classes": 3}).eval()
    plain.load_state_dict({k: v for k, v in g.state_dict().items() if not k.startswith("sle.")})
    with torch.no_grad():
        assert not torch.allclose(plain(z, torch.tensor([0, 1, 1])), a, atol=1e-3)  # the gates act
    with pytest.raises(ValueError, match="sle"):
        models.build("gan_gen", {**TINY_G, "sle": True})  # 16x16: too few levels

    d = models.build("gan_disc", {**TINY_D, "image_size": 32, "recon": 1.0, "num_classes": 3}).eval()  # no power step
    x, y = torch.rand(2, 3, 32, 32), torch.tensor([0, 2])
    score, rebuilt = d(x, y, recon=True)
    assert score.shape == (2,) and rebuilt.shape == (2, 3, 16, 16) and rebuilt.abs().max() <= 1
    assert torch.allclose(d(x, y), score)  # the decoder does not change the score
    F.l1_loss(rebuilt, F.avg_pool2d(x * 2 - 1, 2)).backward()
    first = d.net[0].parametrizations.weight.original
    assert first.grad is not None and first.grad.abs().sum() > 0  # the rebuild shapes D's own features
    with pytest.raises(ValueError, match="decoder"):
        models.build("gan_disc", {**TINY_D, "image_size": 32})(x, recon=True)


def test_mirror_flips_about_half_the_real_images():
    from gancli.training.sample import ArraySampler

    images = np.zeros((5, 4, 4, 1), np.uint8)
    images[:, :, 0] = np.arange(1, 6)[:, None, None]  # a mark in the left column, the image's index
    s = ArraySampler(images, None, seed=0, mirror=True)
    x, _ = s.batch(400)
    left, right = x[:, 0, :, 0], x[:, 0, :, 3]
    assert ((left > 0).all(1) ^ (right > 0).all(1)).all()  # each image whole, either way round
    assert 120 < int((right > 0).all(1).sum()) < 280
    assert (ArraySampler(images, None, seed=0).batch(50)[0][:, 0, :, 3] == 0).all()  # off by default


def test_grouped_batches_give_each_minibatch_std_group_one_class():
    from gancli.training.sample import ArraySampler

    labels = np.arange(60) % 3
    images = labels.astype(np.uint8).reshape(60, 1, 1, 1).repeat(4, 1).repeat(4, 2)
    s = ArraySampler(images, labels, seed=0, group=4)
    x, y = s.batch(12)
    assert (y.view(4, 3) == y[:3]).all()  # images i, i + 3, i + 6, i + 9 share a class
    assert torch.equal(x[:, 0, 0, 0] * 255, y.float())  # and each image has its label
    assert ArraySampler(images, labels, seed=0, group=4).batch(10)[1].shape == (10,)  # not a multiple: plain draw


def test_diffaugment_keeps_shapes_and_alpha():
    x = torch.rand(4, 4, 16, 16)
    y = diffaug._color(x)
    assert torch.equal(y[:, 3], x[:, 3]) and not torch.equal(y[:, :3], x[:, :3])
    assert diffaug.augment(x, diffaug.POLICIES).shape == x.shape
    with pytest.raises(ValueError, match="unknown DiffAugment"):
        diffaug.parse_policy("translation,zoom")


def test_image_sets_from_class_folders_npz_and_idx(tmp_path):
    for cls in ("cats", "dogs"):
        (tmp_path / "f" / cls).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(gradient_rgb(20, 30, seed=i)).save(tmp_path / "f" / cls / f"{i}.png")
    rgba = np.dstack([gradient_rgb(20, 30), np.full((20, 30), 128, np.uint8)])
    Image.fromarray(rgba).save(tmp_path / "f" / "dogs" / "a.png")
    s = load_image_set([str(tmp_path / "f")], 16, "crop")
    assert s.images.shape == (7, 16, 16, 4) and s.classes == ["cats", "dogs"]
    assert s.labels.tolist() == [0, 0, 0, 1, 1, 1, 1]
    assert (s.images[:3, ..., 3] == 255).all()  # opaque alpha added to the RGB images
    padded = load_image_set([str(tmp_path / "f")], 16, "pad")
    assert (padded.images[0, 0, :, 3] == 0).all()  # 30x20 scaled to 16x11, padded with transparency
    np.savez(tmp_path / "d.npz", x_train=np.zeros((5, 12, 12), np.uint8), y_train=np.arange(5) % 2)
    s = load_image_set([str(tmp_path / "d.npz")], 16, "pad")
    assert s.images.shape == (5, 16, 16, 1) and s.classes == ["0", "1"]
    idx = tmp_path / "idx"
    idx.mkdir()
    imgs = np.arange(3 * 8 * 8, dtype=np.uint8).reshape(3, 8, 8)
    with gzip.open(idx / "train-images-idx3-ubyte.gz", "wb") as f:
        f.write(struct.pack(">HBB3I", 0, 8, 3, 3, 8, 8) + imgs.tobytes())
    with gzip.open(idx / "train-labels-idx1-ubyte.gz", "wb") as f:
        f.write(struct.pack(">HBBI", 0, 8, 1, 3) + bytes([4, 0, 9]))
    s = load_image_set([str(idx)], 8, "crop")
    assert np.array_equal(s.images[..., 0], imgs) and s.labels.tolist() == [4, 0, 9]


def test_frechet_distance():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2000, 4)), rng.normal(size=(2000, 4))
    assert frechet(a, b) < 0.05
    assert frechet(a, b + 1) == pytest.approx(4.0, abs=0.2)


@pytest.fixture
def class_data(tmp_path):
    for cls in ("a", "b"):
        (tmp_path / "data" / cls).mkdir(parents=True)
        for i in range(12):
            Image.fromarray(gradient_rgb(16, 16, seed=i + (100 if cls == "b" else 0))).save(
                tmp_path / "data" / cls / f"{i}.png")
    return tmp_path / "data"


@pytest.mark.parametrize("options", [{}, {"mirror": True, "disc": {**TINY_D, "recon": 1.0}},
                                     {"projected_weight": 0.5, "disc": {**TINY_D, "recon": 1.0}},
                                     {"coverage_weight": 1.0, "coverage_pool": 3},
                                     {"lecam_weight": 0.3, "lecam_decay": 0.5}])
def test_sample_training_resumes_exactly(class_data, tmp_path, options):
    cfg = TrainConfig(**{"task": "sample", "data": [str(class_data)], "model": TINY_G, "disc": TINY_D, "steps": 6,
                         "batch": 4, "warmup": 2, "eval_every": 3, "eval_images": 5, "r1_gamma": 1.0,
                         "betas": [0.0, 0.99], **options})

    def trainer(run_dir):
        torch.manual_seed(cfg.seed)
        return Trainer(cfg, SampleTask(cfg, CPU, log=lambda m: None), run_dir, CPU, log=lambda m: None)

    (tmp_path / "a").mkdir()
    straight = trainer(tmp_path / "a")
    straight.run()
    (tmp_path / "b").mkdir()
    trainer(tmp_path / "b").run(max_steps=4)
    torch.manual_seed(99)
    second = trainer(tmp_path / "b")
    assert second.resume() and second.step == 4
    second.run()
    for (k, a), b in zip(straight.ema.state_dict().items(), second.ema.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    for a, b in zip(straight.disc.state_dict().values(), second.disc.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    logged = [json.loads(line) for line in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert any("r1" in r for r in logged) and any("fd_pca" in r.get("val", {}) for r in logged)
    assert any("d_recon" in r for r in logged) == ("disc" in options)
    assert any("dp_real" in r and "g_proj" in r for r in logged) == ("projected_weight" in options)
    assert any("cover_l1" in r for r in logged) == ("coverage_weight" in options)
    assert any("lecam" in r for r in logged) == ("lecam_weight" in options)
    info = checkpoints.read_model_info(tmp_path / "a" / "best.safetensors")
    assert info.task == "sample" and info.provenance["classes"] == ["a", "b"]


def test_init_from_a_run_folder_takes_generator_ema_and_discriminator(class_data, tmp_path):
    """Pretrain on one folder, fine-tune on another: --init-from RUN copies G, EMA and D; provenance names it."""
    from gancli.cli import app

    toml = tmp_path / "pre.toml"
    table = lambda d: "".join(f"{k} = {v}\n" for k, v in d.items())  # noqa: E731
    toml.write_text('task = "sample"\neval_images = 0\nbatch = 2\nwarmup = 1\neval_every = 2\n'
                    f"[model]\n{table(TINY_G)}[disc]\n{table(TINY_D)}")
    runner = CliRunner()
    pre, ft = tmp_path / "pre", tmp_path / "ft"
    r = runner.invoke(app, ["train", "--config", str(toml), "--data", str(class_data), "--run", str(pre),
                            "--steps", "2"])
    assert r.exit_code == 0, r.stderr
    source = checkpoints.load_state(pre / "last.safetensors")
    few = tmp_path / "few"  # the same two classes, fewer images
    for cls in ("a", "b"):
        (few / cls).mkdir(parents=True)
        for p in sorted((class_data / cls).iterdir())[:2]:
            (few / cls / p.name).write_bytes(p.read_bytes())
    r = runner.invoke(app, ["train", "--config", str(toml), "--data", str(few), "--run", str(ft),
                            "--steps", "1", "--lr", "0", "--init-from", str(pre)])
    assert r.exit_code == 0, r.stderr
    assert "(generator, EMA and discriminator)" in r.stderr
    state = checkpoints.load_state(ft / "last.safetensors")
    assert state["step"] == 1 and state["init"]["from"] == str(pre) and state["init"]["steps"] == 2
    for part in ("model", "disc"):  # lr 0: the source's own weights (spectral norm's power iterations move on)
        for k, v in source[part].items():
            assert torch.equal(state[part][k], v) or k.endswith(("._u", "._v")), (part, k)
    for k, v in source["ema"].items():  # the source's EMA, one small step toward its generator
        assert torch.allclose(state["ema"][k], v, atol=1e-3), k
    info = checkpoints.read_model_info(ft / "best.safetensors")
    assert info.provenance["init_from"]["steps"] == 2 and info.provenance["steps"] == 1
    r = runner.invoke(app, ["train", "--config", str(toml), "--data", str(class_data), "--run", str(tmp_path / "x"),
                            "--init-from", str(tmp_path)])
    assert r.exit_code == 2 and "a folder must be a training run" in r.stderr, r.stderr


def test_parse_seeds():
    assert parse_seeds("0-3,10,2") == [0, 1, 2, 3, 10]
    for bad, msg in (("a", "not a seed"), ("5-3", "runs backwards (write 3-5)"), ("-1", "from 0 to"),
                     ("1-", "not a seed"), ("0-1000000", "1,000,001 seeds")):
        with pytest.raises(typer.BadParameter, match=msg.replace("(", r"\(").replace(")", r"\)")):
            parse_seeds(bad)
    assert len(parse_seeds("0-999999")) == 1_000_000


def test_sample_command(class_data, tmp_path):
    cfg = TrainConfig(task="sample", data=[str(class_data)], model={**TINY_G, "image_size": 12}, disc=TINY_D, steps=1,
                      batch=2, eval_every=1, eval_images=5)
    torch.manual_seed(0)
    (tmp_path / "run").mkdir()
    Trainer(cfg, SampleTask(cfg, CPU, log=lambda m: None), tmp_path / "run", CPU, log=lambda m: None).run()
    app = app_with(register_sample)
    # --device cpu: a seed's image is bit-identical across batch sizes on the CPU (on a GPU, within a level or two:
    # bench/cuda_check.py)
    runner = CliRunner()
    w = ["sample", "--weights", str(tmp_path / "run" / "best.safetensors"), "--device", "cpu"]
    r = runner.invoke(app, [*w, "--seeds", "3,5", "-o", str(tmp_path / "one") + "/", "--json", "--label", "b"])
    assert r.exit_code == 0, r.stderr
    recs = [json.loads(line) for line in r.stdout.splitlines()]
    assert [x["seed"] for x in recs] == [3, 5] and all(x["label"] == "b" for x in recs)
    im = Image.open(tmp_path / "one" / "seed0005.png")
    assert im.size == (12, 12)  # the network's 16x16 cropped back to the data's 12x12
    assert im.text["gancli:seed"] == "5" and im.text["gancli:label"] == "b" and "gancli:version" in im.text
    r = runner.invoke(app, [*w, "-n", "8", "-o", str(tmp_path / "more") + "/", "--label", "b"])
    assert r.exit_code == 0, r.stderr
    assert np.array_equal(np.asarray(Image.open(tmp_path / "more" / "seed0005.png")), np.asarray(im))
    r = runner.invoke(app, [*w, "-n", "4", "-o", str(tmp_path / "grid.png"), "--zoom", "2"])
    assert r.exit_code == 0 and Image.open(tmp_path / "grid.png").size == (2 * (24 + 4) + 4,) * 2
    r = runner.invoke(app, [*w, "--interpolate", "1,2", "--steps", "5", "-o", str(tmp_path / "walk.gif")])
    assert r.exit_code == 0, r.stderr
    assert Image.open(tmp_path / "walk.gif").n_frames == 5
    for args, msg in ((["--label", "c"], "not a class"), (["--seeds", "x"], "not a seed"),
                      (["--interpolate", "1"], "two different seeds"), (["--interpolate", "3,3"], "two different"),
                      (["-o", str(tmp_path / "g.txt")], "grid"),
                      (["-o", str(tmp_path / "walk.gif") + "/"], "walk.gif is a file, not a folder")):
        r = runner.invoke(app, [*w, *args])
        assert r.exit_code == 2 and msg in r.stderr, (args, r.stderr)


def test_small_sets_can_evaluate_against_the_training_images(class_data, tmp_path):
    cfg = TrainConfig(task="sample", data=[str(class_data)], model=TINY_G, disc=TINY_D, steps=1, batch=2,
                      eval_images=0)
    task = SampleTask(cfg, CPU, log=lambda m: None)
    n = len(list(class_data.rglob("*.png")))
    assert len(task.held) == len(task.sampler.images) == n and task.val_files == []  # every image trains
    with pytest.raises(ValueError, match="eval_images"):
        TrainConfig(task="sample", eval_images=-1)
    few = tmp_path / "few"  # under 5 images none can be held out: evaluated against them, said so (was a crash)
    few.mkdir()
    for i in range(3):
        Image.fromarray(gradient_rgb(16, 16, seed=i)).save(few / f"{i}.png")
    said = []
    task = SampleTask(TrainConfig(task="sample", data=[str(few)], model=TINY_G, disc=TINY_D, steps=1, batch=2,
                                  eval_images=100), CPU, log=said.append)
    assert len(task.held) == len(task.sampler.images) == 3 and task.val_files == []
    assert any("none held out" in m for m in said), said


def test_export_names_the_classes_that_label_accepts(class_data, tmp_path):
    from gancli.cli import app

    cfg = TrainConfig(task="sample", data=[str(class_data)], model=TINY_G, disc=TINY_D, steps=1, batch=2,
                      eval_every=1, eval_images=5)
    torch.manual_seed(0)
    (tmp_path / "run").mkdir()
    Trainer(cfg, SampleTask(cfg, CPU, log=lambda m: None), tmp_path / "run", CPU, log=lambda m: None).run()
    runner, out = CliRunner(), tmp_path / "named.safetensors"
    for bad in ("x", "x,x", "x,"):
        r = runner.invoke(app, ["export", str(tmp_path / "run"), "-o", str(out), "--classes", bad])
        assert r.exit_code == 2 and "2 distinct" in r.stderr and not out.exists(), bad
    r = runner.invoke(app, ["export", str(tmp_path / "run"), "-o", str(out), "--classes", "cat, dog"])
    assert r.exit_code == 0, r.stderr
    assert checkpoints.read_model_info(out).provenance["classes"] == ["cat", "dog"]
    r = runner.invoke(app, ["sample", "--weights", str(out), "--seeds", "1", "--label", "dog", "--json",
                            "-o", str(tmp_path / "s") + "/"])
    assert r.exit_code == 0 and json.loads(r.stdout)["label"] == "dog", r.stderr
    # classes named FAMILY-N (bench/emoji_set.py --groups layout): --label FAMILY draws the family's classes in turn
    fam = tmp_path / "family.safetensors"
    r = runner.invoke(app, ["export", str(tmp_path / "run"), "-o", str(fam), "--classes", "dog-1,dog-2"])
    assert r.exit_code == 0, r.stderr
    r = runner.invoke(app, ["sample", "--weights", str(fam), "--seeds", "0-2", "--label", "dog", "--json",
                            "-o", str(tmp_path / "f") + "/"])
    assert r.exit_code == 0, r.stderr
    assert [json.loads(x)["label"] for x in r.stdout.splitlines()] == ["dog-1", "dog-2", "dog-1"]
    r = runner.invoke(app, ["sample", "--weights", str(fam), "-n", "2", "--label", "dog",
                            "-o", str(tmp_path / "f.png")])
    assert r.exit_code == 0 and Image.open(tmp_path / "f.png").text["gancli:label"] == "dog", r.stderr
    for bad in ("do", "dog-", "dog-3"):
        r = runner.invoke(app, ["sample", "--weights", str(fam), "--label", bad, "-o", str(tmp_path / "g.png")])
        assert r.exit_code == 2 and "not a class" in r.stderr and not (tmp_path / "g.png").exists(), bad


def test_seed_label_in_turn_or_in_the_data_shares():
    from gancli.tasks.sample import seed_label

    assert [seed_label(s, [0, 1, 2]) for s in range(5)] == [0, 1, 2, 0, 1]
    assert [seed_label(s, [3, 5]) for s in range(3)] == [3, 5, 3]
    drawn = np.array([seed_label(s, [0, 1, 2], [600, 300, 100]) for s in range(20_000)])
    assert np.allclose(np.bincount(drawn) / len(drawn), [0.6, 0.3, 0.1], atol=0.015)
    assert {seed_label(s, [1, 2], [5, 0, 1]) for s in range(200)} == {2}  # within a family: its members' shares
    assert seed_label(123, [0, 1], [1, 1]) == seed_label(123, [0, 1], [1, 1])  # fixed by the seed alone


def test_label_mix_data_draws_in_the_recorded_class_shares(tmp_path):
    from gancli.cli import app

    for cls, n in (("a", 18), ("b", 6)):
        (tmp_path / "data" / cls).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(gradient_rgb(16, 16, seed=i + (100 if cls == "b" else 0))).save(
                tmp_path / "data" / cls / f"{i}.png")
    cfg = TrainConfig(task="sample", data=[str(tmp_path / "data")], model=TINY_G, disc=TINY_D, steps=1, batch=2,
                      eval_every=1, eval_images=0)
    torch.manual_seed(0)
    (tmp_path / "run").mkdir()
    Trainer(cfg, SampleTask(cfg, CPU, log=lambda m: None), tmp_path / "run", CPU, log=lambda m: None).run()
    best = tmp_path / "run" / "best.safetensors"
    assert checkpoints.read_model_info(best).provenance["class_counts"] == [18, 6]
    runner = CliRunner()

    def labels(weights, *args):
        r = runner.invoke(app, ["sample", "--weights", str(weights), "--json", *args])
        assert r.exit_code == 0, r.stderr
        return [json.loads(x)["label"] for x in r.stdout.splitlines()]

    mixed = labels(best, "-n", "60", "--label-mix", "data", "-o", str(tmp_path / "m") + "/")
    assert 0.6 <= mixed.count("a") / 60 <= 0.9  # 75 % of the training images are a's
    assert labels(best, "--seeds", "7,41", "--label-mix", "data", "-o", str(tmp_path / "m2") + "/") == [
        mixed[7], mixed[41]]  # a seed keeps its class at any -n
    assert np.array_equal(np.asarray(Image.open(tmp_path / "m" / "seed0041.png")),
                          np.asarray(Image.open(tmp_path / "m2" / "seed0041.png")))
    assert labels(best, "-n", "4", "-o", str(tmp_path / "t") + "/") == ["a", "b", "a", "b"]  # the default: in turn
    # a file without recorded shares: a clear error, nothing written; `gancli export --class-counts` adds them
    net, info = checkpoints.load_model(best)
    old = tmp_path / "old.safetensors"
    checkpoints.save_model(net, old, task="sample", name="old", description="",
                           provenance={k: v for k, v in info.provenance.items() if k != "class_counts"})
    for args, msg in ((["--weights", str(old), "--label-mix", "data"], "records no class shares"),
                      (["--weights", str(best), "--label-mix", "shares"], "turn or data")):
        r = runner.invoke(app, ["sample", *args, "-o", str(tmp_path / "x.png")])
        assert r.exit_code == 2 and msg in r.stderr and not (tmp_path / "x.png").exists(), (args, r.stderr)
    out = tmp_path / "counted.safetensors"
    for bad, msg in (("5", "2 counts"), ("5,x", "whole numbers"), ("0,0", "2 counts"), ("-1,4", "2 counts")):
        r = runner.invoke(app, ["export", str(tmp_path / "run"), "-o", str(out), "--class-counts", bad])
        assert r.exit_code == 2 and msg in r.stderr and not out.exists(), (bad, r.stderr)
    r = runner.invoke(app, ["export", str(tmp_path / "run"), "-o", str(out), "--class-counts", "0,3"])
    assert r.exit_code == 0, r.stderr
    assert set(labels(out, "-n", "10", "--label-mix", "data", "-o", str(tmp_path / "c") + "/")) == {"b"}


def test_shipped_conditional_models_draw_in_their_data_shares(tmp_path):
    """The shipped files predate class_counts in the provenance; the manifest carries them instead."""
    from gancli import shipped
    from gancli.cli import app

    conditional = [m for m in shipped.shipped_models() if m.task == "sample"
                   and checkpoints.read_model_info(m.path).provenance.get("classes")]
    assert {m.name for m in conditional} >= {"digits", "fashion", "emoji", "emoji-flags"}
    for m in conditional:
        classes = checkpoints.read_model_info(m.path).provenance["classes"]
        assert m.class_counts is not None and len(m.class_counts) == len(classes) and min(m.class_counts) > 0, m.name
    r = CliRunner().invoke(app, ["sample", "--model", "emoji-flags", "-n", "200", "--label-mix", "data", "--json",
                                 "-o", str(tmp_path / "f") + "/"])
    assert r.exit_code == 0, r.stderr
    drawn = [json.loads(x)["label"] for x in r.stdout.splitlines()]
    assert len(drawn) == 200 and 0.5 <= drawn.count("flags") / 200 <= 0.73  # 270 of its 439 images are flags


def test_rgba_models_keep_alpha_in_grids_and_say_when_a_format_drops_it(tmp_path):
    torch.manual_seed(0)
    g = models.build("gan_gen", {**TINY_G, "channels": 4})
    path = tmp_path / "rgba.safetensors"
    checkpoints.save_model(g, path, task="sample", name="rgba")
    app, runner = app_with(register_sample), CliRunner()
    r = runner.invoke(app, ["sample", "--weights", str(path), "-n", "4", "-o", str(tmp_path / "g.png")])
    assert r.exit_code == 0, r.stderr
    im = Image.open(tmp_path / "g.png")
    assert im.mode == "RGBA" and im.getpixel((0, 0))[3] == 0  # transparent padding, the samples' own alpha inside
    r = runner.invoke(app, ["sample", "--weights", str(path), "-n", "4", "-o", str(tmp_path / "g.jpg"), "--json"])
    assert r.exit_code == 0 and "no alpha channel" in r.stderr
    assert "no alpha channel" in json.loads(r.stdout)["notes"][0]


def test_projected_discriminator_trains_heads_only_and_passes_gradient_to_the_generator():
    from gancli.training.projected import ProjectedHeads, WithProjected

    heads = ProjectedHeads(channels=4, image_size=32, num_classes=3)
    assert not any(k.startswith("_features") for k in heads.state_dict())  # the frozen network is not saved
    assert all(p.requires_grad for p in heads.parameters())
    frozen = sum(p.numel() for p in heads._features[0].parameters())
    assert frozen > 100_000 and sum(p.numel() for p in heads.parameters()) < frozen * 10
    d = WithProjected(models.build("gan_disc", {**TINY_D, "image_size": 32, "channels": 4, "num_classes": 3}), heads)
    x, y = torch.rand(2, 4, 32, 32), torch.tensor([0, 2])
    score, logits = d(x, y, projected=True)
    assert score.shape == (2,) and logits.shape == (2, 16 * 4) and torch.isfinite(logits).all()
    assert not torch.allclose(logits, d(x, torch.tensor([1, 1]), projected=True)[1])  # the label counts
    assert d(x, y).shape == (2,)  # own discriminator alone
    # the discriminator's step: heads train, no graph through the frozen network to the image
    xg = x.clone().requires_grad_(True)
    d(xg, y, projected=True)[1].sum().backward()
    assert xg.grad is None and all(p.grad is not None for p in heads.heads.parameters())
    # the generator's step: the trainer freezes D; the gradient reaches the image through the frozen network
    d.requires_grad_(False)
    xg = x.clone().requires_grad_(True)
    d.projected(xg, y).sum().backward()
    assert xg.grad is not None and xg.grad.abs().sum() > 0
    assert all(p.grad is None or not p.requires_grad for p in heads._features[0].parameters())


def test_coverage_term_pulls_the_nearest_of_its_class_candidates_to_each_real_image(class_data):
    cfg = TrainConfig(task="sample", data=[str(class_data)], model=TINY_G, disc=TINY_D, batch=6, eval_images=0,
                      coverage_weight=2.0, coverage_pool=5, diffaugment="")
    task = SampleTask(cfg, CPU, log=lambda m: None)
    shown = []

    def flat(z, labels):  # a stand-in generator: a flat image whose grey level is z's first entry (squashed)
        shown.append(labels)
        return torch.sigmoid(z[:, :1, None, None]).expand(-1, 3, 16, 16)

    torch.manual_seed(0)
    batch = task.next_batch()
    batch["real"] = torch.linspace(0.1, 0.9, 6)[:, None, None, None].expand(-1, 3, 16, 16).contiguous()
    state = torch.random.get_rng_state()
    out = task.generate(flat, batch)
    torch.random.set_rng_state(state)  # the same candidates, to check the choice
    cand = torch.sigmoid(torch.randn(3 * 5, task.latent_dim)[:, 0]).view(3, 5)
    assert out.shape == (6 + 3, 3, 16, 16)  # the batch's samples, then one matched sample per real of the first half
    want = cand.gather(1, (cand - batch["real"][:3, 0, 0, 0, None]).abs().argmin(1, keepdim=True))[:, 0]
    assert torch.allclose(out[6:, 0, 0, 0], want)
    assert torch.equal(shown[0], batch["labels"][:3].repeat_interleave(5))  # candidates of each real's class
    assert torch.equal(shown[1][6:], batch["labels"][:3])
    # G's loss adds weight x L1 to the matched reals; D is shown the batch's own samples only
    model = models.build("gan_gen", {**TINY_G, "channels": 3, "num_classes": 2})
    disc = models.build("gan_disc", {**TINY_D, "image_size": 16, "channels": 3, "num_classes": 2}).eval()  # fixed SN
    fake = task.generate(model, batch)
    loss, logs = task.g_loss(fake, batch, disc)
    plain, _ = task.g_loss(fake[:6], batch, disc)
    assert logs["cover_l1"] > 0
    assert torch.allclose(loss - plain, 2.0 * F.l1_loss(fake[6:], batch["real"][:3]), atol=1e-5)
    d_full, _ = task.d_loss(fake, batch, disc)
    task.steps_done -= 1
    d_own, _ = task.d_loss(fake[:6], batch, disc)
    assert torch.allclose(d_full, d_own)


def test_coverage_pool_0_matches_each_real_image_to_the_batchs_own_sample_of_its_class(class_data):
    cfg = TrainConfig(task="sample", data=[str(class_data)], model=TINY_G, disc=TINY_D, batch=6, eval_images=0,
                      coverage_weight=2.0, coverage_pool=0, diffaugment="")
    task = SampleTask(cfg, CPU, log=lambda m: None)
    torch.manual_seed(0)
    batch = task.next_batch()
    batch["labels"] = torch.tensor([0, 1, 0, 1, 0, 1])
    batch["real"] = torch.tensor([0.1, 0.12, 0.62, 0.6, 0.9, 0.95])[:, None, None, None].expand(-1, 3, 16, 16)
    calls = []

    def flat(z, labels):  # a stand-in generator: grey levels fixed per row, whatever the latent
        calls.append(len(z))
        return torch.tensor([0.45, 0.9, 0.05, 0.3, 0.8, 0.65])[:, None, None, None].expand(-1, 3, 16, 16)

    fake = task.generate(flat, batch)
    assert calls == [6] and fake.shape == (6, 3, 16, 16)  # no candidates drawn: the batch is the pool
    # reals 0 (0.1, class 0), 1 (0.12, class 1), 2 (0.62, class 0): the nearest of their class among fakes 0/2/4 and
    # 1/3/5, not the nearest of all (0.05 for real 1, 0.65 for real 2)
    assert torch.equal(task._nearest_in_batch(fake, batch)[:, 0, 0, 0], torch.tensor([0.05, 0.3, 0.45]))
    model = models.build("gan_gen", {**TINY_G, "channels": 3, "num_classes": 2})
    disc = models.build("gan_disc", {**TINY_D, "image_size": 16, "channels": 3, "num_classes": 2}).eval()
    fake = task.generate(model, batch)
    assert len(fake) == 6
    loss, logs = task.g_loss(fake, batch, disc)
    task.cfg.coverage_weight = 0.0
    plain, _ = task.g_loss(fake, batch, disc)
    small = lambda x: F.adaptive_avg_pool2d(x, 16).flatten(1)  # noqa: E731
    dist = torch.cdist(small(batch["real"][:3]), small(fake.detach()))
    dist[batch["labels"][:3, None] != batch["labels"][None]] = float("inf")
    want = F.l1_loss(fake[dist.argmin(1)], batch["real"][:3])
    assert logs["cover_l1"] == pytest.approx(want.item(), rel=1e-5)
    assert torch.allclose(loss - plain, 2.0 * want, atol=1e-5)
    with pytest.raises(ValueError, match="coverage_pool"):
        TrainConfig(task="sample", data=[str(class_data)], coverage_pool=-1)


def test_coverage_size_compares_average_pooled_images(class_data):
    cfg = TrainConfig(task="sample", data=[str(class_data)], model=TINY_G, disc=TINY_D, batch=6, eval_images=0,
                      coverage_weight=2.0, coverage_pool=3, coverage_size=4, diffaugment="")
    task = SampleTask(cfg, CPU, log=lambda m: None)
    torch.manual_seed(0)
    batch = task.next_batch()
    model = models.build("gan_gen", {**TINY_G, "channels": 3, "num_classes": 2})
    disc = models.build("gan_disc", {**TINY_D, "image_size": 16, "channels": 3, "num_classes": 2}).eval()
    fake = task.generate(model, batch)
    loss, logs = task.g_loss(fake, batch, disc)
    plain, _ = task.g_loss(fake[:6], batch, disc)
    pooled = F.l1_loss(F.adaptive_avg_pool2d(fake[6:], 4), F.adaptive_avg_pool2d(batch["real"][:3], 4))
    full = F.l1_loss(fake[6:], batch["real"][:3])
    assert torch.allclose(loss - plain, 2.0 * pooled, atol=1e-5)
    assert logs["cover_l1"] == pytest.approx(pooled.item(), rel=1e-5)
    assert pooled < full  # details the pooled term no longer asks for
    with pytest.raises(ValueError, match="coverage_size"):
        TrainConfig(task="sample", data=[str(class_data)], coverage_size=-1)


def test_lecam_term_pulls_d_outputs_toward_the_other_sides_moving_average(class_data):
    cfg = TrainConfig(task="sample", data=[str(class_data)], model=TINY_G, disc=TINY_D, batch=4, eval_images=0,
                      lecam_weight=0.5, lecam_decay=0.75, diffaugment="")
    task = SampleTask(cfg, CPU, log=lambda m: None)
    real, fake = torch.tensor([2.0, 0.0]), torch.tensor([-1.0, 1.0])
    # the first call starts the averages at this step's means (real 1, fake 0)
    reg = task._lecam(real, fake, 1.0, 0.0)
    assert task.lecam_avg == [1.0, 0.0]
    assert reg.item() == pytest.approx((2.0**2 + 0) / 2 + (2.0**2 + 0) / 2)  # relu(real - 0)^2, relu(1 - fake)^2
    # then a moving average: 0.75 old + 0.25 new
    task._lecam(torch.tensor([3.0, 3.0]), torch.tensor([-2.0, -2.0]), 3.0, -2.0)
    assert task.lecam_avg == pytest.approx([1.5, -0.5])
    # outputs on the right side of the other average cost nothing
    assert task._lecam(torch.tensor([-5.0]), torch.tensor([9.0]), -5.0, 9.0).item() == 0.0
    # D's loss carries weight x the term (averages far apart, so that D's small outputs cross them), and the
    # averages survive a checkpoint of the task's state
    torch.manual_seed(0)
    model = models.build("gan_gen", {**TINY_G, "channels": 3, "num_classes": 2})
    disc = models.build("gan_disc", {**TINY_D, "image_size": 16, "channels": 3, "num_classes": 2}).eval()
    batch = task.next_batch()
    fake_img = task.generate(model, batch).detach()
    task.lecam_avg = before = [5.0, -5.0]
    loss, logs = task.d_loss(fake_img, batch, disc)
    task.lecam_avg = before
    plain = TrainConfig(task="sample", data=[str(class_data)], model=TINY_G, disc=TINY_D, batch=4, eval_images=0,
                        diffaugment="")
    base, _ = SampleTask(plain, CPU, log=lambda m: None).d_loss(fake_img, batch, disc)
    assert logs["lecam"] > 0 and torch.allclose(loss - base, torch.tensor(0.5 * logs["lecam"]), atol=1e-5)
    other = SampleTask(cfg, CPU, log=lambda m: None)
    other.load_state_dict(json.loads(json.dumps(task.state_dict())))
    assert other.lecam_avg == task.lecam_avg
    with pytest.raises(ValueError, match="lecam"):
        TrainConfig(task="sample", data=[str(class_data)], lecam_decay=1.0)
