"""The command line: one small function per subcommand: parse, call the core, report.

torch is imported inside the commands, so `gancli --help` and `gancli CMD --help` are instant.
Exit codes: 0 all done; 1 some or all items failed (each named); 2 usage error; 130/143 interrupted.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from gancli import __version__, console

app = typer.Typer(
    name="gancli",
    help="GAN image editing from the command line: upscale photos, train models on your own images.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
INPAINT_WORK_SIZE = 1024  # = gancli.tasks.inpaint.WORK_SIZE (not imported here: it imports torch; a test checks)


def fail(msg: str, code: int = EXIT_USAGE) -> typer.Exit:
    console.error(msg)
    return typer.Exit(code)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"gancli {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    pass


DeviceOpt = Annotated[str, typer.Option("--device", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps.")]
ThreadsOpt = Annotated[int, typer.Option("--threads", min=0, help="CPU threads (0: every core).")]
# Options shared by the commands that map images to images (upscale, inpaint).
InputsArg = Annotated[
    list[str], typer.Argument(help="Image files, folders, globs, or - for stdin.", show_default=False)
]
ModelOpt = Annotated[str | None, typer.Option("--model", help="Shipped model name (see `gancli models`).")]
WeightsOpt = Annotated[
    Path | None, typer.Option("--weights", help="A model file (.safetensors) instead of a shipped model.")
]
FormatOpt = Annotated[
    str | None,
    typer.Option("--format", help="Output format for folder outputs: png, jpg, webp, tif, bmp (default: as the input;"
                 " stdout: png)."),
]
QualityOpt = Annotated[int, typer.Option("--quality", min=1, max=100, help="JPEG/WebP quality (WebP 100 = lossless).")]
StripOpt = Annotated[bool, typer.Option("--strip-metadata", help="Do not carry EXIF and ICC profile to the output.")]
SkipOpt = Annotated[bool, typer.Option("--skip-existing", help="Skip items whose output exists and decodes.")]
RecursiveOpt = Annotated[bool, typer.Option("--recursive", "-r", help="Look for images in sub-folders too.")]
MaxPixelsOpt = Annotated[int, typer.Option("--max-pixels", min=1, help="Refuse inputs with more pixels than this.")]
PrecisionOpt = Annotated[
    str, typer.Option("--precision", help="auto (fp32 on CPU, bf16/fp16 on CUDA), fp32, fp16, bf16.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON record per item on stdout.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Only errors and warnings on stderr.")]
CompileOpt = Annotated[
    bool,
    typer.Option("--compile", help="torch.compile the model: the first images wait for the compiler (seconds), later"
                 " ones may run faster (long batch jobs; see README). Where compiling fails it runs as usual, with a"
                 " warning."),
]


@app.command()
def upscale(
    inputs: InputsArg,
    output: Annotated[
        str | None,
        typer.Option(
            "-o", "--output",
            help="Output file, folder (ends in / or exists), or - for stdout. Default: INPUT_x4.EXT beside each "
            "input.",
        ),
    ] = None,
    scale: Annotated[
        int | None,
        typer.Option("--scale", help="Native factor of the model to use (4; 2 where a x2 model ships)."),
    ] = None,
    outscale: Annotated[
        float | None,
        typer.Option("--outscale", min=0.01, help="Final size factor (resizes the model's output)."),
    ] = None,
    width: Annotated[
        int | None,
        typer.Option("--width", min=1, help="Final width (height follows the aspect ratio unless given)."),
    ] = None,
    height: Annotated[int | None, typer.Option("--height", min=1, help="Final height.")] = None,
    model: ModelOpt = None,
    weights: WeightsOpt = None,
    fmt: FormatOpt = None,
    quality: QualityOpt = 95,
    strip_metadata: StripOpt = False,
    denoise: Annotated[
        float | None,
        typer.Option("--denoise", min=0, max=1, help="Photo models: how much noise and JPEG damage to remove,"
                     " 0..1 (default 1, the model as trained; lower keeps more grain, blending in the fidelity"
                     " model's weights)."),
    ] = None,
    tile: Annotated[int, typer.Option("--tile", min=0, help="Tile side in input pixels (0: automatic).")] = 0,
    color_fix: Annotated[
        bool, typer.Option("--color-fix", help="Keep the input's low-frequency colors (removes color casts).")
    ] = False,
    compile_model: CompileOpt = False,
    skip_existing: SkipOpt = False,
    recursive: RecursiveOpt = False,
    max_pixels: MaxPixelsOpt = 200_000_000,
    device: DeviceOpt = "auto",
    precision: PrecisionOpt = "auto",
    threads: ThreadsOpt = 0,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Upscale images with a super-resolution model (x4 by default).

    Exit codes: 0 all done or skipped; 1 some failed (named; the rest still run); 2 usage error.
    """
    from gancli import batch, imageio

    console.quiet = quiet
    if outscale is not None and (width or height):
        raise fail("--outscale and --width/--height are exclusive")
    if model and weights:
        raise fail("--model and --weights are exclusive")
    if as_json and output == imageio.STDIO:
        raise fail("--json writes to stdout, so it cannot be combined with -o -")
    try:
        sources = batch.expand_inputs(inputs, recursive)
        out_fmt = imageio.format_for(output, (fmt or "png")) if output == imageio.STDIO else None
    except (batch.UsageError, imageio.ImageWriteError) as e:
        raise fail(str(e)) from None

    import torch

    from gancli import checkpoints, devices, shipped
    from gancli.tasks.upscale import upscale_picture

    try:
        dev = devices.pick_device(device)
        dtype = devices.pick_dtype(dev, precision)
        devices.set_threads(threads)
        if weights is not None and denoise is not None:
            raise ValueError("--denoise works with shipped photo models (it blends two of them), not --weights")
        if weights is None and scale is None and model is None and outscale is not None and outscale <= 2 and any(
                m.task == "upscale" and m.scale == 2 for m in shipped.shipped_models()):
            scale = 2  # an x2 model is enough (and 4 times cheaper) for a final factor up to 2
        net, info, model_name, entry = _open_model("upscale", model, weights, dev, scale)
        if weights is not None and scale is not None and info.scale != scale:
            raise ValueError(f"{weights} upscales x{info.scale}, not x{scale}")
        if denoise is not None:
            if not entry.denoise_partner:
                raise ValueError(f"model {entry.name} has no --denoise control (photo models have it)")
            other, _ = checkpoints.load_model(shipped.verify(shipped.find(entry.denoise_partner, "upscale")), dev)
            checkpoints.blend_models(net, other, denoise)
            model_name = f"{entry.name} (denoise {denoise:g})"
    except (devices.DeviceError, shipped.ShippedModelError, checkpoints.CheckpointError, ValueError) as e:
        raise fail(str(e)) from None
    net = _maybe_compile(net.to(dtype=dtype, memory_format=torch.channels_last), compile_model)
    if outscale is not None:
        tag = f"x{outscale:g}"
    elif width or height:
        tag = f"{width or ''}x{height or ''}"
    else:
        tag = f"x{info.scale}"
    try:
        items = batch.plan_outputs(sources, output, tag, fmt)
    except batch.UsageError as e:
        raise fail(str(e)) from None

    def load(it: batch.Item) -> imageio.Picture:
        pic = imageio.load(it.input, max_pixels=max_pixels)
        for note in pic.notes:
            console.warn(note)
        return pic

    def compute(it: batch.Item, pic: imageio.Picture, report_part) -> imageio.Picture:
        w, h = pic.size
        it.in_size = [w, h]
        it.extra["mode"] = pic.mode  # e.g. "RGBA 16-bit": what was read, and so what is written
        out = upscale_picture(net, pic, info.scale, device=dev, dtype=dtype, tile=tile, fix_color=color_fix,
                              on_tile=report_part)
        if compile_model:
            it.extra["compiled"] = net.failed is None  # False: compiling failed and this ran eagerly (warned)
        target = _target_size(w, h, info.scale, outscale, width, height)
        if target != out.size:
            out = imageio.resize(out, target)
        it.out_size = list(out.size)
        return out

    for it in items:
        it.extra = {"model": model_name, "device": str(dev)}
    stages = batch.Stages(load, compute, lambda it, out: _save(it, out, out_fmt, quality, strip_metadata))
    code = batch.run(items, stages, skip_existing=skip_existing, as_json=as_json, label="upscale")
    raise typer.Exit(code)


def inpaint(
    inputs: InputsArg,
    output: Annotated[
        str | None,
        typer.Option("-o", "--output", help="Output file, folder (ends in / or exists), or - for stdout. Default:"
                     " INPUT_inpainted.EXT beside each input."),
    ] = None,
    mask: Annotated[
        str | None,
        typer.Option("--mask", "-m", help="Mask image (white = hole) for every input, or a folder of masks matched"
                     " by file name: STEM.*, STEM_mask.* or STEM-mask.*."),
    ] = None,
    mask_from_alpha: Annotated[
        bool, typer.Option("--mask-from-alpha", help="The hole is each image's transparent part.")
    ] = False,
    box: Annotated[
        list[str] | None,
        typer.Option("--box", help="Hole rectangle x,y,w,h in pixels (repeatable; added to any mask)."),
    ] = None,
    invert_mask: Annotated[bool, typer.Option("--invert-mask", help="Black = hole instead of white.")] = False,
    mask_threshold: Annotated[
        int, typer.Option("--mask-threshold", min=0, max=254, help="Mask values above this (0-255) are hole.")
    ] = 127,
    dilate: Annotated[int, typer.Option("--dilate", min=0, help="Grow the hole by N pixels.")] = 0,
    resize_mask: Annotated[
        bool, typer.Option("--resize-mask", help="Stretch a mask of another size to the image (else an error).")
    ] = False,
    model: ModelOpt = None,
    weights: WeightsOpt = None,
    work_size: Annotated[
        int, typer.Option("--work-size", min=64, help="Longest side the model sees around a hole (larger regions"
                          " are downscaled to it).")
    ] = INPAINT_WORK_SIZE,
    compile_model: CompileOpt = False,
    fmt: FormatOpt = None,
    quality: QualityOpt = 95,
    strip_metadata: StripOpt = False,
    skip_existing: SkipOpt = False,
    recursive: RecursiveOpt = False,
    max_pixels: MaxPixelsOpt = 200_000_000,
    device: DeviceOpt = "auto",
    precision: PrecisionOpt = "auto",
    threads: ThreadsOpt = 0,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Fill the hole of each image (the white part of its mask) with a GAN. Only hole pixels change.

    Exit codes: 0 all done or skipped; 1 some failed (named; the rest still run); 2 usage error.
    """
    from gancli import batch, imageio, masks

    console.quiet = quiet
    if model and weights:
        raise fail("--model and --weights are exclusive")
    if as_json and output == imageio.STDIO:
        raise fail("--json writes to stdout, so it cannot be combined with -o -")
    try:
        sources = batch.expand_inputs(inputs, recursive)
        if mask is not None and Path(mask).is_dir():
            # Masks may sit beside their images: a file that is some input's mask is not itself an input.
            mask_files = {os.path.realpath(s.mask_file) for s in masks.resolve_masks(
                [s for s in sources if not _looks_like_mask(s)], mask)}
            sources = [s for s in sources if s == imageio.STDIO or os.path.realpath(s) not in mask_files]
        mask_sources = masks.resolve_masks(sources, mask, mask_from_alpha, box or [], threshold=mask_threshold,
                                           invert=invert_mask, dilate=dilate, resize=resize_mask,
                                           max_pixels=max_pixels)
        out_fmt = imageio.format_for(output, (fmt or "png")) if output == imageio.STDIO else None
        items = batch.plan_outputs(sources, output, "inpainted", fmt)
        used = {os.path.realpath(s.mask_file) for s in mask_sources if s.mask_file}
        for it in items:
            if it.output != imageio.STDIO and os.path.realpath(it.output) in used:
                raise batch.UsageError(f"output {it.output} would overwrite a mask; choose another -o")
    except (batch.UsageError, imageio.ImageWriteError, masks.MaskError) as e:
        raise fail(str(e)) from None

    import torch

    from gancli import checkpoints, devices, shipped
    from gancli.tasks.inpaint import inpaint_picture

    try:
        dev = devices.pick_device(device)
        dtype = devices.pick_dtype(dev, precision)
        devices.set_threads(threads)
        net, info, model_name, _ = _open_model("inpaint", model, weights, dev)
    except (devices.DeviceError, shipped.ShippedModelError, checkpoints.CheckpointError, ValueError) as e:
        raise fail(str(e)) from None
    net = _maybe_compile(net.to(dtype=dtype, memory_format=torch.channels_last), compile_model)
    source_of = {id(it): src for it, src in zip(items, mask_sources, strict=True)}

    def load(it: batch.Item) -> imageio.Picture:
        pic = imageio.load(it.input, max_pixels=max_pixels)
        for note in pic.notes:
            console.warn(note)
        return pic

    def compute(it: batch.Item, pic: imageio.Picture, report_part) -> imageio.Picture:
        src = source_of[id(it)]
        hole = src.load(pic)
        it.in_size = [pic.size[0], pic.size[1]]
        it.extra |= {"mode": pic.mode, "mask": src.label, "hole_fraction": round(float(hole.mean()), 6)}
        if masks.is_empty(hole):
            console.warn(f"{it.input}: the mask has no hole; the image is copied through unchanged")
            out = pic
        else:
            out = inpaint_picture(net, pic, hole, device=dev, dtype=dtype, work_size=work_size,
                                  opaque_hole=mask_from_alpha, on_window=report_part)
            if compile_model:
                it.extra["compiled"] = net.failed is None  # False: compiling failed and this ran eagerly (warned)
        it.out_size = list(out.size)
        return out

    for it in items:
        it.extra = {"model": model_name, "device": str(dev)}
    stages = batch.Stages(load, compute, lambda it, out: _save(it, out, out_fmt, quality, strip_metadata))
    code = batch.run(items, stages, skip_existing=skip_existing, as_json=as_json, label="inpaint")
    raise typer.Exit(code)


def parse_seeds(text: str) -> list[int]:
    """'0-99,123' -> [0, ..., 99, 123] (order kept, duplicates dropped)."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        try:
            if "-" in part[1:]:
                a, b = part.split("-", 1) if not part.startswith("-") else ("-" + part[1:].split("-", 1)[0],
                                                                           part[1:].split("-", 1)[1])
                lo, hi = int(a), int(b)
                if hi < lo:
                    raise typer.BadParameter(f"--seeds: {part!r} runs backwards (write {hi}-{lo})")
                if hi - lo >= 1_000_000:
                    raise typer.BadParameter(f"--seeds: {part!r} is {hi - lo + 1:,} seeds; at most 1,000,000 a range")
                seeds += range(lo, hi + 1)
            else:
                seeds.append(int(part))
        except ValueError:
            raise typer.BadParameter(f"--seeds: {part!r} is not a seed or a range like 0-99") from None
    if any(s < 0 or s >= 2**63 for s in seeds):
        raise typer.BadParameter("--seeds: seeds are integers from 0 to 2**63-1")
    return list(dict.fromkeys(seeds))


def sample(
    output: Annotated[
        str, typer.Option("-o", "--output", help="A grid image (grid.png), a folder (one seedNNNN.png per image;"
                          " ends in / or exists), or with --interpolate an animation (.gif/.webp) or a folder.")
    ] = "samples.png",
    n: Annotated[int, typer.Option("-n", "--num", min=1, max=100_000, help="How many images (seeds S..S+N-1).")] = 16,
    seed: Annotated[int, typer.Option("--seed", min=0, help="First seed.")] = 0,
    seeds: Annotated[str | None, typer.Option("--seeds", help="Explicit seeds, e.g. 0-99,123 (instead of -n).")] = None,
    model: Annotated[str | None, typer.Option("--model", help="Shipped model name (see `gancli models`).")] = None,
    weights: Annotated[
        Path | None, typer.Option("--weights", help="A model file (.safetensors) instead of a shipped model.")
    ] = None,
    label: Annotated[
        str | None, typer.Option("--label", help="Class (index or name) for class-conditional models, or a family"
                                 " of classes named FAMILY-N (e.g. flags for flags-1, flags-2, ...: seed s draws the"
                                 " family's class s % its size); default: each seed's class is seed % classes.")
    ] = None,
    label_mix: Annotated[
        str, typer.Option("--label-mix", help="How seeds pick the classes of a class-conditional model (or of a"
                          " --label family): turn (seed % classes) or data (in the training data's class shares,"
                          " recorded in the model file; each seed's class is still fixed by the seed alone).")
    ] = "turn",
    truncation: Annotated[
        float, typer.Option("--truncation", min=0.0, max=1.0, help="Pull each sample toward its class's mean"
                            " (psi; 1 = off, 0 = one image per class): lower is more typical and less varied.")
    ] = 1.0,
    interpolate: Annotated[
        str | None, typer.Option("--interpolate", help="A,B: a latent walk from seed A to seed B.")
    ] = None,
    steps: Annotated[int, typer.Option("--steps", min=2, max=1000, help="Frames of the walk.")] = 16,
    cols: Annotated[int, typer.Option("--cols", min=0, help="Grid columns (0: square).")] = 0,
    zoom: Annotated[int, typer.Option("--zoom", min=1, max=16, help="Enlarge each image N times (nearest).")] = 1,
    device: DeviceOpt = "auto",
    threads: ThreadsOpt = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON record per file written.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors and warnings on stderr.")] = False,
) -> None:
    """Draw images from a trained GAN. The same seed gives the same image on every run, at any -n.

    Exit codes: 0 done; 1 a file could not be written; 2 usage error.
    """
    import numpy as np

    from gancli import imageio

    console.quiet = quiet
    if model and weights:
        raise fail("--model and --weights are exclusive")
    if label_mix not in ("turn", "data"):
        raise fail(f"--label-mix {label_mix}: give turn or data")
    try:
        seed_list = parse_seeds(seeds) if seeds is not None else list(range(seed, seed + n))
        walk = None
        if interpolate is not None:
            walk = parse_seeds(interpolate)
            if len(walk) != 2 or "," not in interpolate:
                raise typer.BadParameter(f"--interpolate {interpolate}: give two different seeds, A,B")
    except typer.BadParameter as e:
        raise fail(str(e.message if hasattr(e, "message") else e)) from None
    to_folder = output.endswith(("/", os.sep)) or Path(output).is_dir()
    if to_folder and Path(output).exists() and not Path(output).is_dir():
        raise fail(f"-o {output}: {output.rstrip('/' + os.sep)} is a file, not a folder")
    suffix = Path(output).suffix.lower()
    if not to_folder and walk is None and suffix not in imageio.FORMAT_BY_SUFFIX:
        raise fail(f"-o {output}: give an image file (.png, ...) for a grid or a folder ending in /")
    if not to_folder and walk is not None and suffix not in (".gif", ".webp"):
        raise fail(f"-o {output}: a walk is written as .gif, .webp, or frames into a folder ending in /")

    import torch

    from gancli import __version__, checkpoints, devices, shipped

    try:
        dev = devices.pick_device(device)
        devices.set_threads(threads)
        net, info, model_name, entry = _open_model("sample", model, weights, dev)
        classes = info.provenance.get("classes") or [str(i) for i in range(net.config.num_classes)]
        pool = None  # the labels --label picks from: one class, or a family FAMILY-1, FAMILY-2, ...
        if label is not None:
            if not net.conditional:
                raise ValueError(f"model {model_name} is not class-conditional: --label does not apply")
            from gancli.tasks.sample import label_pool

            pool = label_pool(classes, label)
            if pool is None:
                raise ValueError(f"--label {label}: not a class of {model_name} (classes: {', '.join(classes)})")
        counts = None  # --label-mix data: training images per class
        if label_mix == "data":
            if not net.conditional:
                raise ValueError(f"model {model_name} is not class-conditional: --label-mix does not apply")
            counts = info.provenance.get("class_counts") or (entry.class_counts if entry else None)
            if not isinstance(counts, list) or len(counts) != len(classes) or sum(counts) <= 0:
                raise ValueError(f"--label-mix data: model {model_name} records no class shares (trained before "
                                 "gancli recorded them; `gancli export --class-counts` adds them)")
    except ValueError as e:
        raise fail(str(e)) from None
    except (devices.DeviceError, shipped.ShippedModelError, checkpoints.CheckpointError) as e:
        raise fail(str(e)) from None

    from gancli.tasks.sample import generate, seed_label

    def draw(z: torch.Tensor, labels: list[int] | None) -> np.ndarray:
        return generate(net, z, labels, truncation=truncation, zoom=zoom, device=dev)

    every = list(range(len(classes)))

    def label_of(s: int) -> int | None:
        return seed_label(s, pool or every, counts) if net.conditional else None

    def meta(s: int | None, lab: int | None) -> dict[str, str]:
        m = {"gancli:model": model_name, "gancli:version": __version__, "gancli:truncation": f"{truncation:g}"}
        if s is not None:
            m["gancli:seed"] = str(s)
        if lab is not None:
            m["gancli:label"] = classes[lab]
        elif s is None and pool is not None:  # a sheet of one class or one family
            m["gancli:label"] = classes[pool[0]] if len(pool) == 1 else label
        return m

    def picture(a: np.ndarray, text: dict[str, str]) -> imageio.Picture:
        if a.shape[2] == 4:
            return imageio.Picture(a[..., :3].copy(), a[..., 3].copy(), text=text)
        return imageio.Picture(a.copy(), text=text)

    records, code = [], EXIT_OK

    def write(path: str, pic: imageio.Picture, **fields) -> None:
        nonlocal code
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            notes = imageio.save(pic, path)
            status, err = "ok", None
        except (OSError, ValueError) as e:
            notes, status, err, code = [], "failed", str(e).splitlines()[0], EXIT_FAILED
            console.error(f"{path}: {err}")
        for note in dict.fromkeys(notes):  # e.g. alpha composited for JPEG: said once per file, never silently
            console.warn(f"{path}: {note}")
        records.append({"output": path, "status": status, "error": err, **fields} | ({"notes": notes} if notes else {}))

    if walk is not None:
        za, zb = net.sample_latents(walk)
        t = torch.linspace(0, 1, steps)[:, None]
        omega = torch.acos((za / za.norm() * zb / zb.norm()).sum().clamp(-1, 1))
        if omega.abs() < 1e-4:
            zs = za + t * (zb - za)
        else:  # spherical interpolation: every frame keeps a typical latent norm
            zs = (torch.sin((1 - t) * omega) * za + torch.sin(t * omega) * zb) / torch.sin(omega)
        frames = draw(zs, [label_of(walk[0])] * steps if net.conditional else None)
        if to_folder:
            for k, f in enumerate(frames):
                write(str(Path(output) / f"frame{k:04d}.png"), picture(f, meta(None, label_of(walk[0]))), frame=k)
            anim = str(Path(output) / "walk.gif")
        else:
            anim = output
        try:
            imageio.save_animation(list(frames), anim)
            records.append({"output": anim, "status": "ok", "error": None, "frames": steps, "seeds": walk})
        except (OSError, ValueError) as e:
            code = EXIT_FAILED
            console.error(f"{anim}: {str(e).splitlines()[0]}")
            records.append({"output": anim, "status": "failed", "error": str(e).splitlines()[0]})
    else:
        images = []
        for i in range(0, len(seed_list), 256):
            chunk = seed_list[i : i + 256]
            labs = [label_of(s) for s in chunk]
            imgs = draw(net.sample_latents(chunk), labs if net.conditional else None)
            if to_folder:
                for s, lab, img in zip(chunk, labs, imgs, strict=True):
                    write(str(Path(output) / f"seed{s:04d}.png"), picture(img, meta(s, lab)), seed=s,
                          label=None if lab is None else classes[lab])
            else:
                images.append(imgs)
        if not to_folder:
            from gancli.training.sample import grid

            allimgs = np.concatenate(images)
            sheet = grid(allimgs, cols or math.ceil(math.sqrt(len(allimgs))), pad=2 * zoom, alpha=True)
            text = meta(None, None) | {"gancli:seeds": seeds if seeds is not None else f"{seed}-{seed + n - 1}"}
            write(output, picture(sheet, text), seeds=seed_list)  # RGBA models: a transparent sheet
    for r in records:
        if as_json:
            typer.echo(json.dumps(r | {"model": model_name}))
    if not as_json and code == EXIT_OK:
        console.info(f"wrote {len(records)} file{'s' if len(records) > 1 else ''} ({output})")
    raise typer.Exit(code)


def register_sample(target: typer.Typer) -> None:
    target.command("sample")(sample)


def _looks_like_mask(path: str) -> bool:
    stem = Path(path).stem.lower()
    return stem.endswith(("_mask", "-mask"))


def register_inpaint(target: typer.Typer) -> None:
    target.command("inpaint")(inpaint)


def _has_shipped(task: str) -> bool:
    from gancli import shipped

    try:
        return any(m.task == task for m in shipped.shipped_models())
    except (OSError, ValueError):
        return False


# These commands appear with their first shipped model (until then: `gancli train --task inpaint|sample`).
if _has_shipped("inpaint"):
    register_inpaint(app)
if _has_shipped("sample"):
    register_sample(app)


def _open_model(task: str, model: str | None, weights: Path | None, dev, scale: int | None = None):
    """The model a command runs: --weights FILE, or a shipped one (by --model name, else the task's default).
    Returns (net, info, display name, shipped entry or None). Raises ValueError / ShippedModelError /
    CheckpointError with a one-line message."""
    from gancli import checkpoints, shipped

    if weights is not None:
        net, info = checkpoints.load_model(weights, dev)
        name, entry = info.name or weights.name, None
    else:
        entry = shipped.find(model, task, scale)
        net, info = checkpoints.load_model(shipped.verify(entry), dev)
        name = entry.name
    if info.task != task:
        def an(word: str) -> str:
            return f"an {word}" if word[:1] in "aeiou" else f"a {word}"

        raise ValueError(f"model {name} is {an(info.task)} model, not {an(task)} model")
    return net, info, name, entry


def _maybe_compile(net, enabled: bool):
    """--compile: the net behind torch.compile, falling back to eager (with a warning) where compiling fails."""
    if not enabled:
        return net
    from gancli.compiled import Compiled

    return Compiled(net, console.warn)


def _save(it, pic, fmt: str | None, quality: int, strip_metadata: bool) -> None:
    from gancli import imageio

    for note in imageio.save(pic, it.output, fmt, quality, strip_metadata):
        console.warn(f"{it.output}: {note}")


def _target_size(w: int, h: int, scale: int, outscale: float | None, width: int | None,
                 height: int | None) -> tuple[int, int]:
    """Final (width, height): the model's native size, or as --outscale / --width / --height ask."""
    if outscale is not None:
        return max(1, round(w * outscale)), max(1, round(h * outscale))
    if width and height:
        return width, height
    if width:
        return width, max(1, round(h * width / w))
    if height:
        return max(1, round(w * height / h)), height
    return w * scale, h * scale


@app.command()
def models(
    as_json: Annotated[bool, typer.Option("--json", help="Print the list as JSON.")] = False,
) -> None:
    """List the models shipped with gancli."""
    from gancli import shipped
    from gancli.checkpoints import read_model_info

    rows = []
    try:
        entries = shipped.shipped_models()
    except shipped.ShippedModelError as e:
        raise fail(str(e), EXIT_FAILED) from None
    for m in entries:
        size = m.path.stat().st_size if m.path.exists() else None
        params = None
        if m.path.exists():
            try:
                params = read_model_info(m.path).provenance.get("parameters")
            except ValueError as e:  # a damaged file is listed (and refused with this message when used)
                console.warn(str(e))
        rows.append({"name": m.name, "task": m.task, "scale": m.scale, "default": m.default, "bytes": size,
                     "parameters": params, "description": m.description, "file": str(m.path)})
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("name", "task", "scale", "size", "description", box=None)
    for r in rows:
        size = f"{r['bytes'] / 1e6:.2f} MB" if r["bytes"] else "missing"
        name = r["name"] + (" (default)" if r["default"] else "")
        table.add_row(name, r["task"], f"x{r['scale']}" if r["task"] == "upscale" else "-", size, r["description"])
    Console().print(table)


class Task(str, Enum):
    upscale = "upscale"
    inpaint = "inpaint"
    sample = "sample"


@app.command()
def train(
    data: Annotated[
        list[Path] | None, typer.Option("--data", help="Folder of images (recursive) or a list file (repeatable).")
    ] = None,
    task: Annotated[Task | None, typer.Option("--task", help="What to train.")] = None,
    run: Annotated[
        Path | None,
        typer.Option("--run", "--run-dir", help="Run folder (default: runs/TASK). Rerun to resume. Under torchrun"
                     " write --run-dir: torchrun takes --run for its own --run-path."),
    ] = None,
    new: Annotated[bool, typer.Option("--new", help="Start over even if the run folder has a checkpoint.")] = False,
    config: Annotated[
        Path | None, typer.Option("--config", help="TOML file of options (CLI > file > defaults).")
    ] = None,
    init_from: Annotated[
        Path | None,
        typer.Option("--init-from", help="Start a new run from the weights of a model file, or of a run folder"
                     " (generator, EMA and discriminator: pretrain, then fine-tune)."),
    ] = None,
    steps: Annotated[int | None, typer.Option("--steps", min=1, help="Total optimizer steps of the run.")] = None,
    minutes: Annotated[
        float | None, typer.Option("--minutes", min=0, help="Stop cleanly after this much wall time (resume later).")
    ] = None,
    batch: Annotated[int | None, typer.Option("--batch", min=1, help="Patches per step.")] = None,
    patch: Annotated[int | None, typer.Option("--patch", min=4, help="Low-resolution patch side.")] = None,
    lr: Annotated[float | None, typer.Option("--lr", min=0, help="Peak learning rate.")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed.")] = None,
    scale: Annotated[int | None, typer.Option("--scale", min=2, max=8, help="Upscaling factor.")] = None,
    arch: Annotated[str | None, typer.Option("--arch", help="Generator architecture (see gancli.models).")] = None,
    model_config: Annotated[str | None, typer.Option("--model-config", help='JSON, e.g. \'{"num_feat": 48}\'.')] = None,
    eval_every: Annotated[int | None, typer.Option("--eval-every", min=1, help="Steps between validations.")] = None,
    val_count: Annotated[int | None, typer.Option("--val-count", min=0, help="Images held out for validation.")] = None,
    print_config: Annotated[
        bool, typer.Option("--print-config", help="Print the resolved config (TOML) and exit.")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Load data and model, report, train nothing.")] = False,
    device: DeviceOpt = "auto",
    threads: ThreadsOpt = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors, warnings and validations.")] = False,
) -> None:
    """Train a model on folders of images. Rerun the same command to resume; Ctrl-C saves and stops (exit 130).

    The run folder gets config.json, last.safetensors (resume state), best.safetensors (best validation, loadable
    with --weights), metrics.jsonl, progress.png, samples/ and train.log.
    """
    model_over: dict | None = None
    if model_config is not None:
        try:
            model_over = json.loads(model_config)
            assert isinstance(model_over, dict)
        except (json.JSONDecodeError, AssertionError):
            raise fail(f"--model-config must be a JSON object, got {model_config!r}") from None
    if scale is not None:
        model_over = {**(model_over or {}), "scale": scale}

    from gancli.training.config import load_toml, resolve, to_toml

    try:
        file_values = load_toml(config) if config else {}
        task_name = task.value if task else file_values.get("task", "upscale")
        run_dir = run or Path("runs") / task_name
        overrides = {"task": task.value if task else None, "data": [str(d) for d in data] if data else None,
                     "steps": steps, "batch": batch, "patch": patch, "lr": lr, "seed": seed, "arch": arch,
                     "model": model_over, "eval_every": eval_every, "val_count": val_count}
        cfg = resolve(run_dir, overrides, new, file_values)
        if init_from is not None:
            from gancli.training.run import init_config_from

            cfg = init_config_from(init_from, cfg, model_over)
    except (ValueError, TypeError, json.JSONDecodeError) as e:
        raise fail(str(e)) from None
    except OSError as e:
        raise fail(f"{init_from}: {e.strerror or e}") from None
    if print_config:
        typer.echo(to_toml(cfg), nl=False)
        return
    if not cfg.data:
        raise fail("--data is required for a new run")

    from gancli import devices
    from gancli.checkpoints import CheckpointError
    from gancli.training import distributed
    from gancli.training import run as runs
    from gancli.training.engine import TrainingDiverged, TrainingInterrupted

    try:
        ctx, device = distributed.from_environment(device)  # torchrun: join the process group
        dev = devices.pick_device(device)
    except devices.DeviceError as e:
        raise fail(str(e)) from None
    if ctx.enabled and threads == 0 and dev.type == "cpu":
        threads = max(1, devices.set_threads(0) // ctx.local_world)  # share the cores among local ranks
    devices.set_threads(threads)
    console.quiet = quiet or not ctx.main  # only rank 0 speaks
    if dry_run:
        try:
            report = runs.describe(cfg, dev, console.info)
        except (ValueError, FileNotFoundError) as e:
            raise fail(str(e), EXIT_FAILED) from None
        typer.echo(to_toml(cfg) + "\n# dry run: " + json.dumps(report))
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    log_path = run_dir / "train.log" if ctx.main else Path(os.devnull)
    with open(log_path, "a") as log_file, console.training_progress(cfg.steps) as on_step:

        def log(msg: str) -> None:
            log_file.write(msg + "\n")
            log_file.flush()
            if ctx.main and (not quiet or "validation" in msg or "stopped" in msg or "sync" in msg):
                console.info(msg, force=True)

        def on_step_logged(step: int, rec: dict | None) -> None:
            on_step(step, rec)
            if rec is not None:
                line = (f"step {step}/{cfg.steps} loss {rec['loss']:.5f} lr {rec['lr']:.2e} "
                        f"{rec['steps_per_s']:.2f} steps/s")
                log_file.write(line + "\n")
                if not quiet and not console.is_tty():
                    console.info(line)

        trainer = None
        try:
            trainer = runs.open_run(cfg, run_dir, dev, new=new, init_from=init_from, log=log,
                                    on_step=on_step_logged, dist_ctx=ctx)
            if ctx.main:
                runs.add_tensorboard(trainer, log)
            trainer.run(minutes=minutes)
            distributed.barrier(ctx)  # no rank leaves while another is still in a collective (or writing)
            log(f"stopped at step {trainer.step}; best validation score {trainer.best_score:.4f}")
        except TrainingInterrupted as e:
            log(str(e))
            raise typer.Exit(e.exit_code) from None
        except (TrainingDiverged, CheckpointError, ValueError, FileNotFoundError) as e:
            log_file.write(f"error: {e}\n")  # fail() says it on stderr, once
            raise fail(str(e), EXIT_FAILED) from None
        finally:
            del trainer  # the DDP wrappers and their reducer threads go before the process group they use
            distributed.shutdown(ctx)


@app.command()
def export(
    run: Annotated[Path, typer.Argument(help="Run folder of `gancli train`.", exists=True, file_okay=False)],
    output: Annotated[Path, typer.Option("-o", "--output", help="Model file to write (.safetensors).")],
    name: Annotated[str, typer.Option("--name", help="Model name shown by `gancli models`.")] = "",
    description: Annotated[str, typer.Option("--description", help="One-line description.")] = "",
    fp16: Annotated[bool, typer.Option("--fp16/--fp32", help="Store weights as float16 (half the size).")] = True,
    last: Annotated[
        bool, typer.Option("--last", help="The EMA generator of the latest checkpoint instead of the best validation"
                           " (for GAN runs, where the validation score is only a guide).")
    ] = False,
    classes: Annotated[
        str, typer.Option("--classes", help="Class names of a class-conditional sample model, comma-separated, in "
                          "label order (for data with integer labels, e.g. Fashion-MNIST): what `--label` accepts.")
    ] = "",
    class_counts: Annotated[
        str, typer.Option("--class-counts", help="Training images per class, comma-separated, in label order (runs"
                          " from before gancli recorded them): what `gancli sample --label-mix data` draws by.")
    ] = "",
) -> None:
    """Export the best EMA generator of a training run as a model file that `--weights` reads."""
    from gancli import checkpoints

    best = run / "best.safetensors"
    if not best.exists():
        raise fail(f"{run} has no best.safetensors yet (it is written at the first validation)", EXIT_FAILED)
    if output.suffix != ".safetensors":
        raise fail(f"output must end in .safetensors, got {output}")
    import torch

    try:
        model, info = checkpoints.load_model(best)
        if last:
            state = checkpoints.load_state(run / "last.safetensors")
            checkpoints.load_state_strict(model, state["ema"], f"{run / 'last.safetensors'} EMA")
            config = json.loads((run / "config.json").read_text())
            provenance = info.provenance | {"steps": int(state["step"]), "val": None,
                                            "cpu_hours": round(float(state["cpu_seconds"]) / 3600, 3),
                                            "wall_hours": round(float(state["wall_seconds"]) / 3600, 3),
                                            "config": config}
            info = dataclasses.replace(info, provenance=provenance)
    except (checkpoints.CheckpointError, OSError, KeyError, json.JSONDecodeError) as e:
        raise fail(str(e), EXIT_FAILED) from None
    provenance = info.provenance | {"parameters": sum(p.numel() for p in model.parameters())}
    if classes:
        names = [c.strip() for c in classes.split(",")]
        count = int(getattr(model.config, "num_classes", 0) or 0)
        if info.task != "sample" or count == 0:
            raise fail("--classes is for class-conditional sample models; this one has no classes")
        if len(names) != count or len(set(names)) != count or not all(names):
            raise fail(f"--classes needs {count} distinct non-empty names, got {len(names)}: {classes}")
        provenance["classes"] = names
    if class_counts:
        count = int(getattr(model.config, "num_classes", 0) or 0)
        if info.task != "sample" or count == 0:
            raise fail("--class-counts is for class-conditional sample models; this one has no classes")
        from gancli.tasks.sample import parse_class_counts

        try:
            provenance["class_counts"] = parse_class_counts(class_counts, count)
        except ValueError as e:
            raise fail(str(e)) from None
    output.parent.mkdir(parents=True, exist_ok=True)
    checkpoints.save_model(
        model, output, task=info.task, name=name or info.name or output.stem,
        description=description or info.description, provenance=provenance,
        dtype=torch.float16 if fp16 else None,
    )
    console.info(f"wrote {output} (step {info.provenance.get('steps')}, validation {info.provenance.get('val')})")


def main() -> None:
    app()
