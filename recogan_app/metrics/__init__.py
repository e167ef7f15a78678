"""Validation metrics: pure functions comparing a synthetic sample with the MC it imitates.

- ``distributions``  per-feature KS and Wasserstein distances, bootstrap intervals, the MC's noise floor
- ``correlations``   Pearson/Spearman matrices, the residual synthetic − MC and its noise floor
- ``c2st``           classifier two-sample test: an xgboost BDT asked to tell MC from synthetic
- ``verdict``        seed 000's quality bars and the verdicts read off them
"""

from recogan_app.metrics.c2st import C2STResult, classifier_two_sample_test
from recogan_app.metrics.correlations import (
    correlation_matrix,
    correlation_residual,
    flagged_pairs,
    max_abs_residual,
    residual_floor,
)
from recogan_app.metrics.distributions import (
    bootstrap_interval,
    feature_matrix,
    feature_metrics,
    iqr,
    is_discrete,
    ks_floor,
    ks_statistic,
    ks_summary,
    ks_test,
    noise_floor,
    split_halves,
    wasserstein,
)
from recogan_app.metrics.verdict import EXCELLENT, GOOD, RESIDUAL_TOLERANCE

__all__ = [
    "EXCELLENT",
    "GOOD",
    "RESIDUAL_TOLERANCE",
    "C2STResult",
    "bootstrap_interval",
    "classifier_two_sample_test",
    "correlation_matrix",
    "correlation_residual",
    "feature_matrix",
    "feature_metrics",
    "flagged_pairs",
    "iqr",
    "is_discrete",
    "ks_floor",
    "ks_statistic",
    "ks_summary",
    "ks_test",
    "max_abs_residual",
    "noise_floor",
    "residual_floor",
    "split_halves",
    "wasserstein",
]
