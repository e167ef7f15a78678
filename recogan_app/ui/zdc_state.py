"""The ZDC tab's state: a ZP sample, the λ switches, one ZDC training in the background, its live
five-channel WS history, and real versus generated responses for the same conditions.

:class:`ZDCSession` is a plain :class:`param.Parameterized` without Panel, like
:class:`~recogan_app.ui.state.Session` (whose notices and training control it shares): the ZDC
view only reads it and calls its methods, and a notebook can drive it alone. The comparisons it
shows are :mod:`recogan_app.zdc_validation`'s.

Example
-------
>>> zdc = ZDCSession()                                      # doctest: +SKIP
>>> zdc.toy_events = 2000; zdc.load(); zdc.start()          # doctest: +SKIP
>>> zdc.wait().show_heldout().generated.shape               # doctest: +SKIP
(6, 2, 56, 30)
"""

from __future__ import annotations

import functools
import json
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import param

from recogan_app import streams
from recogan_app.config import ZDC_MODELS, ZDCConfig, ZDCSettings, ZDCVAEConfig
from recogan_app.data import toy_zdc
from recogan_app.data.sources import IMAGE_FORMATS
from recogan_app.data.zdc import ZDCSample, load_zdc
from recogan_app.errors import InputError
from recogan_app.families import FAMILIES
from recogan_app.families.recipe import fit_to_run
from recogan_app.families.zdc import ZDCRun, profile_text, sized
from recogan_app.splits import subsample
from recogan_app.ui.state import TrainingState, file_stamp, files_under, inside
from recogan_app.zdc_validation import Comparison, compare_heldout, toy_noise_floor

__all__ = ["START", "TOY", "ZDCSession"]

TOY = "toy-zdc"
SOURCES = {"ZP toy (embedded)": TOY}
FILE_FORMATS = IMAGE_FORMATS
"""ZP files offered under the data root (pickles are never read by the dashboard: they run code)."""
START = dict(time_limit=120.0)
"""The tab's starting settings: two minutes (the GAN: the ``auto`` profile, ``cpu`` without CUDA, a
model forming in minutes on a laptop; seed 001's sizes are the ``seed001`` profile, one choice away)."""
MODEL_NAMES = {"Poisson VAE": "vae", "SDI-GAN (seed 001)": "gan"}
"""The ZDC models the tab offers (:data:`~recogan_app.config.ZDC_MODELS`), the CLI's default first."""
SWITCHES = {"lambda_diversity": "use_diversity", "lambda_intensity": "use_intensity", "lambda_aux": "use_aux"}
"""Each penalty's λ and the switch that turns it on."""
HISTORY = ["epoch", "elapsed_s", "sample_size", "ws_mean", "ws_ch1", "ws_ch2", "ws_ch3", "ws_ch4", "ws_ch5",
           "ws_draw_std", "empty_real", "empty_generated", "hottest_pixel_error"]


@functools.lru_cache(maxsize=2)
def _read_cached(source: str, toy_events: int, stamp: tuple) -> ZDCSample:
    """The toy (``toy_events`` of them, seed 0) or a ZP file, shared between sessions; ``stamp``
    (mtime, size) makes a changed file reload. Samples are only ever read."""
    return toy_zdc.generate(toy_events, seed=0) if source == TOY else load_zdc(source)


class ZDCSession(TrainingState):
    """One user's ZP sample, λ switches, ZDC training and trained run.

    Parameters
    ----------
    data_root : pathlib.Path, optional
        ZP files (``.npz``, HDF5) under it can be chosen; nothing outside it is read.
    workdir : pathlib.Path, optional
        Where runs are written; a fresh temporary folder by default.
    """

    data_root = param.Path(default=None, allow_None=True, check_exists=False, constant=True,
                           doc="Folder whose ZP files may be read; None: only the embedded toy.")
    source = param.Selector(default=TOY, objects=SOURCES, check_on_set=False,
                            doc="The ZP events: the embedded toy or a file under the data root.")
    toy_events = param.Integer(default=2000, bounds=(50, 200_000),
                               doc="Events of the embedded toy to simulate (seconds for a few thousand).")
    max_events = param.Integer(default=0, bounds=(0, None),
                               doc="Train on a seeded random subset of this many events (0: all).")
    sample = param.ClassSelector(class_=ZDCSample, default=None, allow_None=True, doc="The loaded ZP events.")
    simulated = param.Boolean(default=False, doc="The sample is the embedded toy, whose noise floor can be simulated.")
    model = param.Selector(default="vae", objects=MODEL_NAMES,
                           doc="The Poisson VAE (the default: 2-4 × the toy's floor in 5 CPU minutes) or seed 001's GAN.")
    config = param.ClassSelector(class_=ZDCSettings, doc="Settings of the next training (the chosen model's).")
    use_diversity = param.Boolean(default=True, doc="Add the SDI-GAN diversity loss (λ_div).")
    use_intensity = param.Boolean(default=True, doc="Add the per-event photon-sum loss (λ_in).")
    use_aux = param.Boolean(default=True, doc="Add the frozen hottest-pixel regressor's loss (λ_aux).")
    history = param.DataFrame(default=None, allow_None=True,
                              doc="One row per snapshot: five-channel WS per channel, empty counts, hottest-pixel error.")
    floor = param.Array(default=None, allow_None=True,
                        doc="The toy's per-channel WS noise floor at the snapshot size (None for files).")
    comparison = param.ClassSelector(class_=Comparison, default=None, allow_None=True,
                                     doc="The latest real-vs-generated gallery and channel sums.")
    gallery_seed = param.Integer(default=0, doc="Which held-out events the gallery shows after training.")

    def __init__(self, **params):
        self.configs = {"vae": ZDCVAEConfig(**START), "gan": ZDCConfig(**START)}
        """Each model's settings, kept while the other is chosen."""
        params["config"] = self.configs[params.get("model", "vae")]
        super().__init__(**params)
        self._floor: tuple | None = None
        self.refresh_sources()

    @param.depends("model", watch=True)
    def _follow_model(self) -> None:
        self.config = self.configs[self.model]

    # -- data ----------------------------------------------------------------------------------
    def refresh_sources(self) -> None:
        """Offer the embedded toy and the ZP files under the data root."""
        options = dict(SOURCES)
        if self.data_root is not None:
            options.update({name: name for name in files_under(Path(self.data_root), FILE_FORMATS)})
        self.param.source.objects = options

    def locate(self, source: str) -> str:
        """The toy's name or the file under the data root that ``source`` names; anything else is refused."""
        if source == TOY:
            return TOY
        if self.data_root is None:
            raise InputError("cannot be read: this dashboard reads no files", path=source,
                             hint="start it with --data-root DIR")
        return str(inside(Path(self.data_root), source))

    def read(self) -> ZDCSample:
        """Simulate or read the chosen events (the slow part of :meth:`load`: safe in a worker thread)."""
        path = self.locate(self.source)
        if path == TOY:
            return _read_cached(TOY, self.toy_events, ())
        return _read_cached(path, 0, file_stamp(path))

    def use(self, sample: ZDCSample, simulated: bool = False) -> None:
        """Make ``sample`` the events to train on; ``simulated``: it is the embedded toy."""
        self.param.update(sample=sample, simulated=simulated)
        sums = sample.photon_sums
        what = "toy events (seed 0)" if simulated else f"events from {sample.source}"
        self.tell(f"loaded {len(sample):,} ZP {what}: {int((sums == 0).sum()):,} empty, "
                  f"{int((sums >= self.config.min_photon_sum).sum()):,} with at least {self.config.min_photon_sum} "
                  f"photon(s)", "success")

    def load(self, source: str | None = None) -> ZDCSample:
        """Choose ``source`` (default: the current choice), :meth:`read` it and :meth:`use` it."""
        if source is not None:
            self.source = source
        sample = self.read()
        self.use(sample, simulated=self.source == TOY)
        return sample

    # -- training ------------------------------------------------------------------------------
    def training_sample(self) -> ZDCSample:
        """The loaded events, or a seeded random subset of :attr:`max_events` of them."""
        if self.sample is None:
            raise InputError("no ZP events loaded", hint="press Load")
        return subsample(self.sample, self.max_events, streams.rng(self.config.seed, "subsample"))

    def job_settings(self) -> ZDCSettings:
        """A copy of the chosen model's settings (unbound from the page's widgets); the GAN's with every
        switched-off penalty's λ set to 0 and the profile's sizes filled in."""
        if self.model != "gan":
            return self.config.updated()
        return sized(self.config.updated(**{name: 0.0 for name, switch in SWITCHES.items() if not getattr(self, switch)}))

    def noise_floor(self) -> np.ndarray | None:
        """:func:`toy_noise_floor` of the next training (None for a file), remembered while the
        sample and settings stay: a new simulation, slow for many snapshot rows (safe in a
        worker thread; the page computes it there before :meth:`start`)."""
        if not self.simulated:
            return None
        config = self.job_settings()
        key = (self.max_events, json.dumps(config.to_dict(), sort_keys=True, default=str))
        memo = self._floor
        if memo is None or memo[0] is not self.sample or memo[1] != key:
            memo = self._floor = (self.sample, key, toy_noise_floor(self.training_sample(), config))
        return memo[2]

    def start(self) -> Path:
        """Start a ZDC training with the current settings; returns its run folder. The toy loads
        itself when nothing is loaded yet."""
        self.check_idle()
        if self.sample is None and self.source == TOY:
            self.load()
        sample, config, floor = self.training_sample(), self.bounded(self.job_settings()), self.noise_floor()
        if self.model == "gan":
            on = [f"{name.removeprefix('lambda_')} {getattr(config, name):g}" for name in SWITCHES if getattr(config, name)]
            what = f"the ZDC GAN ({', '.join(on) or 'adversarial loss only'}; profile {profile_text(config)})"
        else:
            what = "the ZDC Poisson VAE"
        family = FAMILIES[ZDC_MODELS[self.model]](config)
        return self.launch(partial(fit_to_run, family, sample), config,
                           f"training {what} on {len(sample):,} events on {self.device_label}",
                           history=pd.DataFrame(columns=HISTORY), floor=floor, comparison=None)

    @param.depends("snapshots", watch=True)
    def _record(self) -> None:
        """Append the new snapshots to :attr:`history`; show the latest one's gallery."""
        if not self.snapshots:
            return
        rows = pd.DataFrame([{"epoch": s.epoch + 1, "elapsed_s": s.elapsed_s, "sample_size": s.sample_size,
                              **s.metrics} for s in self.snapshots])
        self.history = rows[HISTORY] if self.history is None or self.history.empty else pd.concat(
            [self.history, rows[HISTORY]], ignore_index=True)
        self.comparison = Comparison.of_snapshot(self.snapshots[-1])

    # -- after training (slow: safe in a worker thread, sets no parameter) -------------------------
    def compare_heldout(self, seed: int | None = None) -> Comparison:
        """:func:`~recogan_app.zdc_validation.compare_heldout` of the run, the gallery chosen by
        ``seed`` (default :attr:`gallery_seed`)."""
        if not isinstance(self.run, ZDCRun):
            raise InputError("no trained ZDC run yet", hint="press Start")
        return compare_heldout(self.run, self.gallery_seed if seed is None else seed)

    def show_heldout(self, seed: int | None = None) -> Comparison | None:
        """:meth:`compare_heldout` and show it (on the calling thread: notebooks, scripts)."""
        with self.reporting():
            self.comparison = self.compare_heldout(seed)
        return self.comparison
