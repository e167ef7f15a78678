"""A neural spline flow of the preprocessed features, trained by maximum likelihood.

The flow (zuko) maps a row x to noise z ~ N(0, 1) through coupling transforms: each keeps half
of the features and moves the other half through monotonic rational-quadratic splines whose
knots a small network computes from the kept half. The density is exact (log p(x) = log N(z) +
log |det ∂z/∂x|), so training minimises the negative log-likelihood and checkpoints are picked
by the monitor split's; sampling runs each transform backwards once (coupling: one pass of each
network), on noise drawn block by block like every generator's
(:func:`~recogan_app.models.latent.noise_passes`). A conditional flow is the density of the
targets given the conditions: each coupling's network reads the conditions (zuko's context)
beside its kept half.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn
from zuko.distributions import DiagNormal
from zuko.flows import Flow
from zuko.flows.coupling import GeneralCouplingTransform
from zuko.lazy import UnconditionalDistribution
from zuko.transforms import MonotonicRQSTransform

from recogan_app.losses import weighted_mean
from recogan_app.models.latent import NOISE_BLOCK, Rows, batch_parts, joined, noise_passes, pass_conditions

BOUND = 5.0
"""The splines act on [-BOUND, BOUND] (zuko's default) and are the identity outside: the
quantile preprocessing keeps every feature within ±5.2."""
SLOPE = 1e-3
"""zuko's least spline slope: bounds the unconstrained knot parameters."""
PASS_ROWS = 2048
"""Rows per pass through the transforms when sampling on a CPU: the spline's (rows × features ×
bins) intermediates stay in a core's cache."""


def with_end_derivatives(params: torch.Tensor, bins: int) -> torch.Tensor:
    """zuko's spline parameters (... × features × (3 bins - 1): widths, heights, inner
    derivatives) with its end derivatives put in place: a zero (exp(0) = 1, what zuko pads)
    before and after the inner ones, so that :func:`rqs_inverse` gathers both derivatives of any
    bin at once. Applied to a hyper-network's last layer (its rows), the network computes them."""
    zero = params.new_zeros(*params.shape[:-1], 1)
    return torch.cat((params[..., :2 * bins], zero, params[..., 2 * bins:], zero), -1)


def rqs_inverse(y: torch.Tensor, params: torch.Tensor, bins: int) -> torch.Tensor:
    """The inverse of zuko's :class:`~zuko.transforms.MonotonicRQSTransform` at ``y`` (rows ×
    features), its unconstrained parameters ``params`` (rows × features × (3 bins + 1), the
    layout of :func:`with_end_derivatives`) overwritten.

    The same arithmetic as zuko's, rearranged for sampling speed on a CPU: zuko's soft bound and
    exp of all parameters in one contiguous pass; the softmax without its max (the bound keeps
    widths and heights within ±|log SLOPE| / 2: exp cannot overflow) and unnormalised (a value's
    bin is found by comparing the cumulative heights with the scaled ``y``); and only what the
    value's bin needs gathered: its width, height and two derivatives in one gather, its right
    edges in another (the left edges are the right ones less width and height). Values outside
    ±BOUND pass unchanged, as in zuko.
    """
    scale = params.new_full((3 * bins + 1,), 2.0 / -math.log(SLOPE))
    scale[2 * bins:] = 1.0 / -math.log(SLOPE)
    params.div_(params.abs().mul_(scale).add_(1.0)).exp_()
    right = params[..., :2 * bins].unflatten(-1, (2, bins)).cumsum(-1)  # cumulative widths, heights
    total = right[..., -1]  # (rows, features, 2): the softmax's denominators
    level = (y + BOUND).mul_(total[..., 1] / (2 * BOUND))  # y on the cumulative heights' scale
    k = (right[..., 1, :-1] < level.unsqueeze(-1)).sum(-1, keepdim=True)
    at = params.gather(-1, k + torch.tensor([0, bins, 2 * bins, 2 * bins + 1], device=k.device))
    size, (d0, d1) = at[..., :2], at[..., 2:].unbind(-1)
    scale = (2 * BOUND) / total
    x0, y0 = (right.flatten(-2).gather(-1, k + torch.tensor([0, bins], device=k.device)) - size).mul_(scale).sub_(
        BOUND).unbind(-1)  # back to zuko's coordinates: knots in [-BOUND, BOUND]
    w, h = (size * scale).unbind(-1)
    s = h / w
    dy = y - y0
    curve = d0 + d1 - 2 * s
    a = h * (s - d0) + dy * curve
    b = h * d0 - dy * curve
    c = -s * dy
    z = 2 * c / (-b - (b * b - 4 * a * c).sqrt())
    return torch.where(y.abs() < BOUND, x0 + z * w, y)


class FlowGenerator(nn.Module):
    """The flow: ``transforms`` spline couplings of ``n_features`` (at least 2) on a standard normal.

    Each coupling keeps a different half of the features (a fixed permutation per transform,
    stored with the weights), so after a few transforms every feature has depended on every
    other. ``widths`` are the hidden layers of each coupling's network, ``bins`` the spline's;
    ``n_conditions`` the conditions every network also reads (0: an unconditional flow).
    """

    def __init__(self, n_features: int, transforms: int = 4, widths=(64, 64), bins: int = 8, n_conditions: int = 0):
        super().__init__()
        self.n_features, self.bins = n_features, bins
        couplings = [GeneralCouplingTransform(
            n_features, n_conditions,
            mask=torch.randperm(n_features, generator=torch.Generator().manual_seed(i)) % 2 == i % 2,
            univariate=MonotonicRQSTransform, shapes=[(bins,), (bins,), (bins - 1,)], hidden_features=tuple(widths))
            for i in range(transforms)]
        base = UnconditionalDistribution(DiagNormal, torch.zeros(n_features), torch.ones(n_features), buffer=True)
        self.flow = Flow(couplings, base)

    def log_prob(self, x: torch.Tensor, conditions: torch.Tensor | None = None) -> torch.Tensor:
        """log p(x) (or log p(x | conditions)) of each row (nats, in the preprocessed space)."""
        return self.flow(conditions).log_prob(x)

    def sampler(self) -> Rows:
        """A frozen copy of this flow as a thread-safe :data:`~recogan_app.models.latent.Rows`
        function: noise blocks through the couplings backwards (:func:`rqs_inverse`), in passes
        of :data:`PASS_ROWS` rows. Rows come back column-major like the GAN's (each feature's
        column contiguous, what the inverse preprocessing reads); a conditional flow's takes the
        rows' conditions as a fourth argument."""
        flow = copy.deepcopy(self.flow).eval()
        couplings = [(self._sampling_network(t), (~t.mask).nonzero().squeeze(-1))
                     for t in reversed(flow.transform.transforms)]
        device = next(flow.buffers()).device
        pass_rows = PASS_ROWS if device.type == "cpu" else NOISE_BLOCK
        bins, n = self.bins, self.n_features

        @torch.inference_mode()
        def rows(seed: int, start: int, stop: int, conditions: torch.Tensor | None = None) -> torch.Tensor:
            out = torch.empty(n, max(stop - start, 0), device=device)
            z = torch.empty(NOISE_BLOCK, n, device=device)
            given = None if conditions is None else conditions.to(device)
            for x, keep, at in noise_passes(seed, start, stop, z, pass_rows):
                row_conditions = pass_conditions(given, len(x), keep, at)
                for hyper, moved in couplings:
                    params = hyper(joined(x, row_conditions)).unflatten(-1, (len(moved), -1))
                    x[:, moved] = rqs_inverse(x[:, moved], params, bins)  # the noise buffer: each pass is used once
                out[:, at:at + keep.stop - keep.start] = x[keep].t()
            return out.t()

        return rows

    def _sampling_network(self, coupling: GeneralCouplingTransform) -> nn.Sequential:
        """The coupling's network (in place) as the sampler calls it: its first layer reads
        every feature (zero weights on the moved ones, instead of a copy of the kept ones per
        pass) and its last layer puts out :func:`rqs_inverse`'s layout."""
        hyper, bins = coupling.hyper, self.bins
        first, last = hyper[0], hyper[-1]
        kept = int(coupling.mask.sum())  # then the conditions, which stay where they are
        weight = first.weight.new_zeros(first.weight.shape[0], self.n_features + first.weight.shape[1] - kept)
        weight[:, :self.n_features][:, coupling.mask] = first.weight[:, :kept]
        weight[:, self.n_features:] = first.weight[:, kept:]
        first.weight = nn.Parameter(weight)
        moved = int((~coupling.mask).sum())
        last.weight = nn.Parameter(
            with_end_derivatives(last.weight.t().unflatten(-1, (moved, -1)), bins).flatten(-2).t())
        last.bias = nn.Parameter(with_end_derivatives(last.bias.unflatten(-1, (moved, -1)), bins).flatten(-2))
        return hyper


class SplineFlow(nn.Module):
    """The flow with its likelihood loss and optimiser: what the trainer steps.

    Parameters
    ----------
    n_features : int
        Number of (preprocessed) features, at least 2.
    config : FlowConfig
        Architecture and optimiser settings.
    n_conditions : int
        A conditional flow's conditions (0: unconditional); a batch is (features, conditions of a
        conditional flow, weights of a weighted MC).
    """

    def __init__(self, n_features: int, config, n_conditions: int = 0):
        super().__init__()
        self.config = config
        self.conditional = n_conditions > 0
        self.generator = FlowGenerator(n_features, config.coupling_transforms, config.hidden_widths,
                                       config.spline_bins, n_conditions)

    def configure_optimizers(self):
        return torch.optim.AdamW(self.generator.parameters(), lr=self.config.learning_rate,
                                 weight_decay=self.config.weight_decay)

    def loss(self, x: torch.Tensor, *given: torch.Tensor) -> dict[str, torch.Tensor]:
        """The negative log-likelihood of the batch (given a conditional flow's conditions), each
        row counting its event weight for a weighted MC: the likelihood the flow maximises.
        ``given``: :func:`~recogan_app.models.latent.batch_parts`."""
        conditions, weights = batch_parts(given, self.conditional)
        return {"loss": -weighted_mean(self.generator.log_prob(x, conditions), weights)}

    @torch.inference_mode()
    def nll(self, x: torch.Tensor, conditions: torch.Tensor | None = None, weights=None, rows: int = 65_536) -> float:
        """Mean negative log-likelihood of the rows of ``x`` (given their ``conditions``; nats per
        row, preprocessed space), each row counting its event weight (``weights``, an array) when given."""
        device = next(self.generator.buffers()).device
        w = torch.as_tensor(1.0 if weights is None else weights, dtype=torch.float64).expand(len(x))
        total = sum(float(self.generator.log_prob(
            x[a:a + rows].to(device), None if conditions is None else conditions[a:a + rows].to(device)
        ).double().cpu() @ w[a:a + rows]) for a in range(0, len(x), rows))
        return -total / max(float(w.sum()), 1e-300) if len(x) else 0.0

    def sample(self, n: int, *, seed: int, conditions: torch.Tensor | None = None) -> torch.Tensor:
        """The first ``n`` rows of the generated stream for ``seed`` (given the ``n`` rows of
        ``conditions``), in the preprocessed space."""
        return self.generator.sampler()(seed, 0, n, conditions)
