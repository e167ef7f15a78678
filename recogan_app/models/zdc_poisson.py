"""A likelihood model of ZP responses: each pixel's photon count is Poisson given the particle's
conditions and a latent z of its shower (a conditional VAE with a Poisson decoder).

Photon statistics are known physics, so the network learns only the expected light per pixel
(where the shower lands, how bright and wide it is) and z what differs between showers of the
same particle (light yield, depth of the first interaction). Trained by the evidence lower bound
with an encoder q(z | image, conditions) that the run does not keep; generation is one pass of
the decoder and a Poisson draw per pixel, so a response with next to no expected light is exactly
empty and none needs rounding.

Where z comes from at generation: not the N(0, 1) of the KL term but the posterior of a training
event with nearby conditions (:meth:`ExpectedLight.latents`, an exemplar prior: the aggregate
posterior given the conditions). Once the KL weight is 1 the encoder puts into z what the decoder
has not yet learnt from the conditions (where a slow or bent particle lands is a ratio of them),
so q(z | conditions) moves with the conditions, and z ~ N(0, 1) sends showers to the wrong place:
on the toy the monitor WS jumped from ~2 to 6–14 photons and stayed there, while z taken from the
nearest training event's posterior gave the same WS as the event's own posterior (~1.4 at the end
of a 66-epoch fit; README, "The cause of the late jump"). The posteriors' means and variances, up to
:data:`LIBRARY_ROWS` training events, are buffers of the decoder, so the run keeps them with its
weights (about 30 floats an event).

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
from recogan_app.models.zdc import CHANNELS_LAST, for_generation, leaky

HALF_GRID = (IMAGE_SHAPE[0] // 2, (IMAGE_SHAPE[1] + 2) // 2)  # 28 × 16
COARSE_GRID = (HALF_GRID[0] // 2, HALF_GRID[1] // 2)  # 14 × 8: the map the conditions are drawn on
LOG_LIGHT_MAX = 9.0
"""Largest log expected photons of a pixel (8,100): bounds the exp of a diverging step."""
LIBRARY_ROWS = 10_000
"""Training events whose posteriors the decoder keeps to draw z from (:meth:`ExpectedLight.latents`)."""
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


class ExpectedLight(LatentGenerator):
    """concat(z, c) → Dense → Dense → a coarse map (14 × 8) → upsample → three convolutions at
    28 × 16 → 2 × 2 blocks: the log of the expected photons of each pixel.

    The dense layers put the shower where the conditions send it (the map); the convolutions draw
    its shape. What the run keeps and generates with, together with the library z is drawn from:
    the standardised conditions and posterior means and log-variances of training events.
    """

    LIBRARY = ("library_conditions", "library_mean", "library_log_var")

    def __init__(self, latent_dim: int = 10, width: int = 16, map_channels: int = 16, hidden: int = 256,
                 exemplars: int = 8):
        super().__init__(latent_dim)
        self.map_channels, self.exemplars, self._index = map_channels, exemplars, None
        for name, columns in zip(self.LIBRARY, (len(CONDITIONS), latent_dim, latent_dim)):
            self.register_buffer(name, torch.zeros(0, columns))
        self.dense = nn.Sequential(
            nn.Linear(latent_dim + len(CONDITIONS), hidden), leaky(), nn.Linear(hidden, hidden), leaky(),
            nn.Linear(hidden, map_channels * COARSE_GRID[0] * COARSE_GRID[1]), leaky())
        self.convolutions = nn.Sequential(
            nn.Conv2d(map_channels, width, 3, padding=1), leaky(), nn.Conv2d(width, width, 3, padding=1), leaky(),
            nn.Conv2d(width, 4, 3, padding=1))
        with torch.no_grad():
            self.convolutions[-1].bias.fill_(LOG_LIGHT_START)

    def forward(self, z: torch.Tensor, conditions: torch.Tensor) -> torch.Tensor:
        coarse = self.dense(torch.cat([z, conditions], 1)).view(-1, self.map_channels, *COARSE_GRID)
        grid = F.interpolate(coarse.contiguous(memory_format=CHANNELS_LAST), size=HALF_GRID)
        return from_blocks(self.convolutions(grid)).clamp(max=LOG_LIGHT_MAX)

    def remember(self, conditions: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor) -> None:
        """Keep training events' standardised conditions and posterior q(z | event) to draw z from."""
        for name, values in zip(self.LIBRARY, (conditions, mean, log_var)):
            setattr(self, name, values.detach().to(self.library_mean.device, torch.float32))
        self._index = None

    def nearest(self, conditions: torch.Tensor, k: int) -> torch.Tensor:
        """Indices (n, k) of ``k`` library events near each row of ``conditions``: a k-d tree (built in
        ~10 ms when the library changes), approximate (each within twice the true distance; on the
        toy 1.5 % further on average), answers 50,000 toy conditions in 0.4 s on one core, where the
        exact tree took 0.9 s (most of it on particles that miss the ZP, far from every library
        event) and a brute-force search 6 s."""
        if self._index is None:
            # imported on first use: processes that never draw from a library (tabular runs, the GAN) skip it
            from scipy.spatial import cKDTree

            self._index = cKDTree(self.library_conditions.cpu().numpy())
        _, index = self._index.query(conditions.detach().cpu().numpy(), k=k, eps=1.0)
        return torch.from_numpy(index.reshape(len(conditions), k)).to(conditions.device)

    def latents(self, conditions: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """z for each row of standardised ``conditions``: a draw from the posterior of one of the
        ``exemplars`` library events nearest in the conditions, picked at random, so that responses
        to one condition still differ as showers do; N(0, 1) while the library is empty (a run
        saved before it, or the start of a fit)."""
        n = len(conditions)
        if not len(self.library_mean):
            return self.sample_noise(n, generator=generator, device=conditions.device)
        k = min(self.exemplars, len(self.library_mean))
        choice = torch.randint(k, (n, 1), generator=generator, device=conditions.device)
        pick = self.nearest(conditions, k).gather(1, choice)[:, 0]
        noise = self.sample_noise(n, generator=generator, device=conditions.device)
        return self.library_mean[pick] + (0.5 * self.library_log_var[pick]).exp() * noise

    def _load_from_state_dict(self, state_dict, prefix, *args) -> None:
        for name in self.LIBRARY:  # the library's size is the saved one's; a run saved before it has none
            saved = state_dict.setdefault(prefix + name, getattr(self, name)[:0])
            setattr(self, name, torch.empty_like(saved, device=self.library_mean.device))
        self._index = None
        super()._load_from_state_dict(state_dict, prefix, *args)

    def fused(self) -> "ExpectedLight":
        """A frozen copy for generation (:func:`~recogan_app.models.zdc.for_generation`; no batch norm to fold)."""
        return for_generation(copy.deepcopy(self))

    @torch.inference_mode()
    def counts(self, conditions: torch.Tensor, *, generator: torch.Generator | None = None,
               chunk_rows: int = 512) -> np.ndarray:
        """One photon-count image per row of standardised ``conditions``: (N, 56, 30) int32."""
        parts = [torch.poisson(self(self.latents(c, generator=generator), c).exp(),
                               generator=generator)[:, 0].to(torch.int32).cpu()
                 for c in conditions.split(chunk_rows)]
        return torch.cat(parts).numpy() if parts else np.zeros((0, *IMAGE_SHAPE), np.int32)


class ShowerEncoder(nn.Module):
    """q(z | image, conditions): two strided convolutions of the log1p image, then with the
    conditions a dense layer to the posterior's mean and log-variance."""

    def __init__(self, latent_dim: int = 10, width: int = 16, hidden: int = 128):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(4, width, 3, stride=2, padding=1), leaky(), nn.Conv2d(width, width, 3, padding=1), leaky(),
            nn.Flatten())
        self.posterior = nn.Sequential(nn.Linear(width * COARSE_GRID[0] * COARSE_GRID[1] + len(CONDITIONS), hidden),
                                       leaky(), nn.Linear(hidden, 2 * latent_dim))

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
        self.config, self.kl_weight, self.exemplar_events = config, 1.0, None
        self.generator = ExpectedLight(config.latent_dim, config.decoder_width, exemplars=config.exemplars)
        self.encoder = ShowerEncoder(config.latent_dim)

    @torch.no_grad()
    def refresh_library(self, chunk_rows: int = 2048) -> None:
        """Encode ``exemplar_events`` (counts, standardised conditions) with the current encoder
        into the decoder's library: before each snapshot, so that the snapshot scores what the run
        would generate."""
        counts, conditions = self.exemplar_events
        posteriors = [self.encoder(x, c) for x, c in zip(counts.split(chunk_rows), conditions.split(chunk_rows))]
        self.generator.remember(conditions, torch.cat([m for m, _ in posteriors]),
                                torch.cat([v for _, v in posteriors]))

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
