"""Benchmark of small samples (not a test): default settings on a few hundred to thousands of rows.

A 3-feature toy (a correlated Gaussian pair and an exponential) of each size trains each family
with its default settings (and ``--time-limit``, none by default); the generated sample is compared
with 20,000 rows of the truth drawn with another seed, beside the floor a perfect model of the
training rows would show (KS of n_train rows against 20,000, 68 %), and the held-out mean KS
beside its noise floor. One Markdown row per training on stdout; with ``--out`` the rows as JSON
(written after each training). ``--seeds`` draws the toy and trains with each seed.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/small_samples.py --rows 300 2000 --model gan flow
    OMP_NUM_THREADS=1 python benchmarks/small_samples.py --rows 300 2000 20000 --time-limit 60 --seeds 0 1 2 \
        --out benchmarks/results/small-samples-60s.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from recogan_app.config import FlowConfig, TabularConfig
from recogan_app.families.flow import train_flow
from recogan_app.families.tabular import train_tabular
from recogan_app.metrics.distributions import ks_floor, ks_statistic

TRUTH_ROWS = 20_000
FAMILIES = {"gan": (TabularConfig, train_tabular), "flow": (FlowConfig, train_flow)}


def toy(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return pd.DataFrame({"x": x, "y": 0.6 * x + 0.8 * rng.normal(size=n),
                         "e": rng.exponential(1.0, n)}).astype(np.float32)


def measure(n: int, model: str, seed: int, time_limit: float | None, folder: str) -> dict:
    config_class, train = FAMILIES[model]
    run = train(toy(n, seed), config_class(device="cpu", seed=seed, time_limit=time_limit),
                f"{folder}/{model}-{n}-{seed}")
    truth, generated = toy(TRUTH_ROWS, 99 + seed), run.generate(TRUTH_ROWS, seed=5)
    metrics = run.metrics()
    return {"rows": n, "model": model, "seed": seed, "time_limit_s": time_limit, "schedule": run.info["schedule"],
            "fit": {k: run.info["fit"][k] for k in ("reason", "steps", "elapsed_s")},
            "ks_vs_truth": float(np.mean([ks_statistic(truth[c].to_numpy(), generated[c].to_numpy()) for c in truth])),
            "ks_floor_vs_truth": ks_floor(run.info["data"]["n_train"], TRUTH_ROWS),
            "heldout_mean_ks": metrics["mean_ks"], "heldout_ks_noise": metrics["noise"]["ks"]}


def markdown(r: dict) -> str:
    schedule, fit = r["schedule"], r["fit"]
    patience = (f"{schedule['patience']} epochs ({schedule['patience_steps']:,} steps)"
                if schedule.get("early_stopping", True) else "none: anneals to the time limit")
    return (f"| {r['rows']:,} | {r['model']} | {r['seed']} | {schedule['batch_size']} × {schedule['steps_per_epoch']} | "
            f"{patience} | {fit['reason']}, {fit['steps']:,} "
            f"steps, {fit['elapsed_s']:.0f} s | {r['ks_vs_truth']:.3f} ({r['ks_floor_vs_truth']:.3f}) | "
            f"{r['heldout_mean_ks']:.3f} ({r['heldout_ks_noise']:.3f}; {r['heldout_mean_ks'] / r['heldout_ks_noise']:.2f}×) |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[300, 2000])
    parser.add_argument("--model", choices=list(FAMILIES), nargs="+", default=list(FAMILIES))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--time-limit", type=float, default=None, help="seconds of training (default: none)")
    parser.add_argument("--out", type=Path, help="JSON file of the rows, rewritten after each training")
    args = parser.parse_args()
    print("| rows | model | seed | batch × steps an epoch | patience | stopped | KS vs truth (floor) "
          "| held-out mean KS (noise; ratio) |")
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for seed in args.seeds:
            for n in args.rows:
                for model in args.model:
                    results.append(measure(n, model, seed, args.time_limit, folder))
                    print(markdown(results[-1]), flush=True)
                    if args.out:
                        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
