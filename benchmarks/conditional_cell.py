"""Where the quantile family misses the PID toy's worst bin (issue 18; not a test): the pions'
dll_deuteron quantile function in narrow cells of the conditions, the MC's against a trained run's.

At 70–100 GeV/c a pion's dll_deuteron is the likelihood's cap (most tracks), then the count-term
spike of the confused rings (a few %, straddling the global 90 % threshold), then a cluster near
+40. The MC's quantile function jumps onto the spike at one level; the model's ramps across
several (its mass in the gap and above the spike), so the tracks above the threshold are too few.

Usage::

    python benchmarks/conditional_cell.py --runs RUN [RUN ...] --out benchmarks/results/conditional-pid-jump.png

Each ``RUN``: a quantile run trained on toy-pid (species, p, eta, n_tracks given), labelled by its
``jumps`` setting.
The cells are filled from fresh toy rows (toy seed 5, never trained on); the model generates one
row per MC row of the cell, given its conditions.
"""

from __future__ import annotations

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from recogan_app.data import toy_pid  # noqa: E402
from recogan_app.families import load_run  # noqa: E402

LEVELS = np.array([90, 92, 94, 95, 95.5, 96, 96.5, 97, 97.5, 98, 98.5, 99, 99.5, 99.7, 99.9])
CELLS = [(72, 78), (88, 95)]
"""Pions' momentum ranges (GeV/c), each at η 3.0–3.8 and 100–200 tracks."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", required=True)
    parser.add_argument("--out", required=True, help="the PNG to write")
    parser.add_argument("--rows", type=int, default=3_000_000, help="fresh toy rows the cells are cut from")
    args = parser.parse_args()
    runs = [load_run(path) for path in args.runs]
    mc = toy_pid.generate(args.rows, seed=5)
    threshold = np.percentile(mc.dll_deuteron, 90)
    figure, axes = plt.subplots(1, len(CELLS), figsize=(5.5 * len(CELLS), 4.2))
    for axis, (low, high) in zip(axes, CELLS):
        cell = mc[(mc.species == 211) & mc.p.between(low, high) & mc.eta.between(3.0, 3.8)
                  & mc.n_tracks.between(100, 200)]
        print(f"pions {low}-{high} GeV/c ({len(cell):,} MC rows), the global 90 % threshold {threshold:.2f}:")
        curves = {"MC": cell.dll_deuteron}
        for path, run in zip(args.runs, runs):
            curves[f"jumps={run.config.jumps} ({path})"] = run.generate(cell[toy_pid.CONDITIONS], seed=0).dll_deuteron
        for (label, values), marker in zip(curves.items(), ["o-", "s--", "^:", "v-."]):
            quantiles, passed = np.percentile(values, LEVELS), (values > threshold).mean()
            print(f"  {label}: {passed:.2%} above; at {', '.join(f'{v:g}' for v in LEVELS)} %:",
                  " ".join(f"{q:.2f}" for q in quantiles))
            axis.plot(LEVELS, quantiles, marker, label=f"{label.split(' (')[0]}: {passed:.1%} above")
        axis.axhline(threshold, color="grey", lw=0.8, label="global 90 % threshold")
        axis.set(title=f"pions, {low}–{high} GeV/c, η 3.0–3.8, 100–200 tracks", xlabel="level (%)",
                 ylabel="dll_deuteron quantile")
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(args.out, dpi=110)


if __name__ == "__main__":
    main()
