"""Embedded conditional MC: W(→μν) + 1 jet at generator and reconstruction level (seed 003).

Seed 003 learns the detector as a transfer function: reconstruction-level features given the
same features at generator level. This toy gives both views of each event, in seed 003's nine
features: the muon's and the jet's momentum (px, py, pz, GeV/c), the jet's log mass (log GeV/c²)
and the missing transverse energy (x, y, GeV). Columns ``gen_<f>`` are the conditions, ``reco_<f>``
the targets (:data:`CONDITIONS`, :data:`TARGETS`): each reco feature pairs with its gen one.

Generator level
    The jet's pT follows 30 GeV + a falling power law (pT > 30 GeV, |η| < 2.4); the W recoils
    against it (plus 5 GeV of intrinsic kT), with a Breit-Wigner mass (80.4, Γ 2.1 GeV) and
    rapidity ~ N(0, 1.2); it decays isotropically to μν. Seed 003's selection: muon pT > 22 GeV,
    |η| < 2.4, ΔR(μ, jet) > 0.5. The jet mass is log-normal around 0.1 pT + 5 GeV. The missing
    ET is the neutrino's pT.
Reconstruction level
    Muon: curvature resolution 1 % ⊕ 0.01 %·pT (twice as large in the endcaps, |η| > 1.2), 2 %
    of the muons with three times that (a non-Gaussian tail), angles smeared by 0.5 mrad; seed
    003's match |ΔpT|/pT < 10 % selects the events.
    Jet: response = energy scale (0.98 − 0.6/√pT, pT in GeV: 0.87 at 30 GeV) × (1 + σ ε), with
    σ = 100 %/√pT ⊕ 5 %; 12 % of the jets lose an extra Exp(8 %) of their energy (neutrinos,
    out-of-cone: a low tail). Angles smeared by 0.02 in η and φ; log mass by 0.12 plus the response.
    Missing ET: the gen one, minus the muon's and the jet's mismeasurement, plus a soft term
    N(0, 6 GeV ⊕ 3 % of the jet pT) per component.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recogan_app.errors import InputError

DEFAULT_N = 200_000
FEATURES = ["mu_px", "mu_py", "mu_pz", "jet_px", "jet_py", "jet_pz", "jet_log_mass", "met_x", "met_y"]
"""Seed 003's nine features, at each level."""
CONDITIONS = [f"gen_{f}" for f in FEATURES]
TARGETS = [f"reco_{f}" for f in FEATURES]
W_MASS, W_WIDTH = 80.4, 2.1


def _cartesian(pt, eta, phi) -> np.ndarray:
    return np.stack([pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)])


def _batch(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """``n`` generated events before the selection: gen and reco features and whether each is kept."""
    jet_pt = 30.0 + 25.0 * (rng.pareto(3.0, n))
    jet_eta, jet_phi = rng.uniform(-2.4, 2.4, n), rng.uniform(-np.pi, np.pi, n)
    jet = _cartesian(jet_pt, jet_eta, jet_phi)
    jet_log_mass = np.log(0.1 * jet_pt + 5.0) + 0.35 * rng.standard_normal(n)
    mass = np.clip(W_MASS + 0.5 * W_WIDTH * rng.standard_cauchy(n), 50.0, 110.0)
    w_px, w_py = -jet[0] + 5.0 * rng.standard_normal(n), -jet[1] + 5.0 * rng.standard_normal(n)
    w_mt = np.sqrt(mass**2 + w_px**2 + w_py**2)
    rapidity = 1.2 * rng.standard_normal(n)
    w = np.stack([w_mt * np.cosh(rapidity), w_px, w_py, w_mt * np.sinh(rapidity)])
    cos, phi = rng.uniform(-1, 1, n), rng.uniform(-np.pi, np.pi, n)  # the muon in the W's rest frame
    sin = np.sqrt(1 - cos**2)
    rest = 0.5 * mass * np.stack([np.ones(n), sin * np.cos(phi), sin * np.sin(phi), cos])
    beta = w[1:] / w[0]
    gamma, bp = w[0] / mass, (beta * rest[1:]).sum(0)
    muon = rest[1:] + ((gamma - 1) * bp / (beta**2).sum(0) + gamma * rest[0]) * beta  # boosted to the lab
    nu = w[1:] - muon
    mu_pt = np.hypot(muon[0], muon[1])
    mu_eta = np.arcsinh(muon[2] / mu_pt)
    mu_phi = np.arctan2(muon[1], muon[0])
    delta_phi = np.angle(np.exp(1j * (mu_phi - jet_phi)))
    kept = (mu_pt > 22) & (np.abs(mu_eta) < 2.4) & (np.hypot(mu_eta - jet_eta, delta_phi) > 0.5)

    resolution = np.hypot(0.01, 1e-4 * mu_pt) * np.where(np.abs(mu_eta) > 1.2, 2.0, 1.0)
    resolution *= np.where(rng.random(n) < 0.02, 3.0, 1.0)
    reco_mu_pt = mu_pt / (1 + resolution * rng.standard_normal(n))  # the curvature is what is smeared
    reco_mu = _cartesian(reco_mu_pt, mu_eta + 5e-4 * rng.standard_normal(n), mu_phi + 5e-4 * rng.standard_normal(n))
    kept &= np.abs(reco_mu_pt - mu_pt) / mu_pt < 0.10
    sigma = np.hypot(1.0 / np.sqrt(jet_pt), 0.05)
    response = (0.98 - 0.6 / np.sqrt(jet_pt)) * (1 + sigma * rng.standard_normal(n))
    response *= np.where(rng.random(n) < 0.12, 1 - rng.exponential(0.08, n), 1.0)
    response = np.maximum(response, 0.2)
    reco_jet = _cartesian(jet_pt * response, jet_eta + 0.02 * rng.standard_normal(n),
                          jet_phi + 0.02 * rng.standard_normal(n))
    soft = np.hypot(6.0, 0.03 * jet_pt)
    reco_met = nu[:2] - (reco_mu - muon)[:2] - (reco_jet - jet)[:2] + soft * rng.standard_normal((2, n))
    gen = [*muon, *jet, jet_log_mass, *nu[:2]]
    reco = [*reco_mu, *reco_jet, jet_log_mass + np.log(response) + 0.12 * rng.standard_normal(n), *reco_met]
    return {"kept": kept, **dict(zip(CONDITIONS, gen)), **dict(zip(TARGETS, reco))}


def generate(n: int = DEFAULT_N, seed: int = 0) -> pd.DataFrame:
    """Simulate ``n`` selected events (rows): the nine gen features, then the nine reco ones
    (float32); the same seed gives the same sample."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise InputError(f"n must be a positive integer, got {n!r}")
    rng = np.random.default_rng(seed)
    batches, total = [], 0
    while total < n:
        batch = _batch(rng, max(2 * (n - total), 10_000))
        batches.append({k: v[batch["kept"]] for k, v in batch.items() if k != "kept"})
        total += int(batch["kept"].sum())
    return pd.DataFrame({name: np.concatenate([b[name] for b in batches])[:n].astype(np.float32)
                         for name in CONDITIONS + TARGETS})
