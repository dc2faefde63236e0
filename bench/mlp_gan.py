"""The baseline GAN of the project's origin documents, trained for a fixed number of CPU minutes: the reference
that bench/sample_quality.py compares gancli's sample models with.

Generator: MLP 100 -> 256 -> 512 -> 1024 -> 784, LeakyReLU(0.2), Tanh (images in [-1, 1]). Discriminator: MLP
784 -> 512 -> 256 -> 1, LeakyReLU(0.2), sigmoid. BCE loss (the sigmoid is folded into BCEWithLogitsLoss: the same
function, numerically stable), non-saturating generator loss, Adam(lr 2e-4, betas (0.5, 0.999)) for both, batch 64
drawn from reshuffled epochs, one D step then one G step per iteration, z ~ N(0, I). No EMA, no augmentation: the
plain loop. Seed fixed (torch and numpy), so the same minutes on the same machine give nearly the same model (the
step count depends on the clock). Saves the generator as safetensors (not a gancli model file: its own
"format" metadata) and a JSON next to it with the steps done and the seconds.

Data: 28x28 gray images, white on black: an .npz with x_train (N, 28, 28) uint8 [and y_train, x_test, y_test], or a
folder with MNIST-style idx files (train-images-idx3-ubyte[.gz], t10k-images-idx3-ubyte[.gz] and the labels); or any
folder of images (--size; RGBA kept, as gancli's sample training reads it, e.g. the emoji set of bench/emoji_set.py):
the same MLPs, only the image layer widened to H x W x C (784 -> 16384 for 64x64 RGBA).

    python bench/mlp_gan.py --minutes 30                      # MNIST (../shared/data/digits), all cores
    python bench/mlp_gan.py --cpu-minutes 40 --threads 1      # a CPU-time budget (the gancli run's cpu_seconds)
    python bench/mlp_gan.py --minutes 30 --data FASHION_IDX_FOLDER --out bench/out/mlp_gan_fashion.safetensors
    python bench/mlp_gan.py --cpu-minutes 60 --threads 1 --data runs/emoji_data --size 64 \
        --out bench/out/mlp_gan_emoji.safetensors             # 64x64 RGBA emoji (bench/emoji_set.py)
    python bench/mlp_gan.py --cpu-minutes 173 --threads 1 --data runs/emoji_data --size 64 \
        --out bench/out/mlp_gan_emoji173.safetensors --snapshots 98,136   # + -98min, -136min files
    python bench/mlp_gan.py --minutes 0.3 --threads 1         # smoke test

A long run can be split into slices: SIGTERM or Ctrl-C saves the loop's whole state to OUT with the suffix
.ckpt.pt (it is also saved every 5 minutes of the clock), and the same command run again resumes from it with the
minutes already spent counted against the budget; the checkpoint is deleted when the run completes.
`--snapshots 98,136` also writes the generator as it stands when the clock passes each of those minutes, beside OUT
(OUT's name with -98min: mlp_gan_emoji173-98min.safetensors and its .json): nothing in the loop depends on the
budget (a fixed learning rate, no schedule), so a snapshot at M minutes is the model a run of M minutes would have
ended with, and one long run gives the baseline at every budget it passes (the step count at M still depends on the
clock, as for a separate run).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, ROOT, machine  # noqa: E402

from gancli import devices  # noqa: E402
from gancli.atomic import atomic_path  # noqa: E402
from gancli.training.image_sets import _find, _read_idx, load_image_set  # noqa: E402

MNIST = DATA / "digits" / "mnist_70k_uint8.npz"
FORMAT = "bench-mlp-gan/1"
LATENT = 100
SIDE = 28
BATCH = 64
SEED = 0
LOG_EVERY_S = 10.0
CHECKPOINT_EVERY_S = 300.0


def load_split(path: str | Path, split: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(images (N, 28, 28) uint8, labels (N,) int64 or None) of the "train" or "test" split of an npz or idx folder."""
    path = Path(path)
    if path.suffix == ".npz":
        with np.load(path) as z:
            if f"x_{split}" not in z:
                raise ValueError(f"{path}: no x_{split} array (an .npz data set needs x_train and x_test)")
            x, y = z[f"x_{split}"], (z[f"y_{split}"] if f"y_{split}" in z else None)
    elif path.is_dir():
        stem = "train" if split == "train" else "t10k"
        images = _find(path, f"{stem}-images-idx3-ubyte")
        if images is None:
            raise ValueError(f"{path}: no {stem}-images-idx3-ubyte[.gz] (give an .npz or an MNIST-style idx folder)")
        labels = _find(path, f"{stem}-labels-idx1-ubyte")
        x, y = _read_idx(images), (_read_idx(labels) if labels else None)
    else:
        raise ValueError(f"{path}: give an .npz file or a folder of idx files")
    if x.ndim == 4 and x.shape[3] == 1:
        x = x[..., 0]
    if x.shape[1:] != (SIDE, SIDE) or x.dtype != np.uint8:
        raise ValueError(f"{path}: need (N, {SIDE}, {SIDE}) uint8 gray images, got {x.shape} {x.dtype}")
    return x, (None if y is None else y.astype(np.int64))


class MLPGenerator(nn.Module):
    """forward(z (B, 100)) -> (B, H*W*C) in [-1, 1] (tanh); (x + 1) / 2 reshaped to (B, H, W, C) is the image
    (28x28 gray by default: 784 outputs)."""

    def __init__(self, shape: tuple[int, int, int] = (SIDE, SIDE, 1)) -> None:
        super().__init__()
        self.shape = tuple(shape)
        dims = (LATENT, 256, 512, 1024)
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:], strict=True):
            layers += [nn.Linear(a, b), nn.LeakyReLU(0.2)]
        self.net = nn.Sequential(*layers, nn.Linear(dims[-1], int(np.prod(shape))), nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class MLPDiscriminator(nn.Module):
    """forward(x (B, H*W*C) in [-1, 1]) -> (B,) logits; sigmoid(logit) is the probability of "real"."""

    def __init__(self, inputs: int = SIDE * SIDE) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(inputs, 512), nn.LeakyReLU(0.2), nn.Linear(512, 256),
                                 nn.LeakyReLU(0.2), nn.Linear(256, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)


def save_generator(g: MLPGenerator, path: Path, info: dict) -> None:
    tensors = {k: v.detach().cpu().contiguous() for k, v in g.state_dict().items()}
    with atomic_path(path) as tmp:
        meta = {"format": FORMAT, "info": json.dumps(info), "shape": json.dumps(g.shape)}
        save_file(tensors, str(tmp), metadata=meta)


def load_generator(path: str | Path) -> MLPGenerator:
    """The generator mlp_gan.py saved, in eval mode on the CPU."""
    with safe_open(str(path), framework="pt", device="cpu") as f:
        meta = f.metadata() or {}
        if meta.get("format") != FORMAT:
            raise ValueError(f"{path}: not a generator written by bench/mlp_gan.py (format {FORMAT})")
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    shape = json.loads(meta["shape"]) if "shape" in meta else (SIDE, SIDE, 1)  # files from before the shape key
    g = MLPGenerator(tuple(shape))
    g.load_state_dict(tensors, strict=True)
    return g.eval().requires_grad_(False)


def train(images: np.ndarray, minutes: float, log=print, cpu: bool = False, seed: int = SEED,
          checkpoint: Path | None = None, checkpoint_every_s: float = CHECKPOINT_EVERY_S,
          stop: Callable[[], bool] = lambda: False, max_steps: int | None = None,
          snapshots: Sequence[float] = (), on_snapshot: Callable[[float, MLPGenerator, int, float], None] | None = None
          ) -> tuple[MLPGenerator, int, float, bool]:
    """Train for `minutes` of wall time (cpu=True: of this process's CPU time, every thread counted) on (N, 28, 28)
    or (N, H, W, C) uint8 images. Returns (generator, steps, seconds of that clock, finished).

    checkpoint: a file holding the whole loop's state (both nets, both optimisers, the random generators, the place
    in the epoch, the steps and the seconds spent), written every `checkpoint_every_s` seconds of the clock and when
    `stop()` turns true; when it exists the run resumes from it and the budget counts the seconds already spent, so a
    run split into slices trains the same steps as one unbroken run (the step count still depends on the clock).
    finished is False when stop() ended the run early (the checkpoint is saved: run again to go on). max_steps: stop
    at that many steps even inside the budget (tests). snapshots: minutes of the clock at which
    on_snapshot(minutes, generator, steps, seconds) is called, after the first step that reaches each (those already
    passed when a run resumes were taken by the earlier slice and are not repeated)."""
    if len(images) < BATCH:
        raise ValueError(f"the MLP GAN draws batches of {BATCH}: need at least {BATCH} images, got {len(images)}")
    clock = time.process_time if cpu else time.perf_counter
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    data = torch.from_numpy(images.reshape(len(images), -1).astype(np.float32)).div_(127.5).sub_(1)  # [-1, 1]
    shape = images.shape[1:] if images.ndim == 4 else (*images.shape[1:], 1)
    g, d = MLPGenerator(shape), MLPDiscriminator(int(np.prod(shape)))
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce = nn.BCEWithLogitsLoss()
    ones, zeros = torch.ones(BATCH), torch.zeros(BATCH)
    order, pos, steps, spent = rng.permutation(len(data)), 0, 0, 0.0
    run_key = {"seed": seed, "shape": list(shape), "images": len(images), "clock": "cpu" if cpu else "wall",
               "minutes": minutes}
    if checkpoint is not None and checkpoint.exists():
        state = torch.load(checkpoint, weights_only=False)
        if state["run"] != run_key:
            raise ValueError(f"{checkpoint}: a checkpoint of another run ({state['run']}, this one {run_key}): "
                             "delete it or give another --out")
        g.load_state_dict(state["g"])
        d.load_state_dict(state["d"])
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        torch.set_rng_state(state["torch_rng"])
        rng.bit_generator.state = state["np_rng"]
        order, pos, steps, spent = state["order"], state["pos"], state["steps"], state["spent"]
        log(f"resumed {checkpoint} at step {steps}, {spent / 60:.1f} of {minutes} minutes spent")

    def save_checkpoint() -> None:
        state = {"run": run_key, "g": g.state_dict(), "d": d.state_dict(), "opt_g": opt_g.state_dict(),
                 "opt_d": opt_d.state_dict(), "torch_rng": torch.get_rng_state(), "np_rng": rng.bit_generator.state,
                 "order": order, "pos": pos, "steps": steps, "spent": spent + clock() - start}
        with atomic_path(checkpoint) as tmp:
            torch.save(state, tmp)

    start = last_log = last_save = clock()
    last_steps, deadline = steps, start + minutes * 60 - spent
    pending = sorted(m for m in snapshots if m * 60 > spent) if on_snapshot is not None else []
    finished = True
    while clock() < deadline and (max_steps is None or steps < max_steps):
        if stop():
            finished = False
            break
        if pos + BATCH > len(order):
            order, pos = rng.permutation(len(data)), 0
        real = data[order[pos : pos + BATCH]]
        pos += BATCH
        fake = g(torch.randn(BATCH, LATENT))
        loss_d = bce(d(real), ones) + bce(d(fake.detach()), zeros)
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        loss_g = bce(d(fake), ones)  # non-saturating: G maximises log D(G(z))
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        steps += 1
        now = clock()
        while pending and spent + now - start >= pending[0] * 60:
            on_snapshot(pending.pop(0), g, steps, spent + now - start)
        if now - last_log >= LOG_EVERY_S:
            log(f"step {steps}: {(steps - last_steps) / (now - last_log):.1f} steps/s, loss D {loss_d.item():.3f}"
                f" G {loss_g.item():.3f}")
            last_log, last_steps = now, steps
        if checkpoint is not None and now - last_save >= checkpoint_every_s:
            save_checkpoint()
            last_save = now
    if checkpoint is not None and not finished:
        save_checkpoint()
    return g.eval().requires_grad_(False), steps, spent + clock() - start, finished


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    budget = ap.add_mutually_exclusive_group(required=True)
    budget.add_argument("--minutes", type=float, help="wall-clock training time")
    budget.add_argument("--cpu-minutes", type=float, help="CPU time of the process (all threads): a fair budget "
                        "even on a machine that is busy with something else")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: every core)")
    ap.add_argument("--data", type=Path, default=MNIST, help="an .npz (x_train ...), a folder of idx files, or a "
                    "folder of images")
    ap.add_argument("--size", type=int, default=64, help="side for a folder of images (padded, as image_fit pad)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "mlp_gan.safetensors")
    ap.add_argument("--seed", type=int, default=SEED, help="another seed: a second run, for run-to-run spread")
    ap.add_argument("--snapshots", type=minutes_list, default=[], metavar="M,M,...",
                    help="also save the generator as it stands at these minutes of the budget's clock, "
                    "as OUT's name with -Mmin (the baseline at several budgets from one run)")
    args = ap.parse_args()
    threads = devices.set_threads(args.threads)
    if args.data.is_dir() and _find(args.data, "train-images-idx3-ubyte") is None:
        images = load_image_set([str(args.data)], args.size, "pad").images  # (N, size, size, C)
    else:
        images, _ = load_split(args.data, "train")
    print(f"{machine()}; {len(images)} training images from {args.data}", file=sys.stderr)
    cpu = args.cpu_minutes is not None
    budget = args.cpu_minutes if cpu else args.minutes
    checkpoint = args.out.with_suffix(".ckpt.pt")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    stopping: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda number, frame: stopping.append(number))

    def info(g: MLPGenerator, steps: int, seconds: float, minutes: float) -> dict:
        return {"data": str(args.data), "clock": "cpu" if cpu else "wall", "minutes": minutes, "threads": threads,
                "steps": steps, "seconds": round(seconds, 1), "steps_per_s": round(steps / seconds, 2),
                "batch": BATCH, "seed": args.seed, "shape": list(g.shape), "machine": machine()}

    def write(g: MLPGenerator, path: Path, about: dict) -> None:
        save_generator(g, path, about)
        path.with_suffix(".json").write_text(json.dumps(about, indent=2) + "\n")

    def snapshot(minutes: float, g: MLPGenerator, steps: int, seconds: float) -> None:
        path = args.out.with_name(f"{args.out.stem}-{minutes:g}min{args.out.suffix}")
        write(g, path, {**info(g, steps, seconds, minutes), "snapshot_of": str(args.out)})
        print(f"snapshot at {minutes:g} minutes, step {steps}: {path}", file=sys.stderr)

    if any(m >= budget for m in args.snapshots):
        sys.exit(f"error: --snapshots must lie inside the budget of {budget:g} minutes")
    try:
        g, steps, seconds, finished = train(images, budget, log=lambda s: print(s, file=sys.stderr), cpu=cpu,
                                            seed=args.seed, checkpoint=checkpoint, stop=lambda: bool(stopping),
                                            snapshots=args.snapshots, on_snapshot=snapshot)
    except ValueError as e:
        sys.exit(f"error: {e}")
    if not finished:
        print(f"interrupted by signal {stopping[0]} at step {steps} ({seconds / 60:.1f} of {budget} minutes): "
              f"state saved in {checkpoint}, rerun the same command to go on", file=sys.stderr)
        sys.exit(128 + stopping[0])
    about = info(g, steps, seconds, budget)
    write(g, args.out, about)
    checkpoint.unlink(missing_ok=True)  # the run is complete: a rerun starts a new one
    print(json.dumps(about))


def minutes_list(text: str) -> list[float]:
    """'98,136' -> [98.0, 136.0] (argparse type of --snapshots)."""
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of minutes: {text!r}") from None
    if any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"minutes must be positive: {text!r}")
    return values


if __name__ == "__main__":
    main()
