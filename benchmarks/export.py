"""Benchmark of ``recogan export`` to Parquet (not a test): speed and memory against the I/O floor.

Seed 000 generated an 86M-row sample in under a minute; the export must be as fast while
validating, streaming and writing atomically with provenance. This measures, in one run:

- **export**: ``recogan_app.export.export`` of ``--rows`` rows × 12 features (the toy's
  feature set) to Parquet, in a fresh process restricted to ``--threads`` CPU cores, whose own
  peak resident memory (``getrusage`` max RSS, imports included) is the memory figure; the time
  covers validation, generation and writing;
- **generator alone**: the run's noise and network (no inverse preprocessing, no Arrow, no
  writing) over the same rows, chunks and workers (one core each) as the export: with the
  floor's CPU time, a lower bound on any export on these cores;
- **I/O floor**: pyarrow writing an already materialised random float32 table of the same shape,
  with the same row groups (``--chunk-rows``) and the export's writer settings (no dictionary
  for float columns), on the same cores and disk; pyarrow's default settings (dictionary
  encoding tried on every column) are timed too, for reference: they are 4× slower.

Bars: export time ≤ 3 × the floor, peak memory < 2 GB. A run is trained first on the 12-feature
toy with the default architecture for ``--time-limit`` seconds (its quality does not matter
here: the export uses ``require="none"``), unless ``--run`` names one.

Usage::

    python benchmarks/export.py --rows 5000000            # quick check
    python benchmarks/export.py                           # 86M rows, 2 cores, GPU when present
    python benchmarks/export.py --run runs/xic --device cuda

Results go to ``benchmarks/results/export-<device>.json`` and a Markdown table on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from recogan_app.export import dictionary_columns
from recogan_app.families.tabular import TabularRun

RESULTS = Path(__file__).parent / "results"
N_FEATURES = 12
TIME_BAR, MEMORY_BAR_MB = 3.0, 2048

CHILD = """
import json, resource, sys, time
import pyarrow, torch
from recogan_app.export import export
from recogan_app.families.tabular import TabularRun
from recogan_app.training.device import resolve_device
run_dir, out, rows, chunk_rows, device, threads = sys.argv[1:]
torch.set_num_threads(int(threads)); pyarrow.set_cpu_count(int(threads))
run = TabularRun.load(run_dir, device=resolve_device(device))
start = time.perf_counter()
provenance = export(run, out, int(rows), require="none", seed=1, chunk_rows=int(chunk_rows))
print(json.dumps({"export_s": time.perf_counter() - start, "device": next(run.module.parameters()).device.type,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "verdict": provenance["validation"]["verdict"]}))
"""


def train_run(directory: Path, time_limit: float, device: str) -> Path:
    """A run with the default architecture on the 12-feature toy: generation costs as in real use."""
    from recogan_app.config import TabularConfig
    from recogan_app.data import toy_xic
    from recogan_app.data.sources import MCSample
    from recogan_app.families.tabular import train_tabular

    frame = toy_xic.generate(n=100_000, seed=0, n_features=N_FEATURES)
    config = TabularConfig(time_limit=time_limit, device=device, seed=0)
    sample = MCSample(frame, source="toy-xic-12", tree=None, n_dropped=0, invalid_counts={})
    return train_tabular(sample, config, directory / "run").path


def measure_export(run: Path, out: Path, args) -> dict:
    """Export in a fresh process, so that its max RSS is the export's alone."""
    command = [sys.executable, "-c", CHILD, str(run), str(out), str(args.rows), str(args.chunk_rows),
               args.device, str(args.threads)]
    result = subprocess.run(command, check=True, capture_output=True, text=True)
    return {**json.loads(result.stdout.splitlines()[-1]), "file_mb": out.stat().st_size / 2**20}


def measure_generator(run: Path, args) -> dict:
    """Noise and network alone, as the export's workers run them (one core each): the compute
    that no writer or preprocessing change can remove."""
    rows = TabularRun.load(run).module.generator.sampler()

    def chunk(start: int) -> None:
        torch.set_num_threads(1)
        rows(1, start, min(start + args.chunk_rows, args.rows))

    wall, cpu = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(max_workers=args.threads) as pool:
        list(pool.map(chunk, range(0, args.rows, args.chunk_rows)))
    torch.set_num_threads(args.threads)
    return {"generator_s": time.perf_counter() - wall, "generator_cpu_s": time.process_time() - cpu}


def measure_floor(out: Path, args) -> dict:
    """pyarrow writing a materialised random float32 table of the export's shape and row groups:
    with the export's own writer settings (the bar's floor) and with pyarrow's defaults."""
    rng = np.random.default_rng(0)
    table = pa.table({f"f{j}": rng.random(args.rows, dtype=np.float32) for j in range(N_FEATURES)})
    result = {}
    for name, options in (("floor", {"use_dictionary": dictionary_columns(table.schema)}),
                          ("default_floor", {})):
        wall, cpu = time.perf_counter(), time.process_time()
        pq.write_table(table, out, row_group_size=args.chunk_rows, **options)
        result |= {f"{name}_s": time.perf_counter() - wall, f"{name}_cpu_s": time.process_time() - cpu,
                   f"{name}_file_mb": out.stat().st_size / 2**20}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=86_000_000)
    parser.add_argument("--chunk-rows", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=2, help="CPU cores for training, export and floor")
    parser.add_argument("--device", default="auto", help="where the generator runs (auto: a GPU when present)")
    parser.add_argument("--run", help="an existing run directory (default: train one)")
    parser.add_argument("--time-limit", type=float, default=60, help="seconds of training when no --run")
    parser.add_argument("--tmp", help="folder for the written files (default: the system's temp folder)")
    args = parser.parse_args()

    if hasattr(os, "sched_setaffinity"):  # inherited by the export process
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:args.threads])
    torch.set_num_threads(args.threads)
    pa.set_cpu_count(args.threads)
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        tmp = Path(tmp)
        run = Path(args.run) if args.run else train_run(tmp, args.time_limit, args.device)
        result = measure_export(run, tmp / "export.parquet", args)
        (tmp / "export.parquet").unlink()
        result |= measure_generator(run, args) | measure_floor(tmp / "floor.parquet", args)
    result |= {"rows": args.rows, "features": N_FEATURES, "chunk_rows": args.chunk_rows, "threads": args.threads,
               "rows_per_s": args.rows / result["export_s"], "time_ratio": result["export_s"] / result["floor_s"],
               "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None}
    # generator and writer share the cores: no export here can take less than their CPU over the cores
    result["lower_bound_s"] = (result["generator_cpu_s"] + result["floor_cpu_s"]) / args.threads
    result["lower_bound_ratio"] = result["lower_bound_s"] / result["floor_s"]
    result["passes"] = result["time_ratio"] <= TIME_BAR and result["peak_rss_mb"] < MEMORY_BAR_MB

    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"export-{result['device']}.json").write_text(json.dumps(result, indent=2))
    print(f"| rows | device | threads | export s | rows/s | peak RSS MB | floor s | pyarrow-default floor s | "
          f"generator alone s | lower bound s | export/floor | bars |\n"
          f"|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n"
          f"| {args.rows:,} | {result['device']} | {args.threads} | {result['export_s']:.1f} | "
          f"{result['rows_per_s']:,.0f} | {result['peak_rss_mb']:.0f} | {result['floor_s']:.1f} | "
          f"{result['default_floor_s']:.1f} | {result['generator_s']:.1f} | "
          f"{result['lower_bound_s']:.1f} ({result['lower_bound_ratio']:.2f} × floor) | "
          f"{result['time_ratio']:.2f} (≤ {TIME_BAR}) | {'pass' if result['passes'] else 'FAIL'} |")


if __name__ == "__main__":
    main()
