"""Free-form training masks: deterministic, bounded hole ratios with a wide spread, and all four kinds."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from gancli.training import mask_gen


def test_same_seed_same_mask():
    a = mask_gen.random_mask(256, 256, np.random.default_rng(7))
    b = mask_gen.random_mask(256, 256, np.random.default_rng(7))
    c = mask_gen.random_mask(256, 256, np.random.default_rng(8))
    assert a.dtype == bool and a.shape == (256, 256)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_batch_masks_is_a_sequence_of_draws():
    batch = mask_gen.batch_masks(4, 64, 96, np.random.default_rng(3))
    assert batch.shape == (4, 64, 96) and batch.dtype == bool
    rng = np.random.default_rng(3)
    for m in batch:
        np.testing.assert_array_equal(m, mask_gen.random_mask(64, 96, rng))


def test_hole_ratios_kinds_and_spread():
    rng = np.random.default_rng(0)
    draws = [mask_gen.random_mask_and_kind(256, 256, rng) for _ in range(200)]
    ratios = np.array([m.mean() for m, _ in draws])
    assert ratios.min() >= 0.005 and ratios.max() <= 0.6
    assert (ratios < 0.1).sum() >= 10 and (ratios > 0.3).sum() >= 10
    kinds = Counter(kind for _, kind in draws)
    assert set(kinds) == set(mask_gen.KINDS) and min(kinds.values()) >= 20


def test_each_kind_on_its_own():
    rng = np.random.default_rng(1)
    mean = {k: np.mean([mask_gen.random_mask(256, 256, rng, kind=k).mean() for _ in range(20)])
            for k in mask_gen.KINDS}
    assert mean["thin"] < mean["thick"]
    box = mask_gen.random_mask(128, 160, rng, kind="boxes")  # a union of rectangles: each row is one of few patterns
    assert len({row.tobytes() for row in box}) <= 2 * 3 + 1
    with pytest.raises(ValueError, match="unknown mask kind"):
        mask_gen.random_mask(32, 32, rng, kind="circles")


def test_sizes_scale_with_the_image():
    rng = np.random.default_rng(2)
    small = np.mean([mask_gen.random_mask(128, 128, rng, kind="thin").mean() for _ in range(20)])
    large = np.mean([mask_gen.random_mask(512, 384, rng, kind="thin").mean() for _ in range(20)])
    assert 0.5 < small / large < 2  # strokes grow with the image: about the same share of it
