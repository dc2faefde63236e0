"""Hostile and unusual image files, built in memory: a named corpus (what each case is and how it must end) and the
seeds and mutations the hypothesis tests fuzz from. Nothing here is read from disk or downloaded."""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st
from PIL import Image

from gancli import imageio
from tests.conftest import gradient_rgb

RGB = gradient_rgb(24, 20, seed=7)  # (24, 20, 3) uint8: small, so every case runs in milliseconds


def encode(arr_or_im, fmt: str, **kw) -> bytes:
    im = arr_or_im if isinstance(arr_or_im, Image.Image) else Image.fromarray(arr_or_im)
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png_claiming(width: int, height: int, depth: int = 8, color_type: int = 2) -> bytes:
    """A PNG whose header claims width x height, with a few bytes of real (all-zero) data: a decompression bomb."""
    ihdr = png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + ihdr + png_chunk(b"IDAT", zlib.compress(b"\0" * 4096)) + png_chunk(b"IEND", b"")


def jpeg_claiming(width: int, height: int) -> bytes:
    """A real JPEG whose frame header (SOF0) is patched to claim width x height."""
    data = bytearray(encode(RGB, "JPEG"))
    sof = data.find(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def with_exif(fmt: str, **tags) -> bytes:
    exif = Image.Exif()
    for tag, value in tags.items():
        exif[int(tag[1:], 16)] = value  # t0112=6 -> tag 0x0112
    return encode(RGB, fmt, exif=exif.tobytes())


def animated(fmt: str, frames: int = 3) -> bytes:
    ims = [Image.fromarray(np.roll(RGB, 5 * k, axis=1)) for k in range(frames)]
    buf = io.BytesIO()
    ims[0].save(buf, fmt, save_all=True, append_images=ims[1:], duration=100, loop=0)
    return buf.getvalue()


def png_with_chunk_after_ihdr(chunk: bytes) -> bytes:
    data = encode(RGB, "PNG")
    return data[:33] + chunk + data[33:]  # 8 signature + 25 IHDR


def truncated(data: bytes, fraction: float = 0.5) -> bytes:
    return data[: int(len(data) * fraction)]


def rgb16() -> np.ndarray:
    return RGB.astype(np.uint16) * 257 + np.arange(20, dtype=np.uint16)[None, :, None]


def damaged_exif_png() -> bytes:
    """A PNG whose EXIF block has a broken TIFF header: the pixels are fine."""
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "cam"
    blob = bytearray(exif.tobytes())
    blob[7] = 0x17  # 'MM\0*' -> 'MM\0\x17': not a TIFF header
    return encode(RGB, "PNG", exif=bytes(blob))


@dataclass(frozen=True)
class Case:
    name: str  # file name, with the suffix it is given (which may lie about the content)
    data: bytes
    ok: bool  # decodes (maybe with notes) or must fail with one ImageReadError line
    note: str = ""  # a substring of a note the loader must give (ok cases) or of the error (failing cases)
    mode: str = ""  # ok cases: the Picture.mode it must decode to


def corpus() -> list[Case]:
    """Every named hostile or unusual input; built fresh (a few milliseconds)."""
    png, jpg = encode(RGB, "PNG"), encode(RGB, "JPEG", quality=90)
    png16 = imageio.encode(imageio.Picture(rgb16()), "PNG")[0]
    tif16_alpha = imageio.encode(imageio.Picture(rgb16(), rgb16()[..., 1]), "TIFF")[0]
    p = Image.fromarray(RGB).convert("P")
    clear = int(np.asarray(p)[0, 0])  # a palette index the image uses, made transparent
    cases = [
        # broken: one-line error, exit code of a failed item, no output
        Case("zero_bytes.png", b"", False, "empty file"),
        Case("truncated.png", truncated(png), False, "truncated"),
        Case("truncated.jpg", truncated(jpg), False, "truncated"),
        Case("truncated_header.jpg", jpg[:120], False, "not a readable image"),
        Case("truncated.webp", truncated(encode(RGB, "WEBP")), False, "not a readable image"),
        Case("truncated.tif", truncated(encode(RGB, "TIFF"), 0.7), False, "truncated"),
        Case("truncated.bmp", truncated(encode(RGB, "BMP"), 0.7), False, "truncated"),
        Case("truncated.gif", truncated(encode(RGB, "GIF"), 0.3), False, "not a readable image"),
        Case("truncated16.png", truncated(png16), False, "truncated"),
        Case("signature_only.png", b"\x89PNG\r\n\x1a\n", False, "not a readable image"),
        Case("garbage_after_signature.png", b"\x89PNG\r\n\x1a\n garbage", False, "not a readable image"),
        Case("text.png", b"this is not an image\n" * 20, False, "unknown or corrupt format"),
        Case("html.jpg", b"<html><body>404</body></html>", False, "unknown or corrupt format"),
        Case("svg.webp", b"<svg xmlns='http://www.w3.org/2000/svg' width='9' height='9'/>", False, "not a readable"),
        Case("random.bmp", np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes(), False,
             "not a readable image"),
        Case("bad_bit_depth.png", png[:8] + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 20, 24, 3, 2, 0, 0, 0))
             + png[33:], False, "not a readable"),
        Case("bomb_100000x100000.png", png_claiming(100_000, 100_000), False, "max-pixels"),
        Case("bomb_65000x65000.jpg", jpeg_claiming(65_000, 65_000), False, "max-pixels"),
        Case("bomb_16bit_30000x30000.png", png_claiming(30_000, 30_000, depth=16), False, "max-pixels"),
        # unusual but valid: decoded, with a note where something is dropped or converted
        Case("png_named.jpg", png, True, "", "RGB 8-bit"),
        Case("jpeg_named.png", jpg, True, "", "RGB 8-bit"),
        Case("animated.gif", animated("GIF"), True, "3 frames; only the first is used"),
        Case("animated.webp", animated("WEBP"), True, "3 frames; only the first is used"),
        Case("animated_apng.png", animated("PNG"), True, "3 frames; only the first is used"),
        Case("multipage.tif", animated("TIFF"), True, "3 frames; only the first is used"),
        Case("cmyk.jpg", encode(Image.fromarray(RGB).convert("CMYK"), "JPEG"), True, "CMYK converted", "RGB 8-bit"),
        Case("cmyk.tif", encode(Image.fromarray(RGB).convert("CMYK"), "TIFF"), True, "CMYK converted", "RGB 8-bit"),
        Case("palette_transparency.png", encode(p, "PNG", transparency=clear), True, "", "RGBA 8-bit"),
        Case("palette_transparency.gif", encode(p, "GIF", transparency=clear), True, "", "RGBA 8-bit"),
        Case("i16.png", encode(Image.fromarray(rgb16()[..., 0]), "PNG"), True, "", "L 16-bit"),
        Case("i16.tif", encode(Image.fromarray(rgb16()[..., 0]), "TIFF"), True, "", "L 16-bit"),
        Case("i32.tif", encode(Image.fromarray(RGB).convert("I"), "TIFF"), True, "", "L 16-bit"),
        Case("float.tif", encode(Image.fromarray(RGB).convert("F"), "TIFF"), True, "", "L 16-bit"),
        Case("one_bit.png", encode(Image.fromarray(RGB).convert("1"), "PNG"), True, "", "L 8-bit"),
        Case("one_bit.tif", encode(Image.fromarray(RGB).convert("1"), "TIFF"), True, "", "L 8-bit"),
        Case("gray_alpha.png", encode(Image.fromarray(RGB).convert("LA"), "PNG"), True, "", "LA 8-bit"),
        Case("lab.tif", encode(Image.fromarray(RGB).convert("LAB"), "TIFF"), True, "", "RGB 8-bit"),
        Case("rgb16.png", png16, True, "", "RGB 16-bit"),
        Case("rgba16.tif", tif16_alpha, True, "", "RGBA 16-bit"),
        Case("icon.ico", encode(RGB, "ICO"), True),
        Case("one_pixel.png", encode(RGB[:1, :1], "PNG"), True),
        Case("one_row.png", encode(RGB[:1], "PNG"), True),
        Case("exif_orientation_0.jpg", with_exif("JPEG", t0112=0), True, "orientation 0 is not 1-8"),
        Case("exif_orientation_9.jpg", with_exif("JPEG", t0112=9), True, "orientation 9 is not 1-8"),
        Case("exif_orientation_65535.png", with_exif("PNG", t0112=65535), True, "orientation 65535"),
        Case("exif_absurd_resolution.jpg", with_exif("JPEG", t011a=1e30, t011b=0.0, t0128=2), True),
        Case("exif_damaged.png", damaged_exif_png(), True, "EXIF is damaged"),
        Case("phys_absurd.png", png_with_chunk_after_ihdr(png_chunk(b"pHYs", struct.pack(">IIB", 2**32 - 1, 0, 1))),
             True, "not plausible"),
        Case("dpi_zero.png", encode(RGB, "PNG", dpi=(0, 0)), True),
    ]
    names = [c.name for c in cases]
    assert len(names) == len(set(names))
    return cases


# ------------------------------------------------------------------------------------------------ fuzzing seeds


def seeds() -> list[tuple[str, bytes]]:
    """Valid files of every format and the modes that take different code paths: what the mutations start from."""
    p = Image.fromarray(RGB).convert("P")
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "cam"
    return [
        (".png", encode(RGB, "PNG")),
        (".png", imageio.encode(imageio.Picture(rgb16()), "PNG")[0]),  # 16-bit color: the OpenCV path
        (".png", encode(p, "PNG", transparency=0)),
        (".png", encode(RGB, "PNG", exif=exif.tobytes(), dpi=(300, 300))),
        (".jpg", encode(RGB, "JPEG", quality=90, exif=exif.tobytes())),
        (".jpg", encode(Image.fromarray(RGB).convert("CMYK"), "JPEG")),
        (".webp", encode(RGB, "WEBP", quality=80)),
        (".tif", encode(RGB, "TIFF")),
        (".tif", imageio.encode(imageio.Picture(rgb16(), rgb16()[..., 0]), "TIFF")[0]),
        (".bmp", encode(RGB, "BMP")),
        (".gif", animated("GIF")),
    ]


SEEDS = seeds()
SUFFIXES = [".png", ".jpg", ".webp", ".tif", ".bmp"]


@st.composite
def mutated_images(draw) -> tuple[str, bytes, str]:
    """(suffix, bytes, how): a seed file damaged by 0-3 of: truncation, byte overwrites, inserted or deleted runs,
    a header size field set to an absurd value; and sometimes given another format's suffix (0 damages and a wrong
    suffix: a good file with a lying name)."""
    suffix, data = draw(st.sampled_from(SEEDS))
    data = bytearray(data)
    how = []
    for _ in range(draw(st.integers(0, 3))):
        op = draw(st.sampled_from(["truncate", "overwrite", "insert", "delete", "size_field"]))
        n = len(data)
        if n < 2:
            break
        at = draw(st.integers(0, n - 1))
        if op == "truncate":
            del data[at:]
        elif op == "overwrite":
            run = draw(st.binary(min_size=1, max_size=8))
            data[at:at + len(run)] = run
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif op == "delete":
            del data[at:at + draw(st.integers(1, 64))]
        else:  # PNG IHDR width/height, or any 4 bytes, set to a large number
            at = draw(st.sampled_from([16, 20, at])) if data[:4] == b"\x89PNG" else at
            data[at:at + 4] = struct.pack(">I", draw(st.sampled_from([0, 1, 65535, 2**16 + 1, 2**31 - 1, 2**32 - 1])))
        how.append(f"{op}@{at}")
    if draw(st.booleans()):
        suffix = draw(st.sampled_from(SUFFIXES))
    return suffix, bytes(data), ",".join(how)

