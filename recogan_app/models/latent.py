"""What every generator shares: it is driven by noise z ~ N(0, 1), drawn here and nowhere else (and a
conditional one by the conditions of its rows)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch import nn

NOISE_BLOCK = 16_384
"""Rows per block of generator noise. Each block draws from its own seed, so row i of a sample
depends only on (seed, i): the same whatever the chunking or the number of threads."""

Rows = Callable[..., torch.Tensor]
"""``rows(seed, start, stop)``: rows start…stop of the generated stream for ``seed``; a
conditional generator's takes those rows' (preprocessed) conditions as a fourth argument."""


def block_seed(seed: int, block: int) -> int:
    """An independent 63-bit seed for noise block ``block`` of the stream ``seed``."""
    return int(np.random.SeedSequence([seed, block]).generate_state(1, np.uint64)[0] >> np.uint64(1))


def noise_passes(seed: int, start: int, stop: int, z: torch.Tensor,
                 pass_rows: int) -> Iterator[tuple[torch.Tensor, slice, int]]:
    """The noise of rows start…stop of stream ``seed``, in passes of ``pass_rows`` rows at fixed
    offsets within each :data:`NOISE_BLOCK`, so that a row's pass (hence its float rounding)
    never depends on where a request starts or stops.

    ``z`` is a (NOISE_BLOCK, latent) buffer refilled block by block. Yields ``(noise, keep,
    at)``: a pass's noise rows, the slice of them requested, and where that slice goes in the
    output (row ``at`` of rows start…stop).
    """
    for block in range(start // NOISE_BLOCK, -(-stop // NOISE_BLOCK)):
        z.normal_(generator=torch.Generator(device=z.device).manual_seed(block_seed(seed, block)))
        first = block * NOISE_BLOCK
        lo, hi = max(start - first, 0), min(stop - first, NOISE_BLOCK)
        for a in range(lo - lo % pass_rows, hi, pass_rows):
            noise = z[a:a + pass_rows]
            keep = slice(max(lo - a, 0), min(hi - a, len(noise)))
            yield noise, keep, first + a + keep.start - start


def joined(x: torch.Tensor, conditions: torch.Tensor | None) -> torch.Tensor:
    """``x`` with a conditional model's ``conditions`` as further columns (``x`` alone without)."""
    return x if conditions is None else torch.cat((x, conditions), 1)


class OneHot(nn.Module):
    """The conditions followed by a one-hot block for each condition of few values (a species):
    ``points`` {condition index: its values' points in the network's space}
    (:meth:`~recogan_app.preprocessing.FeaturePipeline.categories`). A value not among the points
    (a species the training never saw) sets no bit; its coordinate still reaches the network."""

    TOLERANCE = 1e-4
    """How far (network space, float32) a condition may lie from its value's point."""

    def __init__(self, n_conditions: int, points: dict[int, np.ndarray] | None = None):
        super().__init__()
        self.columns = sorted(points or {})
        self.size = n_conditions + sum(len(points[c]) for c in self.columns)
        for c in self.columns:  # derived from the saved preprocessing, so never saved with the weights
            self.register_buffer(f"points_{c}", torch.as_tensor(points[c], dtype=torch.float32), persistent=False)

    def forward(self, conditions: torch.Tensor) -> torch.Tensor:
        if not self.columns:
            return conditions
        bits = [((conditions[:, c, None] - getattr(self, f"points_{c}")).abs() < self.TOLERANCE).to(conditions.dtype)
                for c in self.columns]
        return torch.cat((conditions, *bits), 1)


def batch_parts(given: tuple[torch.Tensor, ...], conditional: bool) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The conditions and event weights of a training batch from its tensors after the rows: a
    conditional model's conditions first, then a weighted MC's weights (each None when absent)."""
    conditions, rest = (given[0], given[1:]) if conditional else (None, given)
    return conditions, (rest[0] if rest else None)


def pass_conditions(conditions: torch.Tensor | None, rows: int, keep: slice, at: int) -> torch.Tensor | None:
    """The conditions of a pass of :func:`noise_passes` (``rows`` noise rows, ``keep`` of them
    requested, going to output row ``at``) from those of the requested rows: zeros for the
    pass's rows outside the request, whose output is dropped. None for an unconditional generator."""
    if conditions is None:
        return None
    given = conditions.new_zeros(rows, conditions.shape[1])
    given[keep] = conditions[at:at + keep.stop - keep.start]
    return given


class LatentGenerator(nn.Module):
    """Base of the generators: ``latent_dim`` standard-normal numbers per row feed the network."""

    def __init__(self, latent_dim: int):
        super().__init__()
        self.latent_dim = latent_dim

    def sample_noise(self, n: int, *, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
        """(n, latent_dim) noise on ``device`` (default: where the weights are), from ``generator`` when given."""
        device = device or next(self.parameters()).device
        return torch.randn(n, self.latent_dim, generator=generator, device=device)
