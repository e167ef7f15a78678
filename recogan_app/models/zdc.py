"""Conditional convolutional GAN for ZP responses (seed 001) and its auxiliary regressor.

Images are (N, 1, 56, 30) in log1p space (the networks never see counts, whose range spans three
decades); conditions are the 9 of :data:`~recogan_app.data.zdc.CONDITIONS`, standardised with
the training split's mean and standard deviation. The modules do no I/O.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

from recogan_app import losses
from recogan_app.data.zdc import CONDITIONS, IMAGE_SHAPE, counts_from_log1p
from recogan_app.models.latent import LatentGenerator

LEAKY_SLOPE = 0.1
DROPOUT = 0.2
SEED_GRID = (20, 10)  # the generator's first feature map, upsampled to 56 × 30
CHANNELS_LAST = torch.channels_last
"""The memory layout of the ZDC networks' weights and feature maps: on a CPU, oneDNN's convolutions
and max-pooling run vectorised over channels in it (a training step 1.7–3.4× faster, generation
2×; README, "ZDC profiles")."""


def leaky() -> nn.Module:
    return nn.LeakyReLU(LEAKY_SLOPE)


def for_generation(network: nn.Module) -> nn.Module:
    """``network`` (a copy) frozen for generation: eval mode, no gradients, :data:`CHANNELS_LAST`,
    and its activations in place (no backward pass needs their inputs: on one core the Poisson VAE
    generates 50,000 responses in 6.7 s instead of 8.1 s)."""
    network = network.eval().requires_grad_(False).to(memory_format=CHANNELS_LAST)
    for layer in network.modules():
        if isinstance(layer, nn.LeakyReLU | nn.ReLU):
            layer.inplace = True
    return network


class Generator(LatentGenerator):
    """concat(z, c) → Dense 256 → Dense C·20·10 → (C, 20, 10) → upsample + conv (40 × 20)
    → upsample + conv (56 × 30) → conv → ReLU: one non-negative log1p image per row.

    Batch norm and LeakyReLU 0.1 after each layer but the last; no dropout: two draws for the
    same condition must differ through z, or the diversity loss would be met by dropout noise
    that is gone at generation time.

    Parameters
    ----------
    latent_dim : int
        Size of the noise z ~ N(0, 1) (seed 001: 10).
    channels : int
        Feature maps of the first convolutional stage (seed 001: 128); halved in the second.
    """

    def __init__(self, latent_dim: int = 10, channels: int = 128):
        super().__init__(latent_dim)
        self.channels = channels
        cells = channels * SEED_GRID[0] * SEED_GRID[1]
        self.dense = nn.Sequential(
            nn.Linear(latent_dim + len(CONDITIONS), 256), nn.BatchNorm1d(256), leaky(),
            nn.Linear(256, cells), nn.BatchNorm1d(cells), leaky())
        half = max(channels // 2, 1)
        self.convolutions = nn.Sequential(
            nn.Upsample(scale_factor=2), nn.Conv2d(channels, channels, 3, padding=1),
            nn.BatchNorm2d(channels), leaky(),
            nn.Upsample(size=IMAGE_SHAPE), nn.Conv2d(channels, half, 3, padding=1), nn.BatchNorm2d(half), leaky(),
            nn.Conv2d(half, 1, 3, padding=1), nn.ReLU())

    def forward(self, z: torch.Tensor, conditions: torch.Tensor) -> torch.Tensor:
        x = self.dense(torch.cat([z, conditions], dim=1))
        # in the convolutions' layout before upsampling: the smallest map to convert
        return self.convolutions(x.view(-1, self.channels, *SEED_GRID).contiguous(memory_format=CHANNELS_LAST))

    def fused(self) -> "Generator":
        """This generator for generation only (:func:`for_generation`), each batch norm folded into the
        layer before it (its running statistics): the same images, 25 % more per second."""
        fused = copy.deepcopy(self).eval()
        for layers in (fused.dense, fused.convolutions):
            for i, norm in enumerate(layers):
                if isinstance(norm, nn.BatchNorm1d | nn.BatchNorm2d):
                    fuse = fuse_linear_bn_eval if isinstance(layers[i - 1], nn.Linear) else fuse_conv_bn_eval
                    layers[i - 1], layers[i] = fuse(layers[i - 1], norm), nn.Identity()
        return for_generation(fused)

    @torch.inference_mode()
    def sample(self, conditions: torch.Tensor, *, generator: torch.Generator | None = None,
               chunk_rows: int = 512) -> torch.Tensor:
        """One log1p image per row of standardised ``conditions`` (eval mode, chunked), (N, 1, 56, 30).

        Chunks of a few hundred rows keep a chunk's feature maps in the CPU's cache: 512 generated
        twice as many events per second as 4096 on the 2-core machine (README, "ZDC profiles")."""
        was_training = self.training
        self.eval()
        try:
            parts = [self(self.sample_noise(len(c), generator=generator, device=c.device), c)
                     for c in conditions.split(chunk_rows)]
        finally:
            self.train(was_training)
        return torch.cat(parts) if parts else conditions.new_zeros((0, 1, *IMAGE_SHAPE))

    def counts(self, conditions: torch.Tensor, *, generator: torch.Generator | None = None) -> np.ndarray:
        """One photon-count image per row of standardised ``conditions``: (N, 56, 30) int32."""
        return counts_from_log1p(self.sample(conditions, generator=generator).cpu().numpy()[:, 0])


class Discriminator(nn.Module):
    """conv 32 → pool → conv 16 → pool → concat conditions → Dense 128 → Dense 64 → Dense 1
    (LeakyReLU 0.1 and dropout 0.2 after each block but the last).

    The 64-d output of the second dense layer is the feature space in which the diversity loss
    measures how different two generated images are.
    """

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3)
        self.conv2 = nn.Conv2d(32, 16, 3)
        flat = 16 * (((IMAGE_SHAPE[0] - 2) // 2 - 2) // 2) * ((IMAGE_SHAPE[1] - 2) // 2 - 2)  # 16 × 12 × 12
        self.fc1 = nn.Linear(flat + len(CONDITIONS), 128)
        self.fc2 = nn.Linear(128, 64)
        self.fc3 = nn.Linear(64, 1)

    def forward(self, images: torch.Tensor, conditions: torch.Tensor, *,
                dropout: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """(logit (N,), features (N, 64)). ``dropout=False`` gives deterministic features even in
        training mode, so that two images are compared, not two dropout masks."""
        drop = lambda x: F.dropout(x, DROPOUT, self.training and dropout)  # noqa: E731
        # dropout after the pooling: a quarter of the random masks to draw, the slowest step on a CPU
        x = drop(F.max_pool2d(F.leaky_relu(self.conv1(images), LEAKY_SLOPE), 2))
        x = drop(F.max_pool2d(F.leaky_relu(self.conv2(x), LEAKY_SLOPE), (2, 1)))
        x = drop(F.leaky_relu(self.fc1(torch.cat([x.flatten(1), conditions], dim=1)), LEAKY_SLOPE))
        features = self.fc2(x)
        return self.fc3(drop(F.leaky_relu(features, LEAKY_SLOPE))).squeeze(1), features


class AuxRegressor(nn.Module):
    """Four conv blocks (conv 3×3, LeakyReLU, max-pool) → Dense 64 → Dense 2: the (row, col) of
    the hottest pixel, in pixels. No batch norm or dropout, so that frozen it is a fixed function."""

    def __init__(self, widths=(16, 32, 64, 64)):
        super().__init__()
        blocks, size, rows, cols = [], 1, *IMAGE_SHAPE
        for width in widths:
            blocks += [nn.Conv2d(size, width, 3, padding=1), leaky(), nn.MaxPool2d(2)]
            size, rows, cols = width, rows // 2, cols // 2
        self.features = nn.Sequential(*blocks, nn.Flatten())
        self.head = nn.Sequential(nn.Linear(size * rows * cols, 64), leaky(), nn.Linear(64, 2))
        self.register_buffer("scale", torch.tensor([IMAGE_SHAPE[0] - 1.0, IMAGE_SHAPE[1] - 1.0]))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images)) * self.scale


class ZDCGAN(nn.Module):
    """Generator, discriminator, frozen aux regressor and seed 001's losses: what the trainer steps.

    A batch is ``(images, conditions, diversity, hottest)``: log1p images (N, 1, 56, 30),
    standardised conditions (N, 9), diversity targets (N,) and hottest-pixel (row, col) (N, 2).
    The adversarial loss is BCE (non-saturating for the generator); the discriminator trains with
    dropout and judges the generator without it (deterministic features for the diversity loss,
    one pass for both). Each penalty is added to the generator loss with its λ and skipped when
    λ is 0.

    Parameters
    ----------
    config : ZDCConfig
    aux : AuxRegressor, optional
        Pretrained on real images; frozen here. Needed when ``config.lambda_aux > 0``.
    """

    def __init__(self, config, aux: AuxRegressor | None = None):
        super().__init__()
        if config.lambda_aux > 0 and aux is None:
            raise ValueError("lambda_aux > 0 needs a pretrained aux regressor")
        self.config = config
        self.generator = Generator(config.latent_dim, config.generator_channels)
        self.discriminator = Discriminator()
        self.aux = aux.requires_grad_(False).eval() if aux is not None else None

    def configure_optimizers(self):
        cfg, betas = self.config, (0.5, 0.999)
        return (torch.optim.Adam(self.generator.parameters(), lr=cfg.lr_generator, betas=betas),
                torch.optim.Adam(self.discriminator.parameters(), lr=cfg.lr_discriminator, betas=betas))

    def discriminator_loss(self, images, conditions, diversity, hottest) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            fake = self.generator(self.generator.sample_noise(len(images)), conditions)
        d_real, _ = self.discriminator(images, conditions)
        d_fake, _ = self.discriminator(fake, conditions)
        loss = losses.discriminator_loss("bce", d_real, d_fake)
        return {"d_adversarial": loss, "d_loss": loss}

    def generator_loss(self, images, conditions, diversity, hottest) -> dict[str, torch.Tensor]:
        cfg, n = self.config, len(images)
        z1 = self.generator.sample_noise(n)
        fake = self.generator(z1, conditions)
        if cfg.lambda_diversity > 0:  # one discriminator pass over both draws
            z2 = self.generator.sample_noise(n)
            logits, features = self.discriminator(torch.cat([fake, self.generator(z2, conditions)]),
                                                  torch.cat([conditions, conditions]), dropout=False)
        else:
            logits, features = self.discriminator(fake, conditions, dropout=False)
        terms = {"g_adversarial": losses.generator_adversarial_loss("bce", logits[:n])}
        if cfg.lambda_diversity > 0:
            terms["g_diversity"] = cfg.lambda_diversity * losses.diversity_loss(
                z1, z2, features[:n], features[n:], diversity)
        if cfg.lambda_intensity > 0:
            terms["g_intensity"] = cfg.lambda_intensity * losses.intensity_loss(fake, images)
        if cfg.lambda_aux > 0:
            terms["g_aux"] = cfg.lambda_aux * losses.aux_loss(self.aux(fake), hottest)
        terms["g_loss"] = sum(terms.values())
        return terms
