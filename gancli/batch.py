"""Batch jobs over many images: which inputs, which outputs, and an honest report of every item.

Shared by every subcommand that maps input images to output images (upscale, inpaint). The rules:
- inputs are files, folders (their images, sorted), glob patterns, or '-' for stdin; order is deterministic;
- an output never overwrites an input, and two inputs never write the same output;
- every item ends as ok, skipped or failed; failures are named and make the exit code 1;
- with json=True each item is one JSON line on stdout.
"""

from __future__ import annotations

import glob
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from gancli import atomic, console, imageio

# An existing output is checked by decoding it; it may be larger than any input (x4 of the largest default input is
# 16 times --max-pixels' default), but not without bound: a bomb planted under an output name is still refused.
OUTPUT_MAX_PIXELS = 16 * imageio.DEFAULT_MAX_PIXELS


class UsageError(ValueError):
    """A problem with the command line as a whole (exit code 2)."""


@dataclass
class Item:
    input: str
    output: str
    status: str = "pending"  # ok | skipped | failed
    error: str | None = None
    in_size: list[int] | None = None
    out_size: list[int] | None = None
    seconds: float | None = None
    extra: dict = field(default_factory=dict)


def expand_inputs(args: list[str], recursive: bool = False) -> list[str]:
    """Files, folders and globs -> image paths (each group sorted, duplicates dropped). '-' stays '-'."""
    out: list[str] = []
    for arg in args:
        if arg == imageio.STDIO:
            out.append(arg)
            continue
        p = Path(arg)
        if p.is_dir():
            pattern = "**/*" if recursive else "*"
            found = sorted(str(f) for f in p.glob(pattern)  # hidden files (and our temp files) are skipped
                           if f.is_file() and not f.name.startswith(".") and f.suffix.lower() in imageio.IMAGE_SUFFIXES)
            if not found:
                raise UsageError(f"folder {arg} has no images ({', '.join(sorted(imageio.IMAGE_SUFFIXES))})")
            out += found
        elif p.exists() or p.is_symlink():
            out.append(arg)
        elif glob.has_magic(arg):
            found = sorted(f for f in glob.glob(arg, recursive=True) if Path(f).is_file())
            if not found:
                raise UsageError(f"no file matches {arg!r}")
            out += found
        else:
            raise UsageError(f"input {arg} does not exist")
    seen: set[str] = set()
    unique = []
    for f in out:
        key = f if f == imageio.STDIO else os.path.realpath(f)
        if key not in seen:
            seen.add(key)
            unique.append(f)
    if not unique:
        raise UsageError("no input images")
    if imageio.STDIO in unique and len(unique) > 1:
        raise UsageError("'-' (stdin) cannot be mixed with other inputs")
    return unique


def plan_outputs(inputs: list[str], output: str | None, tag: str, fmt: str | None) -> list[Item]:
    """Pair each input with its output path.

    output None: beside each input as STEM_TAG.EXT; output a folder (existing, or ending in '/', or several inputs):
    OUT/STEM.EXT; otherwise a single output file. fmt: output suffix ('png', ...) or None to keep the input's.
    """
    ext = None if fmt is None else "." + fmt.lower().lstrip(".")
    if ext is not None and ext not in imageio.FORMAT_BY_SUFFIX:
        raise UsageError(f"unknown --format {fmt!r} (use {', '.join(s[1:] for s in sorted(imageio.FORMAT_BY_SUFFIX))})")

    def out_ext(src: str) -> str:
        if ext:
            return ext
        suffix = Path(src).suffix.lower()
        return suffix if suffix in imageio.FORMAT_BY_SUFFIX else ".png"

    if output == imageio.STDIO:
        if len(inputs) > 1:
            raise UsageError("-o - (stdout) takes exactly one input")
        return [Item(inputs[0], output)]
    to_folder = output is not None and (Path(output).is_dir() or output.endswith(("/", os.sep)) or len(inputs) > 1)
    if to_folder and Path(output).exists() and not Path(output).is_dir():
        why = f"{len(inputs)} inputs need a folder" if len(inputs) > 1 else "a trailing '/' asks for a folder"
        raise UsageError(f"-o {output} is a file, but {why}")
    items = []
    for src in inputs:
        if src == imageio.STDIO:
            if output is None or to_folder:
                raise UsageError("with '-' (stdin) as input give -o FILE or -o - (stdout)")
            items.append(Item(src, output))
            continue
        stem = Path(src).stem
        if output is None:
            dest = str(Path(src).with_name(f"{stem}_{tag}{out_ext(src)}"))
        elif to_folder:
            dest = str(Path(output) / f"{stem}{out_ext(src)}")
        else:
            dest = output
            if Path(dest).suffix.lower() not in imageio.FORMAT_BY_SUFFIX:
                raise UsageError(f"output {dest} has no image suffix ({', '.join(sorted(imageio.FORMAT_BY_SUFFIX))});"
                                 " to write into a folder, end it with '/'")
        items.append(Item(src, dest))
    in_real = {os.path.realpath(i) for i in inputs if i != imageio.STDIO}
    seen: dict[str, str] = {}
    for it in items:
        if it.output == imageio.STDIO:
            continue
        real = os.path.realpath(it.output)
        if real in in_real:
            raise UsageError(f"output {it.output} would overwrite an input; choose another -o")
        if real in seen:
            raise UsageError(f"{seen[real]} and {it.input} would both write {it.output}; use --format or separate runs")
        seen[real] = it.input
    return items


def output_is_valid(path: str) -> bool:
    """True when `path` exists and is a complete image (a truncated file from an earlier crash is not valid)."""
    try:
        imageio.verify(path, max_pixels=OUTPUT_MAX_PIXELS)
        return True
    except (imageio.ImageReadError, OSError):
        return False


class Interrupted(BaseException):
    """SIGTERM, raised wherever the process is: a BaseException (like KeyboardInterrupt), so that no `except
    Exception` on the way turns it into an item's error."""

    def __init__(self, code: int) -> None:
        self.code = code


def _on_sigterm(signum, frame):  # noqa: ARG001
    raise Interrupted(143)


Process = Callable[[Item, Callable[[int, int], None]], None]  # process(item, report_part(done, total))


@dataclass
class Stages:
    """An item's work in three parts, so that they overlap across items: while the model computes item i, a
    background thread decodes item i+1 and another encodes and writes item i-1 (decoding and encoding release the
    GIL in their C libraries). At most three items' images are in memory at once, whatever the batch size."""

    load: Callable[[Item], object]
    compute: Callable[[Item, object, Callable[[int, int], None]], object]
    save: Callable[[Item, object], None]


def run(items: list[Item], process: Process | Stages, *, skip_existing: bool, as_json: bool,
        label: str) -> int:
    """Run `process(item, report_part)` (or the pipelined `Stages`) on each item and report each one, in order.

    Returns the exit code: 0 when all are ok or skipped, 1 when any failed.

    Ctrl-C or SIGTERM stops after cleaning up the item in progress (no partial output) and returns 130 / 143.
    """
    if isinstance(process, Stages):
        stages = process
    else:
        stages = Stages(load=lambda it: None, compute=lambda it, _, part: process(it, part),
                        save=lambda it, _: None)
    old = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return _run(items, stages, skip_existing=skip_existing, as_json=as_json, label=label)
    except KeyboardInterrupt:
        console.error("interrupted; finished outputs are complete, rerun with --skip-existing to continue")
        return 130
    except Interrupted as e:
        console.error("terminated; finished outputs are complete, rerun with --skip-existing to continue")
        return e.code
    finally:
        signal.signal(signal.SIGTERM, old)


def _run(items: list[Item], stages: Stages, *, skip_existing: bool, as_json: bool, label: str) -> int:
    from concurrent.futures import Future, ThreadPoolExecutor

    failed = 0
    for folder in dict.fromkeys(str(Path(it.output).parent) for it in items if it.output != imageio.STDIO):
        if Path(folder).is_dir():
            atomic.remove_stale(folder)  # left by a run killed (-9) in the middle of a write
    loader = ThreadPoolExecutor(1, thread_name_prefix="gancli-decode")
    writer = ThreadPoolExecutor(1, thread_name_prefix="gancli-encode")
    starts: dict[int, float] = {}

    def prepare(it: Item) -> Future | None:
        """Decide whether the item is skipped; if not, start decoding it in the background."""
        starts[id(it)] = time.perf_counter()
        if skip_existing and it.output != imageio.STDIO and Path(it.output).exists():
            if output_is_valid(it.output):
                it.status = "skipped"
                return None
            console.warn(f"{it.output} exists but does not decode: redoing it")
        return loader.submit(_guarded, _load_one, stages, it)

    pending: tuple[Item, Future] | None = None  # the item being written in the background

    def finish_pending() -> None:
        nonlocal pending
        if pending is not None:
            it, fut = pending
            pending = None
            _settle(it, fut.result())
            report(it)

    def report(it: Item) -> None:
        nonlocal failed
        it.seconds = round(time.perf_counter() - starts[id(it)], 4)
        if it.status == "failed":
            failed += 1
            name = "stdin" if it.input == imageio.STDIO else it.input
            console.error(it.error if it.error.startswith((it.input, name)) else f"{name}: {it.error}")
        elif not as_json and not console.is_tty():
            console.info(f"{it.status} {it.input} -> {it.output} ({it.seconds:.2f} s)")
        if as_json:
            record = {k: v for k, v in asdict(it).items() if k != "extra"} | it.extra
            sys.stdout.write(json.dumps(record) + "\n")
            sys.stdout.flush()
        bar.advance()

    try:
        with console.progress(len(items), label) as bar:
            nxt = prepare(items[0]) if items else None
            for k, it in enumerate(items):
                fut = nxt
                if fut is None:  # skipped
                    nxt = prepare(items[k + 1]) if k + 1 < len(items) else None
                    finish_pending()
                    report(it)
                    continue
                data = _settle(it, fut.result())
                nxt = prepare(items[k + 1]) if k + 1 < len(items) else None  # decode the next one meanwhile
                if it.status == "failed":
                    finish_pending()
                    report(it)
                    continue
                outcome = _guarded(stages.compute, it, data, bar.part)
                del data
                result = _settle(it, outcome)
                finish_pending()  # at most one write in flight: memory stays bounded
                if it.status == "failed":
                    report(it)
                    continue
                pending = (it, writer.submit(_guarded, _save_one, stages, it, result))
                del result
            finish_pending()
    finally:
        loader.shutdown(wait=True, cancel_futures=True)
        writer.shutdown(wait=True)  # a write in progress completes (or fails) atomically before we return
    done = sum(it.status == "ok" for it in items)
    skipped = sum(it.status == "skipped" for it in items)
    if len(items) > 1 or failed:
        console.info(f"{done} done, {skipped} skipped, {failed} failed")
    return 1 if failed else 0


def _load_one(stages: Stages, it: Item) -> object:
    if it.output != imageio.STDIO:
        _make_folder(Path(it.output).parent)
    return stages.load(it)


def _save_one(stages: Stages, it: Item, result: object) -> None:
    stages.save(it, result)
    it.status = "ok"


_FAILED = object()


def _guarded(fn, *args) -> tuple[object, BaseException | None]:
    """fn(*args) -> (value, None), or (_FAILED, the exception) for an error that fails one item only."""
    try:
        return fn(*args), None
    except (KeyboardInterrupt, Interrupted):
        raise
    except Exception as e:  # noqa: BLE001 - sorted into a one-line item error by _settle (MemoryError included)
        return _FAILED, e


def _settle(it: Item, outcome: tuple[object, BaseException | None]) -> object:
    value, e = outcome
    if e is not None:
        it.status = "failed"
        if isinstance(e, MemoryError):
            it.error = "out of memory (try a smaller --tile)"
        elif isinstance(e, (imageio.ImageReadError, imageio.ImageWriteError, OSError, ValueError)):
            it.error = one_line(e)
        else:
            it.error = f"{type(e).__name__}: {one_line(e)}"
    return value


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise imageio.ImageWriteError(f"cannot create folder {folder}: a file is in the way") from None
    except OSError as e:
        raise imageio.ImageWriteError(f"cannot create folder {folder}: {e.strerror or e}") from None


def one_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    if isinstance(e, OSError) and e.strerror:
        text = f"{e.strerror}: {e.filename}" if e.filename else e.strerror
    return text.splitlines()[0]
