"""bench/mlp_gan.py and bench/sample_quality.py on tiny synthetic data (the real data only for the loader check)."""

import argparse
import gzip
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gancli import checkpoints, models
from gancli.tasks.sample import generate, seed_label

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))
import emoji_quality as eq  # noqa: E402
import mlp_gan  # noqa: E402
import sample_quality as sq  # noqa: E402
import twemoji_features as tf  # noqa: E402


def digits(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n, 28, 28) uint8 bright squares whose position codes the label, and the labels."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    x = np.zeros((n, 28, 28), np.uint8)
    for k, lab in enumerate(y):
        r, c = 2 + 2 * (lab // 5), 2 + 4 * (lab % 5)
        x[k, r : r + 8, c : c + 8] = 255
    return x, y


def test_load_split_reads_npz_and_idx(tmp_path):
    x, y = digits(12)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=y, x_test=x[:4], y_test=y[:4])
    xs, ys = mlp_gan.load_split(tmp_path / "d.npz", "test")
    assert xs.shape == (4, 28, 28) and ys.tolist() == y[:4].tolist()
    folder = tmp_path / "idx"
    folder.mkdir()
    with gzip.open(folder / "t10k-images-idx3-ubyte.gz", "wb") as f:
        f.write(struct.pack(">HBBIII", 0, 8, 3, 12, 28, 28) + x.tobytes())
    with gzip.open(folder / "t10k-labels-idx1-ubyte.gz", "wb") as f:
        f.write(struct.pack(">HBBI", 0, 8, 1, 12) + y.astype(np.uint8).tobytes())
    xs, ys = mlp_gan.load_split(folder, "test")
    assert np.array_equal(xs, x) and np.array_equal(ys, y)
    with pytest.raises(ValueError, match="train-images"):
        mlp_gan.load_split(folder, "train")


def test_mnist_loads_when_present():
    if not mlp_gan.MNIST.exists():
        pytest.skip(f"{mlp_gan.MNIST} is absent")
    x, y = mlp_gan.load_split(mlp_gan.MNIST, "test")
    assert x.shape == (10000, 28, 28) and set(np.unique(y)) == set(range(10))


def test_mlp_gan_trains_saves_and_loads(tmp_path):
    torch.set_num_threads(1)
    x, _ = digits(256)
    g, steps, _, _ = mlp_gan.train(x, minutes=0.01, log=lambda s: None)
    assert steps > 0
    path = tmp_path / "g.safetensors"
    mlp_gan.save_generator(g, path, {"steps": steps})
    drawn = sq.draw_mlp(path, "mlp", 20)
    assert drawn.images.shape == (20, 28, 28) and drawn.images.dtype == np.uint8 and drawn.asked is None
    with pytest.raises(ValueError, match="not a generator"):
        mlp_gan.load_generator(_gancli_model(tmp_path))


def test_mlp_gan_resumes_from_its_checkpoint_to_the_same_weights(tmp_path):
    torch.set_num_threads(1)
    x, _ = digits(200)  # 3 batches an epoch: the slices cross an epoch's reshuffle
    whole, steps, _, finished = mlp_gan.train(x, minutes=5, log=lambda s: None, max_steps=7)
    assert (steps, finished) == (7, True)
    ckpt = tmp_path / "run.ckpt.pt"
    calls = []
    _, steps, spent, finished = mlp_gan.train(x, minutes=5, log=lambda s: None, checkpoint=ckpt,
                                              stop=lambda: calls.append(1) or len(calls) > 4)
    assert (steps, finished) == (4, False) and ckpt.exists() and spent > 0
    logged = []
    sliced, steps, total, finished = mlp_gan.train(x, minutes=5, log=logged.append, checkpoint=ckpt, max_steps=7)
    assert (steps, finished) == (7, True) and total > spent and "at step 4" in logged[0]
    for a, b in zip(whole.state_dict().values(), sliced.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="another run"):
        mlp_gan.train(x, minutes=5, log=lambda s: None, checkpoint=ckpt, seed=1, max_steps=8)


def test_mlp_gan_snapshot_is_the_model_a_shorter_run_ends_with(tmp_path):
    torch.set_num_threads(1)
    x, _ = digits(200)
    short, steps, _, _ = mlp_gan.train(x, minutes=5, log=lambda s: None, max_steps=1)
    taken = []

    def keep(minutes, g, steps, seconds):
        taken.append((minutes, steps, {k: v.clone() for k, v in g.state_dict().items()}))

    # 1e-6 minutes (60 microseconds) is reached after the first step; 99 never: the run ends at step 3 first
    _, steps, _, _ = mlp_gan.train(x, minutes=5, log=lambda s: None, max_steps=3, snapshots=[99, 1e-6],
                                   on_snapshot=keep)
    assert steps == 3 and [(m, n) for m, n, _ in taken] == [(1e-6, 1)]
    for a, b in zip(short.state_dict().values(), taken[0][2].values(), strict=True):
        assert torch.equal(a, b)
    assert mlp_gan.minutes_list("98,136") == [98.0, 136.0]
    with pytest.raises(argparse.ArgumentTypeError):
        mlp_gan.minutes_list("98,-1")


def _gancli_model(tmp_path, classes: int = 10) -> Path:
    torch.manual_seed(0)
    g = models.build("gan_gen", {"image_size": 32, "channels": 1, "base": 16, "min_channels": 8, "latent_dim": 8,
                                 "num_classes": classes, "crop": 28})
    path = tmp_path / "tiny_gan.safetensors"
    checkpoints.save_model(g, path, task="sample", name="tiny")
    return path


def test_gancli_samples_are_cropped_and_labelled_like_the_cli(tmp_path):
    drawn = sq.draw_gancli(_gancli_model(tmp_path), "tiny", 30, classes=10)
    assert drawn.images.shape == (30, 28, 28)
    assert drawn.asked.tolist() == [s % 10 for s in range(30)]
    with pytest.raises(ValueError, match="classes"):
        sq.draw_gancli(_gancli_model(tmp_path, classes=3), "tiny", 30, classes=10)


def test_sheet_puts_one_captioned_panel_per_method_side_by_side(tmp_path):
    from PIL import Image

    x, y = digits(100)
    sq.write_sheet([sq.Drawn("real", x, y, None), sq.Drawn("other", x, None, 1.0)], tmp_path / "s.png")
    w, h = Image.open(tmp_path / "s.png").size
    side = (10 * 30 + 2) * sq.SHEET_ZOOM
    assert (w, h) == (2 * side + 12, side + 20)


@pytest.mark.filterwarnings("ignore:Matrix is singular")  # 10 distinct synthetic images: a singular covariance
def test_metrics_see_noise_and_a_perfect_match():
    pytest.importorskip("scipy")
    torch.set_num_threads(1)
    torch.manual_seed(0)
    net = sq.FeatureNet().eval()
    x, y = digits(300)
    ref = sq.reference(net, x, 10)
    same = sq.evaluate(net, ref, sq.Drawn("same", x, y, None))
    assert same["patch_fd"] < 1e-6 and same["tv_ratio"] == 1 and same["feature_fd"] < 1e-4
    rng = np.random.default_rng(1)
    noisy = np.where(rng.random(x.shape) < 0.05, 255, x).astype(np.uint8)  # salt noise
    worse = sq.evaluate(net, ref, sq.Drawn("noisy", noisy, None, 1.0))
    assert worse["tv_ratio"] > 1.2 and worse["patch_fd"] > 0.01 and worse["label_accuracy"] is None
    assert worse["samples_per_s"] == 300
    assert "| noisy |" in sq.table([same, worse])


def test_mlp_gan_widens_to_rgba_and_the_emoji_metrics_behave(tmp_path):
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    x = np.zeros((64, 64, 64, 4), np.uint8)
    x[:, 16:48, 16:48] = 255  # opaque white squares on transparency
    g, steps, _, _ = mlp_gan.train(x, minutes=0.01, log=lambda s: None)
    path = tmp_path / "g.safetensors"
    mlp_gan.save_generator(g, path, {"steps": steps})
    assert mlp_gan.load_generator(path).shape == (64, 64, 4)
    drawn = eq.draw_mlp(path, "mlp", 12)
    assert drawn.images.shape == (12, 64, 64, 4) and drawn.images.dtype == np.uint8
    with pytest.raises(ValueError, match="64x64x4"):
        x28, _ = digits(64)
        g28, _, _, _ = mlp_gan.train(x28, minutes=0.005, log=lambda s: None)
        mlp_gan.save_generator(g28, tmp_path / "g28.safetensors", {})
        eq.draw_mlp(tmp_path / "g28.safetensors", "mlp", 4)
    a = rng.normal(size=(200, 8))
    assert abs(eq.kid(a[:100], a[100:], subsets=20, size=100)) < 0.05  # one distribution: unbiased, near 0
    assert eq.kid(a[:100], a[100:] + 2, subsets=20, size=100) > 1  # shifted: clearly positive
    spread = eq.kid_subsets(a[:100], a[100:] + 0.3, subsets=20, size=50)
    assert spread.shape == (20,) and spread.std() > 0 and eq.kid(a[:100], a[100:] + 0.3, subsets=20, size=50) == \
        float(spread.mean())  # the table's ± is the spread of the values the mean is taken over
    assert eq.nearest(a[:5], a).max() < 1e-6 and (eq.nearest(a, a, exclude_self=True) > 0).all()
    assert eq.bootstrap_median_std(np.ones(50)) == 0
    assert 0.04 < eq.bootstrap_median_std(np.random.default_rng(1).normal(size=400)) < 0.09  # theory: 0.063
    real = rng.integers(0, 256, size=(100, 64, 64, 4)).astype(np.uint8)
    pixels = eq.PixelPCA(real, dims=16)
    other = rng.integers(0, 256, size=(100, 64, 64, 4)).astype(np.uint8)
    assert pixels.distance(real) < 1e-3 < pixels.distance(np.clip(other.astype(int) + 60, 0, 255).astype(np.uint8))
    cover, soft = eq.alpha_stats(x)
    assert cover == 0.25 and soft == 0  # a quarter opaque, no soft edges
    labels = np.arange(90) % 9  # nine classes: one column each, image k of class c in row k
    shades = (labels * 25 + np.arange(90) // 9).astype(np.uint8)
    imgs = np.broadcast_to(shades[:, None, None, None], (90, 64, 64, 4)).copy()
    imgs[..., 3] = 255
    sheet = eq.panel(eq.Drawn("nine", imgs, labels, None, 9))
    assert sheet.shape == (8 * 66 + 2, 9 * 66 + 2, 3)
    assert sheet[2 + 66 * 3 + 30, 2 + 66 * 5 + 30, 0] == 5 * 25 + 3  # row 3, column 5: class 5's fourth image
    assert eq.panel(eq.Drawn("two", imgs, labels % 2, None, 2)).shape == (8 * 66 + 2, 8 * 66 + 2, 3)


def test_emoji_bench_draws_one_class_of_a_conditional_model():
    """--label: the two-class shipped file drawn as one class, to compare with a one-class --data."""
    from gancli import shipped

    path = shipped.verify(shipped.find("emoji", "sample"))
    both = eq.draw_gancli(path, "both", 4)
    assert both.classes == 2 and both.asked.tolist() == [0, 1, 0, 1]
    one = eq.draw_gancli(path, "one", 4, label="smileys")
    assert one.classes == 1 and one.asked is None and one.name == "one --label smileys"
    assert np.array_equal(one.images[1], both.images[1])  # seed 1 asked "smileys" (label 1) both times
    assert not np.array_equal(one.images[0], both.images[0])  # seed 0: "animals", then "smileys"
    with pytest.raises(ValueError, match="no class 'robots'"):
        eq.draw_gancli(path, "x", 2, label="robots")


def test_emoji_bench_leaves_pixel_identical_copies_out_of_the_real_set():
    images = np.zeros((5, 4, 4, 4), np.uint8)
    images[1, 0, 0, 0] = 9
    images[3] = images[1]
    images[4, 2, 2, 3] = 1
    kept, labels, copies = eq.drop_copies(images, np.arange(5))
    assert copies == 2 and labels.tolist() == [0, 1, 4]  # the first of each, in order (image 2 is a copy of 0)
    assert np.array_equal(kept, images[[0, 1, 4]])


def test_emoji_flags_draws_landscape_flags_and_round_smileys():
    """The shipped emoji-flags file obeys --label: Twemoji flags are 64x46 rectangles, smileys about round."""
    from gancli import shipped

    path = shipped.verify(shipped.find("emoji-flags", "sample"))

    def aspect(alpha: np.ndarray) -> float:  # width / height of the opaque part
        ys, xs = np.nonzero(alpha > 127)
        return (xs.max() - xs.min() + 1) / (ys.max() - ys.min() + 1)

    flags = [aspect(im[..., 3]) for im in eq.draw_gancli(path, "flags", 8, label="flags").images]
    smileys = [aspect(im[..., 3]) for im in eq.draw_gancli(path, "smileys", 8, label="smileys").images]
    assert np.median(flags) > 1.25 and 0.9 < np.median(smileys) < 1.1


def test_twemoji_feature_network_learns_categories_and_gives_per_layer_features(monkeypatch):
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    images = np.zeros((80, 64, 64, 4), np.uint8)
    labels = np.arange(80) % 2
    for k in range(80):  # class 0: opaque red squares; class 1: half-transparent blue discs
        r, c = rng.integers(12, 28, size=2)
        if labels[k] == 0:
            images[k, r : r + 24, c : c + 24] = (220, 30, 30, 255)
        else:
            yy, xx = np.mgrid[:64, :64]
            images[k][(yy - r - 12) ** 2 + (xx - c - 12) ** 2 < 144] = (30, 30, 220, 128)
    x = tf.to_input(images[:2])
    assert x.shape == (2, 4, 64, 64) and float(x[0, :, 0, 0].sum()) == 3.0  # transparent: white RGB, alpha 0
    assert abs(float(x[1, 3].max()) - 128 / 255) < 1e-6  # alpha kept as the fourth channel
    monkeypatch.setattr(tf, "EPOCHS", 12)
    monkeypatch.setattr(tf, "BATCH", 16)
    held = np.arange(80) % 10 < 1
    held[[1, 11, 21, 31]] = True  # both classes held out
    held[[50, 60]] = False
    net, info = tf.train(images, labels, held, 2, log=lambda s: None)
    assert info["held_out"] == 10 and info["held_out_accuracy"] >= 0.8
    feats = tf.features(net, images[:5], batch=2)
    assert [f.shape for f in feats] == [(5, 64), (5, 128), (5, 256)]


def test_cached_net_trains_once_then_loads_the_same_network(tmp_path):
    from common import ConvFeatures, cached_net

    calls = []

    def train():
        calls.append(1)
        torch.manual_seed(0)
        return ConvFeatures([(1, 4, 1), (4, 8, 2)], 3, taps=(0,)), {"note": "tiny"}

    build = lambda: ConvFeatures([(1, 4, 1), (4, 8, 2)], 3, taps=(0,))  # noqa: E731
    first, info = cached_net(tmp_path / "n.safetensors", build, train)
    again, info2 = cached_net(tmp_path / "n.safetensors", build, train)
    assert calls == [1] and info["note"] == info2["note"] == "tiny"
    x = torch.rand(2, 1, 8, 8)
    (la, fa), (lb, fb) = first(x), again(x)
    assert torch.equal(la, lb) and len(fa) == 1 and fa[0].shape == (2, 4) and torch.equal(fa[0], fb[0])


def test_memorisation_metrics_see_through_a_collapse_onto_the_dense_class():
    # Two classes: a tight cluster (class 0) and a spread one (class 1), 100 points each.
    rng = np.random.default_rng(0)
    real = np.concatenate([rng.normal(0, 0.2, (100, 6)), rng.normal(5, 1.0, (100, 6))])
    labels = np.repeat([0, 1], 100)
    real_nn = float(np.median(eq.nearest(real, real, exclude_self=True)))
    fresh = np.concatenate([rng.normal(0, 0.2, (100, 6)), rng.normal(5, 1.0, (100, 6))])  # the same distribution
    collapsed = rng.normal(0, 0.2, (200, 6))  # only the tight class
    preds_fresh, preds_collapsed = labels, np.zeros(200, int)
    good = eq.memorisation_row(fresh, real, preds_fresh, 2, real_nn)
    bad = eq.memorisation_row(collapsed, real, preds_collapsed, 2, real_nn)
    # the global ratio rewards the collapse (the tight class sits closer to its neighbours) ...
    assert np.median(eq.nearest(collapsed, real)) < np.median(eq.nearest(fresh, real))
    # ... the class split shows why, the local ratio does not move, and recall drops to the tight half
    assert bad["class_nn_ratio"][1] is None and bad["class_share"] == [1.0, 0.0]
    assert abs(bad["local_nn_ratio"] - good["local_nn_ratio"]) < 0.25 * good["local_nn_ratio"]
    assert bad["recall"] < 0.55 < 0.8 < good["recall"]
    assert good["precision"] > 0.7 and bad["precision"] > 0.7  # both draw real-looking points
    copies = eq.memorisation_row(real[:50] + 1e-4, real, labels[:50], 2, real_nn)
    assert copies["local_nn_ratio"] < 0.01  # copies read far below 1
    floor = eq.memorisation_floor(real, labels, 2, splits=3)
    assert 0.5 < floor["local_nn_ratio"] < 2 and floor["class_share"] == [0.5, 0.5]
    assert floor["class_nn_ratio"][0] < 1 < floor["class_nn_ratio"][1]


def test_asked_row_shows_which_asked_class_is_misread():
    # class 0 a tight cluster at 0, class 1 a spread cluster at 5; samples asked for class 1 half drawn as class 0
    rng = np.random.default_rng(0)
    real = np.concatenate([rng.normal(0, 0.2, (100, 6)), rng.normal(5, 1.0, (100, 6))])
    real_nn = float(np.median(eq.nearest(real, real, exclude_self=True)))
    f = np.concatenate([rng.normal(0, 0.2, (100, 6)), rng.normal(0, 0.2, (50, 6)), rng.normal(5, 1.0, (50, 6))])
    asked = np.repeat([0, 1], 100)
    preds = np.array([0] * 150 + [1] * 50)
    row = eq.asked_row(eq.nearest(f, real), preds, asked, 3, real_nn)
    assert row["read_as"][:2] == [[1.0, 0.0, 0.0], [0.5, 0.5, 0.0]] and row["read_as"][2] is None
    assert row["nn_ratio"][2] is None and row["nn_ratio"][0] < row["nn_ratio"][1]


def test_emoji_bench_draws_a_family_of_classes_or_the_data_mix(tmp_path):
    """--label FAMILY takes the classes FAMILY-1, FAMILY-2, ... in turn (as gancli sample); --mix data the data's
    class shares."""
    torch.manual_seed(0)
    g = models.build("gan_gen", {"image_size": 64, "channels": 4, "base": 16, "min_channels": 8, "latent_dim": 8,
                                 "num_classes": 3})
    path = tmp_path / "fam.safetensors"
    names = ["flags-1", "flags-2", "smileys"]
    checkpoints.save_model(g, path, task="sample", name="fam", provenance={"classes": names})
    flags = eq.draw_gancli(path, "f", 5, label="flags")
    assert flags.classes == 1 and flags.asked is None and flags.images.shape == (5, 64, 64, 4)
    every = eq.draw_gancli(path, "all", 5).images  # labels 0 1 2 0 1; the family's 0 1 0 1 0
    assert np.array_equal(flags.images[1], every[1]) and not np.array_equal(flags.images[3], every[3])
    with pytest.raises(ValueError, match="no class 'flag'"):
        eq.draw_gancli(path, "x", 2, label="flag")
    counts = {"smileys": 50, "flags-1": 30, "flags-2": 20}
    mixed = eq.draw_gancli(path, "m", 100, mix=counts)
    assert mixed.name == "m (data mix)" and mixed.asked.tolist() == [  # gancli sample --label-mix data's classes
        seed_label(s, [0, 1, 2], [30, 20, 50]) for s in range(100)]
    assert np.allclose(np.bincount(eq.data_mix(counts, names, list(range(5000)))) / 5000, [0.3, 0.2, 0.5], atol=0.02)
    fam = eq.draw_gancli(path, "fm", 20, label="flags", mix=counts)  # the family's classes in their shares
    net = checkpoints.load_model(path)[0]
    want = generate(net, net.sample_latents(list(range(20))), [seed_label(s, [0, 1], [30, 20, 50]) for s in range(20)])
    assert np.array_equal(fam.images, want)
    with pytest.raises(ValueError, match="not the data's"):
        eq.data_mix({"a": 1}, ["a", "b"], [0, 1])
    # a model class may be a family of the data's classes (a two-class model against a folder split by layout)
    split = {"flags-1": 20, "flags-2": 10, "smileys": 50}
    assert eq.data_mix(split, ["flags", "smileys"], list(range(30))).tolist() == [
        seed_label(s, [0, 1], [30, 50]) for s in range(30)]
    for names in (["flags"], ["flag", "smileys"], ["flags", "flags-1", "smileys"]):
        with pytest.raises(ValueError, match="not the data's"):
            eq.data_mix(split, names, [0])


def test_emoji_bench_first_seed_draws_a_fresh_range(tmp_path):
    """--first-seed F: seeds F..F+n-1, each the image `gancli sample --seed` gives, labels in turn by seed; the MLP
    draws another latent set per value and keeps the old one at 0."""
    torch.manual_seed(0)
    g = models.build("gan_gen", {"image_size": 64, "channels": 4, "base": 16, "min_channels": 8, "latent_dim": 8,
                                 "num_classes": 2})
    path = tmp_path / "two.safetensors"
    checkpoints.save_model(g, path, task="sample", name="two", provenance={"classes": ["a", "b"]})
    first, later = eq.draw_gancli(path, "0", 6), eq.draw_gancli(path, "3", 3, first_seed=3)
    assert later.asked.tolist() == [1, 0, 1] and np.array_equal(later.images, first.images[3:])
    mpath = tmp_path / "mlp.safetensors"
    mlp_gan.save_generator(mlp_gan.MLPGenerator((64, 64, 4)), mpath, {})
    a, b, c = eq.draw_mlp(mpath, "a", 4), eq.draw_mlp(mpath, "b", 4), eq.draw_mlp(mpath, "c", 4, first_seed=1)
    assert np.array_equal(a.images, b.images) and not np.array_equal(a.images, c.images)
