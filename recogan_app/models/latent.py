"""What every generator shares: it is driven by noise z ~ N(0, 1), drawn here and nowhere else."""

from __future__ import annotations

import torch
from torch import nn


class LatentGenerator(nn.Module):
    """Base of the generators: ``latent_dim`` standard-normal numbers per row feed the network."""

    def __init__(self, latent_dim: int):
        super().__init__()
        self.latent_dim = latent_dim

    def sample_noise(self, n: int, *, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
        """(n, latent_dim) noise on ``device`` (default: where the weights are), from ``generator`` when given."""
        device = device or next(self.parameters()).device
        return torch.randn(n, self.latent_dim, generator=generator, device=device)
