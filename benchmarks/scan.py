"""Benchmark of scans (not a test): the 2×2 λ grid × 2 repeats on the Ξc+ toy, on a Dask
LocalCluster of W single-threaded workers versus the same 8 trainings one after another in one
process, with torch's default threads (as 8 ``recogan train`` commands would run) and with one.

Every training runs a fixed number of epochs (patience = max_epochs), so both ways do the same
work; the cluster's start-up (with the workers importing torch and recogan_app, which this process
has done already) is timed apart. The monitor scores of the ways are compared too: the
seeds are the same, so with one thread each they must agree exactly, with more they differ only
through the threads' floating-point sums.

Usage::

    python benchmarks/scan.py                         # 50,000 toy rows, 8 epochs, 2 workers
    python benchmarks/scan.py --rows 100000 --epochs 10 --workers 8

Results go to ``benchmarks/results/scan-<W>-workers.json`` and a Markdown table on stdout.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import tempfile
import time
from pathlib import Path

import torch

from recogan_app import scan
from recogan_app.data import toy_xic
from recogan_app.data.sources import load_mc

RESULTS = Path(__file__).parent / "results"
GRID = {"lambda_ks": [0.5, 2.0], "lambda_corr": [1.0, 3.0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000, help="toy candidates")
    parser.add_argument("--epochs", type=int, default=8, help="epochs of every training")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "xic.parquet"
        toy_xic.generate(n=args.rows, seed=0).to_parquet(data, index=False)
        load = functools.partial(load_mc, str(data))
        trainings = scan.plan(GRID, base={"max_epochs": args.epochs, "patience": args.epochs, "device": "cpu"},
                              repeats=args.repeats, seed=0)

        started = time.monotonic()
        with scan.connect(workers=args.workers) as client:
            client.run(importlib.import_module, "recogan_app.families")  # torch imported, as in this process
            cluster_s = time.monotonic() - started
            started = time.monotonic()
            on_dask = scan.run_scan(client, load, trainings, Path(tmp) / "dask")
            dask_s = time.monotonic() - started

        sample = load()
        sequential = {}
        for threads in sorted({torch.get_num_threads(), 1}, reverse=True):
            torch.set_num_threads(threads)
            folder = Path(tmp) / f"sequential-{threads}"
            started = time.monotonic()
            outcomes = [scan.train_one(training, sample, str(folder)) for training in trainings]
            sequential[threads] = {"s": time.monotonic() - started, "rows": [
                scan.result_row(folder / t.name, t, o) for t, o in zip(trainings, outcomes)]}

    results = {"rows": args.rows, "epochs": args.epochs, "trainings": len(trainings), "workers": args.workers,
               "cluster_start_s": round(cluster_s, 1), "dask_s": round(dask_s, 1), "sequential": {}}
    print(f"| {len(trainings)} trainings ({args.rows:,} rows, {args.epochs} epochs) | wall time (s) | speed-up of Dask "
          "| largest monitor-score difference from Dask |\n|---|---|---|---|")
    print(f"| Dask LocalCluster, {args.workers} workers × 1 thread | {dask_s:.1f} (+ {cluster_s:.1f} cluster start) | | |")
    for threads, run in sequential.items():
        assert all(row["status"] == "done" for row in run["rows"]) and set(on_dask["status"]) == {"done"}
        gap = max(abs(a - row["score"]) for a, row in zip(on_dask["score"], run["rows"]))
        results["sequential"][threads] = {"s": round(run["s"], 1), "speedup": round(run["s"] / dask_s, 2),
                                          "max_score_difference": gap}
        print(f"| sequential, one process, {threads} thread{'s' * (threads > 1)} | {run['s']:.1f} "
              f"| {run['s'] / dask_s:.2f}× | {gap:.3g} |")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"scan-{args.workers}-workers.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
