"""Embedded toy proton ZDC (ZP): 56 × 30 photon-count responses to particles with known conditions.

The GEANT4 sets of seed 001 are not public; this fast, fully vectorised stand-in has the same
interface (the 9 conditions of :data:`~recogan_app.data.zdc.CONDITIONS`, in their units) and the
same kind of structure, produced by physics rather than drawn per pixel.

Modelling choices
-----------------
Geometry
    The ZP face sits at z = 112.5 m from the interaction point, 22.4 cm (56 rows, along x) by
    12 cm (30 columns, along y), 4 mm pixels, centred 19 cm off the beam line on the side where
    the separation dipoles bend beam-energy protons. A particle flies straight from its vertex
    (Vx, Vy, Vz) along (Px, Py, Pz); a charged one born before the magnets (Vz < 60 m) is also
    bent by Δx = charge · 0.19 m · 2510 GeV / p, so a spectator proton at the Pb-beam energy per
    nucleon (2510 GeV) lands on the centre, a slower one further out, and neutral or negative
    particles from the interaction point miss the ZP entirely (an exactly empty response).
Light yield
    Cherenkov light in the quartz fibres comes from the electromagnetic part of the shower: a
    hadron of energy E makes 0.2 · E · f_em(E) photons on average, f_em = 1 − (E / 1 GeV)^−0.18
    (Groom's non-compensation law), times a species factor (π± 1.05, p 1.0, K 1.0, n 0.95); a
    photon (mass 0) showers fully electromagnetically (f_em = 1). The event-to-event shower
    fluctuation is a Gamma factor of relative width 50 %/√E ⊕ 12 % (hadrons) or 15 %/√E ⊕ 3 %
    (photons). Particles of a few GeV thus give near-empty responses.
Shower shape
    A narrow core (σ = 0.8 + 0.12 log10(E/GeV) pixels) plus a halo 2.5 times wider holding 15 %
    of the light (photons: 40 % narrower, 5 % halo), centred on the impact point with a 0.5-pixel
    jitter from the depth of the first interaction (0.2 for photons), integrated over each pixel;
    light outside the face is lost, so showers near an edge are clipped.
Photon statistics
    Each pixel's count is Poisson with the expected light. In the default mixture ~98 % of
    pixels are zero, ~38 % of events are empty and ~47 % have fewer than 18 photons.
Mixture of conditions (:func:`draw_conditions`)
    45 % spectator protons from the interaction point (momentum 2510 GeV × lognormal 10 %, or a
    momentum loss to 30–100 % of it in one case out of five; Fermi transverse momentum 0.25 GeV);
    35 % secondaries of interactions in the material in front of the ZP (Vz 95–111.5 m; π±, p,
    n, γ, K⁰L; 1–1500 GeV log-uniform; transverse momentum 0.3 GeV exponential); 20 % neutrons,
    pions and photons from the interaction point, which miss it. Each distinct condition vector
    is simulated 1 + Poisson(2) times, as the real sets hold groups of identical conditions.

Example
-------
>>> sample = generate(10_000, seed=1)
>>> sample.images.shape, sample.conditions.shape
((10000, 56, 30), (10000, 9))
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr

from recogan_app.data.zdc import CONDITIONS, IMAGE_SHAPE, ZDCSample

__all__ = ["DEFAULT_N", "draw_conditions", "generate", "simulate"]

DEFAULT_N = 20_000
DISTANCE = 112.5        # m, interaction point to the ZP face
PITCH = 0.004           # m per pixel
CENTRE_X = 0.19         # m, ZP centre off the beam line
MAGNETS_END = 60.0      # m, particles born before this are bent by the separation dipoles
BEAM_ENERGY = 2510.0    # GeV per nucleon, Pb–Pb at √sNN = 5.02 TeV
BEND = CENTRE_X * BEAM_ENERGY  # GeV·m: Δx = charge · BEND / p
PHOTONS_PER_GEV = 0.2
CHUNK = 4096            # events simulated at a time (bounds memory at ~60 MB)

# mass [MeV], charge, light-yield factor
SPECIES = {"proton": (938.272, 1, 1.00), "neutron": (939.565, 0, 0.95), "pi+": (139.570, 1, 1.05),
           "pi-": (139.570, -1, 1.05), "K0L": (497.611, 0, 1.00), "gamma": (0.0, 0, 1.00)}
_MASSES = np.array([m for m, _, _ in SPECIES.values()])
_YIELDS = np.array([y for _, _, y in SPECIES.values()])


def generate(n: int = DEFAULT_N, seed: int = 0) -> ZDCSample:
    """``n`` events: conditions from the realistic mixture, then their simulated responses.

    Parameters
    ----------
    n : int
        Number of events (at least 1).
    seed : int
        Fixes the conditions and the responses.

    Returns
    -------
    ZDCSample
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    conditions_seed, response_seed = np.random.SeedSequence(seed).spawn(2)
    conditions = draw_conditions(n, np.random.default_rng(conditions_seed))
    return ZDCSample(simulate(conditions, response_seed), conditions)


def draw_conditions(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 9) conditions from the mixture described in the module notes, in groups of identical rows."""
    sizes = 1 + rng.poisson(2.0, n)
    distinct = int(np.searchsorted(np.cumsum(sizes), n)) + 1
    unique = _draw_distinct(distinct, rng)
    return rng.permutation(np.repeat(unique, sizes[:distinct], axis=0)[:n])


def _draw_distinct(n: int, rng: np.random.Generator) -> np.ndarray:
    names = list(SPECIES)
    kind = rng.choice(3, n, p=[0.45, 0.35, 0.20])  # spectator proton, secondary near the ZP, miss
    species = np.where(kind == 0, names.index("proton"),
                       np.where(kind == 1,
                                rng.choice(6, n, p=[0.15, 0.15, 0.25, 0.20, 0.05, 0.20]),
                                rng.choice([1, 2, 3, 5], n, p=[0.5, 0.2, 0.15, 0.15])))
    mass = _MASSES[species] / 1000.0
    charge = np.array([c for _, c, _ in SPECIES.values()])[species]
    log_uniform = lambda low, high: np.exp(rng.uniform(np.log(low), np.log(high), n))  # noqa: E731
    beam_like = BEAM_ENERGY * np.where(rng.random(n) < 0.8, np.exp(rng.normal(0, 0.1, n)), rng.uniform(0.3, 1.0, n))
    energy = np.where(kind == 0, np.hypot(beam_like, mass),
                      np.where(kind == 1, log_uniform(1.0, 1500.0),
                               np.where(species == 1, beam_like, log_uniform(1.0, 500.0))))
    p = np.sqrt(np.maximum(energy ** 2 - mass ** 2, 1e-6))
    pt = np.minimum(np.where(kind == 0, np.abs(rng.normal(0, 0.25, n)), rng.exponential(0.3, n)), 0.9 * p)
    phi = rng.uniform(-np.pi, np.pi, n)
    near_zp = kind == 1
    vx = np.where(near_zp, CENTRE_X + rng.normal(0, 0.04, n), rng.normal(0, 3e-5, n))
    vy = np.where(near_zp, rng.normal(0, 0.025, n), rng.normal(0, 3e-5, n))
    vz = np.where(near_zp, rng.uniform(95.0, 111.5, n), rng.normal(0, 0.06, n))
    return np.column_stack([energy, vx, vy, vz, pt * np.cos(phi), pt * np.sin(phi),
                            np.sqrt(p ** 2 - pt ** 2), mass * 1000.0, charge])


def simulate(conditions, seed=None) -> np.ndarray:
    """Photon-count responses to the given particles.

    Parameters
    ----------
    conditions : array_like, shape (N, 9)
        Columns as :data:`~recogan_app.data.zdc.CONDITIONS`. The species is the one of
        :data:`SPECIES` closest in mass.
    seed : int, SeedSequence or Generator, optional
        Randomness of the showers and the photon statistics; the same conditions with another
        seed give an independent simulation (the toy's noise floor).

    Returns
    -------
    ndarray, shape (N, 56, 30), int32
    """
    c = np.asarray(conditions, dtype=np.float64)
    if c.ndim != 2 or c.shape[1] != len(CONDITIONS):
        raise ValueError(f"conditions must have shape (N, {len(CONDITIONS)}), got {c.shape}")
    rng = np.random.default_rng(seed)
    return np.concatenate([_respond(c[i:i + CHUNK], rng) for i in range(0, len(c), CHUNK)]
                          or [np.zeros((0, *IMAGE_SHAPE), np.int32)])


def _respond(c: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    energy, vx, vy, vz, px, py, pz, mass, charge = c.T
    n = len(c)
    electromagnetic = mass < 1.0
    species = np.abs(mass[:, None] - _MASSES[None, :]).argmin(axis=1)
    p = np.sqrt(px ** 2 + py ** 2 + pz ** 2)
    forward = pz > 0
    safe_pz, safe_p = np.where(forward, pz, 1.0), np.maximum(p, 1e-9)
    flight = DISTANCE - vz
    x = vx + px / safe_pz * flight + charge * BEND / safe_p * (vz < MAGNETS_END)
    y = vy + py / safe_pz * flight

    e = np.maximum(energy, 1.0)
    visible = np.where(electromagnetic, 1.0, 1.0 - e ** -0.18)
    resolution = np.where(electromagnetic, np.hypot(0.15 / np.sqrt(e), 0.03), np.hypot(0.5 / np.sqrt(e), 0.12))
    shape = resolution ** -2
    light = PHOTONS_PER_GEV * energy * visible * _YIELDS[species] * rng.gamma(shape, 1.0 / shape) * forward

    jitter = np.where(electromagnetic, 0.2, 0.5)
    rows, cols = IMAGE_SHAPE
    r0 = rows / 2 + (x - CENTRE_X) / PITCH + rng.normal(0, 1, n) * jitter
    c0 = cols / 2 + y / PITCH + rng.normal(0, 1, n) * jitter
    core = (0.8 + 0.12 * np.log10(e)) * np.where(electromagnetic, 0.6, 1.0)
    halo = np.where(electromagnetic, 0.05, 0.15)
    weights = np.stack([(1 - halo) * light, halo * light], axis=1)[:, :, None]   # (N, 2, 1)
    sigma = np.stack([core, 2.5 * core], axis=1)                                  # core and halo
    along_rows = _band(r0, sigma, rows) * weights                                 # (N, 2, 56)
    along_cols = _band(c0, sigma, cols)                                           # (N, 2, 30)
    expected = np.matmul(along_rows.transpose(0, 2, 1), along_cols)               # (N, 56, 30)
    counts = np.zeros(expected.shape, np.int32)
    lit = expected > 1e-9  # elsewhere a count is a < 10⁻⁹ chance: skipping it halves the time
    counts[lit] = rng.poisson(expected[lit])
    return counts


def _band(centre: np.ndarray, sigma: np.ndarray, n_pixels: int) -> np.ndarray:
    """Share of a unit Gaussian (centre (N,), widths (N, k), in pixels) in each of ``n_pixels``
    pixels along one axis: (N, k, n_pixels). Two such bands make a separable 2-D spot."""
    edges = np.arange(n_pixels + 1.0)
    return np.diff(ndtr((edges - centre[:, None, None]) / sigma[:, :, None]), axis=2)
