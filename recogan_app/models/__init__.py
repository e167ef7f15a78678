"""Networks and the losses that tie them, as modules the trainer steps.

- ``tabular``  dense generator/discriminator for reconstruction-level features (seed 000)
"""
