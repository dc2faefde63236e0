import numpy as np
import torch

from gancli.imageio import Picture
from gancli.models import build
from gancli.tasks.upscale import upscale_picture
from tests.conftest import gradient_rgb, tiny_sr

CPU = torch.device("cpu")


def test_tiled_equals_untiled():
    model = tiny_sr()
    pic = Picture(gradient_rgb(70, 90))
    whole = upscale_picture(model, pic, 4, device=CPU, tile=1000).pixels
    for tile in (16, 33):
        tiled = upscale_picture(model, pic, 4, device=CPU, tile=tile).pixels
        diff = np.abs(tiled.astype(int) - whole.astype(int))
        assert diff.max() <= 1, (tile, diff.max())  # within 1/255
        assert (diff > 0).mean() < 0.001


def test_output_sizes_dtypes_and_gray():
    model = tiny_sr(scale=2)
    pic = Picture(gradient_rgb(12, 20)[..., :1].astype(np.uint16) * 257)
    out = upscale_picture(model, pic, 2, device=CPU, tile=8)
    assert out.pixels.shape == (24, 40, 1) and out.pixels.dtype == np.uint16


def test_alpha_edges_have_no_dark_halo():
    """A red disc on transparent black: with premultiplied alpha no visible pixel gets darker than the disc."""
    model = build("compact_sr", {"scale": 4, "num_feat": 8, "num_conv": 2})
    with torch.no_grad():
        list(model.body)[-1].weight.zero_()  # the net is now its bilinear base: a pure interpolator
        list(model.body)[-1].bias.zero_()
    y, x = np.mgrid[0:32, 0:32]
    disc = ((y - 16) ** 2 + (x - 16) ** 2) < 100
    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[disc] = (255, 0, 0)
    alpha = np.where(disc, 255, 0).astype(np.uint8)
    out = upscale_picture(model, Picture(rgb, alpha), 4, device=CPU)
    visible = out.alpha > 8
    assert visible.any() and (out.alpha[visible] < 255).any()  # there is a soft edge
    assert out.pixels[visible][:, 0].min() >= 250  # and it stays red, not dark red
    # without premultiplication the same interpolator darkens the edge
    naive = upscale_picture(model, Picture(rgb), 4, device=CPU)
    assert naive.pixels[visible][:, 0].min() < 200


def test_out_of_memory_halves_the_tile(monkeypatch):
    """On CUDA an out-of-memory error halves the tile and starts the image again (simulated on the CPU)."""
    from gancli.tasks import upscale as up

    real, tiles = up._upscale_tiled, []

    def flaky(model, pic, scale, device, dtype, tile, on_tile, fix_color=False):
        tiles.append(tile)
        if tile > 32:
            raise torch.cuda.OutOfMemoryError("simulated")
        return real(model, pic, scale, device, dtype, tile, on_tile, fix_color)

    monkeypatch.setattr(up, "_upscale_tiled", flaky)
    out = up.upscale_picture(tiny_sr(), Picture(gradient_rgb(20, 20)), 4, device=CPU, tile=128)
    assert tiles == [128, 64, 32] and out.pixels.shape == (80, 80, 3)


def test_color_fix_removes_a_color_cast_and_keeps_tiles_seamless():
    model = tiny_sr()
    with torch.no_grad():  # make the net add a strong red cast
        last = list(model.body)[-1]
        last.weight.zero_()
        last.bias.zero_()
        last.bias[:16] = 0.25  # pixel shuffle x4: the conv's first 16 output channels are the red sub-pixels
    pic = Picture(gradient_rgb(48, 56))
    cast = upscale_picture(model, pic, 4, device=CPU).pixels.astype(float)
    fixed = upscale_picture(model, pic, 4, device=CPU, fix_color=True).pixels.astype(float)
    ref = np.repeat(np.repeat(pic.pixels.astype(float), 4, 0), 4, 1)
    assert cast[..., 0].mean() - ref[..., 0].mean() > 30
    assert abs(fixed[..., 0].mean() - ref[..., 0].mean()) < 3
    tiled = upscale_picture(model, pic, 4, device=CPU, fix_color=True, tile=20).pixels.astype(float)
    assert np.abs(tiled - fixed).max() <= 1
