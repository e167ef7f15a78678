"""Validation metrics: pure functions comparing a synthetic sample with the MC it imitates.

- ``distributions``  per-feature KS and Wasserstein distances, bootstrap intervals, the MC's noise floor
- ``correlations``   Pearson/Spearman matrices, the residual synthetic − MC and its noise floor
- ``c2st``           classifier two-sample test: an xgboost BDT asked to tell MC from synthetic
- ``verdict``        seed 000's quality bars and the verdicts read off them

The names below are imported on first use, so that importing one submodule (the command line
needs only ``verdict``) does not load xgboost and scipy.
"""

from recogan_app import lazy_names

_HOMES = {
    "c2st": ("C2STResult", "classifier_two_sample_test"),
    "correlations": ("correlation_matrix", "correlation_residual", "flagged_pairs", "max_abs_residual",
                     "residual_floor"),
    "distributions": ("bootstrap_interval", "effective_size", "feature_matrix", "feature_metrics", "iqr",
                      "is_discrete", "ks_floor", "ks_statistic", "ks_summary", "ks_test", "noise_floor", "split_halves",
                      "wasserstein"),
    "verdict": ("EXCELLENT", "GOOD", "RESIDUAL_TOLERANCE"),
}
__all__, __getattr__ = lazy_names(__name__, {f"{__name__}.{module}": names for module, names in _HOMES.items()})
