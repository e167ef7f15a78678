"""recogan: a large synthetic sample from a modest MC one, with the evidence of how far it holds.

- ``data``           readers of MC files (ROOT, Parquet, CSV, HDF5, npz) and the embedded toys
- ``preprocessing``  per-feature invertible transforms and the fitted pipeline
- ``models``         generator and discriminator networks
- ``losses``         adversarial losses and generator penalties
- ``training``       the trainer: loop, events, pause/resume/stop, checkpoints, device choice
- ``metrics``        KS, Wasserstein, correlations, classifier two-sample test
- ``baseline``       the Gaussian copula every model must beat
- ``run``            the run directory: the unit of persistence and exchange
- ``cli``            the ``recogan`` command
"""

__version__ = "0.1.0"

from recogan_app.errors import InputError

__all__ = ["InputError", "__version__"]
