"""ZP response metrics: the five readout channels, their Wasserstein distances, empty responses
and the position of the hottest pixel. Pure numpy functions of photon-count images (N, 56, 30).

The ZP's fibres alternate between two kinds of photomultiplier: one common PMT reads every other
fibre (a checkerboard), four tower PMTs read the rest, one per quadrant. Seed 001 and its
successors compare models by the 1-D Wasserstein distance of each channel's photon sum between
real and generated events for the same conditions.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from recogan_app.data.zdc import IMAGE_SHAPE
from recogan_app.metrics.distributions import wasserstein

__all__ = ["CONVENTIONS", "channel_masks", "channel_sums", "empty_count", "five_channel_ws",
           "hottest_pixel", "hottest_pixel_error"]

CONVENTIONS = ("published", "jax")
"""Channel conventions. ``published`` (seed 001's TF/PyTorch code): ch1–4 = odd pixels
((row + col) odd) in the quadrants (row ≥ 28, col < 15), (row ≥ 28, col ≥ 15), (row < 28, col < 15),
(row < 28, col ≥ 15); ch5 = all even pixels. ``jax`` (m-wojnar/zdc): ch1–4 = even pixels in the
quadrants (row < 28, col < 15), (row < 28, col ≥ 15), (row ≥ 28, col < 15), (row ≥ 28, col ≥ 15);
ch5 = all odd pixels."""


def channel_masks(convention: str = "published") -> np.ndarray:
    """The five channel masks, shape (5, 56, 30) bool; they partition the image (210 × 4 + 840).

    Parameters
    ----------
    convention : {'published', 'jax'}
        See :data:`CONVENTIONS`.
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown channel convention {convention!r}; one of {CONVENTIONS}")
    rows, cols = np.indices(IMAGE_SHAPE)
    odd = (rows + cols) % 2 == 1
    top, left = rows < IMAGE_SHAPE[0] // 2, cols < IMAGE_SHAPE[1] // 2
    quadrants = [~top & left, ~top & ~left, top & left, top & ~left]
    towers, common = (odd, ~odd) if convention == "published" else (~odd, odd)
    if convention == "jax":
        quadrants = quadrants[2:] + quadrants[:2]
    return np.stack([towers & q for q in quadrants] + [common])


def channel_sums(images, convention: str = "published") -> np.ndarray:
    """Photon sum of each channel per event.

    Parameters
    ----------
    images : array_like, shape (N, 56, 30)
        Photon counts (models' log1p output must be turned back with ``expm1`` first).
    convention : {'published', 'jax'}

    Returns
    -------
    ndarray, shape (N, 5), float64
    """
    x = np.asarray(images, dtype=np.float64)
    if x.ndim != 3 or x.shape[1:] != IMAGE_SHAPE:
        raise ValueError(f"images must have shape (N, 56, 30), got {x.shape}")
    return x.reshape(len(x), -1) @ channel_masks(convention).reshape(5, -1).T.astype(np.float64)


def five_channel_ws(real, generated: Sequence, convention: str = "published") -> dict:
    """Seed 001's figure of merit: per-channel W1 between real and generated channel sums,
    averaged over noise draws, then over the five channels. In photon counts.

    Parameters
    ----------
    real : array_like, shape (N, 56, 30)
        Real responses.
    generated : sequence of array_like, each (M, 56, 30)
        One generated set per noise draw, for the same conditions as ``real``.
    convention : {'published', 'jax'}

    Returns
    -------
    dict
        ``per_channel``: ndarray (5,), mean over draws; ``mean``: their mean over channels;
        ``per_draw``: ndarray (draws,), the five-channel mean of each draw (its spread shows the
        metric's own noise).
    """
    if len(generated) == 0:
        raise ValueError("no generated draws to compare")
    reference = channel_sums(real, convention)
    table = np.array([[wasserstein(reference[:, k], sums[:, k]) for k in range(5)]
                      for sums in (channel_sums(g, convention) for g in generated)])
    per_channel = table.mean(axis=0)
    return {"per_channel": per_channel, "mean": float(per_channel.mean()), "per_draw": table.mean(axis=1)}


def empty_count(images) -> int:
    """Events with no photon: every pixel below 0.5, i.e. zero once rounded to counts."""
    x = np.asarray(images)
    return int(np.count_nonzero(x.reshape(len(x), -1).max(axis=1, initial=0) < 0.5))


def hottest_pixel(images) -> np.ndarray:
    """(row, col) of each event's brightest pixel (the first in row-major order on ties), (N, 2) int."""
    x = np.asarray(images)
    return np.column_stack(np.unravel_index(x.reshape(len(x), -1).argmax(axis=1), IMAGE_SHAPE))


def hottest_pixel_error(real, generated) -> float:
    """Mean Euclidean distance, in pixels, between the hottest pixels of paired real and generated
    events (same conditions, same order): how well the shower is placed."""
    return float(np.linalg.norm(hottest_pixel(real) - hottest_pixel(generated), axis=1).mean())
