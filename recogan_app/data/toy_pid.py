"""Embedded conditional MC: RICH-like particle identification, DLLs given the track (seed 002).

LHCb's RICH GAN generates, for each track, the five delta-log-likelihoods of its particle
hypotheses given the track's momentum P, pseudorapidity η and the event's occupancy. This toy
makes such a sample from a simplified ring-imaging Cherenkov detector, so that every DLL shifts
and widens with the conditions for the physical reason it does in the real one.

Columns
-------
=================  =======  ==================================================================
name               unit     meaning
=================  =======  ==================================================================
``species``        1 (int)  true particle, |PDG id|: 211 π, 321 K, 2212 p, 13 μ, 11 e
``p``              GeV/c    track momentum, 3–150 GeV/c (log-uniform)
``eta``            1        pseudorapidity, 1.9–4.9
``n_tracks``       1 (int)  tracks in the event (occupancy)
``dll_e`` …        1        log L(h) − log L(π) for h = e, μ, K, p, deuteron
=================  =======  ==================================================================

The conditions are ``species, p, eta, n_tracks``; the targets the five DLLs.

Detector
--------
One gas radiator (refractive index n = 1.0014, C4F10-like: thresholds 2.6 GeV/c for π, 9.3 for
K, 17.7 for p, 35 for the deuteron). A particle of mass m and momentum p above threshold radiates
at θ(m) = arccos(1/(nβ)) and yields Poisson(N₀ sin²θ) detected photons, N₀ = 9000 (about 25 at
β = 1), plus Poisson background photons growing with ``n_tracks``. The ring's angle is measured
as the mean of its photons: single-photon resolution 1.6 mrad × (1 + n_tracks/300) × (1 +
0.15 (η − 3.4)²) (occupancy and the detector's edges), divided by √N. In 4 % of the tracks a
neighbouring ring is taken for the track's (θ measured at a random angle): the DLLs' tails.
Each hypothesis's log-likelihood is the Poisson probability of the photon count plus the
Gaussian of the measured angle (each term capped at 50 units, as a real likelihood saturates);
hypotheses below threshold expect background only. So DLLs separate with growing momentum
until rings merge at high P, and widen with occupancy and towards the acceptance's edges.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recogan_app.errors import InputError

DEFAULT_N = 500_000
SPECIES = {211: (0.139570, 0.62), 321: (0.493677, 0.20), 2212: (0.938272, 0.09), 13: (0.105658, 0.06),
           11: (0.000511, 0.03)}
"""|PDG id| → (mass in GeV/c², share of the tracks)."""
HYPOTHESES = {"e": 0.000511, "mu": 0.105658, "k": 0.493677, "p": 0.938272, "deuteron": 1.875613}
"""The DLL columns' hypotheses and their masses (each against the pion's)."""
CONDITIONS = ["species", "p", "eta", "n_tracks"]
TARGETS = [f"dll_{h}" for h in HYPOTHESES]
INDEX = 1.0014
PHOTONS = 9000.0
CAP = 50.0


def _angle(mass: float | np.ndarray, p: np.ndarray) -> np.ndarray:
    """Cherenkov angle (rad) of mass ``mass`` at momentum ``p``; 0 below threshold."""
    cos = np.sqrt(p**2 + np.asarray(mass) ** 2) / (INDEX * p)
    return np.arccos(np.minimum(cos, 1.0))


def _log_likelihood(mass: float, p, photons, background, measured, resolution) -> np.ndarray:
    """log L of the hypothesis ``mass``: Poisson photon count plus the ring angle's Gaussian."""
    theta = _angle(mass, p)
    expected = PHOTONS * np.sin(theta) ** 2 + background
    count = np.maximum(photons * np.log(expected) - expected, -CAP)
    ring = np.where(theta > 0, np.minimum(0.5 * ((measured - theta) / resolution) ** 2, CAP), CAP)
    return count - np.where(photons > 0, ring, 0.0)


def generate(n: int = DEFAULT_N, seed: int = 0) -> pd.DataFrame:
    """Simulate ``n`` tracks (rows) with their conditions and DLLs; the same seed gives the same sample.

    Returns ``species`` and ``n_tracks`` as int16, the rest float32 (columns as in the module's table).
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise InputError(f"n must be a positive integer, got {n!r}")
    rng = np.random.default_rng(seed)
    codes = np.array(list(SPECIES))
    masses, shares = (np.array(v) for v in zip(*SPECIES.values()))
    kind = rng.choice(len(codes), size=n, p=shares / shares.sum())
    p = np.exp(rng.uniform(np.log(3.0), np.log(150.0), n))  # above the pion's threshold: no DLL spike at 0
    eta = rng.uniform(1.9, 4.9, n)
    n_tracks = np.clip(rng.negative_binomial(4, 4 / (4 + 150), n), 5, 600)
    theta = _angle(masses[kind], p)
    background = 0.5 + n_tracks / 60.0
    photons = rng.poisson(PHOTONS * np.sin(theta) ** 2 + background)
    resolution = 1.6e-3 * (1 + n_tracks / 300.0) * (1 + 0.15 * (eta - 3.4) ** 2) / np.sqrt(np.maximum(photons, 1))
    measured = np.where(theta > 0, theta + resolution * rng.standard_normal(n), rng.uniform(0, 0.053, n))
    confused = rng.random(n) < 0.04
    measured = np.where(confused, rng.uniform(0.0, 0.053, n), measured)
    pion = _log_likelihood(SPECIES[211][0], p, photons, background, measured, resolution)
    frame = {"species": codes[kind].astype(np.int16), "p": p.astype(np.float32), "eta": eta.astype(np.float32),
             "n_tracks": n_tracks.astype(np.int16)}
    for name, mass in HYPOTHESES.items():
        frame[f"dll_{name}"] = (_log_likelihood(mass, p, photons, background, measured, resolution)
                                - pion).astype(np.float32)
    return pd.DataFrame(frame)
