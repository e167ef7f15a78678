"""What the quantile response's level grid alone costs against issue 18's efficiency bars.

An oracle model: in each fine cell of the conditions (each value of the categorical condition
times quantile bins of the others) it knows the targets' quantiles at the K levels exactly (those
of a large MC sample of the toy in that cell, in the family's preprocessed space), and samples
them as the family does (``models.quantile.values_at``: linear between levels, exponential tails).
Given the benchmark's reference rows' conditions, its efficiency ratios and pulls are what the
level grid and the cells cost; the same oracle drawing a random MC row of the cell instead
(``exact``) separates the cells' cost from the grid's. A trained model cannot do better than its
level grid, so when the oracle meets the bars with margin the misses are the fit's::

    python benchmarks/conditional_levels.py --toy toy-pid --levels 100 200 400
    python benchmarks/conditional_levels.py --toy unseen-rich --out benchmarks/results/conditional-levels-unseen.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.special import ndtri

from recogan_app.metrics.conditional import MIN_PASSING, validate_conditional
from recogan_app.models.quantile import even_levels, values_at
from recogan_app.preprocessing import FeaturePipeline

sys.path.insert(0, str(Path(__file__).parent))
from conditional import TOYS  # noqa: E402  (benchmarks/conditional.py: the same toys and seeds)

RESULTS = Path(__file__).parent / "results"


def cells(frame: pd.DataFrame, edges: dict[str, np.ndarray], categorical: str) -> np.ndarray:
    """One integer per row: its cell (the categorical value, then the bin of each other condition)."""
    key = frame[categorical].astype(np.int64).to_numpy()
    for name, inner in edges.items():
        key = key * (len(inner) + 1) + np.searchsorted(inner, frame[name].to_numpy())
    return key


def oracle(reference_cells, members, mapped, levels, rng) -> np.ndarray:
    """Targets (preprocessed) for each reference row from its cell's MC rows ``mapped[members[cell]]``:
    a random row (``levels`` None) or a draw from the cell's quantiles at ``levels``."""
    out = np.empty((len(reference_cells), mapped.shape[1]), np.float32)
    for cell in np.unique(reference_cells):
        rows, rows_mc = np.flatnonzero(reference_cells == cell), members[cell]
        if levels is None:
            out[rows] = mapped[rng.choice(rows_mc, len(rows))]
            continue
        quantiles = torch.as_tensor(np.quantile(mapped[rows_mc], levels, axis=0).T, dtype=torch.float32)
        z = torch.as_tensor(ndtri(rng.uniform(size=(len(rows), mapped.shape[1]))), dtype=torch.float32)
        out[rows] = values_at(torch.as_tensor(levels, dtype=torch.float32),
                              quantiles.expand(len(rows), -1, -1), z).numpy()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--toy", choices=["toy-pid", "unseen-rich"], default="toy-pid")
    parser.add_argument("--levels", type=int, nargs="+", default=[100, 200, 400], help="K of the even grids tried")
    parser.add_argument("--mc-rows", type=int, default=5_000_000, help="MC rows whose cells' quantiles the oracle knows")
    parser.add_argument("--reference-rows", type=int, default=200_000, help="the benchmark's reference (toy seed 1)")
    parser.add_argument("--bins", type=int, nargs=3, default=[30, 5, 5],
                        help="quantile bins of the three continuous conditions (in the toy's order)")
    parser.add_argument("--out", default=str(RESULTS / "conditional-levels.json"))
    args = parser.parse_args()
    toy = TOYS[args.toy]
    categorical = next(c for c in toy.CONDITIONS if c == "species")
    continuous = [c for c in toy.CONDITIONS if c != categorical]
    started = time.perf_counter()
    training = toy.generate(200_000, seed=0)  # the benchmark's training rows fit the map, as the family's split does
    pipeline = FeaturePipeline({t: "flatquantile" for t in toy.TARGETS}).fit(training[toy.TARGETS])
    mc, reference = toy.generate(args.mc_rows, seed=7), toy.generate(args.reference_rows, seed=1)
    edges = {c: np.quantile(mc[c], np.linspace(0, 1, k + 1)[1:-1]) for c, k in zip(continuous, args.bins)}
    mc_cells, reference_cells = cells(mc, edges, categorical), cells(reference, edges, categorical)
    order = np.argsort(mc_cells, kind="stable")
    keys, starts = np.unique(mc_cells[order], return_index=True)
    members = dict(zip(keys, np.split(order, starts[1:])))
    mapped = pipeline.transform(mc[toy.TARGETS])
    rng = np.random.default_rng(0)
    print(f"{args.toy}: {len(members):,} cells of {args.mc_rows / len(members):,.0f} MC rows on average "
          f"({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    rows = []
    for k in [None, *args.levels]:
        drawn = oracle(reference_cells, members, mapped, None if k is None else even_levels(k).numpy(), rng)
        synthetic = pd.concat([reference[toy.CONDITIONS].reset_index(drop=True),
                               pipeline.inverse_transform(drawn).reset_index(drop=True)], axis=1)
        validation = validate_conditional(reference, synthetic, toy.TARGETS, toy.CONDITIONS)
        e = validation.efficiency
        large = e[e.pass_mc >= MIN_PASSING].assign(deviation=lambda t: (t.ratio - 1).abs())
        worst = large.sort_values("deviation", ascending=False).head(3)
        rows.append({"oracle": "exact" if k is None else f"even {k} levels", **validation.figures(),
                     "worst": worst[["target", "condition", "bin", "quantile", "eff_mc", "eff_gen", "ratio",
                                     "pull"]].to_dict(orient="records")})
        print(f"{rows[-1]['oracle']}: max |ratio − 1| {rows[-1]['max_ratio_deviation']:.3f}, pulls beyond 3σ "
              f"{rows[-1]['pull_share']:.1%}", file=sys.stderr, flush=True)
    Path(args.out).write_text(json.dumps({"toy": args.toy, "settings": vars(args), "cells": len(members),
                                          "rows": rows}, indent=1, default=float) + "\n")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
