"""An independent RICH-like PID simulation (issue 18's "RICH-like PID MC that you have not seen"):
DLL targets given momentum, pseudorapidity and track multiplicity, built from the physics of
LHCb's two-RICH system and written without looking at the package's PID toy or its models, so that
the conditional families' frozen defaults can be judged on data they were never tuned on.

What is modelled, and why (each is a structure a one-radiator toy lacks):

- **Calibration-like sample.** Species mix of PIDCalib-style samples (π, K from D*, p from Λ, μ from
  J/ψ, e from B → J/ψ(ee)K), ``species`` = |PDG id|. Transverse momentum from a falling power-law
  (Lomax) spectrum, harder for heavier species; η from 1.6 to 5.4; p = pT cosh η, so P and ETA are
  correlated; 2 < p < 200 GeV/c. The azimuth and a random charge decide the acceptances.
- **Occupancy.** ``nTracks`` from a broad gamma–Poisson (negative-binomial) law, mean ≈ 150 and a
  long tail: it sets each ring's background photons and degrades the per-photon resolution.
- **Two radiators, two detectors.** RICH1 (C4F10, n − 1 = 1.4e-3: θ_c ≤ 52.9 mrad; thresholds
  π 2.6, K 9.3, p 17.7 GeV/c) before the magnet, acceptance |θx| < 300, |θy| < 250 mrad outside
  a 25 mrad beam hole; RICH2 (CF4, n − 1 = 5e-4: θ_c ≤ 31.6 mrad; π 4.4, K 15.6, p 29.7 GeV/c)
  after it, |θx| < 120, |θy| < 100 mrad outside 15 mrad, where θx has taken the magnet's
  1.2 GeV/c kick of sign q: whether a track reaches RICH2 depends on p and charge. Rings near an
  edge lose up to half their photons. Only long tracks (inside the T stations after the kick) are kept.
- **Photons.** Signal photons Poisson with mean N_sat sin²θ_c / sin²θ_max (N_sat 20 in RICH1, 16 in
  RICH2, about LHCb's measured yields) times the geometric fraction; angles about θ_c with a
  per-photon resolution (1.6, 0.7 mrad as measured, growing with nTracks), 8 % of them in a tail four times wider, all shifted by the track's
  direction error (multiple scattering, ∝ 1/(pβ), shared by the ring's photons). Background
  photons Poisson with a mean growing with nTracks, spread over the search window (70 %
  uniform in area, 30 % uniform in angle).
- **Reconstruction.** Per detector and hypothesis h ∈ {e, μ, π, K, p, below threshold}: the
  extended likelihood of the hit angles, log L_h = −(S_h + b) + Σ log(S_h G(θ_i; θ_h, σ) + b ρ(θ_i)),
  with S_h = 0 below threshold, the nominal resolution (the occupancy's mean, not the track's:
  a realistic mis-modelling) in quadrature with the track's error, and a background estimate off
  the truth by a 15 % log-normal factor. ``RichDLLx`` = Σ_detectors log L_x − log L_π
  (``RichDLLbt``: the below-threshold hypothesis). Hence the features of real ntuples:
  DLL exactly 0 for tracks in neither RICH (``hasRich`` = 0, a PIDCalib flag, not a condition);
  hypotheses all below threshold give identical likelihoods (below 9.3 GeV/c, RichDLLk = RichDLLp
  = RichDLLbt exactly; below 2.6 GeV/c those are 0); separation that vanishes as θ_c saturates
  (β → 1) at high p; per-photon terms bounded by the background floor, so DLLs saturate rather
  than diverge; the kaon identified below its threshold by the *absence* of light (veto mode).

Units as LHCb's ntuples: ``P`` in MeV/c. Vectorised numpy, seeded (``numpy.random.default_rng(seed)``);
about 10 s for 400,000 tracks on one core.

Usage::

    python benchmarks/unseen_rich.py --out rich.parquet                # 400,000 tracks, seed 0
    python benchmarks/unseen_rich.py --rows 2000 --seed 7 --out small.parquet

``benchmarks/conditional.py --pairs quantile:unseen-rich`` trains on ``generate(rows, seed=0)`` and
validates on ``seed=1``.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

TARGETS = ["RichDLLe", "RichDLLmu", "RichDLLk", "RichDLLp", "RichDLLbt"]
CONDITIONS = ["P", "ETA", "nTracks", "species"]

# species: |PDG id|, mass [MeV/c²], share of the sample, pT spectrum scale [MeV/c]
SPECIES = {11: (0.511, 0.06, 1800.0), 13: (105.658, 0.12, 2200.0), 211: (139.570, 0.36, 1500.0),
           321: (493.677, 0.28, 1700.0), 2212: (938.272, 0.18, 2600.0)}
HYPOTHESES = {"e": SPECIES[11][0], "mu": SPECIES[13][0], "pi": SPECIES[211][0], "k": SPECIES[321][0],
              "p": SPECIES[2212][0], "bt": None}
"""Mass hypotheses of the likelihood; "bt" (below threshold) expects no light in either radiator."""
PT_MIN, PT_POWER = 400.0, 3.5       # MeV/c; the Lomax spectrum's floor and power
P_RANGE = (2_000.0, 200_000.0)      # MeV/c
MAGNET_KICK = 1_200.0               # MeV/c: ∫B dl ≈ 4 Tm
T_STATIONS = (0.300, 0.250)         # |θx|, |θy| a long track must stay within after the magnet [rad]
CHUNK = 50_000                      # tracks per likelihood pass (bounds the photon arrays' memory)


@dataclass(frozen=True)
class Rich:
    """One radiator and its photon detectors. Angles in mrad."""

    n_minus_1: float
    outer: tuple[float, float]      # |θx|, |θy| acceptance
    hole: float                     # beam-pipe hole (polar angle)
    after_magnet: bool
    yield_saturated: float          # photons of a β = 1 ring fully inside
    photon_resolution: float        # at nTracks = 0
    scattering: float               # track direction error × p [mrad GeV/c]
    background: tuple[float, float] # photons in the window: constant, per track of nTracks
    window: float                   # search window in θ

    @property
    def theta_max(self) -> float:
        return 1e3 * np.arccos(1 / (1 + self.n_minus_1))

    def cherenkov_angle(self, p: np.ndarray, mass) -> np.ndarray:
        """θ_c [mrad] of momentum ``p`` and ``mass`` (per track or one hypothesis; NaN below
        threshold and for the below-threshold hypothesis, mass None)."""
        if mass is None:
            return np.full_like(p, np.nan)
        cos = np.hypot(p, mass) / ((1 + self.n_minus_1) * p)
        return 1e3 * np.where(cos < 1, np.arccos(np.minimum(cos, 1)), np.nan)

    def signal(self, theta_c: np.ndarray, geometric: np.ndarray) -> np.ndarray:
        """Expected signal photons: the saturated yield × sin²θ_c/sin²θ_max × the ring's fraction inside."""
        share = np.sin(np.nan_to_num(theta_c) / 1e3) ** 2 / np.sin(self.theta_max / 1e3) ** 2
        return self.yield_saturated * share * geometric


RICH1 = Rich(1.4e-3, (300.0, 250.0), 25.0, False, 20.0, 1.6, 4.0, (1.5, 0.035), 70.0)
RICH2 = Rich(5.0e-4, (120.0, 100.0), 15.0, True, 16.0, 0.7, 2.0, (0.8, 0.015), 42.0)
NOMINAL_TRACKS = 150.0
"""The occupancy the reconstruction's resolution is tuned at."""


def resolution_scale(n_tracks: np.ndarray | float) -> np.ndarray | float:
    """Per-photon resolution relative to an empty event: overlapping rings and worse pattern recognition."""
    return 1 + 0.3 * np.asarray(n_tracks) / 250


def kinematics(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """``n`` long tracks of the species mix: species, mass, p, η and the slopes [mrad] before
    and after the magnet (whose kick, of a random charge's sign, some low-momentum tracks do not survive)."""
    parts, have = [], 0
    codes = np.array(list(SPECIES))
    masses, shares, scales = (np.array([SPECIES[c][i] for c in codes]) for i in range(3))
    while have < n:
        m = int(1.5 * (n - have)) + 100
        k = rng.choice(len(codes), size=m, p=shares / shares.sum())
        pt = PT_MIN + scales[k] * ((1 - rng.random(m)) ** (-1 / PT_POWER) - 1)
        eta = 1.6 + 3.8 * rng.beta(2.6, 3.2, m)
        p = pt * np.cosh(eta)
        phi = rng.uniform(-np.pi, np.pi, m)
        charge = rng.choice([-1.0, 1.0], m)
        theta = 2 * np.arctan(np.exp(-eta))
        tx, ty = theta * np.cos(phi), theta * np.sin(phi)
        tx_after = tx + charge * MAGNET_KICK / p
        keep = ((p > P_RANGE[0]) & (p < P_RANGE[1]) & (np.abs(tx_after) < T_STATIONS[0])
                & (np.abs(ty) < T_STATIONS[1]))
        parts.append(pd.DataFrame({"species": codes[k], "mass": masses[k], "P": p, "ETA": eta,
                                   "tx": 1e3 * tx, "tx_after": 1e3 * tx_after, "ty": 1e3 * ty})[keep])
        have += int(keep.sum())
    return pd.concat(parts, ignore_index=True).iloc[:n]


def geometric_fraction(rich: Rich, tx: np.ndarray, ty: np.ndarray) -> np.ndarray:
    """Share of a saturated ring inside the detector: 1 one ring radius from every edge, ½ on an
    edge, 0 outside (the track misses the detector)."""
    inside = np.minimum.reduce([rich.outer[0] - np.abs(tx), rich.outer[1] - np.abs(ty), np.hypot(tx, ty) - rich.hole])
    return np.where(inside > 0, np.clip(0.5 + 0.5 * inside / rich.theta_max, 0, 1), 0.0)


def background_angles(rng, rich: Rich, m: int) -> np.ndarray:
    """Background photon angles in the window: 70 % uniform in area, 30 % uniform in θ."""
    uniform = rng.random(m)
    return rich.window * np.where(rng.random(m) < 0.7, np.sqrt(uniform), uniform)


def background_density(rich: Rich, theta: np.ndarray) -> np.ndarray:
    """Normalised density of :func:`background_angles` in θ."""
    return 0.7 * 2 * theta / rich.window ** 2 + 0.3 / rich.window


def log_likelihoods(rng, rich: Rich, p, beta, mass, n_tracks, geometric) -> dict[str, np.ndarray]:
    """Per hypothesis, the extended log-likelihood of one detector's simulated hits for each track
    (tracks with ``geometric`` = 0 get 0 for every hypothesis)."""
    n = len(p)
    seen = geometric > 0
    out = {h: np.zeros(n) for h in HYPOTHESES}
    for start in range(0, n, CHUNK):
        part = slice(start, start + CHUNK)
        idx = np.flatnonzero(seen[part]) + start
        if not len(idx):
            continue
        pp, geo, occ = p[idx], geometric[idx], n_tracks[idx]
        track_error = np.hypot(0.1 * rich.photon_resolution, rich.scattering * 1e3 / (pp * beta[idx]))
        theta_c = np.nan_to_num(rich.cherenkov_angle(pp, mass[idx]))
        signal_true = rich.signal(theta_c, geo)
        background_true = rich.background[0] + rich.background[1] * occ
        n_signal, n_background = rng.poisson(signal_true), rng.poisson(background_true)
        # signal photons: θ_c + the ring's direction error + per-photon smearing (8 % in a 4× tail)
        ring = np.repeat(np.arange(len(idx)), n_signal)
        sigma = rich.photon_resolution * resolution_scale(occ)[ring] * np.where(rng.random(len(ring)) < 0.08, 4.0, 1.0)
        shift = rng.normal(0, track_error)
        theta_signal = theta_c[ring] + shift[ring] + sigma * rng.standard_normal(len(ring))
        ring_b = np.repeat(np.arange(len(idx)), n_background)
        track = np.concatenate([ring, ring_b])
        theta = np.concatenate([theta_signal, background_angles(rng, rich, len(ring_b))])
        inside = (theta > 0) & (theta < rich.window)
        track, theta = track[inside], theta[inside]
        # the reconstruction: nominal resolution ⊕ track error, a background estimate within ~15 %
        b_estimate = background_true * rng.lognormal(0, 0.15, len(idx))
        sigma_reco = np.hypot(rich.photon_resolution * resolution_scale(NOMINAL_TRACKS), track_error)
        floor = b_estimate[track] * background_density(rich, theta)
        background_only = -b_estimate + np.bincount(track, np.log(floor), minlength=len(idx))
        for h, m in HYPOTHESES.items():
            # log(S g + b ρ) = log(b ρ) + log1p(S g / b ρ); the second term only where the ring is (|z| < 10),
            # so that hypotheses below threshold get exactly the background-only likelihood
            theta_h = rich.cherenkov_angle(pp, m)
            expected = rich.signal(theta_h, geo)
            near = np.flatnonzero(expected[track] > 0)
            z = (theta[near] - theta_h[track[near]]) / sigma_reco[track[near]]
            keep = np.abs(z) < 10
            near, z = near[keep], z[keep]
            ring_term = expected[track[near]] * np.exp(-0.5 * z ** 2) / (np.sqrt(2 * np.pi) * sigma_reco[track[near]])
            out[h][idx] = background_only - expected + np.bincount(track[near], np.log1p(ring_term / floor[near]),
                                                                   minlength=len(idx))
    return out


def generate(n: int = 400_000, seed: int = 0) -> pd.DataFrame:
    """``n`` tracks: the conditions P [MeV/c], ETA, nTracks, species, the five DLLs and hasRich."""
    rng = np.random.default_rng(seed)
    tracks = kinematics(rng, n)
    n_tracks = 3 + rng.poisson(rng.gamma(2.5, 60.0, n))
    p, mass = tracks.P.to_numpy(), tracks.mass.to_numpy()
    beta = p / np.hypot(p, mass)
    totals = {h: np.zeros(n) for h in HYPOTHESES}
    has_rich = np.zeros(n, bool)
    for rich in (RICH1, RICH2):
        tx = tracks.tx_after if rich.after_magnet else tracks.tx
        geometric = geometric_fraction(rich, tx.to_numpy(), tracks.ty.to_numpy())
        has_rich |= geometric > 0
        for h, value in log_likelihoods(rng, rich, p, beta, mass, n_tracks, geometric).items():
            totals[h] += value
    frame = pd.DataFrame({"P": p, "ETA": tracks.ETA.to_numpy(), "nTracks": n_tracks.astype(np.int32),
                          "species": tracks.species.to_numpy().astype(np.int32)})
    for h in HYPOTHESES:
        if h != "pi":
            frame["RichDLL" + h] = totals[h] - totals["pi"]
    frame["hasRich"] = has_rich.astype(np.int8)
    return frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=400_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="Parquet file to write")
    args = parser.parse_args()
    started = time.perf_counter()
    frame = generate(args.rows, args.seed)
    elapsed = time.perf_counter() - started
    frame.to_parquet(args.out, index=False)
    print(f"{len(frame):,} tracks in {elapsed:.1f} s -> {args.out}; in no RICH: {1 - frame.hasRich.mean():.1%}")


if __name__ == "__main__":
    main()
