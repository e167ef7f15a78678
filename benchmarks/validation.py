"""Benchmark of the validation (not a test): 1M MC rows against 1M synthetic rows, 12 features.

The issue's bar: everything but the HTML report in under 60 s on 2 CPU cores. The two samples
are the embedded Ξc+ toy with different seeds (a "perfect generator"), the copula baseline is
fitted on a third, independent toy sample, as a run's training split would be. Each stage of
:func:`recogan_app.validation.validate` is timed on its own with the same settings, then the
whole call; sample generation is not timed.

Usage::

    python benchmarks/validation.py                  # 1M vs 1M, 12 features, 2 threads
    python benchmarks/validation.py --rows 200000 --threads 4

Results go to ``benchmarks/results/validation.json`` and a Markdown table on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from recogan_app.baseline import GaussianCopula
from recogan_app.data import toy_xic
from recogan_app.metrics import (classifier_two_sample_test, correlation_matrix, feature_metrics, noise_floor,
                                 residual_floor)
from recogan_app.metrics.correlations import METHODS
from recogan_app.validation import compare_histograms, ks_interval, validate

RESULTS = Path(__file__).parent / "results"


def timed(stages: dict, name: str, work):
    start = time.perf_counter()
    result = work()
    stages[name] = time.perf_counter() - start
    print(f"{name}: {stages[name]:.2f} s", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, choices=[8, 12], default=12)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    reference, synthetic, train = (toy_xic.generate(n=args.rows, seed=seed, n_features=args.features)
                                   for seed in (0, 1, 2))
    options = {"nthread": args.threads}
    stages: dict[str, float] = {}
    with threadpool_limits(args.threads):
        rng = np.random.default_rng(0)
        copula = timed(stages, "copula fit", lambda: GaussianCopula().fit(train))
        baseline = timed(stages, "copula sample", lambda: copula.sample(len(synthetic), seed=1))
        timed(stages, "KS/WS per feature ×2", lambda: [feature_metrics(reference, s) for s in (synthetic, baseline)])
        timed(stages, "noise floor (MC halves)", lambda: noise_floor(reference, len(synthetic), rng))
        timed(stages, "KS bootstrap intervals", lambda: [
            ks_interval(reference[f].to_numpy(np.float64), synthetic[f].to_numpy(np.float64), 0.0, 100, 20_000, rng)
            for f in reference.columns])
        timed(stages, "histograms + χ²", lambda: [compare_histograms(reference[f], synthetic[f]) for f in reference])
        timed(stages, "correlations ×3 + floors", lambda: [
            [correlation_matrix(s, m) for s in (reference, synthetic, baseline) for m in METHODS],
            [residual_floor(reference, m, len(synthetic), rng) for m in METHODS]])
        timed(stages, "C2ST model", lambda: classifier_two_sample_test(reference, synthetic, **options))
        timed(stages, "C2ST copula", lambda: classifier_two_sample_test(reference, baseline, **options))
        validation = timed(stages, "validate() total", lambda: validate(reference, synthetic, baseline_train=train,
                                                                          c2st_options=options))

    result = {"rows": args.rows, "features": args.features, "threads": args.threads, "cpus": os.cpu_count(),
              "load_average": os.getloadavg(), "stages_s": stages, "auc": validation.model.c2st.auc,
              "copula_auc": validation.baseline.c2st.auc, "mean_ks": validation.model.ks["mean"]}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "validation.json").write_text(json.dumps(result, indent=2))
    print(f"\n{args.rows:,} vs {args.rows:,} rows × {args.features} features, {args.threads} threads "
          f"(load average at the end {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)\n")
    print("| stage | seconds |\n|---|---|")
    print("\n".join(f"| {name} | {seconds:.1f} |" for name, seconds in stages.items()))


if __name__ == "__main__":
    main()
