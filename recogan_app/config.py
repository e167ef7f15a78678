"""One typed configuration per model family (:class:`TabularConfig`, :class:`FlowConfig`,
:class:`QuantileConfig`, :class:`ZDCConfig`, :class:`ZDCVAEConfig`) on a shared base.

The same configuration object feeds config files (JSON or TOML), CLI flags and, later, dashboard
widgets (``pn.Param``): a setting exists once, with its bounds and documentation, here.
Defaults come from ``benchmarks/tabular.py`` on the embedded Ξc+ toy (see README).
"""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path

import param

from recogan_app.errors import InputError, closest

SEED_MAX = 2**32 - 1
"""Largest seed: numpy's and torch's generators both take 0 … 2**32 - 1."""
DEVICES = ("auto", "cpu", "cuda", "mps")
"""Device names a setting or ``--device`` takes (:func:`~recogan_app.training.device.resolve_device`)."""
MODELS = {"gan": "tabular", "flow": "flow", "quantile": "quantile"}
"""The models of tabular data a user chooses from (``train --model``, the Training tab) and the
family (run kind, :data:`recogan_app.families.FAMILIES`) each trains."""
ZDC_MODELS = {"gan": "zdc", "vae": "zdc-vae"}
"""The models of ZDC responses (``train --kind zdc --model``) and the family each trains."""


class Settings(param.Parameterized):
    """A typed configuration that round-trips through dicts and JSON/TOML files.

    Subclasses only declare their parameters; reading, checking and copying are shared so that
    every engine's settings behave the same in files, on the CLI and in the dashboard.
    """

    def to_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.param if name != "name"}

    @classmethod
    def from_dict(cls, values: dict, *, source: str | None = None) -> "Settings":
        """Build a config, refusing unknown keys and out-of-bounds values with a clear message."""
        known = [n for n in cls.param if n != "name"]
        if not isinstance(values, dict):
            raise InputError(f"holds {type(values).__name__} where settings (NAME: VALUE) are expected",
                             path=source)
        for key, value in values.items():
            if key not in known:
                raise InputError(f"unknown setting '{key}'", path=source, hint=closest(key, known))
            if isinstance(value, float) and not math.isfinite(value):  # bounds (0, None) let inf through
                raise InputError(f"setting '{key}' must be a finite number, not {value}", path=source)
            if getattr(cls.param[key], "item_type", None) is int and isinstance(value, list) and not all(
                    isinstance(v, int) and v >= 1 for v in value):  # layer widths: bounds limit the length only
                raise InputError(f"setting '{key}' takes whole numbers of at least 1, not {value}", path=source)
        try:
            return cls(**values)
        except (ValueError, TypeError) as exc:
            raise InputError(f"invalid setting: {exc}", path=source) from None

    @classmethod
    def from_file(cls, path) -> "Settings":
        """Read a JSON or TOML config file."""
        path = Path(path)
        if not path.is_file():  # a FIFO is never opened: it would block
            raise InputError("is not a regular file" if path.exists() else "config file not found", path=path)
        try:
            text = path.read_text()
            values = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
            raise InputError(f"could not be parsed: {exc}", path=path) from None
        return cls.from_dict(values, source=str(path))

    def updated(self, **overrides) -> "Settings":
        """A copy with the given settings replaced (None values are ignored)."""
        values = self.to_dict()
        values.update({k: v for k, v in overrides.items() if v is not None})
        return type(self).from_dict(values)


class TrainingSettings(Settings):
    """What every model family's training shares: the split, the schedule, reproducibility, hardware.

    A family's config declares only its own settings and, where its defaults differ, redeclares a
    shared one with its default (bounds and documentation are inherited).
    """

    # -- data -------------------------------------------------------------------------------------
    monitor_fraction = param.Number(default=0.1, bounds=(0.005, 0.5),
                                    doc="Share of the MC held out for the per-epoch snapshots (curves, best "
                                        "checkpoint, early stopping); never trained on.")
    test_fraction = param.Number(default=0.1, bounds=(0.005, 0.5),
                                 doc="Share of the MC held out for the final figures; never trained on and never "
                                     "used for a choice.")

    # -- optimisation -----------------------------------------------------------------------------
    batch_size = param.Integer(default=2048, bounds=(8, 1_000_000))

    # -- schedule ---------------------------------------------------------------------------------
    max_epochs = param.Integer(default=1000, bounds=(1, None), doc="Passes over the training split at most.")
    time_limit = param.Number(default=None, allow_None=True, bounds=(0, None), inclusive_bounds=(False, True),
                              doc="Wall-clock seconds of the whole training at most: preparation, fit, "
                                  "held-out evaluation and writing the run.")
    patience = param.Integer(default=30, bounds=(1, None),
                             doc="Stop after this many snapshots without a better validation score.")
    snapshot_rows = param.Integer(default=50_000, bounds=(50, None),
                                  doc="Monitor rows compared at each per-epoch snapshot, on which the best "
                                      "checkpoint is picked.")

    # -- reproducibility and hardware -------------------------------------------------------------
    seed = param.Integer(default=0, bounds=(0, SEED_MAX),
                         doc="Fixes every random choice, each through its own stream (recogan_app.streams).")
    device = param.Selector(default="auto", objects=list(DEVICES))
    bootstrap_of = param.Integer(default=None, allow_None=True, bounds=(0, SEED_MAX),
                                 doc="None: train on the split drawn by seed. A seed S: the split drawn by S "
                                     "(the same for every member of an ensemble), training on a resample with "
                                     "replacement of its training rows drawn by seed (stream 'resample').")

    RENAMED = {"validation_fraction": lambda share: {"monitor_fraction": share / 2, "test_fraction": share / 2}}
    """Settings of runs written by recogan 0.1 and what they mean now (0.1 split its one held-out
    share equally between monitor and test)."""

    @classmethod
    def from_dict(cls, values: dict, *, source: str | None = None) -> "TrainingSettings":
        if isinstance(values, dict):
            values = dict(values)
            for old, new in cls.RENAMED.items():
                if old in values and old not in cls.param:
                    values.update(new(values.pop(old)))
        return super().from_dict(values, source=source)


class AdversarialSettings(param.Parameterized):
    """What the GAN families add to :class:`TrainingSettings`: a noise-driven generator and a
    discriminator, each with its optimiser (a likelihood family has neither)."""

    latent_dim = param.Integer(default=32, bounds=(1, 1024), doc="Size of the generator's noise vector.")
    lr_generator = param.Number(default=2e-4, bounds=(0, 1))
    lr_discriminator = param.Number(default=2e-4, bounds=(0, 1))
    discriminator_steps = param.Integer(default=1, bounds=(1, 20), doc="Discriminator updates per generator update.")


class TabularSettings(TrainingSettings):
    """What every family of tabular data (one row per candidate) shares: its columns and their
    preprocessing (:class:`~recogan_app.preprocessing.FeaturePipeline`)."""

    features = param.List(default=None, allow_None=True, item_type=str,
                          doc="Columns to model, in order (a conditional model's targets); None = every numeric "
                              "column but the conditions.")
    conditions = param.List(default=None, allow_None=True, item_type=str,
                            doc="Columns a conditional model is given and never generates (e.g. p, eta, "
                                "n_tracks), preprocessed like the features; None = an unconditional model.")
    cut = param.String(default=None, allow_None=True,
                       doc="Selection applied to the MC before the split, e.g. 'pt > 2 and abs(eta) < 0.8' "
                           "(recogan_app.data.selection: parsed, never run as code).")
    weights = param.String(default=None, allow_None=True,
                           doc="Column of event weights (generator, reweighting, sWeights): read beside the features, "
                               "never modelled; training is weighted (weights >= 0).")
    derive = param.Dict(default={},
                        doc="Derived columns, name to formula, e.g. {'pt': 'hypot(px, py)'}: not modelled, computed "
                            "exactly from the generated columns (recogan_app.data.derived).")
    transforms = param.Dict(default={},
                            doc="Per-feature preprocessing spec overriding the suggestion, "
                                "e.g. {'cos_pa': 'arccos+quantile'}.")

    @property
    def columns(self) -> list[str] | None:
        """The columns a training reads: the conditions, then the features (None: every numeric column)."""
        return [*(self.conditions or []), *self.features] if self.features else None


class TabularConfig(TabularSettings, AdversarialSettings):
    """Settings of one tabular GAN training (architecture, losses, schedule, reproducibility)."""

    # -- architecture (seed 000: 3 dense layers in G, 2 in D) -----------------------------------
    generator_widths = param.List(default=[96, 96, 96], item_type=int, bounds=(1, 16),
                                  doc="Hidden widths of the generator's dense layers.")
    discriminator_widths = param.List(default=[256, 256], item_type=int, bounds=(1, 16),
                                      doc="Hidden widths of the discriminator's dense layers.")

    # -- optimisation ---------------------------------------------------------------------------
    adversarial = param.Selector(default="bce", objects=["bce", "wgan-gp", "hinge"],
                                 doc="Adversarial loss: BCE with label smoothing, WGAN-GP or hinge.")
    label_smoothing = param.Number(default=0.1, bounds=(0, 0.5),
                                   doc="Real-label target is 1 - label_smoothing (BCE only).")
    gradient_penalty = param.Number(default=10.0, bounds=(0, None), doc="λ of WGAN-GP's penalty.")

    # -- generator penalties, each with its λ ---------------------------------------------------
    lambda_ks = param.Number(default=1.0, bounds=(0, None),
                             doc="Weight of the differentiable KS penalty (soft empirical CDFs).")
    lambda_range = param.Number(default=1.0, bounds=(0, None),
                                doc="Weight of the penalty on values outside the MC's range.")
    lambda_corr = param.Number(default=3.0, bounds=(0, None),
                               doc="Weight of the penalty on the correlation-matrix residual (3: on the "
                                   "12-feature toy it took max |Δρ| from 0.071 at 1 to 0.053, same KS).")

    # -- schedule -------------------------------------------------------------------------------
    snapshot_rows = param.Integer(default=50_000, bounds=(100, None),
                                  doc="Rows compared at each per-epoch validation snapshot, on which the best "
                                      "checkpoint is picked. The toy's tail-dominated Pearson coefficients "
                                      "scatter by up to 0.048 (std) on 20k rows, 0.038 on 50k; 50k cost "
                                      "0.4 CPU-s per snapshot.")


class FlowConfig(TabularSettings):
    """Settings of one normalizing-flow training (:mod:`recogan_app.models.flow`): maximum
    likelihood, the best checkpoint by the monitor split's log-likelihood, the learning rate on a
    cosine down to the end of the time limit."""

    # -- architecture ---------------------------------------------------------------------------
    coupling_transforms = param.Integer(default=4, bounds=(1, 32),
                                        doc="Spline coupling transforms; each moves half of the features.")
    hidden_widths = param.List(default=[64, 64], item_type=int, bounds=(1, 8),
                               doc="Hidden widths of each coupling's network (which computes the spline knots).")
    spline_bins = param.Integer(default=8, bounds=(2, 64), doc="Bins of each rational-quadratic spline.")

    # -- optimisation ---------------------------------------------------------------------------
    learning_rate = param.Number(default=1e-3, bounds=(0, 1), inclusive_bounds=(False, True),
                                 doc="AdamW's learning rate at the start, then on a cosine to 0 at the end of "
                                     "the time limit (or of max_epochs without one).")
    weight_decay = param.Number(default=1e-5, bounds=(0, 1), doc="AdamW's decoupled weight decay.")
    batch_size = param.Integer(default=1024)
    patience = param.Integer(default=20, doc="Stop after this many snapshots without a better monitor "
                                             "log-likelihood.")
    snapshot_rows = param.Integer(default=20_000, bounds=(100, None),
                                  doc="Monitor rows whose log-likelihood picks the best checkpoint, and "
                                      "compared (KS, WS, correlations) with as many generated rows.")


class QuantileConfig(TabularSettings):
    """Settings of the quantile regression (:mod:`recogan_app.models.quantile`): dense networks of
    the conditions give each target's quantiles, sampled by the inverse CDF (``response``
    quantiles, the default: a DLL given the track is skewed and capped, not Gaussian) or seed
    003's mean μ and +1σ quantile q, sampled as μ + |q − μ|·N(0, 1) (``response`` seed003).
    Widths are seed 003's; its batch and rate (128, 1e-3) are set larger (1,024, 4e-3: twice the
    epochs in a time limit on CPU); its 1/(1 + epoch) schedule goes with its response, the quantiles
    response takes a cosine to the time limit."""

    response = param.Selector(default="quantiles", objects=["quantiles", "seed003"],
                              doc="A target given the conditions: its quantiles at `levels` levels (inverse-CDF "
                                  "sampling), or seed 003's Gaussian μ + |q − μ|·ε.")
    levels = param.Integer(default=100, bounds=(3, 1000),
                           doc="Quantile levels K of the quantiles response, evenly spaced 1/(2K) … 1 − 1/(2K) "
                               "(100: 0.005 … 0.995, 0.5 % beyond each end).")
    hidden_widths = param.List(default=[100, 100, 100, 100], item_type=int, bounds=(1, 16),
                               doc="Hidden widths of each network (seed 003: six layers, 100 nodes inside).")
    target_map = param.Selector(default="flatquantile", objects=["flatquantile", "quantile"],
                                doc="The targets' last preprocessing step (and their gen-level conditions'), unless "
                                    "`transforms` names one: the quantile map by the square root of the data's "
                                    "density (a narrow peak of some tracks' DLLs is not stretched into a near-empty "
                                    "range for the others), or by the density itself (before it existed).")
    increments = param.Selector(default="exp", objects=["exp", "softplus"],
                                doc="The quantiles response's increments between levels: the normal's times e^s of a "
                                    "network output s (one can jump across a gap in a DLL), or times softplus(s)/ln 2 "
                                    "(before it existed).")
    jumps = param.Integer(default=4, bounds=(0, 16),
                          doc="Steps added to each target's quantile function, each of a height, level and width "
                              "the network gives, so that a jump between components can move with the conditions "
                              "(0: none, runs saved before they existed).")
    one_hot = param.Integer(default=10, bounds=(0, None),
                            doc="Integer conditions of at most this many values (a species) reach the networks "
                                "also one-hot, beside their quantile-mapped coordinate (0: none).")
    learning_rate = param.Number(default=4e-3, bounds=(0, 1), inclusive_bounds=(False, True),
                                 doc="Adam's learning rate at the first epoch for batches of `batch_size` rows (a small "
                                     "sample's smaller batch: in proportion), then lr/(1 + epoch) (seed 003), or on "
                                     "a cosine to 0 at the time limit (quantiles response). Seed 003's: 1e-3.")
    batch_size = param.Integer(default=1024, doc="Rows a batch (a small sample's: an eighth of it). Seed 003's: 128.")
    patience = param.Integer(default=10, doc="Stop after this many epochs without a smaller monitor loss (seed 003's "
                                             "response, or without a time limit).")
    snapshot_rows = param.Integer(default=20_000, bounds=(100, None),
                                  doc="Monitor rows whose loss picks the best checkpoint, and compared (KS) with "
                                      "as many generated rows.")


ZDC_PROFILES = {
    "cpu": dict(generator_channels=16, batch_size=64, lr_generator=2e-3, lr_discriminator=2e-4, aux_epochs=2,
                snapshot_rows=5000, snapshot_draws=3, eval_draws=5),
    "gpu": dict(generator_channels=128, batch_size=256, lr_generator=2e-4, lr_discriminator=2e-5, aux_epochs=10,
                snapshot_rows=5000, snapshot_draws=3, eval_draws=5),
    "seed001": dict(generator_channels=128, batch_size=128, lr_generator=1e-4, lr_discriminator=1e-5, aux_epochs=10,
                    snapshot_rows=5000, snapshot_draws=3, eval_draws=5),
}
"""The ZDC sizes each ``profile`` gives the settings a config leaves open (None). ``seed001``: the
paper's. ``cpu``: a generator and batch that converge within minutes on 2 cores, with learning
rates 20× seed 001's (same 10:1 ratio), picked by measured 300 s runs (README, "ZDC profiles").
``gpu``: seed 001's network with a larger batch and learning rates scaled with it."""


class ZDCSettings(TrainingSettings):
    """What every ZDC family's training shares: the events kept, the split, the channel convention
    of the five-channel WS, the monitor snapshot and the held-out draws."""

    # -- data ---------------------------------------------------------------------------------
    min_photon_sum = param.Integer(default=1, bounds=(0, None),
                                   doc="Keep events with at least this many photons (seed 001: 1, 5 or 18).")
    test_fraction = param.Number(default=0.2, doc="Share of events held out for the final metrics (seed 001: 80/20).")
    channels = param.Selector(default="published", objects=["published", "jax"],
                              doc="Channel convention of the five-channel metric (see metrics.zdc).")
    latent_dim = param.Integer(default=10, bounds=(1, 512), doc="Size of the noise z of a response (seed 001: 10).")

    # -- schedule -------------------------------------------------------------------------------
    max_epochs = param.Integer(default=100)
    patience = param.Integer(default=20, doc="Stop after this many snapshots without a better five-channel WS.")
    snapshot_rows = param.Integer(default=5000, allow_None=True, doc="Monitor events compared at each per-epoch snapshot.")
    snapshot_draws = param.Integer(default=3, allow_None=True, bounds=(1, 20),
                                   doc="Noise draws each snapshot's five-channel WS is averaged over (the same "
                                       "draws every epoch).")
    eval_draws = param.Integer(default=5, allow_None=True, bounds=(1, 50),
                               doc="Noise draws the final five-channel WS is averaged over.")


class ZDCVAEConfig(ZDCSettings):
    """Settings of one ZDC Poisson-VAE training (:mod:`recogan_app.models.zdc_poisson`): the
    expected light per pixel from the conditions and a latent z, Poisson photon counts, trained by
    the evidence lower bound; the learning rate on a cosine to the end of the time limit."""

    decoder_width = param.Integer(default=16, bounds=(4, 512), doc="Feature maps of the decoder's convolutions.")
    batch_size = param.Integer(default=64)
    learning_rate = param.Number(default=2e-3, bounds=(0, 1), inclusive_bounds=(False, True),
                                 doc="Adam's learning rate at the start, then on a cosine to 0 at the end of the "
                                     "time limit (or of max_epochs without one).")
    kl_start = param.Number(default=1000.0, bounds=(1, None),
                            doc="Weight of the KL term at the start, falling linearly to 1 over kl_warm_up: the "
                                "decoder first learns the light from the conditions, z only what they leave open.")
    kl_warm_up = param.Number(default=0.5, bounds=(0, 1), doc="Share of the training the KL weight falls to 1 in.")
    exemplars = param.Integer(default=8, bounds=(1, None),
                              doc="Training events nearest in the conditions whose posteriors a generated "
                                  "response draws z from (one of them at random).")
    snapshot_draws = param.Integer(default=1)
    max_epochs = param.Integer(default=1000, doc="Epochs at most: a time limit is what ends a training (an epoch of "
                                                 "32,000 events takes ~5 s on one CPU thread); without one, patience.")


class ZDCConfig(ZDCSettings, AdversarialSettings):
    """Settings of one ZDC (proton ZP) GAN training: seed 001's model, losses and schedule.

    Defaults are seed 001's published choices; every λ switches its penalty off at 0. The sizes
    (generator width, batch, learning rates, aux pretraining, evaluation) default to None: the
    ``profile``'s, filled in by :meth:`for_device` when a training starts.
    """

    profile = param.Selector(default="auto", objects=["auto", *ZDC_PROFILES],
                             doc="Sizes for the hardware: cpu (converges in minutes on 2 cores), gpu, seed001 "
                                 "(the paper's), auto (gpu with CUDA, cpu without). A size set explicitly wins.")

    # -- architecture -------------------------------------------------------------------------
    generator_channels = param.Integer(default=None, allow_None=True, bounds=(4, 1024),
                                       doc="Feature maps of the generator's first conv stage (seed 001: 128; "
                                           "None: the profile's).")

    # -- optimisation ---------------------------------------------------------------------------
    batch_size = param.Integer(default=None, allow_None=True, bounds=(8, 100_000))
    lr_generator = param.Number(default=None, allow_None=True)
    lr_discriminator = param.Number(default=None, allow_None=True)

    # -- generator penalties, each with its λ (0 = off) -----------------------------------------
    lambda_diversity = param.Number(default=0.1, bounds=(0, None),
                                    doc="λ_div of the per-event SDI-GAN diversity loss.")
    lambda_intensity = param.Number(default=1e-3, bounds=(0, None),
                                    doc="λ_in of the per-event L1 between photon sums.")
    lambda_aux = param.Number(default=1e-3, bounds=(0, None),
                              doc="λ_aux of the hottest-pixel penalty of the frozen aux regressor.")
    aux_epochs = param.Integer(default=None, allow_None=True, bounds=(1, None),
                               doc="Epochs of aux-regressor pretraining on the real training images.")
    aux_lr = param.Number(default=1e-3, bounds=(0, 1), doc="Learning rate of the aux-regressor pretraining.")

    # -- schedule: the profile's sizes (None) -----------------------------------------------------
    snapshot_rows = param.Integer(default=None)
    snapshot_draws = param.Integer(default=None)
    eval_draws = param.Integer(default=None)

    def for_device(self, cuda: bool) -> "ZDCConfig":
        """This config with its profile named (auto: ``gpu`` with CUDA, ``cpu`` without) and each
        size it leaves open (None) taken from that profile: what a training records and runs."""
        profile = self.profile if self.profile != "auto" else ("gpu" if cuda else "cpu")
        return self.updated(profile=profile, **{k: v for k, v in ZDC_PROFILES[profile].items() if getattr(self, k) is None})
