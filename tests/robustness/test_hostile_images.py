"""Hostile, broken and unusual images through every loader: imageio.load, `upscale`, `inpaint` (image and mask) and
the training data loaders. Each file decodes (with a note where something is dropped) or fails with one line;
nothing raises another exception, prints a traceback or a stray line, hangs, or leaves an output or a temp file."""

from __future__ import annotations

import json
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from PIL import Image
from typer.testing import CliRunner

from gancli import imageio
from gancli.cli import app
from tests.robustness.conftest import FUZZ, ONE_THREAD, check_item_contract, tally, time_limit
from tests.robustness.hostile import RGB, corpus, mutated_images, png_claiming

CORPUS = corpus()
runner = CliRunner()
# Known limit, reported and not fixed here: the inpaint network reflect-pads its 1x1 bottom level for images of at most
# 8 pixels on a side (gancli/models/inpaint.py), so those items fail, cleanly, with one line naming them.


def load_checked(name: str, data: bytes, **kw) -> imageio.Picture | imageio.ImageReadError:
    """imageio.load under the hard time limit: a Picture or an ImageReadError (one line, naming the file), and no
    warning escapes to stderr (the loader turns the decoders' warnings into notes)."""
    with warnings.catch_warnings(record=True) as leaked, time_limit():
        warnings.simplefilter("always")
        try:
            pic = imageio.load(name, data=data, **kw)
        except imageio.ImageReadError as e:
            assert "\n" not in str(e) and str(e).startswith(name), str(e)
            pic = e
    assert not leaked, [str(w.message) for w in leaked]
    return pic


@pytest.mark.parametrize("case", CORPUS, ids=[c.name for c in CORPUS])
def test_named_corpus_through_the_loader_and_every_writer(case):
    result = load_checked(case.name, case.data)
    if not case.ok:
        assert isinstance(result, imageio.ImageReadError) and case.note in str(result)
        tally("named hostile images (loader)", "one-line error")
        return
    assert isinstance(result, imageio.Picture), result
    assert not case.note or any(case.note in n for n in result.notes), result.notes
    assert not case.mode or result.mode == case.mode
    for fmt in ("PNG", "JPEG", "WEBP", "TIFF", "BMP"):  # whatever was read can be written (absurd DPI, LA to BMP, ...)
        data, _ = imageio.encode(result, fmt)
        assert imageio.load(f"written.{fmt}", data=data).size == result.size  # decodes completely
    tally("named unusual images (loader)", "decoded" + (", with a note" if case.note else ""))


@settings(max_examples=400, **FUZZ)
@given(sample=mutated_images())
def test_fuzzed_images_through_the_loader(sample):
    suffix, data, _how = sample
    result = load_checked(f"fuzzed{suffix}", data, max_pixels=4_000_000)
    if isinstance(result, imageio.Picture):
        assert result.pixels.ndim == 3 and result.pixels.shape[2] in (1, 3)
        assert result.alpha is None or result.alpha.shape == result.pixels.shape[:2]
        imageio.encode(result, "PNG")
    tally("fuzzed images (loader)", "decoded" if isinstance(result, imageio.Picture) else "one-line error")


def write_corpus(folder: Path, cases) -> dict[str, str]:
    """Write the cases into folder as NN_NAME (unique stems, so each has its own output); returns name -> file name."""
    folder.mkdir()
    names = {c.name: f"{i:02d}_{c.name}" for i, c in enumerate(cases)}
    for case in cases:
        (folder / names[case.name]).write_bytes(case.data)
    return names


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory):
    """A fresh folder per hypothesis example (function-scoped tmp_path is not reset between examples)."""
    root = tmp_path_factory.mktemp("fuzz")
    return lambda: Path(tempfile.mkdtemp(dir=root))


@settings(max_examples=30, **FUZZ)
@given(sample=mutated_images())
def test_fuzzed_images_through_upscale(sample, sr_weights, fuzz_dir):
    suffix, data, _how = sample
    d = fuzz_dir()
    src, out = d / f"in{suffix}", d / "out" / "in.png"
    src.write_bytes(data)
    with time_limit():
        r = runner.invoke(app, ["upscale", str(src), "-o", str(out), "--weights", str(sr_weights), "--json", "-q",
                                "--max-pixels", "100000", *ONE_THREAD])
    outcome = check_item_contract(r.exit_code, r.stderr, out)
    record = json.loads(r.stdout)
    assert record["status"] == outcome and (outcome == "ok") == (record["error"] is None)
    tally("fuzzed images (upscale)", outcome)


@settings(max_examples=30, **FUZZ)
@given(sample=mutated_images())
def test_fuzzed_images_through_inpaint(sample, inpaint_weights, inpaint_app, fuzz_dir):
    suffix, data, _how = sample
    d = fuzz_dir()
    src, out = d / f"in{suffix}", d / "out" / "in.png"
    src.write_bytes(data)
    with time_limit():
        r = runner.invoke(inpaint_app, ["inpaint", str(src), "--box", "0,0,2,2", "-o", str(out), "--weights",
                                        str(inpaint_weights), "--json", "-q", "--max-pixels", "100000",
                                        *ONE_THREAD])
    outcome = check_item_contract(r.exit_code, r.stderr, out)
    assert json.loads(r.stdout)["status"] == outcome
    tally("fuzzed images (inpaint)", outcome)


@settings(max_examples=25, **FUZZ)
@given(sample=mutated_images())
def test_fuzzed_mask_files_through_inpaint(sample, inpaint_weights, inpaint_app, fuzz_dir):
    """A single --mask file is read before any work: a broken one is a usage error (exit 2, one line, nothing
    written); a readable one of the wrong size fails the item (exit 1)."""
    suffix, data, _how = sample
    d = fuzz_dir()
    Image.fromarray(RGB).save(d / "img.png")
    (d / f"mask{suffix}").write_bytes(data)
    out = d / "out" / "img.png"
    with time_limit():
        r = runner.invoke(inpaint_app, ["inpaint", str(d / "img.png"), "--mask", str(d / f"mask{suffix}"), "-o",
                                        str(out), "--weights", str(inpaint_weights), "-q",
                                        *ONE_THREAD])
    assert "Traceback" not in r.stderr
    if r.exit_code == 2:
        assert len(r.stderr.strip().splitlines()) == 1 and "mask" in r.stderr and not out.exists(), r.stderr
        outcome = "usage error (exit 2)"
    else:
        outcome = check_item_contract(r.exit_code, r.stderr, out)
    tally("fuzzed mask files (inpaint --mask)", outcome)


@settings(max_examples=25, **FUZZ)
@given(a=mutated_images(), b=mutated_images())
def test_fuzzed_images_through_the_training_loaders(a, b, fuzz_dir):
    """Training skips (and counts) what it cannot use; it never raises on a bad file."""
    from gancli.training.data import PatchSampler, StreamingPatchSampler

    d = fuzz_dir()
    files = [d / "good.png", d / f"a{a[0]}", d / f"b{b[0]}"]
    Image.fromarray(RGB).save(files[0])
    files[1].write_bytes(a[1])
    files[2].write_bytes(b[1])
    with time_limit(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # training reports unreadable files itself (and Pillow's warnings are noise)
        for make in (lambda: PatchSampler(files, 8, seed=0, warn=lambda m: None),
                     lambda: StreamingPatchSampler(files, 8, 0, 2, workers=0, warn=lambda m: None)):
            sampler = make()
            assert 1 <= len(sampler.images) <= 3 and len(sampler.images) + len(sampler.skipped) == 3
    tally("fuzzed images (training loaders)", "used or skipped and counted")


def test_named_corpus_through_the_training_loaders(tmp_path):
    """Training uses every readable image big enough for a patch (damaged EXIF or absurd values included) and skips,
    and counts, every broken one; the header-only probe of the streaming loader never raises either."""
    from gancli.training.data import PatchSampler, StreamingPatchSampler

    names = write_corpus(tmp_path / "data", CORPUS)
    files = [tmp_path / "data" / names[c.name] for c in CORPUS]
    usable = {names[c.name] for c in CORPUS if c.ok and min(imageio.load(c.name, data=c.data).size) >= 8}
    with time_limit(60), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow's warnings about the broken files
        sampler = PatchSampler(files, 8, seed=0, halve_above=0, warn=lambda m: None)
        StreamingPatchSampler(files, 8, 0, 2, workers=0, warn=lambda m: None)
    assert len(sampler.images) == len(usable) and len(sampler.skipped) == len(CORPUS) - len(usable)
    assert not any(name in " ".join(sampler.skipped) for name in usable)
    tally("named corpus (training loader)", f"{len(usable)} used, {len(CORPUS) - len(usable)} skipped and counted")


def test_named_corpus_in_one_batch_through_upscale_and_inpaint(tmp_path, sr_weights, inpaint_weights, inpaint_app):
    """Every named case as one batch: each ends as ok or failed in the JSON records, every failure is one stderr line
    that names it, failed items have no output, the others still ran, and the exit code is 1."""
    d = tmp_path / "in"
    names = write_corpus(d, CORPUS)
    files = [str(d / names[c.name]) for c in CORPUS]
    for name, target, extra in (("upscale", app, ["--weights", str(sr_weights)]),
                                ("inpaint", inpaint_app, ["--weights", str(inpaint_weights), "--box", "0,0,2,2"])):
        out = tmp_path / f"out_{name}"
        with time_limit(60):
            r = runner.invoke(target, [name, *files, "-o", f"{out}/", "--format", "png", "--json", *ONE_THREAD,
                                       *extra])
        assert r.exit_code == 1 and "Traceback" not in r.stderr
        records = {Path(rec["input"]).name: rec for rec in map(json.loads, r.stdout.splitlines())}
        errors = [line for line in r.stderr.splitlines() if line.startswith("error: ")]
        for case in CORPUS:
            rec = records[names[case.name]]
            output = out / (Path(names[case.name]).stem + ".png")
            ok = case.ok
            assert rec["status"] == ("ok" if ok else "failed"), (case.name, rec)
            assert output.exists() == ok
            if ok:
                assert imageio.load(output).size == tuple(4 * s for s in rec["in_size"]) or name == "inpaint"
            else:
                assert sum(names[case.name] in line for line in errors) == 1, (case.name, r.stderr)
            if case.note and ok:
                assert case.note in r.stderr  # the note reaches the user as a warning
            tally(f"named hostile images ({name} batch)", rec["status"])
        assert len(errors) == len([rec for rec in records.values() if rec["status"] == "failed"])
        assert not list(out.glob(".gancli-tmp-*"))


def test_decompression_bomb_is_refused_and_max_pixels_raises_the_limit(tmp_path, sr_weights):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_claiming(100_000, 100_000))
    big = tmp_path / "big.png"
    Image.fromarray(np.zeros((60, 50, 3), np.uint8)).save(big)
    w = ["--weights", str(sr_weights), *ONE_THREAD]
    for src, limit, code in ((bomb, None, 1), (big, "2000", 1), (big, "3000", 0)):
        out = tmp_path / f"out_{src.stem}_{limit}.png"
        with time_limit():
            limit_opt = ["--max-pixels", limit] if limit else []
            r = runner.invoke(app, ["upscale", str(src), "-o", str(out), *w, *limit_opt])
        assert r.exit_code == code, r.stderr
        assert check_item_contract(r.exit_code, r.stderr, out) == ("ok" if code == 0 else "failed")
        if code:
            assert "over the limit" in r.stderr and "--max-pixels" in r.stderr
    # a file larger than any image within the limit could be is refused before it is read
    (tmp_path / "huge.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * (imageio.MAX_METADATA_BYTES + 2000))
    with pytest.raises(imageio.ImageReadError, match="too many for an image"):
        imageio.load(tmp_path / "huge.png", max_pixels=100)
    tally("decompression bombs and --max-pixels", "refused with the limit named; raised limit works")


def test_animated_input_gives_its_first_frame_with_a_warning(tmp_path, sr_weights):
    from tests.robustness.hostile import animated

    for fmt, suffix in (("GIF", ".gif"), ("WEBP", ".webp")):
        src = tmp_path / f"anim{suffix}"
        src.write_bytes(animated(fmt))
        out = tmp_path / f"anim_{fmt}.png"
        r = runner.invoke(app, ["upscale", str(src), "-o", str(out), "--weights", str(sr_weights), *ONE_THREAD])
        assert r.exit_code == 0 and "has 3 frames; only the first is used" in r.stderr, r.stderr
        first = tmp_path / f"first_{fmt}.png"
        with Image.open(src) as im:  # a multi-frame file stays open until closed
            im.convert("RGB").save(first)  # frame 0
        r = runner.invoke(app, ["upscale", str(first), "-o", str(tmp_path / "ref.png"), "--weights", str(sr_weights),
                                *ONE_THREAD])
        assert np.array_equal(np.asarray(Image.open(out)), np.asarray(Image.open(tmp_path / "ref.png")))
        tally("animated GIF / WebP", "first frame, with a warning")


def test_broken_stdin_writes_nothing_to_stdout(sr_weights):
    """From a pipe to a pipe: a broken input is one line naming stdin, exit 1, and not one byte on stdout (a
    consumer never gets half an image); a stream longer than any image within --max-pixels is cut off, not read."""
    cases = [c for c in CORPUS if not c.ok] + [next(c for c in CORPUS if c.name == "rgb16.png")]
    for case in cases:
        r = runner.invoke(app, ["upscale", "-", "-o", "-", "--weights", str(sr_weights), *ONE_THREAD],
                          input=case.data)
        if case.ok:
            assert r.exit_code == 0 and imageio.load("-", data=r.stdout_bytes).size == (80, 96)
            continue
        assert r.exit_code == 1 and r.stdout_bytes == b"", (case.name, r.stderr)
        errors = [line for line in r.stderr.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1 and errors[0].startswith("error: stdin: ") and "Traceback" not in r.stderr, r.stderr
        tally("broken images on stdin (-o -)", "one line, exit 1, stdout empty")
    r = runner.invoke(app, ["upscale", "-", "-o", "-", "--weights", str(sr_weights), "--max-pixels", "10",
                            *ONE_THREAD], input=b"\x89PNG\r\n\x1a\n" + b"\0" * (imageio.MAX_METADATA_BYTES + 200))
    assert r.exit_code == 1 and r.stdout_bytes == b"" and "stdin: more than" in r.stderr, r.stderr
