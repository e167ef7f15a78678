"""Networks and the losses that tie them, as modules the trainer steps.

- ``latent``   the generators' base: noise z ~ N(0, 1) drawn in one place
- ``tabular``  dense generator/discriminator for reconstruction-level features (seed 000)
"""
