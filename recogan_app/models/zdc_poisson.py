"""A likelihood model of ZP responses: each pixel's photon count is Poisson given the particle's
conditions and a latent z of its shower (a conditional VAE with a Poisson decoder).

Photon statistics are known physics, so the network learns only the expected light per pixel
(where the shower lands, how bright and wide it is) and z ~ N(0, 1) what differs between showers
of the same particle (light yield, depth of the first interaction). Trained by the evidence lower
bound with an encoder q(z | image, conditions) that the run does not keep; generation is one pass
of the decoder and a Poisson draw per pixel, so a response with next to no expected light is
exactly empty and none needs rounding.

Both networks work on a half-resolution grid: the 56 × 30 image padded to 56 × 32 and each 2 × 2
block taken as 4 channels (pixel-unshuffle), a quarter of the positions for the convolutions.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from recogan_app.data.zdc import CONDITIONS, IMAGE_SHAPE
from recogan_app.models.latent import LatentGenerator
from recogan_app.models.zdc import CHANNELS_LAST, LEAKY_SLOPE

HALF_GRID = (IMAGE_SHAPE[0] // 2, (IMAGE_SHAPE[1] + 2) // 2)  # 28 × 16
COARSE_GRID = (HALF_GRID[0] // 2, HALF_GRID[1] // 2)  # 14 × 8: the map the conditions are drawn on
LOG_LIGHT_MAX = 9.0
"""Largest log expected photons of a pixel (8,100): bounds the exp of a diverging step."""
LOG_LIGHT_START = -8.0
"""Log expected photons of every pixel at initialisation: 0.6 photons of the whole image, so that
the first steps do not fill empty responses with noise."""


def to_blocks(images: torch.Tensor) -> torch.Tensor:
    """(N, 1, 56, 30) → (N, 4, 28, 16): each 2 × 2 block of the padded image as 4 channels."""
    return F.pixel_unshuffle(F.pad(images, (0, 2 * HALF_GRID[1] - IMAGE_SHAPE[1])), 2).contiguous(
        memory_format=CHANNELS_LAST)


def from_blocks(blocks: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`to_blocks`."""
    return F.pixel_shuffle(blocks, 2)[..., :IMAGE_SHAPE[1]]


def _leaky() -> nn.Module:
    return nn.LeakyReLU(LEAKY_SLOPE)


class ExpectedLight(LatentGenerator):
    """concat(z, c) → Dense → Dense → a coarse map (14 × 8) → upsample → three convolutions at
    28 × 16 → 2 × 2 blocks: the log of the expected photons of each pixel.

    The dense layers put the shower where the conditions send it (the map); the convolutions draw
    its shape. What the run keeps and generates with.
    """

    def __init__(self, latent_dim: int = 10, width: int = 16, map_channels: int = 16, hidden: int = 256):
        super().__init__(latent_dim)
        self.map_channels = map_channels
        self.dense = nn.Sequential(
            nn.Linear(latent_dim + len(CONDITIONS), hidden), _leaky(), nn.Linear(hidden, hidden), _leaky(),
            nn.Linear(hidden, map_channels * COARSE_GRID[0] * COARSE_GRID[1]), _leaky())
        self.convolutions = nn.Sequential(
            nn.Conv2d(map_channels, width, 3, padding=1), _leaky(), nn.Conv2d(width, width, 3, padding=1), _leaky(),
            nn.Conv2d(width, 4, 3, padding=1))
        with torch.no_grad():
            self.convolutions[-1].bias.fill_(LOG_LIGHT_START)

    def forward(self, z: torch.Tensor, conditions: torch.Tensor) -> torch.Tensor:
        coarse = self.dense(torch.cat([z, conditions], 1)).view(-1, self.map_channels, *COARSE_GRID)
        grid = F.interpolate(coarse.contiguous(memory_format=CHANNELS_LAST), size=HALF_GRID)
        return from_blocks(self.convolutions(grid)).clamp(max=LOG_LIGHT_MAX)

    def fused(self) -> "ExpectedLight":
        """A frozen copy for generation (nothing to fold: no batch norm), in :data:`CHANNELS_LAST`."""
        return copy.deepcopy(self).eval().requires_grad_(False).to(memory_format=CHANNELS_LAST)

    @torch.inference_mode()
    def counts(self, conditions: torch.Tensor, *, generator: torch.Generator | None = None,
               chunk_rows: int = 512) -> np.ndarray:
        """One photon-count image per row of standardised ``conditions``: (N, 56, 30) int32."""
        parts = [torch.poisson(self(self.sample_noise(len(c), generator=generator, device=c.device), c).exp(),
                               generator=generator)[:, 0].to(torch.int32).cpu()
                 for c in conditions.split(chunk_rows)]
        return torch.cat(parts).numpy() if parts else np.zeros((0, *IMAGE_SHAPE), np.int32)


class ShowerEncoder(nn.Module):
    """q(z | image, conditions): two strided convolutions of the log1p image, then with the
    conditions a dense layer to the posterior's mean and log-variance."""

    def __init__(self, latent_dim: int = 10, width: int = 16, hidden: int = 128):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(4, width, 3, stride=2, padding=1), _leaky(), nn.Conv2d(width, width, 3, padding=1), _leaky(),
            nn.Flatten())
        self.posterior = nn.Sequential(nn.Linear(width * COARSE_GRID[0] * COARSE_GRID[1] + len(CONDITIONS), hidden),
                                       _leaky(), nn.Linear(hidden, 2 * latent_dim))

    def forward(self, counts: torch.Tensor, conditions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.features(to_blocks(torch.log1p(counts)))
        mean, log_var = self.posterior(torch.cat([features, conditions], 1)).chunk(2, 1)
        return mean, log_var


class PoissonVAE(nn.Module):
    """Decoder, encoder and the negative evidence lower bound: what the trainer steps.

    A batch is ``(counts, conditions)``: photon counts (N, 1, 56, 30) as floats and standardised
    conditions (N, 9). ``kl_weight`` multiplies the KL term (the family starts it high, so that
    the decoder first learns the light from the conditions and z only what they leave open).
    """

    def __init__(self, config):
        super().__init__()
        self.config, self.kl_weight = config, 1.0
        self.generator = ExpectedLight(config.latent_dim, config.decoder_width)
        self.encoder = ShowerEncoder(config.latent_dim)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.config.learning_rate)

    def loss(self, counts: torch.Tensor, conditions: torch.Tensor) -> dict[str, torch.Tensor]:
        mean, log_var = self.encoder(counts, conditions)
        z = mean + (0.5 * log_var).exp() * torch.randn_like(mean)
        log_light = self.generator(z, conditions)
        # Poisson negative log-likelihood per event, without log(n!) (no parameter in it)
        nll = (log_light.exp() - counts * log_light).flatten(1).sum(1).mean()
        kl = 0.5 * (mean ** 2 + log_var.exp() - 1 - log_var).sum(1).mean()
        return {"poisson_nll": nll, "kl": kl, "loss": nll + self.kl_weight * kl}
