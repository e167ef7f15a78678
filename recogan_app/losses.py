"""Adversarial losses and generator penalties: pure functions of tensors.

The penalties act in the preprocessed space, where the MC's marginals are known exactly from
the training split; their targets are computed once (:class:`MarginalTargets`), not per batch,
so they carry no batch-to-batch noise of the real sample. A weighted MC (event weights) enters
as the weighted mean of every real-sample term (:func:`weighted_mean`) and as weighted targets.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

ADVERSARIAL = ("bce", "wgan-gp", "hinge")


def weighted_mean(values: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """The mean of ``values`` over rows, each counting its event weight (None: the plain mean):
    an expectation over the weighted sample, estimated from this batch."""
    if weights is None:
        return values.mean()
    return (values * weights).sum() / weights.sum()


def discriminator_loss(kind: str, real: torch.Tensor, fake: torch.Tensor, *,
                       label_smoothing: float = 0.0, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Loss of the discriminator given its outputs on real and generated rows (the real rows'
    terms averaged with their event ``weights``, when given).

    ``bce`` uses one-sided label smoothing (real target 1 − ε), as in seed 000; ``wgan-gp`` is the
    critic loss without its gradient penalty (see :func:`gradient_penalty`); ``hinge`` is the
    margin loss of spectral-norm GANs.
    """
    if kind == "bce":
        target = torch.full_like(real, 1.0 - label_smoothing)
        return (weighted_mean(F.binary_cross_entropy_with_logits(real, target, reduction="none"), weights)
                + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
    if kind == "wgan-gp":
        return fake.mean() - weighted_mean(real, weights)
    if kind == "hinge":
        return weighted_mean(F.relu(1.0 - real), weights) + F.relu(1.0 + fake).mean()
    raise ValueError(f"unknown adversarial loss {kind!r}; one of {ADVERSARIAL}")


def generator_adversarial_loss(kind: str, fake: torch.Tensor) -> torch.Tensor:
    """Adversarial part of the generator loss (non-saturating for BCE)."""
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
    if kind in ("wgan-gp", "hinge"):
        return -fake.mean()
    raise ValueError(f"unknown adversarial loss {kind!r}; one of {ADVERSARIAL}")


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """WGAN-GP: (‖∇ critic(x̂)‖₂ − 1)² at random interpolates x̂ of real and generated rows."""
    alpha = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device)
    mixed = (alpha * real + (1 - alpha) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1.0) ** 2).mean()


PLUS_ONE_SIGMA = 0.841
"""The quantile one standard deviation above a Gaussian's mean, Φ(1) (seed 003's γ)."""


def pinball_loss(quantile: torch.Tensor, x: torch.Tensor, level: float = PLUS_ONE_SIGMA) -> torch.Tensor:
    """Seed 003's Θ(q, x)·|q − x| per element: γ (x − q) where x lies above q, (1 − γ)(q − x)
    where below. Its expectation over x is smallest at the γ quantile of x, so a network trained
    on it predicts that quantile. Written as (x − q)(γ − [x < q]): one product where the maximum of
    two took a third of the quantile model's step (its backward, over rows × targets × levels)."""
    above = x - quantile
    return above * (level - (above < 0).to(above.dtype))


def soft_ecdf(x: torch.Tensor, grid: torch.Tensor, temperature: float,
              weights: torch.Tensor | None = None) -> torch.Tensor:
    """Smoothed empirical CDF F(t) = mean_j sigmoid((t − x_j)/τ) per feature (the mean weighted by
    the rows' ``weights`` when given).

    ``x`` is (n, d), ``grid`` is (k, d); returns (k, d). Unlike ``cumsum(sort(x))`` this is a CDF,
    and unlike scipy's KS it has a gradient with respect to every x_j.
    """
    steps = torch.sigmoid((grid.unsqueeze(0) - x.unsqueeze(1)) / temperature)
    return steps.mean(dim=0) if weights is None else torch.einsum("nkd,n->kd", steps, weights / weights.sum())


KNOT_RANGE = 6.0
"""Half-width of the preprocessed range over which the inverse preprocessing is tabulated."""


@dataclass
class MarginalTargets:
    """What the generator penalties compare against, computed once from the training split.

    Attributes
    ----------
    grid : (k, d) tensor
        Per-feature evaluation points: quantiles of the training data.
    cdf : (k, d) tensor
        The training data's soft ECDF at ``grid`` (same temperature as the penalty).
    low, high : (d,) tensors
        Per-feature range of the training data.
    correlation : (d, d) tensor
        Pearson matrix of the training data in physical units (through ``knots``).
    temperature : float
        τ of the soft ECDF, in units of the preprocessed features (about 1).
    knots : (m, d) tensor
        The inverse preprocessing tabulated at ``m`` evenly spaced points of
        [−KNOT_RANGE, KNOT_RANGE], centred and divided by its range per feature (a positive affine
        map, which leaves Pearson coefficients as they are): :func:`to_physical` interpolates it,
        differentiably.
    """

    grid: torch.Tensor
    cdf: torch.Tensor
    low: torch.Tensor
    high: torch.Tensor
    correlation: torch.Tensor
    temperature: float
    knots: torch.Tensor

    @classmethod
    def from_data(cls, data: torch.Tensor, *, inverse=None, n_grid: int = 64, temperature: float = 0.05,
                  n_knots: int = 1201, max_rows: int = 100_000, generator: torch.Generator | None = None,
                  weights: torch.Tensor | None = None) -> "MarginalTargets":
        """Targets from preprocessed training rows (each counting its event weight in ``weights``,
        when given: the soft ECDF and the correlations are the weighted ones); ``inverse`` maps a
        preprocessed matrix back to physical units (``FeaturePipeline.inverse_transform``; None: the identity).

        Range and correlations come from every row: Pearson coefficients of heavy-tailed pairs
        computed on a 100k-row subsample of the 12-feature toy miss the full training split's by
        up to 0.048, the whole validation bar. Only the soft-ECDF grid (memory grows with rows ×
        grid) uses at most ``max_rows`` rows.
        """
        z = torch.linspace(-KNOT_RANGE, KNOT_RANGE, n_knots).unsqueeze(1).repeat(1, data.shape[1])
        physical = z.double() if inverse is None else torch.tensor(inverse(z.numpy()).to_numpy(dtype="float64"))
        # centred and scaled per feature: Pearson coefficients do not change, and float32 covariances of
        # values near 1e30 no longer overflow to inf (every step of such a training was rolled back)
        spread = physical.amax(dim=0) - physical.amin(dim=0)
        centre = 0.5 * (physical.amax(dim=0) + physical.amin(dim=0))
        knots = ((physical - centre) / torch.where(spread > 0, spread, 1.0)).float().to(data.device)
        physical = to_physical(data, knots).T.cpu().double()
        if weights is None:
            correlation = torch.corrcoef(physical)
        else:
            covariance = torch.cov(physical, aweights=weights.cpu().double())
            spread = covariance.diagonal().sqrt()
            correlation = covariance / torch.outer(spread, spread)
        correlation = correlation.float().to(data.device)
        low, high = data.min(dim=0).values, data.max(dim=0).values
        if data.shape[0] > max_rows:
            pick = torch.randperm(data.shape[0], generator=generator)[:max_rows].to(data.device)
            data, weights = data[pick], None if weights is None else weights[pick]
        levels = torch.linspace(0.5 / n_grid, 1 - 0.5 / n_grid, n_grid, device=data.device)
        grid = torch.quantile(data, levels, dim=0)
        return cls(grid=grid, cdf=soft_ecdf(data, grid, temperature, weights), low=low, high=high,
                   correlation=correlation, temperature=temperature, knots=knots)

    def to(self, device) -> "MarginalTargets":
        return replace(self, **{k: v.to(device) for k, v in vars(self).items() if isinstance(v, torch.Tensor)})


def to_physical(z: torch.Tensor, knots: torch.Tensor) -> torch.Tensor:
    """Preprocessed rows (n, d) → physical units by linear interpolation of the tabulated
    inverse preprocessing: differentiable, so penalties can act on the quantities the
    validation measures (heavy-tailed correlations live in the tails the quantile map squeezes)."""
    m = knots.shape[0]
    position = (z.clamp(-KNOT_RANGE, KNOT_RANGE) + KNOT_RANGE) * ((m - 1) / (2 * KNOT_RANGE))
    index = position.detach().floor().clamp(0, m - 2).long()
    low, high = knots.gather(0, index), knots.gather(0, index + 1)
    return low + (position - index) * (high - low)


def ks_penalty(fake: torch.Tensor, targets: MarginalTargets) -> torch.Tensor:
    """Differentiable KS distance: max over the grid of |soft ECDF(fake) − soft ECDF(MC)|,
    averaged over features. It tracks the true KS statistic, which is reported separately."""
    gap = (soft_ecdf(fake, targets.grid, targets.temperature) - targets.cdf).abs()
    return gap.max(dim=0).values.mean()


def range_penalty(fake: torch.Tensor, targets: MarginalTargets) -> torch.Tensor:
    """Mean distance by which generated values leave the MC's range (zero inside it)."""
    return (F.relu(fake - targets.high) + F.relu(targets.low - fake)).mean()


def batch_correlation(x: torch.Tensor, min_std: float = 1e-6) -> torch.Tensor:
    """Pearson matrix of the rows of ``x`` (n, d), a column constant in the batch counting as
    uncorrelated (0) instead of 0/0.

    A sparse count (0 in 94 % of events) preprocessed to quantiles maps back to one value over
    most of the preprocessed range: a young generator's batch holds that value only, and
    ``torch.corrcoef`` gives NaN, which made every step non-finite before the first epoch.
    ``min_std`` is tiny beside the knots' unit range per feature.
    """
    centred = x - x.mean(dim=0)
    std = centred.square().mean(dim=0).clamp_min(min_std ** 2).sqrt()
    scaled = centred / std
    return (scaled.T @ scaled) / x.shape[0]


def correlation_penalty(fake: torch.Tensor, targets: MarginalTargets) -> torch.Tensor:
    """Mean |Pearson residual| between generated rows and the MC over feature pairs, in physical
    units: the residual the validation reports. One feature has no pairs: zero."""
    if fake.shape[1] < 2:
        return fake.new_zeros(())
    residual = batch_correlation(to_physical(fake, targets.knots)) - targets.correlation
    pairs = ~torch.eye(residual.shape[0], dtype=torch.bool, device=residual.device)
    return residual.abs()[pairs].mean()


# --- ZDC generator penalties (seed 001), in their intended per-event forms -------------------------


def diversity_loss(z1: torch.Tensor, z2: torch.Tensor, features1: torch.Tensor, features2: torch.Tensor,
                   targets: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """SDI-GAN's selective diversity penalty: mean_i s_i · mean|z1_i − z2_i| / mean|f1_i − f2_i|.

    For each event i, two noise draws z1, z2 with the *same* condition give images whose
    discriminator features are f1, f2; the ratio grows when different noise gives the same
    response (mode collapse), and s_i, the diversity of the real responses to that condition,
    makes the penalty act only where the real data vary. The published code took the ratio of
    batch averages instead, spreading the penalty over events that should not vary.

    Parameters
    ----------
    z1, z2 : tensor (N, latent)
    features1, features2 : tensor (N, F)
    targets : tensor (N,)
        Diversity targets in [0, 1] (:func:`recogan_app.data.zdc.diversity_targets`).
    eps : float
        Keeps the ratio finite for identical images.
    """
    dz = (z1 - z2).abs().mean(dim=1)
    df = (features1 - features2).abs().mean(dim=1)
    return (targets * dz / (df + eps)).mean()


def intensity_loss(fake_log: torch.Tensor, real_log: torch.Tensor) -> torch.Tensor:
    """Per-event L1 between photon sums: mean_i |Σ expm1(fake_i) − Σ expm1(real_i)|, in photons.

    Images are in log1p space (any shape (N, ...)); the sums are taken in counts, where the
    channel metric lives.
    """
    return (torch.expm1(fake_log).flatten(1).sum(dim=1) - torch.expm1(real_log).flatten(1).sum(dim=1)).abs().mean()


def aux_loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Seed 001's eq. (2): mean_i [(k̂_i − k_i)² + (l̂_i − l_i)²], hottest-pixel (row, col) in pixels."""
    return ((predicted - target) ** 2).sum(dim=1).mean()
