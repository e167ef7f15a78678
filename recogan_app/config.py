"""One typed configuration for a tabular training.

The same :class:`TabularConfig` feeds config files (JSON or TOML), CLI flags and, later, dashboard
widgets (``pn.Param``): a setting exists once, with its bounds and documentation, here.
Defaults come from ``benchmarks/tabular.py`` on the embedded Ξc+ toy (see README).
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import param

from recogan_app.errors import InputError, closest


class TabularConfig(param.Parameterized):
    """Settings of one tabular GAN training (architecture, losses, schedule, reproducibility)."""

    # -- data ---------------------------------------------------------------------------------
    features = param.List(default=None, allow_None=True, item_type=str,
                          doc="Columns to model, in order; None = every numeric column.")
    transforms = param.Dict(default={},
                            doc="Per-feature preprocessing spec overriding the suggestion, "
                                "e.g. {'cos_pa': 'arccos+quantile'}.")
    validation_fraction = param.Number(default=0.2, bounds=(0.01, 0.5),
                                       doc="Share of the MC held out for validation; never trained on.")

    # -- architecture (seed 000: 3 dense layers in G, 2 in D) -----------------------------------
    latent_dim = param.Integer(default=32, bounds=(1, 1024), doc="Size of the generator's noise vector.")
    generator_widths = param.List(default=[128, 128, 128], item_type=int, bounds=(1, 16),
                                  doc="Hidden widths of the generator's dense layers.")
    discriminator_widths = param.List(default=[256, 256], item_type=int, bounds=(1, 16),
                                      doc="Hidden widths of the discriminator's dense layers.")

    # -- optimisation ---------------------------------------------------------------------------
    adversarial = param.Selector(default="bce", objects=["bce", "wgan-gp", "hinge"],
                                 doc="Adversarial loss: BCE with label smoothing, WGAN-GP or hinge.")
    batch_size = param.Integer(default=2048, bounds=(8, 1_000_000))
    lr_generator = param.Number(default=2e-4, bounds=(0, 1))
    lr_discriminator = param.Number(default=2e-4, bounds=(0, 1))
    discriminator_steps = param.Integer(default=1, bounds=(1, 20),
                                        doc="Discriminator updates per generator update.")
    label_smoothing = param.Number(default=0.1, bounds=(0, 0.5),
                                   doc="Real-label target is 1 - label_smoothing (BCE only).")
    gradient_penalty = param.Number(default=10.0, bounds=(0, None), doc="λ of WGAN-GP's penalty.")

    # -- generator penalties, each with its λ ---------------------------------------------------
    lambda_ks = param.Number(default=1.0, bounds=(0, None),
                             doc="Weight of the differentiable KS penalty (soft empirical CDFs).")
    lambda_range = param.Number(default=1.0, bounds=(0, None),
                                doc="Weight of the penalty on values outside the MC's range.")
    lambda_corr = param.Number(default=1.0, bounds=(0, None),
                               doc="Weight of the penalty on the correlation-matrix residual.")

    # -- schedule -------------------------------------------------------------------------------
    max_epochs = param.Integer(default=1000, bounds=(1, None),
                               doc="Passes over the training split at most.")
    time_limit = param.Number(default=None, allow_None=True, bounds=(0, None),
                              doc="Wall-clock seconds of training at most.")
    patience = param.Integer(default=30, bounds=(1, None),
                             doc="Stop after this many snapshots without a better validation score.")
    snapshot_rows = param.Integer(default=20_000, bounds=(100, None),
                                  doc="Rows compared at each per-epoch validation snapshot.")

    # -- reproducibility and hardware -----------------------------------------------------------
    seed = param.Integer(default=0, doc="Fixes the split, the initialisation and the sampling.")
    device = param.Selector(default="auto", objects=["auto", "cpu", "cuda", "mps"])

    def to_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.param if name != "name"}

    @classmethod
    def from_dict(cls, values: dict, *, source: str | None = None) -> "TabularConfig":
        """Build a config, refusing unknown keys and out-of-bounds values with a clear message."""
        known = [n for n in cls.param if n != "name"]
        for key in values:
            if key not in known:
                raise InputError(f"unknown setting '{key}'", path=source, hint=closest(key, known))
        try:
            return cls(**values)
        except (ValueError, TypeError) as exc:
            raise InputError(f"invalid setting: {exc}", path=source) from None

    @classmethod
    def from_file(cls, path) -> "TabularConfig":
        """Read a JSON or TOML config file."""
        path = Path(path)
        if not path.is_file():
            raise InputError("config file not found", path=path)
        text = path.read_text()
        try:
            values = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
        except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
            raise InputError(f"could not be parsed: {exc}", path=path) from None
        return cls.from_dict(values, source=str(path))

    def updated(self, **overrides) -> "TabularConfig":
        """A copy with the given settings replaced (None values are ignored)."""
        values = self.to_dict()
        values.update({k: v for k, v in overrides.items() if v is not None})
        return type(self).from_dict(values)
