"""Inpainting masks: every image mode, thresholds, alpha, boxes, dilation, size checks and --mask DIR matching."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from gancli import imageio, masks
from gancli.masks import MaskError, MaskSource

# the expected hole (True) of every test mask, 6x8
HOLE = np.zeros((6, 8), dtype=bool)
HOLE[1:4, 2:5] = True
HOLE[5, 7] = True


def _save(tmp_path, im: Image.Image, name: str = "mask.png") -> str:
    path = tmp_path / name
    im.save(path)
    return str(path)


def _rgb(hole_color, other_color) -> np.ndarray:
    return np.where(HOLE[..., None], np.array(hole_color, np.uint8), np.array(other_color, np.uint8)).astype(np.uint8)


def _mode_image(mode: str) -> Image.Image:
    if mode == "L":
        return Image.fromarray(np.where(HOLE, 200, 30).astype(np.uint8))
    if mode == "1":
        return Image.fromarray(HOLE)
    if mode == "RGB":  # a red stroke on dark blue: the max over channels finds it
        return Image.fromarray(_rgb((255, 0, 0), (0, 0, 90)))
    if mode == "RGBA":  # an editor's brush layer: one color everywhere, the stroke in the alpha only
        rgba = np.zeros((6, 8, 4), np.uint8)
        rgba[..., 3] = np.where(HOLE, 255, 0)
        return Image.fromarray(rgba)
    if mode == "LA":
        la = np.full((6, 8, 2), 255, np.uint8)
        la[..., 1] = np.where(HOLE, 230, 10)
        return Image.fromarray(la)
    if mode == "P":
        im = Image.frombytes("P", (8, 6), HOLE.astype(np.uint8).tobytes())
        im.putpalette([0, 0, 0, 255, 255, 255])
        return im
    if mode == "I;16":
        return Image.fromarray(np.where(HOLE, 40000, 20000).astype(np.uint16))
    raise AssertionError(mode)


@pytest.mark.parametrize("mode", ["L", "1", "RGB", "RGBA", "LA", "P", "I;16"])
def test_every_mode_gives_the_hole(tmp_path, mode):
    im = _mode_image(mode)
    assert im.mode == mode
    pic = imageio.load(_save(tmp_path, im))
    mask = masks.mask_from_picture(pic)
    assert mask.dtype == bool and mask.shape == (6, 8)
    np.testing.assert_array_equal(mask, HOLE)
    if mode != "RGB":  # a colored pixel is a hole in both senses: see test_color_strokes_on_white_with_invert
        np.testing.assert_array_equal(masks.mask_from_picture(pic, invert=True), ~HOLE)


def test_threshold_and_invert_on_gray():
    values = np.array([[0, 100, 127, 128, 200, 255]], np.uint8)
    pic = imageio.Picture(values[..., None])
    assert masks.mask_from_picture(pic).tolist() == [[False, False, False, True, True, True]]
    assert masks.mask_from_picture(pic, threshold=199).tolist() == [[False] * 4 + [True, True]]
    assert masks.mask_from_picture(pic, threshold=0).tolist() == [[False] + [True] * 5]
    assert masks.mask_from_picture(pic, invert=True).tolist() == [[True, True, True, False, False, False]]
    for bad in (-1, 256, 1.5):
        with pytest.raises(MaskError, match="threshold"):
            masks.mask_from_picture(pic, threshold=bad)


def test_threshold_is_on_the_8bit_scale_for_16bit_masks():
    pic = imageio.Picture(np.array([[32767, 32768, 0, 65535]], np.uint16)[..., None])  # 127.498 and 127.502 x 257
    assert masks.mask_from_picture(pic).tolist() == [[False, True, False, True]]


def test_color_strokes_on_white_with_invert():
    pic = imageio.Picture(_rgb((0, 0, 255), (255, 255, 255)))  # a blue stroke on white: dark in red and green
    np.testing.assert_array_equal(masks.mask_from_picture(pic, invert=True), HOLE)
    np.testing.assert_array_equal(masks.mask_from_picture(pic), np.ones_like(HOLE))  # without invert: all bright


def test_transparent_pixels_are_never_holes_when_the_color_varies():
    rgb = _rgb((255, 255, 255), (0, 0, 0))
    rgb[0, 0] = (255, 255, 255)  # white but fully transparent: not a hole
    alpha = np.full((6, 8), 255, np.uint8)
    alpha[0, 0] = 0
    np.testing.assert_array_equal(masks.mask_from_picture(imageio.Picture(rgb, alpha)), HOLE)
    # with invert the no-hole color is white: a transparent pixel composites to white, still no hole
    inv = imageio.Picture(255 - rgb, alpha)
    np.testing.assert_array_equal(masks.mask_from_picture(inv, invert=True), HOLE)


def test_uniform_color_with_opaque_alpha_uses_the_color():
    pic = imageio.Picture(np.full((2, 3, 3), 255, np.uint8), np.full((2, 3), 255, np.uint8))
    assert masks.mask_from_picture(pic).all()


def test_mask_from_alpha(tmp_path):
    rgba = np.zeros((1, 4, 4), np.uint8)
    rgba[..., 3] = [0, 127, 128, 255]
    pic = imageio.load(_save(tmp_path, Image.fromarray(rgba)))
    assert masks.mask_from_alpha(pic).tolist() == [[True, True, False, False]]
    assert masks.mask_from_alpha(pic, threshold=0).tolist() == [[True, False, False, False]]
    with pytest.raises(MaskError, match=r"photo\.jpg: has no alpha channel"):
        masks.mask_from_alpha(imageio.Picture(np.zeros((2, 2, 3), np.uint8)), name="photo.jpg")


def test_parse_box():
    assert masks.parse_box("10,20,64,48") == (10, 20, 64, 48)
    assert masks.parse_box(" 1, 2 ,3,4 ") == (1, 2, 3, 4)
    for bad in ("1,2,3", "1,2,3,4,5", "a,b,c,d", "1.5,0,2,2", ""):
        with pytest.raises(MaskError, match="four whole numbers"):
            masks.parse_box(bad)
    for bad in ("-1,0,5,5", "0,-2,5,5", "0,0,0,5", "0,0,5,-1"):
        with pytest.raises(MaskError, match="must be >= 0"):
            masks.parse_box(bad)


def test_boxes_are_clipped_and_a_box_outside_is_an_error():
    m = masks.boxes_mask((10, 8), [(8, 6, 5, 5), "0,0,2,1"])
    assert m.shape == (8, 10) and m.sum() == 4 + 2
    assert m[6:, 8:].all() and m[0, :2].all()
    with pytest.raises(MaskError, match=r"shot\.png: --box 10,0,2,2 lies outside the 10x8 image"):
        masks.boxes_mask((10, 8), [(10, 0, 2, 2)], name="shot.png")
    with pytest.raises(MaskError, match="outside"):
        masks.boxes_mask((10, 8), ["0,8,3,3"])


@pytest.mark.parametrize("n", [1, 2, 7, 12])
def test_dilate_grows_an_isolated_pixel_by_exactly_n_into_an_octagon(n):
    size = 2 * n + 9
    c = size // 2
    m = np.zeros((size, size), bool)
    m[c, c] = True
    grown = masks.dilate(m, n)
    assert np.flatnonzero(grown[c]).tolist() == list(range(c - n, c + n + 1))  # along x: exactly n
    assert np.flatnonzero(grown[:, c]).tolist() == list(range(c - n, c + n + 1))  # along y
    s = round(n * (math.sqrt(2) - 1))  # the octagon: a square of half-side s grown by a diamond of n - s
    dy, dx = np.abs(np.mgrid[0:size, 0:size] - c)
    np.testing.assert_array_equal(grown, np.maximum(dx - s, 0) + np.maximum(dy - s, 0) <= n - s)
    assert not m[c, c + 1]  # the input is untouched


def test_dilate_at_the_edges_and_trivial_cases():
    m = np.zeros((5, 6), bool)
    m[0, 0] = True
    grown = masks.dilate(m, 2)
    assert grown[0, :3].all() and not grown[0, 3] and grown[:3, 0].all() and grown[1, 1] and not grown[2, 2]
    np.testing.assert_array_equal(masks.dilate(m, 0), m)
    assert not masks.dilate(np.zeros((4, 4), bool), 3).any()
    with pytest.raises(MaskError, match=">= 0"):
        masks.dilate(m, -1)


def test_dilate_a_large_mask():
    m = np.zeros((3000, 4000), bool)
    m[0, 0] = m[-1, -1] = m[1500, 2000] = True
    grown = masks.dilate(m, 50)
    assert grown[1500, 2050] and not grown[1500, 2051] and grown[0, 50] and not grown[0, 51] and grown[-51, -1]


def test_fit_mask_size_mismatch_and_resize():
    m = np.array([[True, False], [False, True]])
    with pytest.raises(MaskError, match=r"mask m\.png is 2x2 but image a\.jpg is 4x3; give --resize-mask"):
        masks.fit_mask(m, (4, 3), mask_name="m.png", image_name="a.jpg")
    assert masks.fit_mask(m, (2, 2)) is m
    big = masks.fit_mask(m, (4, 4), resize=True)
    np.testing.assert_array_equal(big, np.kron(m, np.ones((2, 2), bool)))
    assert masks.fit_mask(m, (7, 5), resize=True).shape == (5, 7)


def test_is_empty():
    assert masks.is_empty(np.zeros((3, 3), bool))
    assert not masks.is_empty(np.eye(3, dtype=bool))


# ------------------------------------------------------------------------------------------------- resolve_masks


def _images(folder, names, size=(8, 6)) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in names:
        Image.new("RGB", size, (90, 120, 150)).save(folder / name)
        paths.append(str(folder / name))
    return paths


def _mask_file(path, hole=HOLE) -> str:
    path.parent.mkdir(exist_ok=True)
    Image.fromarray(hole.astype(np.uint8) * 255).save(path)
    return str(path)


def test_resolve_needs_exactly_one_mask_source(tmp_path):
    imgs = _images(tmp_path / "in", ["a.png"])
    with pytest.raises(MaskError, match="give --mask, --mask-from-alpha or --box"):
        masks.resolve_masks(imgs)
    with pytest.raises(MaskError, match="not both"):
        masks.resolve_masks(imgs, mask=_mask_file(tmp_path / "m.png"), from_alpha=True)
    with pytest.raises(MaskError, match="no such file or folder"):
        masks.resolve_masks(imgs, mask=str(tmp_path / "nope.png"))
    with pytest.raises(MaskError, match="also one of the input images"):
        masks.resolve_masks(imgs, mask=imgs[0])
    with pytest.raises(MaskError, match="--box"):
        masks.resolve_masks(imgs, boxes=["1,2"])
    with pytest.raises(MaskError, match="invert needs"):
        masks.resolve_masks(imgs, boxes=["1,2,3,4"], invert=True)


def test_one_mask_file_for_every_image(tmp_path):
    imgs = _images(tmp_path / "in", ["a.png", "b.jpg"])
    sources = masks.resolve_masks(imgs, mask=_mask_file(tmp_path / "m.png"), boxes=["7,0,1,1"], dilate=0)
    assert [s.image for s in sources] == imgs and sources[0].label.endswith("m.png + 1 box")
    expect = HOLE.copy()
    expect[0, 7] = True  # the box is added to the mask's hole
    for s in sources:
        np.testing.assert_array_equal(s.load(imageio.load(s.image)), expect)
    inverted = masks.resolve_masks(imgs, mask=str(tmp_path / "m.png"), invert=True)[0]
    np.testing.assert_array_equal(inverted.load(imageio.load(imgs[0])), ~HOLE)


def test_a_broken_mask_file_fails_up_front(tmp_path):
    imgs = _images(tmp_path / "in", ["a.png"])
    bad = tmp_path / "m.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(MaskError, match=r"^mask .*m\.png: not a readable image"):
        masks.resolve_masks(imgs, mask=str(bad))


def test_mask_of_another_size_needs_resize(tmp_path):
    imgs = _images(tmp_path / "in", ["a.png"], size=(16, 12))
    m = _mask_file(tmp_path / "m.png")
    source = masks.resolve_masks(imgs, mask=m)[0]
    with pytest.raises(MaskError, match=r"is 8x6 but image .*a\.png is 16x12; give --resize-mask"):
        source.load(imageio.load(imgs[0]))
    source = masks.resolve_masks(imgs, mask=m, resize=True)[0]
    np.testing.assert_array_equal(source.load(imageio.load(imgs[0])), np.kron(HOLE, np.ones((2, 2), bool)))


def test_boxes_only_alpha_and_dilate(tmp_path):
    rgba = np.zeros((6, 8, 4), np.uint8)
    rgba[..., 3] = 255
    rgba[2, 3, 3] = 0
    Image.fromarray(rgba).save(tmp_path / "cut.png")
    img = str(tmp_path / "cut.png")
    pic = imageio.load(img)
    boxes_only = masks.resolve_masks([img], boxes=["0,0,2,2"])[0]
    assert boxes_only.load(pic).sum() == 4 and boxes_only.label == "1 box"
    alpha = masks.resolve_masks([img], from_alpha=True, boxes=["7,5,1,1"], dilate=1)[0]
    got = alpha.load(pic)
    assert got[2, 2:5].all() and got[1:4, 3].all() and got[5, 6:].all() and got[4, 7] and got.sum() == 5 + 3
    plain = _images(tmp_path / "in", ["opaque.png"])
    with pytest.raises(MaskError, match=r"opaque\.png: has no alpha channel"):
        masks.resolve_masks(plain, from_alpha=True)[0].load(imageio.load(plain[0]))


def test_mask_folder_matches_by_stem(tmp_path):
    imgs = _images(tmp_path / "a" / "b", ["photo.jpg", "cat.png", "dog.png"])
    md = tmp_path / "masks"
    _mask_file(md / "photo.png")
    _mask_file(md / "cat_mask.PNG")
    _mask_file(md / "dog-mask.bmp")
    _mask_file(md / "unused.png")
    sources = masks.resolve_masks(imgs, mask=str(md))
    assert [s.mask_file for s in sources] == [str(md / "photo.png"), str(md / "cat_mask.PNG"), str(md / "dog-mask.bmp")]
    for s in sources:
        np.testing.assert_array_equal(s.load(imageio.load(s.image)), HOLE)


def test_mask_folder_lists_every_image_without_a_mask(tmp_path):
    imgs = _images(tmp_path / "in", ["x.png", "ok.png", "y.png", "z.png"])
    md = tmp_path / "masks"
    _mask_file(md / "ok.png")
    with pytest.raises(MaskError) as err:
        masks.resolve_masks(imgs, mask=str(md))
    msg = str(err.value)
    assert "\n" not in msg and f"no mask in {md}/ for 3 images:" in msg
    assert all(name in msg for name in ("x.png", "y.png", "z.png")) and "ok.png" not in msg


def test_mask_folder_ambiguity_is_an_error(tmp_path):
    imgs = _images(tmp_path / "in", ["photo.jpg"])
    md = tmp_path / "masks"
    _mask_file(md / "photo.png")
    _mask_file(md / "photo_mask.png")
    with pytest.raises(MaskError, match=r"photo\.jpg matches 2 masks \(.*photo\.png, .*photo_mask\.png\)"):
        masks.resolve_masks(imgs, mask=str(md))


def test_masks_beside_their_images_and_lazy_loading(tmp_path):
    folder = tmp_path / "shots"
    imgs = _images(folder, ["one.jpg", "two.jpg"])
    _mask_file(folder / "one_mask.png")
    (folder / "two_mask.png").write_bytes(b"broken")  # found now, read only when two.jpg is processed
    first, second = masks.resolve_masks(imgs, mask=str(folder))  # an image is never its own mask
    np.testing.assert_array_equal(first.load(imageio.load(imgs[0])), HOLE)
    with pytest.raises(MaskError, match=r"two_mask\.png: not a readable image"):
        second.load(imageio.load(imgs[1]))


def test_stdin_cannot_match_a_mask_folder(tmp_path):
    md = tmp_path / "masks"
    _mask_file(md / "a.png")
    with pytest.raises(MaskError, match="stdin"):
        masks.resolve_masks(["-"], mask=str(md))


def test_mask_source_defaults_to_an_empty_hole():
    pic = imageio.Picture(np.zeros((3, 4, 3), np.uint8))
    assert masks.is_empty(MaskSource("x.png").load(pic))
