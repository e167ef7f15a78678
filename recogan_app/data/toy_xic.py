r"""Embedded default MC: reconstructed Ξc+ → Ξ− π+ π+ candidates in pp at √s = 13.6 TeV.

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
                                     primary vertex, lifetime-signed (positive when the point of
                                     closest approach lies along the Ξc+ flight direction)
``inv_mass``             GeV/c^2     invariant mass of Ξ− π+ π+ (Ξ− at its PDG mass)
``ct``                   cm          proper decay length, ``decay_length`` · m(Ξc+) / p
``lambda_radius``        cm          transverse radius of the reconstructed Λ (V0) vertex
``pi_pt_min``            GeV/c       transverse momentum of the softer π+
``n_its_clusters_pi``    1 (int8)    ITS clusters on the softer π+ track, 4–7
=======================  ==========  =========================================================

Modelling choices
-----------------
Production
    Ξc+ transverse momenta follow a Lévy–Tsallis spectrum (T = 0.75 GeV, n = 7.5), the form
    used for charm-hadron spectra at the LHC, truncated to 0–24 GeV/c; the rapidity is flat in
    |y| < 0.8 (the central barrel) and the azimuth is flat. Each candidate comes from its own
    event whose charged multiplicity (negative binomial, mean 20) sets the primary-vertex
    resolution, on top of a 30 µm × 30 µm × 5 cm luminous region.
Decays
    PDG masses and lifetimes (cτ = 135.8 µm for τ(Ξc+) = 453 fs, 4.91 cm for Ξ−, 7.89 cm
    for Λ). Ξc+ → Ξ− π+ π+ follows flat three-body phase space (the Ξ−π+ mass is drawn from its
    exact phase-space density, then two isotropic two-body steps), Ξ− → Λ π− and Λ → p π−
    are isotropic. Daughters are boosted to the lab frame and every particle flies an
    exponential distance βγ·cτ·Exp(1) along its momentum, so decay length grows with pT
    through the boost.
Detector
    Tracks are straight lines near their vertices (the 0.5 T bending is neglected over these
    distances). Each of the seven ITS2 layers (2.24–39.3 cm) outside the production radius is
    hit with an efficiency that drops for soft tracks; the position resolution at the
    production point is σ = 10 µm ⊕ 50 µm/pT scaled by the lever arm to the first measured
    point (the innermost hit layer, or the TPC at 85 cm), which makes Λ and Ξ− daughters far
    worse than the prompt pions. Curvature is smeared by 1 % ⊕ 0.2 %·pT (multiple scattering
    and point resolution), angles by 0.3 mrad ⊕ 1 mrad/p (three times more without ITS hits).
Reconstruction
    The V0 (p π−) and cascade (Λ π−) vertices are the error-weighted midpoints of closest
    approach; the Ξc+ vertex is the weighted least-squares point of the Ξ− line and the two π+
    tracks; the primary vertex is the true one smeared by its resolution. Candidates are kept
    when all five tracks are found (|η| < 0.8, pT > 0.15 GeV/c, a pT-dependent TPC efficiency,
    born within 175 cm so that at least 70 TPC pad rows are crossed), both π+ carry at least
    four ITS clusters, the cascade radius exceeds 0.5 cm and the V0 radius 1.1 cm. Batches are
    simulated until exactly ``n`` candidates pass.

Batches have a fixed size, so the first ``k`` rows of ``generate(n, seed)`` are
``generate(k, seed)`` for any ``k <= n``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recogan_app.errors import InputError

DEFAULT_N = 531_548

FEATURES_8 = [
    "pt",
    "decay_length",
    "cos_pa",
    "dca_daughters",
    "xi_radius",
    "xi_cos_pa",
    "pi_impact_parameter",
    "inv_mass",
]
FEATURES_12 = FEATURES_8 + ["ct", "lambda_radius", "pi_pt_min", "n_its_clusters_pi"]

UNITS = {
    "pt": "GeV/c",
    "decay_length": "cm",
    "cos_pa": "1",
    "dca_daughters": "cm",
    "xi_radius": "cm",
    "xi_cos_pa": "1",
    "pi_impact_parameter": "cm",
    "inv_mass": "GeV/c^2",
    "ct": "cm",
    "lambda_radius": "cm",
    "pi_pt_min": "GeV/c",
    "n_its_clusters_pi": "1",
}

# PDG masses [GeV/c^2] and proper decay lengths [cm].
M_XIC, CTAU_XIC = 2.46771, 135.8e-4
M_XI, CTAU_XI = 1.32171, 4.91
M_LAMBDA, CTAU_LAMBDA = 1.115683, 7.89
M_PI, M_P = 0.13957039, 0.93827209

_BATCH = 1 << 16  # candidates simulated per batch, before acceptance
_ITS_RADII = np.array([2.24, 3.01, 3.78, 19.605, 24.552, 34.386, 39.3])  # cm
_TPC_INNER, _TPC_MAX_BIRTH = 85.0, 175.0  # cm


def _cdf_grid(x: np.ndarray, pdf: np.ndarray) -> np.ndarray:
    """Normalised cumulative of ``pdf`` on ``x`` (trapezoids), for inverse-CDF sampling."""
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (pdf[1:] + pdf[:-1]) * np.diff(x))])
    return cdf / cdf[-1]


def _two_body_momentum(m, m1, m2) -> np.ndarray:
    """Momentum of either daughter in the rest frame of a mass-``m`` parent (arrays broadcast)."""
    m = np.asarray(m, dtype=float)
    arg = (m * m - (m1 + m2) ** 2) * (m * m - (m1 - m2) ** 2)
    return np.sqrt(np.clip(arg, 0.0, None)) / (2.0 * m)


_PT_GRID = np.linspace(0.0, 24.0, 4801)
_PT_CDF = _cdf_grid(
    _PT_GRID,
    _PT_GRID * (1.0 + (np.sqrt(M_XIC**2 + _PT_GRID**2) - M_XIC) / (7.5 * 0.75)) ** -7.5,
)
# Flat three-body phase space: dΦ3 ∝ p*(Ξc → (Ξπ) π) · p*((Ξπ) → Ξ π) d m(Ξπ).
_M12_GRID = np.linspace(M_XI + M_PI, M_XIC - M_PI, 2049)
_M12_CDF = _cdf_grid(
    _M12_GRID,
    _two_body_momentum(M_XIC, _M12_GRID, M_PI) * _two_body_momentum(_M12_GRID, M_XI, M_PI),
)


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", a, b)


def _norm(a: np.ndarray) -> np.ndarray:
    return np.sqrt(_dot(a, a))


def _unit(a: np.ndarray) -> np.ndarray:
    return a / _norm(a)[:, None]


def _isotropic(rng: np.random.Generator, n: int) -> np.ndarray:
    cos_t = rng.uniform(-1.0, 1.0, n)
    phi = rng.uniform(0.0, 2.0 * np.pi, n)
    sin_t = np.sqrt(1.0 - cos_t**2)
    return np.column_stack([sin_t * np.cos(phi), sin_t * np.sin(phi), cos_t])


def _boost(e: np.ndarray, p: np.ndarray, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Four-momenta (``e``, ``p``) of a frame moving with ``beta``, seen in the lab."""
    b2 = np.maximum(_dot(beta, beta), 1e-300)
    gamma = 1.0 / np.sqrt(1.0 - b2)
    bp = _dot(beta, p)
    p_lab = p + ((gamma - 1.0) * bp / b2 + gamma * e)[:, None] * beta
    return gamma * (e + bp), p_lab


def _decay(rng, e, p, m, m1: float, m2: float):
    """Isotropic two-body decay of lab four-momenta (``e``, ``p``) of mass ``m``: both daughters."""
    q = _two_body_momentum(m, m1, m2)
    q_vec = _isotropic(rng, len(e)) * np.broadcast_to(q, e.shape)[:, None]
    e1, p1 = _boost(np.sqrt(np.sum(q_vec**2, axis=1) + m1 * m1), q_vec, p / e[:, None])
    return e1, p1, e - e1, p - p1


def _flight(rng, p: np.ndarray, m: float, ctau: float) -> np.ndarray:
    """Lab displacement before decaying: βγ·cτ·Exp(1) along the momentum."""
    return p * (ctau / m * rng.exponential(1.0, len(p)))[:, None]


def _radius(v: np.ndarray) -> np.ndarray:
    return np.hypot(v[:, 0], v[:, 1])


def _its_clusters(rng, r_birth: np.ndarray, pt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ITS2 clusters of a track and the radius of its first measured point (TPC if none).

    A layer counts only outside the production radius; its hit efficiency falls for soft tracks,
    whose multiple scattering spoils the cluster association.
    """
    eff = 0.98 - 0.3 * np.exp(-pt / 0.25)
    hit = (_ITS_RADII > r_birth[:, None]) & (rng.random((len(pt), _ITS_RADII.size)) < eff[:, None])
    r_first = np.where(hit, _ITS_RADII, _TPC_INNER).min(axis=1)
    return hit.sum(axis=1), r_first


def _track(rng, origin: np.ndarray, p: np.ndarray):
    """Reconstructed straight-line track: (point, momentum, position σ, angular σ, ITS clusters)."""
    pt = np.hypot(p[:, 0], p[:, 1])
    r_birth = _radius(origin)
    n_its, r_first = _its_clusters(rng, r_birth, pt)
    lever = (r_first - r_birth) / _ITS_RADII[0]
    sig_pos = np.hypot(10e-4, 50e-4 / pt * lever)
    sig_ang = np.hypot(0.3e-3, 1e-3 / _norm(p)) * np.where(n_its > 0, 1.0, 3.0)
    sig_curv = np.hypot(0.01, 0.002 * pt)
    g = rng.standard_normal((len(pt), 5))
    phi = np.arctan2(p[:, 1], p[:, 0])
    lam = np.arctan2(p[:, 2], pt)
    pt_rec = pt / (1.0 + sig_curv * g[:, 0])
    phi_rec = phi + sig_ang * g[:, 1]
    lam_rec = lam + sig_ang * g[:, 2]
    p_rec = pt_rec[:, None] * np.column_stack([np.cos(phi_rec), np.sin(phi_rec), np.tan(lam_rec)])
    # Position error: in the bending plane (u) and across it (w), both transverse to the track.
    u = np.column_stack([-np.sin(phi), np.cos(phi), np.zeros_like(phi)])
    t = np.column_stack([np.cos(lam) * np.cos(phi), np.cos(lam) * np.sin(phi), np.sin(lam)])
    w = np.cross(t, u)
    point = origin + (sig_pos * g[:, 3])[:, None] * u + (sig_pos * g[:, 4])[:, None] * w
    return point, p_rec, sig_pos, sig_ang, n_its


def _closest_approach(a1, d1, s1, a2, d2, s2):
    """Two lines ``a + t·d`` (unit ``d``, position σ ``s``): weighted vertex, DCA, vertex σ."""
    w = a1 - a2
    b = _dot(d1, d2)
    dd, ee = _dot(d1, w), _dot(d2, w)
    den = np.maximum(1.0 - b * b, 1e-12)
    c1 = a1 + ((b * ee - dd) / den)[:, None] * d1
    c2 = a2 + ((ee - b * dd) / den)[:, None] * d2
    w1, w2 = 1.0 / s1**2, 1.0 / s2**2
    vertex = (w1[:, None] * c1 + w2[:, None] * c2) / (w1 + w2)[:, None]
    return vertex, _norm(c1 - c2), 1.0 / np.sqrt(w1 + w2)


def _fit_vertex(points, dirs, sigmas) -> np.ndarray:
    """Point minimising the σ-weighted squared distances to several lines."""
    n = len(points[0])
    a_mat = np.zeros((n, 3, 3))
    b_vec = np.zeros((n, 3))
    for a, d, s in zip(points, dirs, sigmas):
        proj = np.eye(3) - d[:, :, None] * d[:, None, :]
        a_mat += proj / (s**2)[:, None, None]
        b_vec += np.einsum("nij,nj->ni", proj, a) / (s**2)[:, None]
    return np.linalg.solve(a_mat, b_vec[:, :, None])[:, :, 0]


def _simulate_batch(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One batch of ``_BATCH`` produced Ξc+; the features of those reconstructed and selected."""
    n = _BATCH
    # Production.
    pt = np.interp(rng.random(n), _PT_CDF, _PT_GRID)
    y = rng.uniform(-0.8, 0.8, n)
    phi = rng.uniform(0.0, 2.0 * np.pi, n)
    mt = np.hypot(M_XIC, pt)
    p_c = np.column_stack([pt * np.cos(phi), pt * np.sin(phi), mt * np.sinh(y)])
    e_c = mt * np.cosh(y)
    pv_true = rng.normal(0.0, [30e-4, 30e-4, 5.0], (n, 3))
    mult = rng.negative_binomial(1.5, 1.5 / 21.5, n) + 2

    # Decay chain: Ξc+ → (Ξ− π+) π+ through the phase-space Ξ−π+ mass, Ξ− → Λ π−, Λ → p π−.
    m12 = np.interp(rng.random(n), _M12_CDF, _M12_GRID)
    q_pi2 = _two_body_momentum(M_XIC, m12, M_PI)[:, None] * _isotropic(rng, n)
    e12, p12 = _boost(np.sqrt(_dot(q_pi2, q_pi2) + m12**2), -q_pi2, p_c / e_c[:, None])
    p_pi2 = p_c - p12
    e_xi, p_xi, _, p_pi1 = _decay(rng, e12, p12, m12, M_XI, M_PI)
    e_lam, p_lam, _, p_bach = _decay(rng, e_xi, p_xi, M_XI, M_LAMBDA, M_PI)
    _, p_prot, _, p_pim = _decay(rng, e_lam, p_lam, M_LAMBDA, M_P, M_PI)
    sv_true = pv_true + _flight(rng, p_c, M_XIC, CTAU_XIC)
    xi_true = sv_true + _flight(rng, p_xi, M_XI, CTAU_XI)
    lam_true = xi_true + _flight(rng, p_lam, M_LAMBDA, CTAU_LAMBDA)

    # Tracking acceptance and efficiency of the five charged daughters.
    tracks = [(sv_true, p_pi1), (sv_true, p_pi2), (xi_true, p_bach), (lam_true, p_prot), (lam_true, p_pim)]
    found = np.ones(n, dtype=bool)
    for origin, p in tracks:
        p_t = np.hypot(p[:, 0], p[:, 1])
        found &= (
            (np.abs(np.arcsinh(p[:, 2] / p_t)) < 0.8)
            & (p_t > 0.15)
            & (_radius(origin) < _TPC_MAX_BIRTH)
            & (rng.random(n) < 0.92 * (1.0 - np.exp(-p_t / 0.25)))
        )
    keep = np.flatnonzero(found)
    m = keep.size

    # Reconstruction.
    sig_pv_xy = 1.0 / np.sqrt(1.0 / 30e-4**2 + mult[keep] / 60e-4**2)  # beam-spot constrained
    sig_pv_z = 80e-4 / np.sqrt(mult[keep])
    pv = pv_true[keep] + rng.standard_normal((m, 3)) * np.column_stack([sig_pv_xy, sig_pv_xy, sig_pv_z])
    (a1, p1, s1, _, n1), (a2, p2, s2, _, n2), (ab, pb, sb, ang_b, _), (ap, pp, sp, ang_p, _), (
        am, pm, sm, ang_m, _
    ) = (_track(rng, origin[keep], p[keep]) for origin, p in tracks)

    v0, _, s_v0 = _closest_approach(ap, _unit(pp), sp, am, _unit(pm), sm)
    p_lam_rec = pp + pm
    casc, _, s_casc = _closest_approach(v0, _unit(p_lam_rec), s_v0, ab, _unit(pb), sb)
    p_xi_rec = p_lam_rec + pb
    # The Ξ− line is extrapolated from the cascade vertex back to the primary-vertex region.
    ang_xi = 0.5 * np.sqrt(ang_b**2 + 0.25 * (ang_p**2 + ang_m**2))
    s_xi = np.hypot(s_casc, _norm(casc - pv) * ang_xi)
    d_xi, d1, d2 = _unit(p_xi_rec), _unit(p1), _unit(p2)
    sv = pv + _fit_vertex([casc - pv, a1 - pv, a2 - pv], [d_xi, d1, d2], [s_xi, s1, s2])
    dca = np.maximum.reduce(
        [
            _closest_approach(casc, d_xi, s_xi, a1, d1, s1)[1],
            _closest_approach(casc, d_xi, s_xi, a2, d2, s2)[1],
            _closest_approach(a1, d1, s1, a2, d2, s2)[1],
        ]
    )

    p_cand = p_xi_rec + p1 + p2
    e_cand = np.sqrt(_dot(p_xi_rec, p_xi_rec) + M_XI**2) + np.sqrt(_dot(p1, p1) + M_PI**2) + np.sqrt(
        _dot(p2, p2) + M_PI**2
    )
    p_abs = _norm(p_cand)
    flight = sv - pv
    decay_length = _norm(flight)
    pt1, pt2 = np.hypot(p1[:, 0], p1[:, 1]), np.hypot(p2[:, 0], p2[:, 1])
    first_leads = pt1 >= pt2
    a_lead = np.where(first_leads[:, None], a1, a2)[:, :2] - pv[:, :2]
    t_lead = np.where(first_leads[:, None], p1, p2)[:, :2]
    pca = a_lead - (_dot(a_lead, t_lead) / _dot(t_lead, t_lead))[:, None] * t_lead
    xi_radius, lambda_radius = _radius(casc), _radius(v0)
    n_soft = np.where(first_leads, n2, n1)
    selected = (n1 >= 4) & (n2 >= 4) & (xi_radius > 0.5) & (lambda_radius > 1.1)

    features = {
        "pt": np.hypot(p_cand[:, 0], p_cand[:, 1]),
        "decay_length": decay_length,
        "cos_pa": _dot(p_cand, flight) / (p_abs * decay_length),
        "dca_daughters": dca,
        "xi_radius": xi_radius,
        "xi_cos_pa": _dot(p_xi_rec, casc - sv) / (_norm(p_xi_rec) * _norm(casc - sv)),
        "pi_impact_parameter": np.copysign(_norm(pca), _dot(pca, p_cand[:, :2])),
        "inv_mass": np.sqrt(e_cand**2 - p_abs**2),
        "ct": decay_length * M_XIC / p_abs,
        "lambda_radius": lambda_radius,
        "pi_pt_min": np.minimum(pt1, pt2),
        "n_its_clusters_pi": n_soft,
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
        batch = _simulate_batch(rng)
        batches.append(batch)
        total += batch["pt"].size
    columns = {}
    for name in names:
        values = np.concatenate([b[name] for b in batches])[:n]
        columns[name] = values.astype(np.int8 if name == "n_its_clusters_pi" else np.float32)
    return pd.DataFrame(columns)
