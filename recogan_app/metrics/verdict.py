"""Seed 000's quality bars and the verdicts read off them: the one home of every threshold.

Each bar is a strict upper limit. A sample is "excellent" when its mean and max KS over features
are both below :data:`EXCELLENT`, "good" below :data:`GOOD`, otherwise "poor"; its correlation
coefficients must agree with the MC's within :data:`RESIDUAL_TOLERANCE`. Training ranks its
checkpoints by :func:`bar_score`, export gates on :data:`BARS`, and the pages and report draw them.
"""

from __future__ import annotations

import math

EXCELLENT = (0.035, 0.08)
"""Seed 000's 'excellent' bar: (mean KS, max KS) over features."""
GOOD = (0.06, 0.15)
"""Seed 000's 'good' bar: (mean KS, max KS) over features."""
RESIDUAL_TOLERANCE = 0.05
"""Seed 000's criterion: |synthetic − MC| correlation coefficients within this bound."""
BARS = {"excellent": EXCELLENT, "good": GOOD}
"""The (mean KS, max KS) bar of each level an export may require."""
REQUIRABLE = ("excellent", "good", "none")
"""The levels an export may require ("none": no gate)."""
RANK = {"none": 0, "poor": 0, "good": 1, "excellent": 2}
"""Order of verdicts and required levels: a verdict passes a level of equal or lower rank."""

__all__ = ["BARS", "EXCELLENT", "GOOD", "RANK", "REQUIRABLE", "RESIDUAL_TOLERANCE", "bar_score", "ks_verdict",
           "too_small_to_judge"]


def ks_verdict(mean_ks: float, max_ks: float) -> str:
    """"excellent", "good" or "poor": the best level whose bars both lie above the sample's KS."""
    return next((name for name, (mean_bar, max_bar) in BARS.items() if mean_ks < mean_bar and max_ks < max_bar),
                "poor")


def bar_score(mean_ks: float, max_ks: float, max_corr_residual: float) -> float:
    """How far from seed 000's 'excellent' bar, worst of the three criteria (≤ 1 meets all); a
    residual that could not be computed (NaN: one feature, a constant column) is left out."""
    ks = max(mean_ks / EXCELLENT[0], max_ks / EXCELLENT[1])
    return ks if math.isnan(max_corr_residual) else max(ks, max_corr_residual / RESIDUAL_TOLERANCE)


def too_small_to_judge(ks_noise: float) -> bool:
    """Whether a comparison whose KS noise floor is ``ks_noise`` cannot tell a 'good' sample from a
    'poor' one: two MC samples of its size already differ by the 'good' bar's mean KS by chance."""
    return ks_noise >= GOOD[0]
