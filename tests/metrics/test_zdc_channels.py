"""The five ZP channels, their Wasserstein distances, empty responses and the hottest pixel."""

import numpy as np
import pytest
from scipy import stats

from recogan_app.metrics.zdc import (channel_masks, channel_sums, empty_count, five_channel_ws, hottest_pixel,
                                     hottest_pixel_error)


@pytest.mark.parametrize("convention", ["published", "jax"])
def test_masks_partition_the_image(convention):
    masks = channel_masks(convention)
    assert masks.shape == (5, 56, 30)
    assert masks.sum(axis=(1, 2)).tolist() == [210, 210, 210, 210, 840]
    assert np.array_equal(masks.sum(axis=0), np.ones((56, 30)))  # every pixel in exactly one channel


@pytest.mark.parametrize("convention, pixels", [
    # (row, col) → channel (1-based), worked out by hand from the definitions
    ("published", {(28, 1): 1, (55, 28): 2, (0, 1): 3, (0, 29): 4, (0, 0): 5, (28, 0): 5, (55, 29): 5}),
    ("jax", {(0, 0): 1, (0, 16): 2, (28, 0): 3, (55, 29): 4, (0, 1): 5, (28, 1): 5, (55, 28): 5}),
])
def test_masks_by_hand(convention, pixels):
    masks = channel_masks(convention)
    for (row, col), channel in pixels.items():
        assert masks[:, row, col].tolist().index(True) == channel - 1, (row, col)


def test_channel_sums_by_hand():
    image = np.zeros((1, 56, 30))
    image[0, 28, 1] = 3      # ch1
    image[0, 0, 1] = 5       # ch3
    image[0, 0, 0] = 7       # ch5
    image[0, 55, 29] = 1     # ch5
    assert channel_sums(image).tolist() == [[3, 0, 5, 0, 8]]
    with pytest.raises(ValueError, match="56, 30"):
        channel_sums(np.zeros((2, 30, 56)))
    with pytest.raises(ValueError, match="convention"):
        channel_masks("other")


def test_five_channel_ws_matches_scipy_averaged_over_draws():
    rng = np.random.default_rng(0)
    real = rng.poisson(0.3, (200, 56, 30))
    draws = [rng.poisson(0.35, (150, 56, 30)) for _ in range(3)]
    result = five_channel_ws(real, draws)
    ref = channel_sums(real)
    table = np.array([[stats.wasserstein_distance(ref[:, k], channel_sums(d)[:, k]) for k in range(5)] for d in draws])
    assert np.allclose(result["per_channel"], table.mean(axis=0))
    assert result["mean"] == pytest.approx(table.mean())
    assert np.allclose(result["per_draw"], table.mean(axis=1))


def test_empty_and_hottest_pixel():
    images = np.zeros((3, 56, 30))
    images[0, 10, 20] = 4
    images[1, 0, 0] = 0.4      # rounds to no photon: empty
    images[2, 55, 3], images[2, 20, 3] = 9, 2
    assert empty_count(images) == 1
    assert hottest_pixel(images).tolist() == [[10, 20], [0, 0], [55, 3]]
    shifted = np.zeros_like(images)
    shifted[0, 13, 24] = 1     # 5 pixels away (3-4-5)
    shifted[1, 0, 0] = 1       # same place
    shifted[2, 55, 5] = 1      # 2 pixels away
    assert hottest_pixel_error(images, shifted) == pytest.approx((5 + 0 + 2) / 3)
