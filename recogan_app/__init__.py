"""recogan: a large synthetic sample from a modest MC one, with the evidence of how far it holds.

- ``data``           readers of MC files (ROOT, Parquet, CSV, HDF5, npz) and the embedded toys
- ``preprocessing``  per-feature invertible transforms and the fitted pipeline
- ``models``         generator and discriminator networks, the normalizing flow
- ``losses``         adversarial losses and generator penalties
- ``training``       the trainer: loop, events, pause/resume/stop, checkpoints, device choice
- ``metrics``        KS, Wasserstein, correlations, classifier two-sample test, seed 000's quality bars
- ``baseline``       the Gaussian copula every model must beat
- ``splits``         the MC's training / monitor / test split, and its rebuild for a run
- ``validation``     every metric with error bars and noise floors, beside the copula's
- ``zdc_validation`` a ZDC run's held-out gallery and channel sums, and the toy's noise floor
- ``report``         the standalone HTML validation report
- ``run``            the run directory: the unit of persistence and exchange
- ``export``         streamed, gated, atomic export with provenance
- ``files``          atomic writes
- ``markup``         text from files and users escaped for HTML and Markdown
- ``ui``             the Panel dashboard
- ``cli``            the ``recogan`` command

The names below are imported on first use, so ``import recogan_app`` stays light.
"""

from importlib import import_module

__version__ = "0.2.0"

from recogan_app.errors import InputError

_HOMES = {
    "recogan_app.data.sources": ("load_mc",),
    "recogan_app.config": ("TabularConfig", "FlowConfig", "ZDCConfig", "ZDCVAEConfig"),
    "recogan_app.preprocessing": ("FeaturePipeline",),
    "recogan_app.families": ("load_run",),
    "recogan_app.families.tabular": ("train_tabular", "TabularRun"),
    "recogan_app.families.flow": ("train_flow", "FlowRun"),
    "recogan_app.families.zdc": ("train_zdc", "ZDCRun"),
    "recogan_app.families.zdc_vae": ("train_zdc_vae", "ZDCVAERun"),
    "recogan_app.training.background": ("BackgroundTraining",),
    "recogan_app.baseline": ("GaussianCopula",),
    "recogan_app.validation": ("validate", "validate_run"),
    "recogan_app.report": ("write_report",),
}


def lazy_names(package: str, homes: dict[str, tuple[str, ...]]):
    """The names of ``homes`` (module → names) and a module ``__getattr__`` that imports each on first
    use: a package's light import (this one's, :mod:`recogan_app.metrics`')."""
    where = {name: module for module, names in homes.items() for name in names}

    def __getattr__(name: str):
        if name in where:
            return getattr(import_module(where[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return sorted(where), __getattr__


_names, __getattr__ = lazy_names(__name__, _HOMES)
__all__ = ["InputError", "__version__", *_names]
