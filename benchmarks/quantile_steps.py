"""Training throughput of the quantile family's step (not a test): rows a second by threads, batch
and Adam's implementation, on toy-pid's shapes (5 DLL targets given 4 conditions, the species
one-hot), the default network (4 × 100, 100 levels). The cases run alternated, ``--repeats``
times each, so that a change of load falls on all of them; the median and range are printed.

Usage::

    nice -n -5 python benchmarks/quantile_steps.py        # README, issue 18's fifth round
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from recogan_app.config import QuantileConfig
from recogan_app.models.quantile import QuantileModel

CASES = [(1, 128, "plain"), (1, 128, "fused"), (1, 128, "foreach"), (2, 128, "fused"), (1, 256, "fused"),
         (2, 256, "fused"), (2, 512, "fused"), (2, 1024, "fused")]
"""(threads, batch, Adam's implementation)."""


def stepper(batch: int, adam: str):
    """One training step of a fresh toy-pid-shaped model on random rows, as the trainer takes it."""
    torch.manual_seed(0)
    config = QuantileConfig(features=list("abcde"), conditions=["species", "p", "eta", "n_tracks"], batch_size=batch)
    model = QuantileModel(5, 4, config, categories={0: np.linspace(-1.5, 1.5, 6)})
    optimiser = torch.optim.Adam(model.generator.parameters(), lr=1e-3,
                                 **{"plain": {}, "fused": {"fused": True}, "foreach": {"foreach": True}}[adam])
    targets, conditions = torch.randn(50 * batch, 5), torch.randn(50 * batch, 4)

    def step(i: int) -> None:
        rows = slice((i % 50) * batch, (i % 50 + 1) * batch)
        loss = model.loss(targets[rows], conditions[rows])["loss"]
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rows", type=int, default=20_000, help="rows a repeat of each case trains on")
    args = parser.parse_args()
    steps = {case: stepper(*case[1:]) for case in CASES}
    rates = {case: [] for case in CASES}
    for repeat in range(args.repeats + 1):  # the first is a warm-up
        for (threads, batch, adam), step in steps.items():
            torch.set_num_threads(threads)
            n = max(40, args.rows // batch)
            started = time.perf_counter()
            for i in range(n):
                step(i)
            if repeat:
                rates[(threads, batch, adam)].append(batch * n / (time.perf_counter() - started))
    print("| threads | batch | Adam | rows/s (median) | range |\n|---|---|---|---|---|")
    for (threads, batch, adam), values in rates.items():
        print(f"| {threads} | {batch} | {adam} | {statistics.median(values):,.0f} | "
              f"{min(values):,.0f}–{max(values):,.0f} |")


if __name__ == "__main__":
    main()
