"""Benchmark of small samples (not a test): default settings on a few hundred to thousands of rows.

A 3-feature toy (a correlated Gaussian pair and an exponential) of each size trains each family
with its default settings and no time limit; the generated sample is compared with 20,000 rows
of the truth drawn with another seed, beside the floor a perfect model of the training rows
would show (KS of n_train rows against 20,000, 68 %). One Markdown row per training on stdout.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/small_samples.py --rows 300 2000 --model gan flow
"""

from __future__ import annotations

import argparse
import tempfile

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


def row(n: int, model: str, folder: str) -> str:
    config_class, train = FAMILIES[model]
    run = train(toy(n, 0), config_class(device="cpu"), f"{folder}/{model}-{n}")
    truth, generated = toy(TRUTH_ROWS, 99), run.generate(TRUTH_ROWS, seed=5)
    ks = np.mean([ks_statistic(truth[c].to_numpy(), generated[c].to_numpy()) for c in truth])
    fit, schedule, metrics = run.info["fit"], run.info["schedule"], run.metrics()
    return (f"| {n:,} | {model} | {schedule['batch_size']} × {schedule['steps_per_epoch']} | {schedule['patience']} "
            f"epochs ({schedule['patience_steps']:,} steps) | {fit['reason']}, {fit['steps']:,} steps, "
            f"{fit['elapsed_s']:.0f} s | {ks:.3f} ({ks_floor(run.info['data']['n_train'], TRUTH_ROWS):.3f}) | "
            f"{metrics['mean_ks']:.3f} ({metrics['noise']['ks']:.3f}) |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[300, 2000])
    parser.add_argument("--model", choices=list(FAMILIES), nargs="+", default=list(FAMILIES))
    args = parser.parse_args()
    print("| rows | model | batch × steps an epoch | patience | stopped | KS vs truth (floor) | held-out mean KS (noise) |")
    with tempfile.TemporaryDirectory() as folder:
        for n in args.rows:
            for model in args.model:
                print(row(n, model, folder), flush=True)


if __name__ == "__main__":
    main()
