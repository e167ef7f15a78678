"""Seed 003's regression fast simulation: each target's mean and +1σ quantile given the conditions.

Two dense networks of the (preprocessed) conditions give, per target, a mean μ and the quantile
q one standard deviation above it, both on top of a linear map of the conditions that starts as
each reco target's own gen-level value (seed 003's transfer function: reco = gen + the detector's
response); a target is sampled as μ + σ·ε with σ = |q − μ| and
ε ~ N(0, 1), each target on its own. The loss is seed 003's Σ|μ − x| + Σ Θ(q, x)|q − x| (the
median's L1 and the pinball loss at γ = 0.841, :func:`~recogan_app.losses.pinball_loss`),
summed over targets and averaged over rows: a likelihood-style module (one optimiser) for the
Trainer. The model is as good as the Gaussian is: a target whose spread given the conditions is
skewed or multi-modal comes out Gaussian (in the preprocessed space).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from recogan_app.losses import pinball_loss
from recogan_app.models.latent import NOISE_BLOCK, LatentGenerator, Rows, noise_passes
from recogan_app.models.tabular import PASS_ROWS, dense

SLOPE = 0.05
"""Seed 003's LeakyReLU slope."""


class QuantileRegressor(LatentGenerator):
    """Conditions → (μ, q) per target: a linear map of the conditions plus two dense networks;
    its noise is one ε per target.

    ``pairs`` (target index, condition index) start the linear map as the identity from each
    condition to its target: a muon measured to 1 % is then learnt as a 1 % correction to its
    gen-level value, where the networks alone, learning reco ≈ gen from scratch, missed the
    centre by more than the resolution and made the residuals 5–8× too wide.
    """

    def __init__(self, n_conditions: int, n_targets: int, widths=(100, 100, 100, 100), pairs=()):
        super().__init__(n_targets)
        self.transfer = nn.Linear(n_conditions, n_targets, bias=False)
        nn.init.zeros_(self.transfer.weight)
        with torch.no_grad():
            for target, condition in pairs:
                self.transfer.weight[target, condition] = 1.0
        self.mean = dense(n_conditions, widths, n_targets, slope=SLOPE)
        self.quantile = dense(n_conditions, widths, n_targets, slope=SLOPE)

    def forward(self, conditions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        start = self.transfer(conditions)
        return start + self.mean(conditions), start + self.quantile(conditions)

    def sampler(self) -> Rows:
        """A frozen copy as a thread-safe :data:`~recogan_app.models.latent.Rows` function of the
        conditions: row i is μ + |q − μ|·ε with ε the noise stream's row i (the GAN's layout)."""
        network = copy.deepcopy(self).eval()
        device = next(self.parameters()).device
        pass_rows = PASS_ROWS if device.type == "cpu" else NOISE_BLOCK

        @torch.inference_mode()
        def rows(seed: int, start: int, stop: int, conditions: torch.Tensor) -> torch.Tensor:
            given = conditions.to(device)
            out = torch.empty(self.latent_dim, max(stop - start, 0), device=device)
            z = torch.empty(NOISE_BLOCK, self.latent_dim, device=device)
            for noise, keep, at in noise_passes(seed, start, stop, z, pass_rows):
                mean, quantile = network(given[at:at + keep.stop - keep.start])
                out[:, at:at + len(mean)] = (mean + (quantile - mean).abs() * noise[keep]).t()
            return out.t()

        return rows


class QuantileModel(nn.Module):
    """The regressor with seed 003's loss and optimiser: what the trainer steps. A batch is
    (targets, conditions), both preprocessed; ``pairs`` as :class:`QuantileRegressor`'s."""

    def __init__(self, n_targets: int, n_conditions: int, config, pairs=()):
        super().__init__()
        self.config = config
        self.generator = QuantileRegressor(n_conditions, n_targets, config.hidden_widths, pairs)

    def configure_optimizers(self):
        return torch.optim.Adam(self.generator.parameters(), lr=self.config.learning_rate)

    def loss(self, targets: torch.Tensor, conditions: torch.Tensor) -> dict[str, torch.Tensor]:
        mean, quantile = self.generator(conditions)
        terms = {"mean_l1": (mean - targets).abs().sum(1).mean(),
                 "pinball": pinball_loss(quantile, targets).sum(1).mean()}
        terms["loss"] = terms["mean_l1"] + terms["pinball"]
        return terms

    @torch.inference_mode()
    def monitor_loss(self, targets: torch.Tensor, conditions: torch.Tensor) -> float:
        """The loss of the monitor rows (seed 003 keeps the epoch where it is smallest)."""
        device = next(self.generator.parameters()).device
        return float(self.loss(targets.to(device), conditions.to(device))["loss"])

    def sample(self, n: int, *, seed: int, conditions: torch.Tensor) -> torch.Tensor:
        """The ``n`` rows of the generated stream for ``seed`` given ``conditions``, preprocessed space."""
        return self.generator.sampler()(seed, 0, n, conditions)
