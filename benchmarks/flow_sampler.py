"""Sampling speed of the normalizing flow by size (not a test): rows/s of the flow's sampler
(``FlowGenerator.sampler``, what ``recogan generate`` runs before the inverse preprocessing) and
of zuko's generic inverse, for a few numbers of transforms, network widths and spline bins.

Untrained flows: the speed does not depend on the weights. One thread, best of 5 (3 for zuko),
in rows per second of the process's CPU time: what one core of its own gives, whatever other
jobs load the machine with (wall-clock rates on a shared machine measure the other jobs).
Results go to ``benchmarks/results/flow-sampler.json`` with the load average.

Usage::

    python benchmarks/flow_sampler.py [--features 8] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from recogan_app.models.flow import FlowGenerator

SIZES = [(3, (32, 32), 8), (4, (64, 64), 4), (4, (64, 64), 8), (6, (128, 128), 8)]
"""(transforms, hidden widths, bins): small, the default with 4 bins, the default, the issue's probe."""


def best_seconds(call, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.process_time()
        call()
        times.append(time.process_time() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    results = []
    for transforms, widths, bins in SIZES:
        flow = FlowGenerator(args.features, transforms, widths, bins)
        rows = flow.sampler()
        rows(0, 0, 16_384)  # warm-up
        noise = torch.randn(16_384, args.features)
        with torch.inference_mode():
            inverse = flow.flow().transform.inv
            zuko_s = best_seconds(lambda: inverse(noise), 3)
        results.append({"transforms": transforms, "widths": list(widths), "bins": bins,
                        "parameters": sum(p.numel() for p in flow.parameters()),
                        "sampler_rows_per_s": 65_536 / best_seconds(lambda: rows(1, 0, 65_536), 5),
                        "zuko_inverse_rows_per_s": 16_384 / zuko_s})
        print(results[-1], flush=True)
    load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").is_file() else None
    out = Path(__file__).parent / "results" / "flow-sampler.json"
    out.write_text(json.dumps({"threads": args.threads, "features": args.features, "loadavg": load,
                               "sizes": results}, indent=2))
    print(f"(results: {out})")


if __name__ == "__main__":
    main()
