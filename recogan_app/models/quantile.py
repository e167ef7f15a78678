"""Quantile-regression fast simulation: each target's distribution given the conditions, as quantiles.

A dense network of the (preprocessed) conditions gives, per target, its quantiles at fixed
levels τ, on top of a linear map of the conditions that starts as each reco target's own
gen-level value (seed 003's transfer function: reco = gen + the detector's response). Trained by
the pinball loss at those levels (:func:`~recogan_app.losses.pinball_loss`), summed over
targets and averaged over rows: a likelihood-style module (one optimiser) for the Trainer.
Two responses (the setting ``response``):

- ``quantiles`` (the default): K levels evenly spaced from 1/(2K) to 1 − 1/(2K), the quantiles
  monotone by construction: a location plus a scale times the normal's quantiles, their increments
  bent by factors e^s of network outputs s (``increments`` exp; softplus(s)/ln 2 before it existed),
  summed outwards from the middle level. Exponential, so that one increment can be thousands of
  times its neighbours': a pion's dll_deuteron at 50–85 GeV/c is a spike at the likelihood's cap
  (96 %), then a gap of 45 units, then the confused rings' spike near 0; the scale follows the
  narrow bulk (0.18 in the network's space), so the gap's increment is 40 times the normal's,
  which a softplus factor reaches at s ≈ 26 and the network never did (it spread the jump over
  four increments of factor 3–8 and passed the 90 % threshold in 1.1 % of the tracks against the
  MC's 2.3 %); e^s reaches it at s ≈ 3.6. The scale, pulled by every
  level, narrows a distribution's tails with its core; it is |1 + s| of a network output s, as
  seed 003's σ = |q − μ|, so that it can vanish at a point (a muon's px measured to 1 % of its
  momentum: no spread at px = 0, where a softplus scale left the relative residuals' KS at 0.066
  against seed 003's 0.03). Summed outwards, an increment in a tail is
  pulled by the levels beyond it only. (Increments alone, summed from the lowest level, left the
  1 % quantile of a narrow DLL near the marginal's after 20 epochs: every level pulled on the
  lowest increments, drowning the few rows that place them.) A target is sampled by its
  inverse CDF: linear between the levels, exponential tails beyond the extreme ones (the density
  continuous there). It follows skewed, capped and multi-modal responses (PID DLLs given the
  track), where a Gaussian cannot. On top of these, ``jumps`` steps: each adds a height h² at a
  level t with a width w (h, t, w from the network; a step σ((τ − t)/w)), so that a jump between
  two components whose share moves with the conditions (a pion's confused-ring spike, 3–4 % of the
  tracks at 70–100 GeV/c) moves with them through a smooth t(conditions). Made of increments alone,
  the jump has to hop from one increment to the next as the share crosses a level, which a smooth
  network ramps over four levels instead (the MC's quantile function at 72–78 GeV/c jumps from −32
  to −2.3 between 96 and 96.5 %, the network's rose from −15.6 at 96.5 % to −1.7 at 98.5 %:
  ``benchmarks/conditional_cell.py``).
- ``seed003``: seed 003's two networks, the mean μ (L1 loss, the median's pinball at 0.5 twice)
  and the +1σ quantile q (pinball at γ = 0.841); sampled as μ + |q − μ|·ε, a Gaussian per target.

The targets of a row are joined by a Gaussian copula: the normal scores of their levels
z = Φ⁻¹(F(x | conditions)) are correlated by R = L Lᵀ (L lower triangular with unit rows),
fitted by the copula's likelihood of the training rows' scores (the marginal model held fixed
in that term), so that DLLs of one track stay correlated as in the MC. R starts as the identity
(seed 003's independent targets).
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn
from torch.special import ndtr, ndtri

from recogan_app.losses import PLUS_ONE_SIGMA, pinball_loss
from recogan_app.models.latent import NOISE_BLOCK, LatentGenerator, OneHot, Rows, noise_passes
from recogan_app.models.tabular import PASS_ROWS, dense

SLOPE = 0.05
"""Seed 003's LeakyReLU slope."""
MAX_LOG_FACTOR = 10.0
"""The largest log factor of an increment (``increments`` exp: at most e¹⁰ ≈ 22,000 times the
normal's), so that one wild step cannot overflow the quantiles to infinity."""
JUMP_WIDTH = 0.02
"""A jump's width in levels at a zero network output (``jumps``)."""
TAIL_LOG_LEVEL = -60.0
"""The smallest log level a score is computed from (float32's ndtri stays finite)."""


def even_levels(k: int) -> torch.Tensor:
    """K levels evenly spaced in (0, 1), the middles of K equal slices: 1/(2K) … 1 − 1/(2K)."""
    return (torch.arange(k, dtype=torch.float64) + 0.5) / k


def _neighbours(quantiles: torch.Tensor, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The quantiles at ``index`` − 1 and ``index`` along the last axis (index in 1 … K − 1)."""
    return quantiles.gather(-1, index - 1), quantiles.gather(-1, index)


def _tail_widths(levels: torch.Tensor, quantiles: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The exponential tails' widths τ₁/d₁ below the lowest level and (1 − τ_K)/d_K above the highest,
    d the density of the slice next to it: the tails continue the density where the levels end."""
    first, last = levels[0], levels[-1]
    low = (quantiles[..., 1] - quantiles[..., 0]) * first / (levels[1] - first)
    high = (quantiles[..., -1] - quantiles[..., -2]) * (1 - last) / (last - levels[-2])
    return low.clamp_min(1e-12), high.clamp_min(1e-12)


def values_at(levels: torch.Tensor, quantiles: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """The inverse CDF at u = Φ(z) of the distributions whose quantiles at ``levels`` (K,) are
    ``quantiles`` (..., K): linear between levels, beyond the extreme ones exponential tails
    (u = τ₁ exp((x − q₁) d₁ / τ₁) below, its mirror above: :func:`_tail_widths`). ``z`` (...) normal
    scores; the upper tail is computed from Φ(−z), keeping float32's precision near u = 1."""
    lower, upper = ndtr(z), ndtr(-z)
    index = torch.searchsorted(levels, lower.unsqueeze(-1).contiguous()).clamp(1, len(levels) - 1)
    (t0, t1), (q0, q1) = (levels[index - 1], levels[index]), _neighbours(quantiles, index)
    t0, t1, q0, q1, u = t0.squeeze(-1), t1.squeeze(-1), q0.squeeze(-1), q1.squeeze(-1), lower
    inner = q0 + (q1 - q0) * ((u - t0) / (t1 - t0)).clamp(0, 1)
    first, last = levels[0], levels[-1]
    width_low, width_high = _tail_widths(levels, quantiles)
    below = quantiles[..., 0] + width_low * torch.log(lower / first)
    above = quantiles[..., -1] - width_high * torch.log(upper / (1 - last))
    return torch.where(lower < first, below, torch.where(upper < 1 - last, above, inner))


def scores_of(levels: torch.Tensor, quantiles: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Normal scores Φ⁻¹(F(x)) of ``x`` (...) under the distributions of :func:`values_at` (its inverse)."""
    index = torch.searchsorted(quantiles.contiguous(), x.unsqueeze(-1).contiguous()).clamp(1, len(levels) - 1)
    q0, q1 = (q.squeeze(-1) for q in _neighbours(quantiles, index))
    t0, t1 = levels[index - 1].squeeze(-1), levels[index].squeeze(-1)
    inner = t0 + (t1 - t0) * ((x - q0) / (q1 - q0).clamp_min(1e-12)).clamp(0, 1)
    first, last = levels[0], levels[-1]
    width_low, width_high = _tail_widths(levels, quantiles)
    log_below = (math.log(first) + (x - quantiles[..., 0]) / width_low).clamp_min(TAIL_LOG_LEVEL)
    log_above = (math.log(1 - last) - (x - quantiles[..., -1]) / width_high).clamp_min(TAIL_LOG_LEVEL)
    z = ndtri(inner)
    z = torch.where(x < quantiles[..., 0], ndtri(log_below.exp()), z)
    return torch.where(x > quantiles[..., -1], -ndtri(log_above.exp()), z)


class QuantileRegressor(LatentGenerator):
    """Conditions → each target's quantiles at ``levels``: a linear map of the conditions plus
    dense networks; its noise is one ε per target, correlated by the copula.

    ``levels`` None is seed 003's response (μ and the +1σ quantile from two networks), else the
    K levels of the ``quantiles`` response (one network, K outputs per target).

    ``pairs`` (target index, condition index) start the linear map as the identity from each
    condition to its target: a muon measured to 1 % is then learnt as a 1 % correction to its
    gen-level value, where the networks alone, learning reco ≈ gen from scratch, missed the
    centre by more than the resolution and made the residuals 5–8× too wide.

    ``categories`` {condition index: its values' points}: conditions of few values the networks
    also read one-hot (:class:`~recogan_app.models.latent.OneHot`).

    ``increments`` how a network output s bends an increment between levels: by e^s (``exp``) or
    softplus(s)/ln 2 (``softplus``, runs saved before the choice existed); 1 at s = 0 either way.

    ``jumps`` steps added to each target's quantiles (a zero output adds none); 0 for runs saved
    before they existed.
    """

    def __init__(self, n_conditions: int, n_targets: int, widths=(100, 100, 100, 100), levels=None, pairs=(),
                 categories=None, increments="exp", jumps=0):
        super().__init__(n_targets)
        self.increments, self.jumps = increments, jumps
        self.encode = OneHot(n_conditions, categories)
        self.gaussian = levels is None
        levels = torch.tensor([0.5, PLUS_ONE_SIGMA]) if self.gaussian else torch.as_tensor(levels)
        self.register_buffer("levels", levels.float())
        starts = torch.linspace(0.05, 0.95, jumps) if jumps > 1 else torch.full((jumps,), 0.5)
        self.register_buffer("jump_starts", torch.logit(starts).float())  # a zero output's levels of the jumps
        self.transfer = nn.Linear(n_conditions, n_targets, bias=False)
        nn.init.zeros_(self.transfer.weight)
        with torch.no_grad():
            for target, condition in pairs:
                self.transfer.weight[target, condition] = 1.0
        if self.gaussian:
            self.mean = dense(self.encode.size, widths, n_targets, slope=SLOPE)
            self.quantile = dense(self.encode.size, widths, n_targets, slope=SLOPE)
        else:
            self.quantiles = dense(self.encode.size, widths, n_targets * (1 + len(levels) + 3 * jumps), slope=SLOPE)
            # zero outputs give the standard normal's quantiles: the preprocessed target's marginal
            normal = ndtri(levels.double())
            self.register_buffer("normal", normal.float())
            self.register_buffer("gaps", (normal.diff() / (1 if increments == "exp" else math.log(2))).float())
        self.copula = nn.Parameter(torch.zeros(n_targets, n_targets))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        """Weights saved before the copula, the levels buffer or the jumps existed load as that run
        was: independent targets (a zero copula), seed 003's two levels, no jumps."""
        for name in ("copula", "levels", "jump_starts"):
            state_dict.setdefault(prefix + name, getattr(self, name).detach().clone())
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, conditions: torch.Tensor) -> torch.Tensor:
        """(rows, targets, levels): each target's quantiles at :attr:`levels`, non-decreasing."""
        start, encoded = self.transfer(conditions).unsqueeze(-1), self.encode(conditions)
        if self.gaussian:
            return start + torch.stack((self.mean(encoded), self.quantile(encoded)), -1)
        k = len(self.levels)
        raw = self.quantiles(encoded).unflatten(-1, (self.latent_dim, 1 + k + 3 * self.jumps))
        location, scale = raw[..., :1], (1 + raw[..., 1:2]).abs()
        bend, jumps = raw[..., 2:1 + k], raw[..., 1 + k:].unflatten(-1, (self.jumps, 3))
        bend = bend.clamp(max=MAX_LOG_FACTOR).exp() if self.increments == "exp" else nn.functional.softplus(bend)
        gaps, middle = bend * self.gaps, k // 2
        below = gaps[..., :middle].flip(-1).cumsum(-1).flip(-1)  # from each lower level up to the middle
        offsets = torch.cat((-below, torch.zeros_like(location), gaps[..., middle:].cumsum(-1)), -1)
        quantiles = start + location + scale * (self.normal[middle] + offsets)
        if self.jumps:  # Σ_j h_j² σ((τ − t_j)/w_j): a product and a matmul, few temporaries of (rows, targets, jumps, levels)
            height, at, width = jumps.unbind(-1)  # (rows, targets, jumps) each
            sharpness = (-width.clamp(-MAX_LOG_FACTOR, MAX_LOG_FACTOR)).exp() / JUMP_WIDTH
            at = torch.sigmoid(at + self.jump_starts)
            steps = torch.sigmoid(torch.addcmul((-at * sharpness).unsqueeze(-1), sharpness.unsqueeze(-1), self.levels))
            quantiles = quantiles + (height.square().unsqueeze(-2) @ steps).squeeze(-2)
        return quantiles

    def cholesky(self) -> torch.Tensor:
        """L of the copula's correlation R = L Lᵀ: lower triangular, unit rows (R's diagonal is 1)."""
        factor = torch.eye(self.latent_dim, device=self.copula.device) + self.copula.tril(-1)
        return factor / factor.norm(dim=1, keepdim=True)

    def values(self, quantiles: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The targets at normal scores ``z`` (rows, targets) of the distributions ``quantiles``."""
        if self.gaussian:
            mean, quantile = quantiles.unbind(-1)
            return mean + (quantile - mean).abs() * z
        return values_at(self.levels, quantiles, z)

    def scores(self, quantiles: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The normal scores of the targets ``x`` (rows, targets): the inverse of :meth:`values`."""
        if self.gaussian:
            mean, quantile = quantiles.unbind(-1)
            return (x - mean) / (quantile - mean).abs().clamp_min(1e-12)
        return scores_of(self.levels, quantiles, x)

    def sampler(self) -> Rows:
        """A frozen copy as a thread-safe :data:`~recogan_app.models.latent.Rows` function of the
        conditions: row i is the targets at the normal scores L ε, ε the noise stream's row i (the
        GAN's layout)."""
        network = copy.deepcopy(self).eval()
        device = next(self.parameters()).device
        pass_rows = PASS_ROWS if device.type == "cpu" else NOISE_BLOCK

        @torch.inference_mode()
        def rows(seed: int, start: int, stop: int, conditions: torch.Tensor) -> torch.Tensor:
            given, factor = conditions.to(device), network.cholesky()
            out = torch.empty(max(stop - start, 0), self.latent_dim, device=device)
            z = torch.empty(NOISE_BLOCK, self.latent_dim, device=device)
            for noise, keep, at in noise_passes(seed, start, stop, z, pass_rows):
                quantiles = network(given[at:at + keep.stop - keep.start])
                out[at:at + len(quantiles)] = network.values(quantiles, noise[keep] @ factor.t())
            return out

        return rows


class QuantileModel(nn.Module):
    """The regressor with its loss and seed 003's optimiser: what the trainer steps. A batch is
    (targets, conditions), both preprocessed; ``pairs`` and ``categories`` as :class:`QuantileRegressor`'s;
    ``learning_rate`` Adam's initial rate (None: the config's)."""

    def __init__(self, n_targets: int, n_conditions: int, config, pairs=(), categories=None,
                 learning_rate: float | None = None):
        super().__init__()
        self.config = config
        self.learning_rate = config.learning_rate if learning_rate is None else learning_rate
        levels = None if config.response == "seed003" else even_levels(config.levels)
        self.generator = QuantileRegressor(n_conditions, n_targets, config.hidden_widths, levels, pairs, categories,
                                           config.increments, config.jumps)
        # seed 003: L1 of the mean (twice the pinball at 0.5) plus the +1σ pinball; else the levels' mean
        self.register_buffer("weights", torch.tensor([2.0, 1.0]) if levels is None
                             else torch.full((len(levels),), 1.0 / len(levels)))

    def configure_optimizers(self):
        """Adam, fused where torch has the kernel (CPU, CUDA): a step of these small networks is bound by
        per-tensor overhead, and one kernel for all parameters makes a CPU step about 10 % faster."""
        parameters = list(self.generator.parameters())
        fused = parameters[0].device.type in ("cpu", "cuda")
        return torch.optim.Adam(parameters, lr=self.learning_rate, fused=fused)

    def loss(self, targets: torch.Tensor, conditions: torch.Tensor) -> dict[str, torch.Tensor]:
        """The pinball loss at the levels and the copula's negative log-likelihood of the rows' scores
        (the scores held fixed: the copula learns from the marginal model, not the other way)."""
        generator = self.generator
        quantiles = generator(conditions)
        z = generator.scores(quantiles.detach(), targets)
        factor = generator.cholesky()
        white = torch.linalg.solve_triangular(factor, z.t(), upper=False)
        copula = 0.5 * (white.square().sum(0) - z.square().sum(1)).mean() + factor.diagonal().log().sum()
        terms = {"pinball": self.pinball(quantiles, targets), "copula": copula}
        terms["loss"] = terms["pinball"] + terms["copula"]
        return terms

    def pinball(self, quantiles: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The pinball loss of ``quantiles`` (rows, targets, levels) at the rows' ``targets``: the
        levels weighted, summed over targets, averaged over rows."""
        return (pinball_loss(quantiles, targets.unsqueeze(-1), self.generator.levels) @ self.weights).sum(1).mean()

    @torch.inference_mode()
    def monitor_loss(self, targets: torch.Tensor, conditions: torch.Tensor) -> float:
        """The pinball loss of the monitor rows (seed 003 keeps the epoch where it is smallest); the
        copula's term, which only the training needs, is not computed."""
        device = next(self.generator.parameters()).device
        targets = targets.to(device)
        return float(self.pinball(self.generator(conditions.to(device)), targets))

    def sample(self, n: int, *, seed: int, conditions: torch.Tensor) -> torch.Tensor:
        """The ``n`` rows of the generated stream for ``seed`` given ``conditions``, preprocessed space."""
        return self.generator.sampler()(seed, 0, n, conditions)
