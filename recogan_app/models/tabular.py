"""Dense generator and discriminator for reconstruction-level features (seed 000).

Both networks work in the preprocessed space (every feature roughly N(0, 1)); they do no I/O
and know nothing of the data's units. The generator uses batch norm as in seed 000; the
discriminator does not, because WGAN-GP's per-sample gradient penalty is meaningless when a
sample's output depends on the rest of its batch.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_linear_bn_eval

from recogan_app import losses
from recogan_app.losses import MarginalTargets
from recogan_app.models.latent import NOISE_BLOCK, LatentGenerator, Rows, batch_parts, joined, noise_passes, pass_conditions

LEAKY_SLOPE = 0.2
PASS_ROWS = 4096
"""Rows per pass through the network on a CPU: a pass's activations (2048 × a hidden width)
stay in a core's cache (4096 × a hidden width of 96 is 1.5 MB), where whole 16k-row blocks are
memory-bound."""


def dense(size: int, widths, out: int, *norm, slope: float = LEAKY_SLOPE) -> nn.Sequential:
    """Linear layers of ``widths`` (each followed by the ``norm`` layers and a LeakyReLU of
    ``slope``), then a linear map to ``out`` values."""
    layers = []
    for width in widths:
        layers += [nn.Linear(size, width), *(layer(width) for layer in norm), nn.LeakyReLU(slope)]
        size = width
    return nn.Sequential(*layers, nn.Linear(size, out))

class Generator(LatentGenerator):
    """Noise (and a conditional model's conditions) → dense layers (Linear, BatchNorm,
    LeakyReLU) → one value per feature.

    Parameters
    ----------
    latent_dim : int
        Size of the noise vector z ~ N(0, 1).
    n_features : int
        Number of generated features.
    widths : sequence of int
        Hidden layer widths (seed 000: three layers).
    n_conditions : int
        Conditions concatenated to the noise (0: an unconditional generator).
    """

    def __init__(self, latent_dim: int, n_features: int, widths=(128, 128, 128), n_conditions: int = 0):
        super().__init__(latent_dim)
        self.net = dense(latent_dim + n_conditions, widths, n_features, nn.BatchNorm1d)

    def forward(self, z: torch.Tensor, conditions: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(joined(z, conditions))

    def fused(self) -> nn.Sequential:
        """An inference copy with each batch norm folded into the linear layer before it.

        In eval mode batch norm is an affine map, so folding it changes no output and saves a
        pass over every hidden layer: generation is matmul-bound.
        """
        if self.training:
            raise RuntimeError("fuse an eval-mode generator (call .eval() first)")
        layers, modules = [], list(self.net)
        for i, module in enumerate(modules):
            if isinstance(module, nn.BatchNorm1d):
                continue
            if isinstance(module, nn.Linear) and i + 1 < len(modules) and isinstance(modules[i + 1], nn.BatchNorm1d):
                module = fuse_linear_bn_eval(module, modules[i + 1])
            layers.append(module)
        return nn.Sequential(*layers).eval()

    def sampler(self) -> Rows:
        """A frozen, fused copy of this generator as a thread-safe :data:`Rows` function.

        Training goes on undisturbed (the copy is taken in eval mode; this network is not
        touched), and several threads may call the function at once. Each call reuses a few
        preallocated buffers and walks the noise in passes of :data:`PASS_ROWS` rows
        (:func:`~recogan_app.models.latent.noise_passes`): activations stay in cache, no
        per-layer allocation.
        The output layer is computed transposed (features × rows: a matrix product with a
        handful of output columns runs at half speed the other way round), so the rows come
        back as a column-major (Fortran-ordered) view whose columns, one per feature, are
        contiguous: what the per-feature inverse preprocessing reads. A conditional generator's
        function takes the (preprocessed) conditions of rows start…stop as a fourth argument.
        """
        network = copy.deepcopy(self).eval().fused()
        *hidden, final = [m for m in network if isinstance(m, nn.Linear)]  # LeakyReLU after each hidden
        device = next(self.parameters()).device
        pass_rows = PASS_ROWS if device.type == "cpu" else NOISE_BLOCK
        bias = final.bias[:, None]

        @torch.inference_mode()
        def rows(seed: int, start: int, stop: int, conditions: torch.Tensor | None = None) -> torch.Tensor:
            out = torch.empty(final.out_features, max(stop - start, 0), device=device)
            z = torch.empty(NOISE_BLOCK, self.latent_dim, device=device)
            buffers = [torch.empty(pass_rows, m.out_features, device=device) for m in hidden]
            features = torch.empty(final.out_features, pass_rows, device=device)
            given = None if conditions is None else conditions.to(device)
            for x, keep, at in noise_passes(seed, start, stop, z, pass_rows):
                x = joined(x, pass_conditions(given, len(x), keep, at))
                for linear, buffer in zip(hidden, buffers):
                    x = torch.addmm(linear.bias, x, linear.weight.t(), out=buffer[:len(x)])
                    nn.functional.leaky_relu_(x, LEAKY_SLOPE)
                y = torch.addmm(bias, final.weight, x.t(), out=features[:, :len(x)])
                out[:, at:at + keep.stop - keep.start] = y[:, keep]
            return out.t()

        return rows


class Discriminator(nn.Module):
    """Features (and a conditional model's conditions) → dense layers (Linear, LeakyReLU) → one
    logit (or critic value)."""

    def __init__(self, n_features: int, widths=(256, 256)):
        super().__init__()
        self.net = dense(n_features, widths, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)


class TabularGAN(nn.Module):
    """Generator, discriminator and the losses that tie them: what the trainer steps.

    Parameters
    ----------
    n_features : int
        Number of (preprocessed) features.
    config : TabularConfig
        Architecture, adversarial loss and λ weights.
    targets : MarginalTargets
        The training split's marginals, range and correlations for the generator penalties.
    n_conditions : int
        A conditional GAN's conditions, given to the generator beside its noise and to the
        discriminator beside the features (0: unconditional). A batch is (features, conditions of a
        conditional GAN, weights of a weighted MC).
    """

    def __init__(self, n_features: int, config, targets: MarginalTargets, n_conditions: int = 0):
        super().__init__()
        self.config = config
        self.targets = targets
        self.conditional = n_conditions > 0
        self.generator = Generator(config.latent_dim, n_features, config.generator_widths, n_conditions)
        self.discriminator = Discriminator(n_features + n_conditions, config.discriminator_widths)

    def to(self, device):  # the targets are plain tensors, not buffers: move them too
        self.targets = self.targets.to(device)
        return super().to(device)

    def configure_optimizers(self):
        cfg = self.config
        betas = (0.5, 0.9)
        return (torch.optim.Adam(self.generator.parameters(), lr=cfg.lr_generator, betas=betas),
                torch.optim.Adam(self.discriminator.parameters(), lr=cfg.lr_discriminator, betas=betas))

    def discriminator_loss(self, real: torch.Tensor, *given: torch.Tensor) -> dict[str, torch.Tensor]:
        """The adversarial loss on a batch of real rows (their terms averaged with their event
        weights, when the MC is weighted) and as many generated ones, plus WGAN-GP's penalty
        (on unweighted interpolates: a constraint on the critic, not an expectation over the MC).
        ``given``: the batch's conditions and weights (:func:`~recogan_app.models.latent.batch_parts`)."""
        conditions, weights = batch_parts(given, self.conditional)
        cfg = self.config
        with torch.no_grad():
            fake = joined(self.generator(self.generator.sample_noise(real.shape[0]), conditions), conditions)
        real = joined(real, conditions)
        d_real, d_fake = self.discriminator(real), self.discriminator(fake)
        terms = {"d_adversarial": losses.discriminator_loss(
            cfg.adversarial, d_real, d_fake, label_smoothing=cfg.label_smoothing, weights=weights)}
        if cfg.adversarial == "wgan-gp":
            terms["d_gradient_penalty"] = cfg.gradient_penalty * losses.gradient_penalty(
                self.discriminator, real, fake)
        terms["d_loss"] = sum(terms.values())
        return terms

    def generator_loss(self, real: torch.Tensor, *given: torch.Tensor) -> dict[str, torch.Tensor]:
        """Adversarial loss plus the λ-weighted penalties (on the batch's marginals), for a batch
        the size of ``real`` (the weights live in the discriminator's real terms and the penalties' targets)."""
        conditions, _ = batch_parts(given, self.conditional)
        cfg = self.config
        fake = self.generator(self.generator.sample_noise(real.shape[0]), conditions)
        terms = {"g_adversarial": losses.generator_adversarial_loss(
            cfg.adversarial, self.discriminator(joined(fake, conditions)))}
        for name, weight, penalty in (("g_ks", cfg.lambda_ks, losses.ks_penalty),
                                      ("g_range", cfg.lambda_range, losses.range_penalty),
                                      ("g_corr", cfg.lambda_corr, losses.correlation_penalty)):
            if weight > 0:
                terms[name] = weight * penalty(fake, self.targets)
        terms["g_loss"] = sum(terms.values())
        return terms

    def sample(self, n: int, *, seed: int, conditions: torch.Tensor | None = None) -> torch.Tensor:
        """The first ``n`` rows of the generated stream for ``seed`` (given the ``n`` rows of
        ``conditions``), in the preprocessed space."""
        return self.generator.sampler()(seed, 0, n, conditions)
