"""What a ZDC run is compared with: real responses to the same conditions, and the toy's own noise.

>>> compare_heldout(ZDCRun.load("runs/zdc"), seed=0).generated.shape      # doctest: +SKIP
(6, 2, 56, 30)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recogan_app.config import ZDCSettings
from recogan_app.data import toy_zdc
from recogan_app.data.zdc import ZDCSample
from recogan_app.metrics.zdc import channel_sums, five_channel_ws
from recogan_app.families import family_for
from recogan_app.families.zdc import ZDCRun, draw_seeds
from recogan_app.splits import draw_split, heldout_sizes, snapshot_positions, subsample
from recogan_app.training.events import Snapshot

__all__ = ["GALLERY_EVENTS", "HELDOUT_DRAWS", "HISTOGRAM_EVENTS", "Comparison", "compare_heldout", "toy_noise_floor"]

GALLERY_EVENTS = 6
HELDOUT_DRAWS = 2
"""Generated responses per held-out gallery event: two draws show the spread for one condition."""
HISTOGRAM_EVENTS = 2000
"""Held-out events whose channel sums are compared (generating costs time)."""


@dataclass(frozen=True, eq=False)
class Comparison:
    """Real ZP events and generated responses to exactly their conditions.

    Attributes
    ----------
    real : ndarray, shape (N, 56, 30)
        The gallery's real responses (photon counts).
    generated : ndarray, shape (N, D, 56, 30)
        ``D`` generated responses to each gallery event's conditions.
    conditions : ndarray, shape (N, 9)
        The gallery events' conditions, in their units.
    channels_real, channels_generated : ndarray, shape (M, 5)
        Channel photon sums of the compared events (more than the gallery) and of the generated
        responses to their conditions.
    label : str
        Which events these are and where the generated ones come from.
    """

    real: np.ndarray
    generated: np.ndarray
    conditions: np.ndarray
    channels_real: np.ndarray
    channels_generated: np.ndarray
    label: str

    @classmethod
    def of_snapshot(cls, snapshot: Snapshot, events: int = GALLERY_EVENTS) -> Comparison:
        """What a ZDC training snapshot compared: monitor events (held out from training), one response
        each from its fixed noise."""
        details = snapshot.details
        return cls(real=details["gallery_real"][:events], generated=details["gallery_generated"][:events, None],
                   conditions=details["gallery_conditions"][:events], channels_real=details["channels_real"],
                   channels_generated=details["channels_generated"],
                   label=f"epoch {snapshot.epoch + 1}: monitor events, the snapshot's fixed noise")


def compare_heldout(run: ZDCRun, seed: int = 0) -> Comparison:
    """Held-out events (never trained on) and the run's responses to their conditions.

    The gallery holds :data:`GALLERY_EVENTS` events chosen by ``seed`` with :data:`HELDOUT_DRAWS`
    generated responses each (independent noise draws of ``seed``); the channel sums compare up
    to :data:`HISTOGRAM_EVENTS` held-out events with one response each.
    """
    test = run.heldout()
    rng = np.random.default_rng(seed)
    shown = test.subset(rng.choice(len(test), min(GALLERY_EVENTS, len(test)), replace=False))
    compared = subsample(test, HISTOGRAM_EVENTS, rng)
    *gallery, histogram = draw_seeds(seed, HELDOUT_DRAWS + 1, "validation")
    generated = np.stack([run.generate(shown.conditions, seed=draw) for draw in gallery], axis=1)
    convention = run.config.channels
    return Comparison(real=shown.images, generated=generated, conditions=shown.conditions,
                      channels_real=channel_sums(compared.images, convention),
                      channels_generated=channel_sums(run.generate(compared.conditions, seed=histogram), convention),
                      label=f"held-out events (never trained on), {HELDOUT_DRAWS} generated responses each; "
                            f"histograms: {len(compared):,} held-out events")


def toy_noise_floor(sample: ZDCSample, config: ZDCSettings, seed: int = 1) -> np.ndarray:
    """Per-channel WS (photons) between toy events and a new simulation of exactly their conditions.

    No model can be shown to do better than this. Taken on exactly the monitor events (photon
    sum ≥ ``config.min_photon_sum``) the per-epoch snapshot of a training with ``config`` compares,
    so that it sits at the snapshot's sample size (``benchmarks/zdc.py`` does the same on the test
    split); ``seed`` fixes the new simulation.

    Returns
    -------
    ndarray, shape (5,)
    """
    family = family_for(config)
    kept, config = family.usable(sample), family.config  # the events and sizes of a training with config
    monitor = draw_split(len(kept), *heldout_sizes(len(kept), config.monitor_fraction, config.test_fraction),
                         config.seed).monitor
    events = kept.subset(monitor[snapshot_positions(len(monitor), config.snapshot_rows, config.seed)])
    again = toy_zdc.simulate(events.conditions, seed=seed)
    return five_channel_ws(events.images, [again], config.channels)["per_channel"]
