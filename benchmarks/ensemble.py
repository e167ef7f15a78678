"""Benchmark of bootstrap ensembles (not a test): on the Ξc+ toy at several training sizes, K
members of each family, the coverage of the ensemble's errors on the held-out MC and the
effective statistics per feature (issue 17).

Every member is bound by optimiser steps, not wall time (the machine is shared): its epochs are
``--steps`` divided by the batches of one epoch, with patience = epochs so none stops early.
Members train on a Dask LocalCluster of ``--workers`` single-threaded workers; each size × family
is one ensemble directory under ``--work`` (rerun the command to resume an interrupted one).

Usage::

    nice -n 10 python benchmarks/ensemble.py                             # 1k/10k/100k, K=10, gan and flow
    nice -n 10 python benchmarks/ensemble.py --sizes 1000 --models flow --members 4 --steps 100

Results go to ``benchmarks/results/ensemble.json`` (after every ensemble, so a partial run
keeps what finished), the plot of N_eff against N_train to ``benchmarks/results/ensemble-neff.png``
and a Markdown table on stdout.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import time
from pathlib import Path

import numpy as np

from recogan_app import ensemble, scan
from recogan_app.config import FlowConfig, TabularConfig
from recogan_app.data import toy_xic
from recogan_app.data.sources import load_mc

RESULTS = Path(__file__).parent / "results"
FAMILIES = {"gan": ("tabular", TabularConfig), "flow": ("flow", FlowConfig)}
MONITOR = 0.1
"""The monitor split's share (the default)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000], help="training rows")
    parser.add_argument("--models", nargs="+", default=["gan", "flow"], choices=list(FAMILIES))
    parser.add_argument("--members", type=int, default=10)
    parser.add_argument("--steps", type=int, default=400, help="optimiser steps of every member (about)")
    parser.add_argument("--generate-rows", type=int, default=100_000, help="events each member generates")
    parser.add_argument("--bins", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--test-fraction", type=float, default=0.1,
                        help="held-out share: the larger, the more the coverage tests the errors rather than the "
                             "held-out MC's own fluctuation")
    parser.add_argument("--work", default="/tmp/recogan-ensemble-benchmark", help="ensemble directories")
    args = parser.parse_args()

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "ensemble.json"
    results = json.loads(out.read_text()) if out.is_file() else {}
    tag = "" if args.test_fraction == 0.1 else f"-test{args.test_fraction:g}"
    with scan.connect(workers=args.workers) as client:
        for size in args.sizes:
            data = work / f"xic-{size}{tag}.parquet"
            if not data.is_file():
                rows = math.ceil(size / (1 - MONITOR - args.test_fraction))
                toy_xic.generate(n=rows, seed=0).to_parquet(data, index=False)
            for model in args.models:
                kind, config = FAMILIES[model]
                name = f"{model}-{size}{tag}"
                epochs = max(1, round(args.steps / math.ceil(size / config.param.batch_size.default)))
                started = time.monotonic()
                settings = {"max_epochs": epochs, "patience": epochs, "device": "cpu",
                            "monitor_fraction": MONITOR, "test_fraction": args.test_fraction}
                table = ensemble.train_ensemble(client, functools.partial(load_mc, str(data)), args.members,
                                                work / name, kind=kind, seed=0, settings=settings, report=print)
                train_s = time.monotonic() - started
                started = time.monotonic()
                summary, _ = ensemble.Ensemble.load(work / name).assess(args.generate_rows, args.bins)
                results[name] = {
                    "model": model, "test_fraction": args.test_fraction, "n_train": summary["n_train"], "members": summary["members"], "epochs": epochs,
                    "train_s": train_s, "assess_s": time.monotonic() - started,
                    "statuses": table["status"].value_counts().to_dict(), **summary}
                RESULTS.mkdir(exist_ok=True)
                out.write_text(json.dumps(ensemble.without_nan(results), indent=2, default=float))
                print(f"{model} at {size:,} training rows ({epochs} epochs, {train_s:.0f} s)")
                print(ensemble.table(summary))
    print(markdown(results))
    plot(results, RESULTS / "ensemble-neff.png")


def markdown(results: dict) -> str:
    lines = ["| model | N_train | n_test | epochs | coverage (all bins) | χ²/ndf | σ² share | median N_eff over "
             "features [range] | N_gen |", "|---|---|---|---|---|---|---|---|---|"]
    for r in results.values():
        n_eff = [f["n_effective"] for f in r["features"].values()]
        o = r["overall"]
        lines.append(f"| {r['model']} | {r['n_train']:,} | {r['n_test']:,} | {r['epochs']} | {o['coverage']:.0%} | "
                     f"{o['chi2'] / o['ndf']:.2f} | {o['tested']:.2f} | "
                     f"{np.median(n_eff):,.0f} [{min(n_eff):,.0f}–{max(n_eff):,.0f}] | "
                     f"{r['n_generated']:,} |")
    return "\n".join(lines)


def plot(results: dict, path: Path) -> None:
    """N_eff (median over features, the band their range) against N_train, per family, at the
    default test fraction."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5, 3.6), layout="constrained")
    FigureCanvasAgg(figure)
    axis = figure.subplots()
    results = {k: r for k, r in results.items() if r.get("test_fraction", 0.1) == 0.1}
    for model in FAMILIES:
        rows = sorted((r for r in results.values() if r["model"] == model), key=lambda r: r["n_train"])
        if not rows:
            continue
        n_train = [r["n_train"] for r in rows]
        n_eff = [[f["n_effective"] for f in r["features"].values()] for r in rows]
        axis.plot(n_train, [np.median(v) for v in n_eff], "o-", label=f"{model}: median over features")
        axis.fill_between(n_train, [min(v) for v in n_eff], [max(v) for v in n_eff], alpha=0.2)
    limits = [min(r["n_train"] for r in results.values()), max(r["n_train"] for r in results.values())]
    axis.plot(limits, limits, "k--", lw=0.8, label="N_eff = N_train")
    axis.set(xscale="log", yscale="log", xlabel="N_train (MC events trained on)", ylabel="N_eff",
             title=f"effective statistics, K = {next(iter(results.values()))['members']} members")
    axis.legend(fontsize=7)
    figure.savefig(path, dpi=90, metadata={"Software": None})


if __name__ == "__main__":
    main()
