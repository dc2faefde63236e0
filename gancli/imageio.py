"""The only module that touches Pillow: reading and writing images with their metadata.

`load` returns a `Picture`: pixels as numpy (uint8 or uint16, gray or RGB), alpha kept apart, EXIF orientation
already applied, and the metadata (ICC profile, EXIF, DPI) to carry to the output. `save` writes a Picture in the
format its suffix names, atomically. Pillow reads 16-bit color PNG/TIFF only as 8 bits, so those go through OpenCV
on read and through the small 16-bit writers at the end of this module on write.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import struct
import sys
import warnings
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image

from gancli.atomic import atomic_path

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp"}
FORMAT_BY_SUFFIX = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF",
                    ".bmp": "BMP"}
STDIO = "-"
DEFAULT_MAX_PIXELS = 200_000_000  # refuse decompression bombs; --max-pixels raises it
MAX_BYTES_PER_PIXEL = 16  # an image file of N pixels is smaller than N * this (+ metadata); bigger ones are refused
MAX_METADATA_BYTES = 64 * 1024 * 1024
MAX_DPI = 1e6  # larger (or non-finite, or non-positive) resolutions are dropped: no format or device has them
_ORIENTATION = 0x0112
# TIFF tags that describe how a file stores its pixels (size, bits, compression, photometric, strips, tiles, ...).
# Pillow's getexif() of a TIFF returns them with the descriptive tags; carried into an output they would describe
# the input's layout and make a TIFF output undecodable, so they are never part of the carried EXIF.
_LAYOUT_TAGS = (256, 257, 258, 259, 262, 266, 273, 277, 278, 279, 284, 317, 320, 322, 323, 324, 325, 330, 338, 339,
                347, 530, 531, 532, 34675)
PNG_LEVEL = 3  # zlib level: 2.7x faster than Pillow's default 6 on a 2048x2048 photo, files ~9 % larger


class ImageReadError(ValueError):
    """A file that is not a readable image; the message names it and says why."""


class ImageWriteError(OSError):
    """An output that cannot be written; the message names it and says why."""


@dataclass
class Picture:
    """pixels: (H, W, C) uint8 or uint16 with C = 1 (gray) or 3 (RGB); alpha: (H, W) of the same dtype or None."""

    pixels: np.ndarray
    alpha: np.ndarray | None = None
    icc_profile: bytes | None = None
    exif: bytes | None = None  # orientation already applied and reset to 1
    dpi: tuple[float, float] | None = None
    source_format: str = ""
    notes: list[str] = field(default_factory=list)  # things the caller should warn about (e.g. frames dropped)
    text: dict[str, str] = field(default_factory=dict)  # PNG text chunks to write (e.g. model and seed)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)"""
        return self.pixels.shape[1], self.pixels.shape[0]

    @property
    def bit_depth(self) -> int:
        return 16 if self.pixels.dtype == np.uint16 else 8

    @property
    def gray(self) -> bool:
        return self.pixels.shape[2] == 1

    @property
    def mode(self) -> str:
        """A short description, e.g. 'RGBA 8-bit' or 'L 16-bit'."""
        return f"{'L' if self.gray else 'RGB'}{'A' if self.alpha is not None else ''} {self.bit_depth}-bit"


# ------------------------------------------------------------------------------------------------------- reading


def read_bytes(src: str | Path, max_pixels: int | None = None) -> bytes:
    """The raw bytes of a file, or of stdin for '-'.

    With max_pixels, more bytes than any image of that many pixels can take are refused before they are read (a
    huge non-image file, or an endless pipe, never fills the memory).
    """
    limit = None if max_pixels is None else max_pixels * MAX_BYTES_PER_PIXEL + MAX_METADATA_BYTES
    too_big = f"{src}: more than {limit} bytes, too many for an image of at most {max_pixels} pixels (raise" \
              " --max-pixels)"
    if str(src) == STDIO:  # in chunks: read(limit) would allocate the whole limit up front
        chunks, total = [], 0
        while chunk := sys.stdin.buffer.read(1 << 20):
            chunks.append(chunk)
            total += len(chunk)
            if limit is not None and total > limit:
                raise ImageReadError(too_big.replace("-:", "stdin:", 1))
        return b"".join(chunks)
    try:
        with open(src, "rb") as f:
            if limit is not None and os.fstat(f.fileno()).st_size > limit:
                raise ImageReadError(too_big)
            return f.read()
    except IsADirectoryError:
        raise ImageReadError(f"{src}: is a folder, not an image") from None
    except OSError as e:
        raise ImageReadError(f"{src}: cannot read: {e.strerror or e}") from None


def load(src: str | Path, data: bytes | None = None, max_pixels: int = DEFAULT_MAX_PIXELS) -> Picture:
    """Decode an image file ('-' for stdin) into a Picture, with EXIF orientation applied.

    Every mode Pillow reads comes out as gray or RGB (+ alpha), 8 or 16 bits per channel:
    1/L/P/CMYK/YCbCr/LAB -> 8-bit; I;16 and 16-bit PNG/TIFF -> 16-bit; P with transparency -> RGBA.
    Any broken file raises ImageReadError (one line); damaged metadata (EXIF, DPI) is dropped with a note, and the
    decoders' warnings become notes too, so nothing but the caller writes to stderr.
    """
    name = "stdin" if str(src) == STDIO else str(src)
    if data is None:
        data = read_bytes(src, max_pixels)
    if not data:
        raise ImageReadError(f"{name}: empty file")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        old_limit = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = max_pixels
        try:
            im = Image.open(io.BytesIO(data))
            w, h = im.size
            if w * h > max_pixels:
                raise ImageReadError(f"{name}: {w}x{h} is over the limit of {max_pixels} pixels (raise --max-pixels)")
            notes = []
            if getattr(im, "n_frames", 1) > 1:
                notes.append(f"{name}: has {im.n_frames} frames; only the first is used")
            pic = _decode(im, data, name)
        except ImageReadError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            msg = f"{name}: image is over the limit of {max_pixels} pixels (raise --max-pixels)"
            raise ImageReadError(msg) from None
        except Exception as e:  # Pillow raises many types for broken files (OSError, SyntaxError, ValueError, ...)
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            if "cannot identify image file" in msg:
                msg = "unknown or corrupt format"
            raise ImageReadError(f"{name}: not a readable image ({msg})") from None
        finally:
            Image.MAX_IMAGE_PIXELS = old_limit
    decoder_notes = list(dict.fromkeys(f"{name}: {str(w.message).strip().splitlines()[0]}" for w in caught))
    pic.notes = notes + pic.notes + decoder_notes[:3]
    return pic


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # the 12 bytes every complete PNG ends with


def verify(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """Raise ImageReadError unless the file is complete: it decodes, and a PNG also passes its chunk checksums and
    ends with its IEND chunk (Pillow decodes a PNG cut inside its last checksum or IEND, other decoders refuse it)."""
    data = read_bytes(path, max_pixels)
    load(path, data=data, max_pixels=max_pixels)
    if data.startswith(_PNG_SIGNATURE):
        if not data.endswith(_PNG_IEND):
            raise ImageReadError(f"{path}: truncated PNG (it does not end with an IEND chunk)")
        try:
            with Image.open(io.BytesIO(data)) as im:
                im.verify()  # every chunk's CRC
        except Exception as e:  # noqa: BLE001 - Pillow raises SyntaxError, OSError, ... here
            raise ImageReadError(f"{path}: damaged PNG ({_first_line(e)})") from None


def _decode(im: Image.Image, data: bytes, name: str) -> Picture:
    im.load()  # every pixel first: a truncated or corrupt stream fails here, whatever the metadata
    notes: list[str] = []
    orientation, exif_bytes = _read_exif(im, name, notes)
    icc = im.info.get("icc_profile") or None
    dpi = _plausible_dpi(im.info.get("dpi"), name, notes)
    fmt = im.format or ""
    if im.mode == "CMYK":
        im, icc = _cmyk_to_rgb(im, icc)
        notes.append(f"{name}: CMYK converted to RGB" + (" through its ICC profile (output tagged sRGB)" if icc
                                                          else " without a profile (approximate colors)"))
    if _is_16bit_color(im, data):
        pixels, alpha = _decode_16bit_color(data, name)
    else:
        pixels, alpha = _decode_pillow(im)
    pixels, alpha = _orient(pixels, orientation), (None if alpha is None else _orient(alpha, orientation))
    return Picture(np.ascontiguousarray(pixels), None if alpha is None else np.ascontiguousarray(alpha),
                   icc_profile=icc, exif=exif_bytes, dpi=dpi, source_format=fmt, notes=notes)


def _read_exif(im: Image.Image, name: str, notes: list[str]) -> tuple[int, bytes | None]:
    """(orientation 1-8, EXIF bytes with the orientation reset to 1); unreadable EXIF is dropped with a note."""
    try:
        exif = im.getexif()
        orientation = exif.get(_ORIENTATION, 1)
        if _ORIENTATION in exif:
            exif[_ORIENTATION] = 1
        for tag in _LAYOUT_TAGS:
            if tag in exif:
                del exif[tag]
        exif_bytes = exif.tobytes() if len(exif) else None
    except Exception as e:  # noqa: BLE001 - Pillow's EXIF parser raises many types on damaged blocks
        notes.append(f"{name}: EXIF is damaged ({_first_line(e)}): dropped, orientation not applied")
        return 1, None
    if not isinstance(orientation, int) or not 1 <= orientation <= 8:
        notes.append(f"{name}: EXIF orientation {orientation!r} is not 1-8: ignored")
        orientation = 1
    return orientation, exif_bytes


def _plausible_dpi(dpi, name: str, notes: list[str]) -> tuple[float, float] | None:
    """The (x, y) resolution when both are finite, positive and at most MAX_DPI; else None (with a note)."""
    if not dpi:
        return None
    try:
        x, y = (float(v) for v in dpi)
    except (TypeError, ValueError):
        x = y = math.nan
    if all(math.isfinite(v) and 0 < v <= MAX_DPI for v in (x, y)):
        return x, y
    if any(v != 0 for v in (x, y)):
        notes.append(f"{name}: resolution {dpi!r} dpi is not plausible: dropped")
    return None


def _first_line(e: BaseException) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


@contextlib.contextmanager
def _c_stderr_silenced():
    """Send file descriptor 2 to /dev/null: C libraries (libpng) print their own errors, which we report as one
    line. Python's sys.stderr is flushed first and restored after."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _cmyk_to_rgb(im: Image.Image, icc: bytes | None) -> tuple[Image.Image, bytes | None]:
    """CMYK -> RGB: through the embedded profile to sRGB when there is one (returns the sRGB profile), else naive."""
    if icc:
        from PIL import ImageCms

        try:
            srgb = ImageCms.createProfile("sRGB")
            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            rgb = ImageCms.profileToProfile(im, src, srgb, outputMode="RGB")
            return rgb, ImageCms.ImageCmsProfile(srgb).tobytes()
        except (ImageCms.PyCMSError, OSError):
            pass
    return im.convert("RGB"), None


def _decode_pillow(im: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    im.load()
    mode = im.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        return np.asarray(im).astype(np.uint16)[..., None], None
    if mode == "I":  # 32-bit int: Pillow's mode for 16-bit PNG gray; clip to 16 bits
        return np.clip(np.asarray(im), 0, 65535).astype(np.uint16)[..., None], None
    if mode == "F":
        return (np.clip(np.asarray(im), 0, 1) * 65535 + 0.5).astype(np.uint16)[..., None], None
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif mode == "1":
        im = im.convert("L")
    elif mode == "L" and "transparency" in im.info:
        im = im.convert("LA")
    elif mode == "RGB" and "transparency" in im.info:
        im = im.convert("RGBA")
    elif mode in ("PA",):
        im = im.convert("RGBA")
    elif mode == "La":
        im = im.convert("LA")
    elif mode == "RGBa":
        im = im.convert("RGBA")
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        im = im.convert("RGB")  # CMYK, YCbCr, LAB, HSV, ... (CMYK conversion is approximate without a profile)
    a = np.asarray(im)
    if im.mode == "L":
        return a[..., None], None
    if im.mode == "LA":
        return a[..., :1], a[..., 1]
    if im.mode == "RGBA":
        return a[..., :3], a[..., 3]
    return a, None


def _is_16bit_color(im: Image.Image, data: bytes) -> bool:
    if im.format == "PNG" and len(data) > 26:
        bit_depth, color_type = data[24], data[25]
        return bit_depth == 16 and color_type in (2, 4, 6)
    if im.format == "TIFF":
        tags = getattr(im, "tag_v2", {})
        bits = tags.get(258, (8,))
        bits = bits if isinstance(bits, tuple) else (bits,)
        return max(bits) == 16 and int(tags.get(277, 1)) >= 2
    return False


def _decode_16bit_color(data: bytes, name: str) -> tuple[np.ndarray, np.ndarray | None]:
    import cv2  # only for 16-bit color, which Pillow cannot hold

    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # a failure is our one ImageReadError line
    with _c_stderr_silenced():
        a = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if a is None:
        raise ImageReadError(f"{name}: not a readable 16-bit image")
    if a.dtype != np.uint16:
        a = a.astype(np.uint16) * 257 if a.dtype == np.uint8 else a.astype(np.uint16)
    if a.ndim == 2:
        return a[..., None], None
    if a.shape[2] == 2:
        return a[..., :1], a[..., 1]
    if a.shape[2] == 3:
        return a[..., ::-1], None
    if a.shape[2] == 4:
        rgb = a[..., 2::-1]
        if data[:4] == b"\x89PNG" and data[25] == 4:  # gray + alpha PNG, expanded to BGRA by OpenCV
            rgb = rgb[..., :1]
        return rgb, a[..., 3]
    raise ImageReadError(f"{name}: unsupported channel count {a.shape[2]}")


def _orient(a: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1-8) to an (H, W, ...) array, as ImageOps.exif_transpose does."""
    if orientation == 2:
        return a[:, ::-1]
    if orientation == 3:
        return a[::-1, ::-1]
    if orientation == 4:
        return a[::-1]
    if orientation == 5:
        return a.swapaxes(0, 1)
    if orientation == 6:
        return np.rot90(a, -1)
    if orientation == 7:
        return a[::-1, ::-1].swapaxes(0, 1)
    if orientation == 8:
        return np.rot90(a, 1)
    return a


def probe_size(path: str | Path) -> tuple[int, int]:
    """(width, height) as displayed (EXIF orientation applied), from the header only (but Pillow reads a PNG's EXIF
    only after its pixels, so a PNG is decoded, and a truncated one fails here)."""
    with Image.open(path) as im:
        w, h = im.size
        if im.format == "PNG":
            im.load()
        if _exif_orientation(im) in (5, 6, 7, 8):
            w, h = h, w
        return w, h


_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
              5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
              8: Image.Transpose.ROTATE_90}  # what ImageOps.exif_transpose does for each orientation


def _exif_orientation(im: Image.Image) -> int:
    """The EXIF orientation 1-8 of an opened (for PNG: loaded) image; 1 when it has none, or it is damaged or absurd
    (the pixels are fine: the image is used as stored)."""
    try:
        orientation = im.getexif().get(_ORIENTATION, 1)
    except Exception:  # noqa: BLE001 - Pillow's EXIF parser raises many types on damaged blocks
        return 1
    return orientation if isinstance(orientation, int) and 1 <= orientation <= 8 else 1


def jpeg_roundtrip(arr: np.ndarray, quality: int) -> np.ndarray:
    """(H, W, 3) uint8 -> the same after JPEG compression at `quality` (4:2:0, as cameras and the web do)."""
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=quality)
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"))


def training_size(w: int, h: int, halve_above: int = 0, max_short_side: int = 0) -> tuple[int, int]:
    """The size read_rgb_array gives an image of (w, h)."""
    if halve_above and min(w, h) >= halve_above:
        w, h = w // 2, h // 2
    if max_short_side and min(w, h) > max_short_side:
        f = max_short_side / min(w, h)
        w, h = max(max_short_side, round(w * f)), max(max_short_side, round(h * f))
    return w, h


def read_rgb_array(path: str | Path, halve_above: int = 0, max_short_side: int = 0) -> np.ndarray:
    """An image file as (H, W, 3) uint8 RGB with EXIF orientation applied (for training data).

    halve_above > 0: downscale by 2 (Lanczos) when the shorter side is at least that many pixels; then
    max_short_side > 0: downscale (Lanczos) so the shorter side is at most that (whole scenes in a patch).
    """
    with Image.open(path) as im:
        im.load()  # every pixel first: a truncated file fails here, whatever its EXIF
        orientation = _exif_orientation(im)
        im = im.convert("RGB")
        if orientation in _TRANSPOSE:
            im = im.transpose(_TRANSPOSE[orientation])
        size = training_size(im.width, im.height, halve_above, max_short_side)
        if size != im.size:
            im = im.resize(size, Image.Resampling.LANCZOS)
        return np.asarray(im).copy()


# ------------------------------------------------------------------------------------------------------- writing


def format_for(path: str | Path, default: str = "PNG") -> str:
    """The output format its suffix names ('-' -> `default`); an unknown suffix is an error."""
    if str(path) == STDIO:
        return default.upper()
    suffix = Path(path).suffix.lower()
    if suffix not in FORMAT_BY_SUFFIX:
        raise ImageWriteError(f"{path}: unknown output format {suffix or '(no suffix)'!r} "
                              f"(use one of {', '.join(sorted(FORMAT_BY_SUFFIX))})")
    return FORMAT_BY_SUFFIX[suffix]


def resize(pic: Picture, size: tuple[int, int]) -> Picture:
    """Lanczos resize to (width, height), per channel, keeping the bit depth."""
    if pic.size == size:
        return pic

    def one(a: np.ndarray) -> np.ndarray:
        if a.dtype == np.uint8:
            return np.asarray(Image.fromarray(a).resize(size, Image.Resampling.LANCZOS))
        f = Image.fromarray(a.astype(np.float32) / 65535.0).resize(size, Image.Resampling.LANCZOS)
        return (np.clip(np.asarray(f), 0, 1) * 65535 + 0.5).astype(np.uint16)

    if pic.pixels.dtype == np.uint8 and pic.pixels.shape[2] == 3:
        pixels = np.asarray(Image.fromarray(pic.pixels).resize(size, Image.Resampling.LANCZOS))
    else:
        pixels = np.stack([one(pic.pixels[..., c]) for c in range(pic.pixels.shape[2])], axis=-1)
    alpha = None if pic.alpha is None else one(pic.alpha)
    return replace(pic, pixels=pixels, alpha=alpha)


def encode(pic: Picture, fmt: str, quality: int = 95, strip_metadata: bool = False) -> tuple[bytes, list[str]]:
    """Encode a Picture to bytes in `fmt` (PNG, JPEG, WEBP, TIFF, BMP). Returns (bytes, warnings)."""
    buf = io.BytesIO()
    notes = write(pic, buf, fmt, quality, strip_metadata)
    return buf.getvalue(), notes


def write(pic: Picture, fp: BinaryIO, fmt: str, quality: int = 95, strip_metadata: bool = False) -> list[str]:
    """Encode a Picture into an open binary file in `fmt` (PNG, JPEG, WEBP, TIFF, BMP). Returns warnings."""
    notes: list[str] = []
    icc = None if strip_metadata else pic.icc_profile
    exif = None if strip_metadata else pic.exif
    pixels, alpha = pic.pixels, pic.alpha
    if fmt in ("JPEG", "WEBP", "BMP") and pic.bit_depth == 16:
        notes.append(f"{fmt} holds 8 bits per channel: 16-bit result reduced to 8 bits (write PNG or TIFF to keep 16)")
        pixels = _to8(pixels)
        alpha = None if alpha is None else _to8(alpha)
    if fmt == "JPEG" and alpha is not None:
        notes.append("JPEG has no alpha channel: transparent areas composited on white (write PNG to keep alpha)")
        a = alpha.astype(np.float32)[..., None] / 255.0
        pixels = (pixels.astype(np.float32) * a + 255.0 * (1 - a) + 0.5).astype(np.uint8)
        alpha = None
    if fmt == "BMP" and alpha is not None and pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)  # BMP has no gray + alpha mode: written as RGBA
    if fmt == "BMP" and (icc or exif):
        notes.append("BMP cannot hold ICC profiles or EXIF: metadata dropped")
    if pixels.dtype == np.uint16 and fmt in ("PNG", "TIFF") and not (pixels.shape[2] == 1 and alpha is None):
        if fmt == "PNG":
            fp.write(_png16(pixels, alpha, icc, exif, pic.dpi))
            return notes
        if exif:
            notes.append("EXIF is not written to 16-bit color TIFF (ICC profile kept)")
        fp.write(_tiff16(pixels, alpha, icc))
        return notes

    if pixels.dtype == np.uint16:  # 16-bit gray, no alpha: Pillow handles it
        im = Image.fromarray(np.ascontiguousarray(pixels[..., 0]).astype("<u2"))
    else:
        arr = pixels if alpha is None else np.concatenate([pixels, alpha[..., None]], axis=-1)
        arr = arr[..., 0] if arr.shape[2] == 1 else arr
        im = Image.fromarray(arr)
    kw: dict = {}
    if icc and fmt != "BMP":
        kw["icc_profile"] = icc
    if exif and fmt in ("JPEG", "PNG", "WEBP", "TIFF"):
        kw["exif"] = exif
    if pic.dpi and fmt in ("JPEG", "PNG", "TIFF", "BMP"):
        kw["dpi"] = pic.dpi
    if fmt == "JPEG":
        kw.update(quality=quality, subsampling=0 if quality >= 90 else 2)
    elif fmt == "WEBP":
        kw.update(quality=quality, lossless=quality >= 100, method=4)
    elif fmt == "TIFF":
        kw.update(compression="tiff_deflate")
    elif fmt == "PNG":
        kw.update(compress_level=PNG_LEVEL)
        if pic.text and not strip_metadata:
            from PIL.PngImagePlugin import PngInfo

            info = PngInfo()
            for key, value in pic.text.items():
                info.add_itxt(key, value)
            kw["pnginfo"] = info
    im.save(fp, format=fmt, **kw)
    return notes


def save_animation(frames: list[np.ndarray], dest: str | Path, duration_ms: int = 80) -> None:
    """Frames (H, W, C) uint8 (C = 1, 3 or 4) as a looping animated GIF or WebP (by suffix), written atomically."""
    fmt = {".gif": "GIF", ".webp": "WEBP"}.get(Path(dest).suffix.lower())
    if fmt is None:
        raise ImageWriteError(f"{dest}: an animation is written as .gif or .webp")
    ims = [Image.fromarray(f[..., 0] if f.shape[2] == 1 else f) for f in frames]
    kw = {"lossless": True} if fmt == "WEBP" else {"disposal": 2}
    with atomic_path(dest) as tmp:
        ims[0].save(tmp, format=fmt, save_all=True, append_images=ims[1:], duration=duration_ms, loop=0, **kw)


def save(pic: Picture, dest: str | Path, fmt: str | None = None, quality: int = 95,
         strip_metadata: bool = False) -> list[str]:
    """Encode and write atomically (temp file + rename), or to stdout for '-'. Returns warnings for the caller."""
    fmt = fmt or format_for(dest)
    if str(dest) == STDIO:  # encode fully first: a failed encode writes nothing to the pipe
        data, notes = encode(pic, fmt, quality, strip_metadata)
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return notes
    try:
        with atomic_path(dest) as tmp, open(tmp, "wb") as fp:
            notes = write(pic, fp, fmt, quality, strip_metadata)
    except OSError as e:
        raise ImageWriteError(f"{dest}: cannot write: {e.strerror or e}") from None
    return notes


def _to8(a: np.ndarray) -> np.ndarray:
    return ((a.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def _png16(pixels: np.ndarray, alpha: np.ndarray | None, icc: bytes | None, exif: bytes | None,
           dpi: tuple[float, float] | None) -> bytes:
    """A 16-bit PNG (gray+alpha, RGB or RGBA) with iCCP, eXIf and pHYs chunks. Rows use the Up filter."""
    h, w, c = pixels.shape
    arr = pixels if alpha is None else np.concatenate([pixels, alpha[..., None]], axis=-1)
    color_type = {1: 0, 2: 4, 3: 2, 4: 6}[arr.shape[2]]
    rows = arr.astype(">u2").reshape(h, -1).view(np.uint8)
    up = rows.copy()
    up[1:] -= rows[:-1]  # Up filter: byte minus the byte above, modulo 256
    raw = np.concatenate([np.full((h, 1), 2, np.uint8), up], axis=1)
    out = [b"\x89PNG\r\n\x1a\n", _png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0))]
    if icc:
        out.append(_png_chunk(b"iCCP", b"icc\x00\x00" + zlib.compress(icc)))
    if dpi:
        ppm = [round(d / 0.0254) for d in dpi]
        out.append(_png_chunk(b"pHYs", struct.pack(">IIB", ppm[0], ppm[1], 1)))
    if exif:
        out.append(_png_chunk(b"eXIf", exif[6:] if exif.startswith(b"Exif\x00\x00") else exif))
    out.append(_png_chunk(b"IDAT", zlib.compress(raw.tobytes(), PNG_LEVEL)))
    out.append(_png_chunk(b"IEND", b""))
    return b"".join(out)


def _tiff16(pixels: np.ndarray, alpha: np.ndarray | None, icc: bytes | None) -> bytes:
    """An uncompressed little-endian 16-bit TIFF (gray+alpha, RGB or RGBA) with the ICC profile tag."""
    arr = pixels if alpha is None else np.concatenate([pixels, alpha[..., None]], axis=-1)
    h, w, c = arr.shape
    body = arr.astype("<u2").tobytes()
    extra = c - (1 if pixels.shape[2] == 1 else 3)
    entries: list[tuple[int, int, int, bytes]] = []  # (tag, type, count, value bytes)

    def short(tag: int, *vals: int) -> None:
        entries.append((tag, 3, len(vals), struct.pack(f"<{len(vals)}H", *vals)))

    def long(tag: int, *vals: int) -> None:
        entries.append((tag, 4, len(vals), struct.pack(f"<{len(vals)}I", *vals)))

    long(256, w)
    long(257, h)
    short(258, *([16] * c))
    short(259, 1)  # no compression
    short(262, 1 if pixels.shape[2] == 1 else 2)  # BlackIsZero or RGB
    long(273, 0)  # strip offset, patched below
    short(277, c)
    long(278, h)
    long(279, len(body))
    short(284, 1)  # chunky
    if extra:
        short(338, 2)  # unassociated alpha
    if icc:
        entries.append((34675, 7, len(icc), icc))
    entries.sort()
    ifd_size = 2 + 12 * len(entries) + 4
    data_off = 8 + ifd_size
    values, blobs = [], b""
    for _tag, _typ, _count, val in entries:
        if len(val) <= 4:
            values.append(val.ljust(4, b"\x00"))
        else:
            values.append(struct.pack("<I", data_off + len(blobs)))
            blobs += val + (b"\x00" if len(val) % 2 else b"")
    strip_off = data_off + len(blobs)
    ifd = struct.pack("<H", len(entries))
    for (tag, typ, count, _), v in zip(entries, values, strict=True):
        if tag == 273:
            v = struct.pack("<I", strip_off)
        ifd += struct.pack("<HHI", tag, typ, count) + v
    ifd += struct.pack("<I", 0)
    return b"II*\x00" + struct.pack("<I", 8) + ifd + blobs + body
