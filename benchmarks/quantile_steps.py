"""Training throughput of the quantile family's step (not a test): rows a second by threads, batch
and Adam's implementation, on toy-pid's shapes (5 DLL targets given 4 conditions, the species
one-hot), the default network (4 × 100, 100 levels). The cases run alternated, ``--repeats``
times each, so that a change of load falls on all of them; the median and range are printed.

Usage::

    nice -n -5 python benchmarks/quantile_steps.py        # README, issue 18's fifth round
    nice -n -5 python benchmarks/quantile_steps.py --cases 2,1024,fused --jumps 0 4 --targets 5 9   # the seventh
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


def stepper(batch: int, adam: str, jumps: int, targets: int):
    """One training step of a fresh toy-pid-shaped model on random rows, as the trainer takes it."""
    torch.manual_seed(0)
    config = QuantileConfig(features=[f"t{i}" for i in range(targets)], conditions=["species", "p", "eta", "n_tracks"],
                            batch_size=batch, jumps=jumps)
    model = QuantileModel(targets, 4, config, categories={0: np.linspace(-1.5, 1.5, 6)})
    optimiser = torch.optim.Adam(model.generator.parameters(), lr=1e-3,
                                 **{"plain": {}, "fused": {"fused": True}, "foreach": {"foreach": True}}[adam])
    values, conditions = torch.randn(50 * batch, targets), torch.randn(50 * batch, 4)

    def step(i: int) -> None:
        rows = slice((i % 50) * batch, (i % 50 + 1) * batch)
        loss = model.loss(values[rows], conditions[rows])["loss"]
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rows", type=int, default=20_000, help="rows a repeat of each case trains on")
    parser.add_argument("--cases", nargs="+", default=[f"{t},{b},{a}" for t, b, a in CASES],
                        help="THREADS,BATCH,ADAM (plain, fused or foreach)")
    parser.add_argument("--jumps", nargs="+", type=int, default=[QuantileConfig().jumps])
    parser.add_argument("--targets", nargs="+", type=int, default=[5])
    args = parser.parse_args()
    cases = [(int(threads), int(batch), adam, jumps, targets) for threads, batch, adam in (c.split(",") for c in args.cases)
             for jumps in args.jumps for targets in args.targets]
    steps = {case: stepper(*case[1:]) for case in cases}
    rates = {case: [] for case in cases}
    for repeat in range(args.repeats + 1):  # the first is a warm-up
        for case, step in steps.items():
            threads, batch = case[:2]
            torch.set_num_threads(threads)
            n = max(40, args.rows // batch)
            started = time.perf_counter()
            for i in range(n):
                step(i)
            if repeat:
                rates[case].append(batch * n / (time.perf_counter() - started))
    print("| threads | batch | Adam | jumps | targets | rows/s (median) | range |\n|---|---|---|---|---|---|---|")
    for (threads, batch, adam, jumps, targets), values in rates.items():
        print(f"| {threads} | {batch} | {adam} | {jumps} | {targets} | {statistics.median(values):,.0f} | "
              f"{min(values):,.0f}–{max(values):,.0f} |")


if __name__ == "__main__":
    main()
