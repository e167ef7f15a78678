"""Benchmark of the conditional families (issue 18; not a test): each of the GAN, the flow and
the quantile regression (its default response) trained for a wall-clock limit on the PID toy and the W+jet toy,
then judged against an independent toy sample (another seed) by the issue's figures:

- efficiency ratios ε_gen/ε_MC at the 5 … 95 % quantile thresholds in condition bins: the largest
  |ratio − 1| where the MC bin has ≥ 2,000 passing rows (bar 0.1), and the share of all bins with a
  pull beyond 3σ (bar 5 %), binomial errors of both;
- on W+jet, the relative-residual KS per feature (bar 0.05);
- the training time, epochs and why the fit stopped.

The model generates one row per reference row, given its conditions. Each (family, toy) result is
added to ``benchmarks/results/conditional.json`` as soon as it is measured. ``--stop-at HH:MM``
(UTC) starts no training that would end after it.

Usage::

    python benchmarks/conditional.py --pairs flow:toy-wjet quantile:toy-wjet flow:toy-pid gan:toy-pid \\
        --time-limit 300 --threads 1 --stop-at 16:45
    python benchmarks/conditional.py --pairs quantile:toy-wjet --time-limit 30    # a quick look
    python benchmarks/conditional.py --pairs quantile:unseen-rich --time-limit 300 --threads 1 \
        --results benchmarks/results/conditional-unseen.json     # the unseen RICH-like MC

``unseen-rich`` is ``benchmarks/unseen_rich.py``, an independent two-RICH PID simulation (its seed 0
to train, seed 1 as the reference), the data issue 18 asks to be judged on unseen.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from recogan_app.config import FlowConfig, QuantileConfig, TabularConfig
from recogan_app.data import toy_pid, toy_wjet
from recogan_app.families import train_flow, train_quantile, train_tabular
from recogan_app.metrics.conditional import MIN_PASSING, PULL_LIMIT, validate_conditional

import unseen_rich  # benchmarks/unseen_rich.py: RICH-like PID MC the defaults were never tuned on

FAMILIES = {"gan": (TabularConfig, train_tabular), "flow": (FlowConfig, train_flow),
            "quantile": (QuantileConfig, train_quantile)}
TOYS = {"toy-pid": toy_pid, "toy-wjet": toy_wjet, "unseen-rich": unseen_rich}
RESULTS = Path(__file__).parent / "results" / "conditional.json"
OVERHEAD_S = 120
"""Set-up, final evaluation and the independent validation of one pair, beyond its time limit."""


def measure(family: str, toy: str, *, rows: int, reference_rows: int, time_limit: float, seed: int,
            settings: dict | None = None) -> dict:
    """Train ``family`` on ``rows`` of ``toy`` (seed 0 of the toy) and validate it on
    ``reference_rows`` of another seed of the toy; ``settings`` override the family's defaults."""
    module = TOYS[toy]
    config_class, train = FAMILIES[family]
    config = config_class(**{"features": module.TARGETS, "conditions": module.CONDITIONS, "time_limit": time_limit,
                             "max_epochs": 100_000, "seed": seed, "device": "cpu", **(settings or {})})
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        run = train(module.generate(rows, seed=0), config, Path(folder) / "run")
        trained = time.perf_counter() - started
        reference = module.generate(reference_rows, seed=1)
        t = time.perf_counter()
        synthetic = run.generate(reference[module.CONDITIONS], seed=seed)
        generation_s = time.perf_counter() - t
        validation = validate_conditional(reference, synthetic, module.TARGETS, module.CONDITIONS)
        fit = run.info["fit"]
    figures = validation.figures()
    response = {"response": config.response, "levels": config.levels} if family == "quantile" else {}
    return {"family": family, **response, "toy": toy, "seed": seed, "settings": settings or {}, "training_rows": run.info["data"]["n_train"],
            "reference_rows": reference_rows, "time_limit_s": config.time_limit, "fit_s": round(fit["elapsed_s"], 1),
            "train_and_evaluate_s": round(trained, 1), "epochs": fit["epochs"], "best_epoch": fit["best_epoch"],
            "stopped": fit["reason"], "generation_s": round(generation_s, 2), **figures,
            "passes_efficiency_bars": validation.passes(),
            "residual_ks": {r.target: round(float(r.ks), 4) for r in validation.residuals.itertuples()},
            "missed": missed(validation.efficiency), "threads": torch.get_num_threads(),
            "measured_utc": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def missed(efficiency) -> dict:
    """Where the efficiency bars miss: the share of pulls beyond 3σ by target, condition and threshold
    quantile, and the ten worst bins (by |pull|, and by |ratio − 1| where the MC passes ≥ 2,000 rows)."""
    table = efficiency.assign(beyond=efficiency.pull.abs() > PULL_LIMIT, deviation=(efficiency.ratio - 1).abs())
    columns = ["target", "condition", "bin", "quantile", "eff_mc", "eff_gen", "ratio", "pull"]
    worst = table.reindex(table.pull.abs().sort_values(ascending=False).index).head(10)
    large = table[table.pass_mc >= MIN_PASSING].sort_values("deviation", ascending=False).head(10)
    return {**{f"pulls_by_{key}": {str(k): round(float(v), 3) for k, v in table.groupby(key).beyond.mean().items()}
               for key in ("target", "condition", "quantile")},
            "worst_pulls": worst[columns].round(4).to_dict(orient="records"),
            "worst_ratios": large[columns].round(4).to_dict(orient="records")}


def record(result: dict, path: Path = RESULTS) -> None:
    """Add ``result`` to the JSON ``path``, replacing an earlier one of the same model, toy and seed."""
    results = json.loads(path.read_text()) if path.exists() else []
    results = [r for r in results if model(r) != model(result)] + [result]
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(results, indent=1) + "\n")


def model(r: dict) -> tuple:
    """What a result measured: the family (the quantile model's response), its settings, the toy and the seed."""
    return r["family"], r.get("response"), json.dumps(r.get("settings", {}), sort_keys=True), r["toy"], r["seed"]


def row(r: dict) -> str:
    residual = max(r["residual_ks"].values()) if r["residual_ks"] else None
    deviation = "–" if r["max_ratio_deviation"] is None else f"{r['max_ratio_deviation']:.3f}"
    family = f"{r['family']} ({r['response']})" if "response" in r else r["family"]
    family += "".join(f", {key}={value}" for key, value in r.get("settings", {}).items())
    return (f"| {family} | {r['toy']} | {r['fit_s']:.0f} s, {r['epochs']} epochs ({r['stopped']}) | "
            f"{deviation} ({r['efficiency_bins_large']} bins) | {r['pull_share']:.1%} of {r['efficiency_bins']} | "
            f"{'–' if residual is None else f'{residual:.3f}'} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", nargs="+", default=["flow:toy-wjet", "quantile:toy-wjet", "flow:toy-pid",
                                                       "gan:toy-pid", "gan:toy-wjet", "quantile:toy-pid"],
                        help="FAMILY:TOY, in the order to run")
    parser.add_argument("--time-limit", type=float, default=300)
    parser.add_argument("--rows", type=int, default=200_000, help="training MC rows (80 %% train, 10 %% monitor, test)")
    parser.add_argument("--reference-rows", type=int, default=200_000, help="independent validation rows")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stop-at", metavar="HH:MM", help="UTC time no training may run past")
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=JSON",
                        help="settings overriding the family's defaults, e.g. batch_size=512 'hidden_widths=[64,64]'")
    parser.add_argument("--results", type=Path, default=RESULTS, help="the JSON the results are added to")
    args = parser.parse_args()
    settings = {key: json.loads(value) for key, value in (item.split("=", 1) for item in args.set)}
    torch.set_num_threads(args.threads)
    print("| family | toy | training | max abs(ratio − 1) where ≥ 2,000 pass | pulls > 3σ | max residual KS |\n"
          "|---|---|---|---|---|---|", flush=True)
    for pair in args.pairs:
        family, toy = pair.split(":")
        if args.stop_at:
            now = datetime.now(timezone.utc)
            hour, minute = map(int, args.stop_at.split(":"))
            left = (now.replace(hour=hour, minute=minute, second=0) - now).total_seconds()
            if left < args.time_limit + OVERHEAD_S:
                print(f"not run: {pair} ({left:.0f} s left before {args.stop_at} UTC)", flush=True)
                continue
        result = measure(family, toy, rows=args.rows, reference_rows=args.reference_rows,
                         time_limit=args.time_limit, seed=args.seed, settings=settings)
        record(result, args.results)
        print(row(result), flush=True)


if __name__ == "__main__":
    main()
