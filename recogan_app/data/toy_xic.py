"""Embedded default MC: reconstructed Ξc+ → Ξ− π+ π+ candidates in pp at √s = 13.6 TeV.

A fast, fully vectorised stand-in for the ALICE simulation of the benchmark channel: every
candidate is produced, decayed, tracked and vertexed, and the topological features are then
*measured* on the smeared reconstruction. No feature is drawn on its own, so the asymmetric
shapes and the correlations a generative model must learn emerge from the kinematics.

Features
--------
The first eight (``FEATURES_8``) are the decay-topology features of the benchmark; the
twelve-feature set (``FEATURES_12``) adds four more.

=======================  ==========  =========================================================
name                     unit        meaning
=======================  ==========  =========================================================
``pt``                   GeV/c       transverse momentum of the Ξc+ candidate (Ξ− + π+ + π+)
``decay_length``         cm          3D distance from the primary vertex to the fitted Ξc+ vertex
``cos_pa``               1           cosine of the angle between the candidate momentum and the
                                     primary→Ξc+ vertex direction (pointing angle)
``dca_daughters``        cm          largest of the three pairwise distances of closest approach
                                     between the daughter tracks (Ξ−, π+, π+)
``xi_radius``            cm          transverse radius of the reconstructed Ξ− (cascade) vertex
``xi_cos_pa``            1           cosine of the pointing angle of the Ξ− to the Ξc+ vertex
``pi_impact_parameter``  cm          transverse impact parameter of the leading π+ to the
                                     primary vertex, lifetime-signed: positive when its point of
                                     closest approach lies on the side the candidate points to
``inv_mass``             GeV/c^2     invariant mass of Ξ− π+ π+ (Ξ− at its PDG mass)
``ct``                   cm          proper decay length, ``decay_length`` · m(Ξc+) / p
``lambda_radius``        cm          transverse radius of the reconstructed Λ (V0) vertex
``pi_pt_min``            GeV/c       transverse momentum of the softer π+
``n_its_clusters_pi``    1 (int8)    ITS clusters on the softer π+ track, 4–7
=======================  ==========  =========================================================

Modelling choices
-----------------
Production
    Ξc+ transverse momenta follow a modified power law dN/dpT ∝ pT (1 + (pT/p0)²)^-k with
    p0 = 6.5 GeV/c and k = 3.5 (peak at 2.7 GeV/c, ⟨pT⟩ ≈ 4.3 GeV/c, pT^-6 tail as for charm
    hadrons at the LHC) on 0–24 GeV/c, and the rapidity is flat in |y| < 0.8 (central barrel).
    Detector and luminous region (30 µm × 30 µm × 5 cm) are azimuthally symmetric and every
    feature is invariant under rotations about the beam, so the azimuth is not simulated. Each
    candidate has its own event, whose charged multiplicity (negative binomial, about 20
    tracks) sets the resolution of the beam-spot-constrained primary vertex (10–25 µm).
Decays
    PDG masses and lifetimes: cτ = 135.8 µm (τ = 453 fs) for Ξc+, 4.91 cm for Ξ−, 7.89 cm for
    Λ. Ξc+ → Ξ− π+ π+ is flat three-body phase space (the Ξ−π+ mass drawn from its exact
    phase-space density, then two isotropic two-body steps); Ξ− → Λ π− and Λ → p π− are
    isotropic (decay asymmetries neglected). Every particle is boosted to the lab and flies
    βγ·cτ·Exp(1) along its momentum, so the decay length grows with pT through the boost.
Detector
    Tracks are straight lines near their vertices (the 0.5 T bending is neglected on these
    scales). Each ITS2 layer (2.24–39.3 cm) outside the production radius is hit with an
    efficiency that drops for soft tracks (multiple scattering spoils cluster association).
    The position resolution at the production point is σ = 10 µm ⊕ (30 µm/pT)·(lever/2.24 cm),
    ITS2-like pointing scaled by the lever arm to the first measured point (innermost hit
    layer, else the TPC at 85 cm with a 300 µm floor): prompt pions are measured to tens of
    µm, Λ and Ξ− daughters to hundreds. Curvature is smeared by 1 % ⊕ 0.2 %·pT (multiple scattering,
    point resolution), directions by 0.3 mrad ⊕ 1 mrad/p, three times more without ITS hits.
    A track is found with |η| < 0.8, pT > 0.15 GeV/c for the π+ (0.1 GeV/c for the V0 and
    cascade daughters), born within 175 cm (at least 70 TPC pad rows), with efficiency
    0.9·(1 − 0.3·exp(−pT/0.4 GeV/c)).
Reconstruction and selection
    The V0 (p π−) and cascade (Λ π−) vertices are error-weighted midpoints of closest approach,
    the mother lines carry the propagated errors, and the Ξc+ vertex is the weighted
    least-squares point of the Ξ− line and the two π+ tracks. Kept: both π+ with at least
    four ITS clusters, cascade radius > 0.5 cm, V0 radius > 1.1 cm, cascade pointing to the
    primary vertex with cos > 0.95 (cascade-builder preselection) and ``cos_pa`` > 0.9 (the
    O2Physics selector default). Acceptance × efficiency rises steeply with pT, so the
    reconstructed ``pt`` peaks near 5 GeV/c. At low pT the flight is comparable with the
    vertex resolution, which widens ``cos_pa`` towards its cut and biases ``ct`` upwards.

Batches have a fixed size, so the first ``k`` rows of ``generate(n, seed)`` are
``generate(k, seed)`` for any ``k <= n``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recogan_app.errors import InputError

DEFAULT_N = 531_548

UNITS = {"pt": "GeV/c", "decay_length": "cm", "cos_pa": "1", "dca_daughters": "cm", "xi_radius": "cm",
         "xi_cos_pa": "1", "pi_impact_parameter": "cm", "inv_mass": "GeV/c^2", "ct": "cm", "lambda_radius": "cm",
         "pi_pt_min": "GeV/c", "n_its_clusters_pi": "1"}
"""Every feature's unit, in the column order of the twelve-feature set."""
FEATURES_12 = list(UNITS)
FEATURES_8 = FEATURES_12[:8]

# PDG masses [GeV/c^2] and proper decay lengths [cm].
M_XIC, CTAU_XIC = 2.46771, 135.8e-4
M_XI, CTAU_XI = 1.32171, 4.91
M_LAMBDA, CTAU_LAMBDA = 1.115683, 7.89
M_PI, M_P = 0.13957039, 0.93827209

_BATCH = 1 << 17  # Ξc+ produced per batch, before acceptance
_Y_MAX, _SINH_ETA_MAX = 0.8, np.sinh(0.8)
_PT_P0, _PT_K, _PT_MAX = 6.5, 3.5, 24.0  # production spectrum: GeV/c, power, GeV/c
_ITS_RADII = np.array([2.24, 3.01, 3.78, 19.605, 24.552, 34.386, 39.3])[:, None]  # cm
_TPC_INNER, _TPC_MAX_BIRTH = 85.0, 175.0  # cm
_BEAM_SPOT = np.array([30e-4, 30e-4, 5.0])[:, None]  # cm


def _two_body_momentum(m, m1, m2) -> np.ndarray:
    """Momentum of either daughter in the rest frame of a mass-``m`` parent (arrays broadcast)."""
    m = np.asarray(m, dtype=float)
    arg = (m * m - (m1 + m2) ** 2) * (m * m - (m1 - m2) ** 2)
    return np.sqrt(np.clip(arg, 0.0, None)) / (2.0 * m)


def _inverse_cdf_table(x: np.ndarray, pdf: np.ndarray, size: int = 4096) -> np.ndarray:
    """Quantiles of ``pdf`` (tabulated on ``x``) at ``size`` equally spaced probabilities."""
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (pdf[1:] + pdf[:-1]) * np.diff(x))])
    return np.interp(np.linspace(0.0, 1.0, size), cdf / cdf[-1], x)


# Flat three-body phase space: dΦ3 ∝ p*(Ξc → (Ξπ) π) · p*((Ξπ) → Ξ π) d m(Ξπ).
_M12_GRID = np.linspace(M_XI + M_PI, M_XIC - M_PI, 4097)
_M12_TABLE = _inverse_cdf_table(_M12_GRID, _two_body_momentum(M_XIC, _M12_GRID, M_PI)
                                 * _two_body_momentum(_M12_GRID, M_XI, M_PI))

# Vectors are (3, n) arrays: one contiguous row per Cartesian component.


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _dot2(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Scalar product in the transverse plane."""
    return a[0] * b[0] + a[1] * b[1]


def _norm(a: np.ndarray) -> np.ndarray:
    return np.sqrt(_dot(a, a))


def _unit(a: np.ndarray) -> np.ndarray:
    return a / _norm(a)


def _pt(p: np.ndarray) -> np.ndarray:
    """Transverse component: pT of a momentum, radius of a position."""
    return np.sqrt(p[0] * p[0] + p[1] * p[1])


def _sample_pt(rng: np.random.Generator, n: int) -> np.ndarray:
    """Modified power law dN/dpT ∝ pT (1 + (pT/p0)²)^-k, inverted analytically on 0–24 GeV/c."""
    tail = 1.0 - (1.0 + (_PT_MAX / _PT_P0) ** 2) ** (1.0 - _PT_K)
    return _PT_P0 * np.sqrt((1.0 - rng.random(n) * tail) ** (1.0 / (1.0 - _PT_K)) - 1.0)


def _sample_m12(rng: np.random.Generator, n: int) -> np.ndarray:
    """Ξ−π+ mass from its phase-space density, by interpolation in the quantile table."""
    pos = rng.random(n) * (_M12_TABLE.size - 1)
    i = pos.astype(np.intp)
    return _M12_TABLE[i] + (pos - i) * (_M12_TABLE[i + 1] - _M12_TABLE[i])


def _isotropic(rng: np.random.Generator, n: int) -> np.ndarray:
    """Unit vectors uniform on the sphere (Marsaglia 1972: no trigonometry)."""
    u = 2.0 * rng.random((2, n + n // 3 + 64)) - 1.0
    s = u[0] * u[0] + u[1] * u[1]
    keep = np.flatnonzero(s < 1.0)
    while keep.size < n:  # 21.5 % rejected on average: practically never taken
        u = np.concatenate([u, 2.0 * rng.random((2, n)) - 1.0], axis=1)
        s = u[0] * u[0] + u[1] * u[1]
        keep = np.flatnonzero(s < 1.0)
    u, s = u[:, keep[:n]], s[keep[:n]]
    r = 2.0 * np.sqrt(1.0 - s)
    return np.stack([r * u[0], r * u[1], 1.0 - 2.0 * s])


def _boost(e: np.ndarray, p: np.ndarray, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lab four-momenta of (``e``, ``p``) given in a frame moving with velocity ``beta``."""
    b2 = np.maximum(_dot(beta, beta), 1e-300)
    gamma = 1.0 / np.sqrt(1.0 - b2)
    bp = _dot(beta, p)
    return gamma * (e + bp), p + ((gamma - 1.0) * bp / b2 + gamma * e) * beta


def _decay(rng, e, p, m, m1: float, m2: float):
    """Isotropic two-body decay of lab four-momenta (``e``, ``p``) of mass ``m``: both daughters."""
    q = _two_body_momentum(m, m1, m2) * _isotropic(rng, e.size)
    e1, p1 = _boost(np.sqrt(_dot(q, q) + m1 * m1), q, p / e)
    return e1, p1, e - e1, p - p1


def _flight(rng, p: np.ndarray, m: float, ctau: float) -> np.ndarray:
    """Lab displacement before the decay: βγ·cτ·Exp(1) along the momentum."""
    return p * (ctau / m * rng.exponential(1.0, p.shape[1]))


def _found(rng, p: np.ndarray, pt_min: float) -> np.ndarray:
    """Indices of the tracks found: |η| < 0.8, pT above ``pt_min``, pT-dependent efficiency."""
    pt = _pt(p)
    idx = np.flatnonzero((np.abs(p[2]) < _SINH_ETA_MAX * pt) & (pt > pt_min))
    eff = 0.9 * (1.0 - 0.3 * np.exp(-pt[idx] / 0.4))
    return idx[rng.random(idx.size) < eff]


def _its_clusters(rng, r_birth: np.ndarray, pt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ITS2 clusters of a track and the radius of its first measured point.

    Only layers outside the production radius count; their hit efficiency falls for soft
    tracks. Without ITS hits the first point is in the TPC (85 cm, or the birth radius).
    """
    eff = 0.98 - 0.3 * np.exp(-pt / 0.25)
    hit = (_ITS_RADII > r_birth) & (rng.random((_ITS_RADII.size, pt.size)) < eff)
    r_first = np.maximum(np.where(hit, _ITS_RADII, _TPC_INNER).min(axis=0), r_birth)
    return hit.sum(axis=0), r_first


def _track(rng, origin: np.ndarray, p: np.ndarray):
    """Reconstruct a track born at ``origin`` with momentum ``p``.

    Returns the straight line (point, unit direction, position σ, angular σ) near the
    production point, the measured momentum and the number of ITS clusters.
    """
    pt, p_abs = _pt(p), _norm(p)
    r_birth = _pt(origin)
    n_its, r_first = _its_clusters(rng, r_birth, pt)
    its = n_its > 0
    lever = (r_first - r_birth) / _ITS_RADII[0, 0]
    sig_pos = np.sqrt(np.where(its, 10e-4, 300e-4) ** 2 + (30e-4 * lever / pt) ** 2)
    sig_ang = np.sqrt((0.3e-3) ** 2 + (1e-3 / p_abs) ** 2) * np.where(its, 1.0, 3.0)
    sig_curv = np.sqrt(0.01**2 + (0.002 * pt) ** 2)
    # Errors across the track: in the bending plane (u) and out of it (w = t × u).
    t = p / p_abs
    u = np.stack([-p[1] / pt, p[0] / pt, np.zeros_like(pt)])
    w = np.stack([-t[2] * u[1], t[2] * u[0], t[0] * u[1] - t[1] * u[0]])
    g = rng.standard_normal((5, pt.size))
    direction = t + sig_ang * (g[0] * u + g[1] * w)
    p_rec = direction * (pt / (1.0 + sig_curv * g[2]) / _pt(direction))
    point = origin + sig_pos * (g[3] * u + g[4] * w)
    return (point, _unit(p_rec), sig_pos, sig_ang), p_rec, n_its


def _closest_approach(line1, line2):
    """Vertex of two lines, their distance of closest approach and the vertex σ.

    Each line's σ at the vertex adds its angular error times the extrapolation distance.
    """
    (a1, d1, s1, g1), (a2, d2, s2, g2) = line1, line2
    w = a1 - a2
    b = _dot(d1, d2)
    dd, ee = _dot(d1, w), _dot(d2, w)
    den = np.maximum(1.0 - b * b, 1e-12)
    t1, t2 = (b * ee - dd) / den, (ee - b * dd) / den
    c1, c2 = a1 + t1 * d1, a2 + t2 * d2
    v1, v2 = s1**2 + (t1 * g1) ** 2, s2**2 + (t2 * g2) ** 2
    return (c1 * v2 + c2 * v1) / (v1 + v2), _norm(c1 - c2), np.sqrt(v1 * v2 / (v1 + v2))


def _combined_line(vertex, sigma, momenta, lines):
    """Line of a mother rebuilt from its daughters (vertex, summed momentum), and that momentum."""
    p = sum(momenta)
    p_abs = _norm(p)
    ang = np.sqrt(sum((_norm(q) * line[3]) ** 2 for q, line in zip(momenta, lines))) / p_abs
    return (vertex, p / p_abs, sigma, ang), p


def _fit_vertex(lines, near: np.ndarray) -> np.ndarray:
    """Point minimising the σ-weighted squared distances to ``lines``, σ taken near ``near``.

    Solves Σ w (1 − d dᵀ) x = Σ w (1 − d dᵀ) a with the adjugate of the symmetric 3×3 matrix.
    """
    m = np.zeros((6, near.shape[1]))  # xx, yy, zz, xy, xz, yz
    rhs = np.zeros_like(near)
    for a, d, s, g in lines:
        rel = a - near
        weight = 1.0 / (s**2 + _dot(rel, rel) * g**2)
        m[:3] += weight * (1.0 - d * d)
        m[3:] -= weight * np.stack([d[0] * d[1], d[0] * d[2], d[1] * d[2]])
        rhs += weight * (rel - _dot(d, rel) * d)
    xx, yy, zz, xy, xz, yz = m
    adj = np.stack([[yy * zz - yz * yz, xz * yz - xy * zz, xy * yz - xz * yy],
                    [xz * yz - xy * zz, xx * zz - xz * xz, xy * xz - xx * yz],
                    [xy * yz - xz * yy, xy * xz - xx * yz, xx * yy - xy * xy]])
    det = xx * adj[0, 0] + xy * adj[0, 1] + xz * adj[0, 2]
    return near + np.einsum("ijn,jn->in", adj, rhs) / det


def _produce(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    """Produce ``n`` Ξc+ and decay them to Ξ− π+ π+; keep those whose two π+ are found.

    Returns the momenta of the Ξc+, the two π+ and the Ξ−, and the Ξ− energy.
    """
    pt = _sample_pt(rng, n)
    exp_y = np.exp(rng.uniform(-_Y_MAX, _Y_MAX, n))
    mt = np.sqrt(M_XIC**2 + pt * pt)
    # Detector and beam spot are azimuthally symmetric and every feature is invariant under
    # rotations about the beam axis, so the Ξc+ is produced along x without loss of generality.
    p_c = np.stack([pt, np.zeros(n), 0.5 * mt * (exp_y - 1.0 / exp_y)])
    e_c = 0.5 * mt * (exp_y + 1.0 / exp_y)

    # Ξc+ → (Ξ− π+) π+: the lone π+ first, then the Ξ−π+ system of phase-space mass m12.
    m12 = _sample_m12(rng, n)
    q = _two_body_momentum(M_XIC, m12, M_PI) * _isotropic(rng, n)
    e_pi2, p_pi2 = _boost(np.sqrt(_dot(q, q) + M_PI**2), q, p_c / e_c)
    k = _found(rng, p_pi2, 0.15)
    p_c, p_pi2, m12 = p_c[:, k], p_pi2[:, k], m12[k]
    e_xi, p_xi, _, p_pi1 = _decay(rng, e_c[k] - e_pi2[k], p_c - p_pi2, m12, M_XI, M_PI)
    k = _found(rng, p_pi1, 0.15)
    return [p_c[:, k], p_pi1[:, k], p_pi2[:, k], p_xi[:, k], e_xi[k]]


def _simulate_batch(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Produce ``_BATCH`` Ξc+; return the features of the candidates reconstructed and selected.

    Candidates are dropped as soon as a daughter is lost, so later stages run on few rows.
    """
    p_c, p_pi1, p_pi2, p_xi, e_xi = _produce(rng, _BATCH)

    # Ξ− → Λ π−, Λ → p π−: TPC tracks, so a lower pT threshold.
    e_lam, p_lam, _, p_bach = _decay(rng, e_xi, p_xi, M_XI, M_LAMBDA, M_PI)
    k = _found(rng, p_bach, 0.1)
    p_c, p_pi1, p_pi2, p_xi, p_bach, e_lam, p_lam = (v[..., k] for v in (p_c, p_pi1, p_pi2, p_xi, p_bach, e_lam,
                                                                         p_lam))
    _, p_prot, _, p_pim = _decay(rng, e_lam, p_lam, M_LAMBDA, M_P, M_PI)
    k = np.intersect1d(_found(rng, p_prot, 0.1), _found(rng, p_pim, 0.1), assume_unique=True)
    p_c, p_pi1, p_pi2, p_xi, p_bach, p_lam, p_prot, p_pim = (v[:, k] for v in (p_c, p_pi1, p_pi2, p_xi, p_bach,
                                                                                p_lam, p_prot, p_pim))

    # Flights: every daughter of the cascade must be born inside the TPC tracking volume.
    m = k.size
    pv_true = _BEAM_SPOT * rng.standard_normal((3, m))
    sv_true = pv_true + _flight(rng, p_c, M_XIC, CTAU_XIC)
    xi_true = sv_true + _flight(rng, p_xi, M_XI, CTAU_XI)
    lam_true = xi_true + _flight(rng, p_lam, M_LAMBDA, CTAU_LAMBDA)
    k = np.flatnonzero((_pt(xi_true) < _TPC_MAX_BIRTH) & (_pt(lam_true) < _TPC_MAX_BIRTH))
    m = k.size

    # Primary vertex: beam-spot constrained transversely, resolution from the multiplicity.
    mult = rng.negative_binomial(1.5, 1.5 / 21.5, m) + 2
    sig_pv_xy = 1.0 / np.sqrt(1.0 / 30e-4**2 + mult / 60e-4**2)
    sig_pv = np.stack([sig_pv_xy, sig_pv_xy, 80e-4 / np.sqrt(mult)])
    pv = pv_true[:, k] + sig_pv * rng.standard_normal((3, m))

    (pi1, p1, n1), (pi2, p2, n2), (bach, pb, _), (prot, pp, _), (pim, pm, _) = (
        _track(rng, origin[:, k], p[:, k])
        for origin, p in ((sv_true, p_pi1), (sv_true, p_pi2), (xi_true, p_bach), (lam_true, p_prot), (lam_true, p_pim)))
    v0, _, s_v0 = _closest_approach(prot, pim)
    lam_line, _ = _combined_line(v0, s_v0, [pp, pm], [prot, pim])
    casc, _, s_casc = _closest_approach(lam_line, bach)
    xi_line, p_xi_rec = _combined_line(casc, s_casc, [pp + pm, pb], [lam_line, bach])
    sv = _fit_vertex([xi_line, pi1, pi2], pv)
    dca = np.maximum.reduce([_closest_approach(*pair)[1] for pair in ((xi_line, pi1), (xi_line, pi2), (pi1, pi2))])

    p_cand = p_xi_rec + p1 + p2
    e_cand = sum(np.sqrt(_dot(q, q) + mass**2) for q, mass in ((p_xi_rec, M_XI), (p1, M_PI), (p2, M_PI)))
    p_abs = _norm(p_cand)
    flight = sv - pv
    decay_length = _norm(flight)
    xi_flight = casc - sv
    pt1, pt2 = _pt(p1), _pt(p2)
    first_leads = pt1 >= pt2
    # Transverse impact parameter of the leading π+: point of closest approach to the PV.
    a_lead = np.where(first_leads, pi1[0], pi2[0])[:2] - pv[:2]
    t_lead = np.where(first_leads, p1, p2)[:2]
    pca = a_lead - (_dot2(a_lead, t_lead) / _dot2(t_lead, t_lead)) * t_lead
    xi_radius, lambda_radius = _pt(casc), _pt(v0)
    cos_pa = _dot(p_cand, flight) / (p_abs * decay_length)
    casc_cos_pv = _dot(p_xi_rec, casc - pv) / (_norm(p_xi_rec) * _norm(casc - pv))
    selected = ((n1 >= 4) & (n2 >= 4) & (xi_radius > 0.5) & (lambda_radius > 1.1) & (casc_cos_pv > 0.95)
                & (cos_pa > 0.9))

    features = {
        "pt": _pt(p_cand),
        "decay_length": decay_length,
        "cos_pa": cos_pa,
        "dca_daughters": dca,
        "xi_radius": xi_radius,
        "xi_cos_pa": _dot(p_xi_rec, xi_flight) / (_norm(p_xi_rec) * _norm(xi_flight)),
        "pi_impact_parameter": np.copysign(np.sqrt(_dot2(pca, pca)), _dot2(pca, p_cand[:2])),
        "inv_mass": np.sqrt(e_cand**2 - p_abs**2),
        "ct": decay_length * M_XIC / p_abs,
        "lambda_radius": lambda_radius,
        "pi_pt_min": np.minimum(pt1, pt2),
        "n_its_clusters_pi": np.where(first_leads, n2, n1),
    }
    return {name: values[selected] for name, values in features.items()}


def generate(n: int = DEFAULT_N, seed: int = 0, n_features: int = 8) -> pd.DataFrame:
    """Simulate ``n`` reconstructed Ξc+ → Ξ− π+ π+ candidates.

    Parameters
    ----------
    n : int
        Number of candidates (rows), at least 1. The default is the size of the ALICE MC
        sample of the benchmark.
    seed : int
        Seed of :func:`numpy.random.default_rng`; the same seed gives the same sample.
    n_features : {8, 12}
        ``FEATURES_8`` or ``FEATURES_12``.

    Returns
    -------
    pandas.DataFrame
        ``n`` rows, the feature columns in order; float32, except ``n_its_clusters_pi`` (int8).

    Raises
    ------
    InputError
        If ``n`` is not a positive integer or ``n_features`` is not 8 or 12.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise InputError(f"n must be a positive integer, got {n!r}")
    if n_features not in (8, 12):
        raise InputError(f"n_features must be 8 or 12, got {n_features!r}")
    names = FEATURES_8 if n_features == 8 else FEATURES_12
    rng = np.random.default_rng(seed)
    batches, total = [], 0
    while total < n:
        batches.append(_simulate_batch(rng))
        total += batches[-1]["pt"].size
    return pd.DataFrame({name: np.concatenate([b[name] for b in batches])[:n].astype(
        np.int8 if name == "n_its_clusters_pi" else np.float32) for name in names})
