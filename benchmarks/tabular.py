"""Benchmark of the tabular families, the GAN and the normalizing flow (not a test): quality
versus training time, and generation speed.

For each data set, trains with a wall-clock limit and reports, against an independent sample
of the same size (a toy of another seed, or the untouched half of an external file):

- the time at which the generator first reached mean KS ≤ 0.035 and max KS ≤ 0.08 (measured
  afterwards on the generator saved at every snapshot, so the measurement costs no training time),
- final mean / max KS, max |Pearson residual|, classifier two-sample AUC (xgboost),
- the same figures for the Gaussian copula baseline fitted on the same training split,
- the MC's own noise floor: the same figures for the training MC against the independent one,
- generation speed to Parquet (rows/s, through the same code as ``recogan generate``),
- for the flow, the test split's negative log-likelihood (nats per row, preprocessed space).

With several ``--seeds``, a second table gives each figure's mean ± standard deviation over them.

Usage::

    python benchmarks/tabular.py                               # toy 8 and 12 features, 300 s, 2 threads
    python benchmarks/tabular.py --datasets toy-xic --time-limit 60
    python benchmarks/tabular.py --datasets other --time-limit 300  # the unseen-style stress set
    python benchmarks/tabular.py --device cuda                       # on a GPU
    python benchmarks/tabular.py --datasets toy-xic-12 --set lambda_corr=3   # a λ or architecture variant
    python benchmarks/tabular.py --model flow --datasets toy-xic --rows 100000 --time-limit 60 --seeds 0 1 2
    python benchmarks/tabular.py --model flow gan --datasets toy-xic toy-xic-12 other --rows 100000 --seeds 0 1 2
    python benchmarks/tabular.py --datasets toy-xic toy-xic-12 other --rows 100000 --floor-draws 5  # the MC's scatter

Results go to ``benchmarks/results/tabular-<device>.json`` and a Markdown table on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from recogan_app.baseline import GaussianCopula
from recogan_app.cli import main as recogan
from recogan_app.config import FlowConfig, TabularConfig
from recogan_app.data import toy_xic
from recogan_app.data.sources import MCSample
from recogan_app.metrics.c2st import classifier_two_sample_test
from recogan_app.training.callbacks import Callback
from recogan_app.families.flow import train_flow
from recogan_app.families.tabular import compare, train_tabular

MODELS = {"gan": (TabularConfig, train_tabular), "flow": (FlowConfig, train_flow)}

RESULTS = Path(__file__).parent / "results"


def other_mc(n: int, seed: int) -> pd.DataFrame:
    """A reconstruction-level-like MC unlike the toy: heavy tails, an integer column, a bounded
    column with boundary mass, a bimodal one and non-linear dependencies between features."""
    rng = np.random.default_rng(seed)
    p = rng.gamma(2.0, 2.0, n) + 0.2                                   # momentum-like
    eta = rng.uniform(-0.9, 0.9, n)
    n_hits = rng.binomial(7, np.clip(0.55 + 0.05 * p, 0, 0.97)).astype(np.int16)  # integer, p-dependent
    t_res = rng.standard_t(3, n) * (0.02 + 0.05 / p)                   # heavy-tailed, p-dependent width
    chi2 = rng.chisquare(np.maximum(n_hits, 1)) / np.maximum(n_hits, 1)  # depends on the integer column
    flight = rng.exponential(1.0, n) * p / 1.87                        # boost: grows with p
    cos_pa = np.cos(np.abs(rng.normal(0, 0.01 + 0.03 / (1 + flight), n)))  # near 1, sharper for long flights
    pid = np.clip(rng.beta(0.6, 0.6, n) + 0.1 * np.tanh(p - 4), 0, 1)  # bounded, mass at 0 and 1
    phi = rng.uniform(-np.pi, np.pi, n)
    px, py = p * np.cos(phi) / np.cosh(eta), p * np.sin(phi) / np.cosh(eta)  # non-linear functions of p, η, φ
    mass = np.where(rng.random(n) < 0.7, rng.normal(1.865, 0.008 + 0.002 * p, n), rng.uniform(1.75, 1.98, n))
    return pd.DataFrame({
        "p": p, "eta": eta, "px": px, "py": py, "n_hits": n_hits, "t_res": t_res, "chi2_ndf": chi2,
        "flight": flight, "cos_pa": cos_pa, "pid_prob": pid, "mass": mass,
    }).astype({c: np.float32 for c in ("p", "eta", "px", "py", "t_res", "chi2_ndf", "flight",
                                       "cos_pa", "pid_prob", "mass")})


def simulate(name: str, n: int, seed: int) -> pd.DataFrame:
    """``n`` rows of the data set ``name`` from the simulation's ``seed``."""
    if name in ("toy-xic", "toy-xic-12"):
        return toy_xic.generate(n, seed=seed, n_features=12 if name == "toy-xic-12" else 8)
    if name == "other":
        return other_mc(n, seed=seed)
    raise SystemExit(f"unknown data set {name!r}")


def datasets(names: list[str], n: int) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """(training MC, independent MC of the same size) per data set."""
    return {name: (simulate(name, n, 0), simulate(name, n, 1)) for name in names}


def floor_draws(names: list[str], n: int, draws: int) -> dict[str, list[dict]]:
    """Per data set, ``draws`` comparisons of two independent samples of ``n`` rows (seeds 10, 11;
    12, 13…): how far the MC's own figures scatter, i.e. what no model can be asked to beat. On the
    Ξc+ toy the heavy tails make the largest Pearson residual jump between draws."""
    out = {}
    for name in names:
        out[name] = []
        for k in range(draws):
            figures_k, _ = compare(simulate(name, n, 10 + 2 * k), simulate(name, n, 11 + 2 * k))
            out[name].append({key: figures_k[key] for key in ("mean_ks", "max_ks", "max_corr_residual")})
            print(f"{name}, draw {k}: " + ", ".join(f"{key} {value:.4f}" for key, value in out[name][-1].items()),
                  file=sys.stderr)
    return out


class GeneratorHistory(Callback):
    """Keeps the generator's weights at every snapshot, with the active training time."""

    def __init__(self):
        self.states: list[tuple[float, dict]] = []

    def on_snapshot(self, trainer, snapshot):
        state = {k: v.detach().cpu().clone() for k, v in trainer.module.generator.state_dict().items()}
        self.states.append((snapshot.elapsed_s, state))


def figures(reference: pd.DataFrame, synthetic: pd.DataFrame, seed: int, c2st_rows: int) -> dict:
    metrics, details = compare(reference, synthetic)
    auc = classifier_two_sample_test(reference, synthetic, n_max=c2st_rows, seed=seed)
    residual = details["corr_residual"].abs().stack()
    return {"mean_ks": metrics["mean_ks"], "max_ks": metrics["max_ks"],
            "max_corr_residual": metrics["max_corr_residual"], "worst_pair": list(residual.idxmax()),
            "auc": auc.auc, "auc_interval": list(auc.auc_interval)}


def bench(name: str, mc: pd.DataFrame, independent: pd.DataFrame, seed: int, model: str, args) -> dict:
    print(f"\n== {name}: {len(mc):,} rows × {mc.shape[1]} features, {model}, seed {seed}", file=sys.stderr)
    config_class, train = MODELS[model]
    config = config_class(time_limit=args.time_limit, device=args.device, seed=seed, **args.overrides)
    history = GeneratorHistory()
    load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").is_file() else None
    with tempfile.TemporaryDirectory() as tmp:
        run = train(MCSample(mc, source=name, tree=None, n_dropped=0, invalid_counts={}),
                    config, Path(tmp) / "run", callbacks=[history])
        fit, test_nll = run.info["fit"], run.metrics().get("test_nll")
        final = figures(independent, run.generate(len(independent), seed=7), seed, args.c2st_rows)

        reached = None
        for elapsed, state in history.states:  # first snapshot meeting seed 000's 'excellent' KS bar
            run.module.generator.load_state_dict(state)
            m, _ = compare(independent, run.generate(len(independent), seed=7))
            if m["mean_ks"] <= 0.035 and m["max_ks"] <= 0.08:
                reached = elapsed
                break

        out = Path(tmp) / "gen.parquet"
        n_gen = args.generate_rows
        start = time.perf_counter()
        assert recogan(["generate", "--run", str(run.path), "--n", str(n_gen), "--out", str(out),
                        "--seed", "3", "--device", args.device]) == 0
        gen_rate = n_gen / (time.perf_counter() - start)

    train_split, _ = run.training_rows(mc)
    start = time.perf_counter()
    copula = GaussianCopula(random_state=seed).fit(train_split)
    copula_fit_s = time.perf_counter() - start
    baseline = figures(independent, copula.sample(len(independent), seed=7), seed, args.c2st_rows)
    return {"dataset": name, "model": model, "seed": seed, "rows": len(mc), "features": mc.shape[1],
            "device": run.info["device"], "loadavg_before": load,
            "loadavg_after": Path("/proc/loadavg").read_text().split()[:3] if load else None,
            "time_limit_s": args.time_limit, "trained_s": fit["elapsed_s"], "epochs": fit["epochs"],
            "stop_reason": fit["reason"], "time_to_excellent_ks_s": reached, "gan": final,
            "test_nll": test_nll,
            "copula": {**baseline, "fit_s": copula_fit_s}, "generate_rows_per_s": gen_rate,
            "generate_rows": n_gen, "overrides": args.overrides,
            "mc_floor": figures(independent, mc, seed, args.c2st_rows)}


def table(results: list[dict]) -> str:
    head = ("| data | device | trained | time to KS bar | mean KS | max KS | max Δρ | AUC | "
            "copula mean KS | copula max KS | copula max Δρ | copula AUC | MC floor max KS / max Δρ / AUC | "
            "generate rows/s |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in results:
        g, c, f = r["gan"], r["copula"], r["mc_floor"]
        reached = f"{r['time_to_excellent_ks_s']:.0f} s" if r["time_to_excellent_ks_s"] is not None else "not reached"
        lines.append(
            f"| {r['dataset']} ({r['features']}) {r.get('model', 'gan')} seed {r.get('seed', 0)} | {r['device']} | "
            f"{r['trained_s']:.0f} s | {reached} | "
            f"{g['mean_ks']:.4f} | {g['max_ks']:.4f} | {g['max_corr_residual']:.3f} | {g['auc']:.3f} | "
            f"{c['mean_ks']:.4f} | {c['max_ks']:.4f} | {c['max_corr_residual']:.3f} | {c['auc']:.3f} | "
            f"{f['max_ks']:.4f} / {f['max_corr_residual']:.3f} / {f['auc']:.3f} | "
            f"{r['generate_rows_per_s'] / 1e6:.2f} M |")
    return "\n".join(lines)


def summary(results: list[dict]) -> str:
    """Mean ± standard deviation over the seeds of each (data set, model)."""
    head = "| data | model | seeds | mean KS | max KS | max Δρ | AUC | test NLL | generate rows/s | load avg |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for (name, model), group in pd.DataFrame(results).groupby(["dataset", "model"], sort=False):
        def stat(values, fmt):
            values = pd.Series(list(values), dtype=float).dropna().to_numpy()
            spread = values.std(ddof=1) if len(values) > 1 else 0.0
            return f"{values.mean():{fmt}} ± {spread:{fmt}}" if len(values) else "–"
        model_figures = pd.DataFrame(list(group["gan"]))  # "gan": the model's figures, whichever family
        loads = [float(x[0]) for key in ("loadavg_before", "loadavg_after") for x in group[key] if x]
        lines.append(f"| {name} | {model} | {', '.join(map(str, group['seed']))} | "
                     f"{stat(model_figures['mean_ks'], '.4f')} | {stat(model_figures['max_ks'], '.4f')} | "
                     f"{stat(model_figures['max_corr_residual'], '.3f')} | "
                     f"{stat(model_figures['auc'], '.3f')} | {stat(group['test_nll'], '.3f')} | "
                     f"{stat(group['generate_rows_per_s'] / 1e3, '.0f')} k | "
                     f"{min(loads, default=float('nan')):.1f}–{max(loads, default=float('nan')):.1f} |")
    return "\n".join(lines)


def parse_override(item: str) -> tuple[str, object]:
    """``name=value`` → (name, value), the value read as JSON when it is JSON (numbers, lists)."""
    name, sep, value = item.partition("=")
    if not sep:
        raise SystemExit(f"--set expects NAME=VALUE, got {item!r}")
    try:
        return name.strip(), json.loads(value)
    except json.JSONDecodeError:
        return name.strip(), value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["toy-xic", "toy-xic-12"],
                        help="toy-xic, toy-xic-12, other")
    parser.add_argument("--rows", type=int, default=toy_xic.DEFAULT_N)
    parser.add_argument("--time-limit", type=float, default=300.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model", nargs="+", choices=list(MODELS), default=["gan"],
                        help="the GAN and/or the normalizing flow: several are interleaved per data set and seed, "
                             "so that they share the machine's conditions")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--c2st-rows", type=int, default=200_000)
    parser.add_argument("--generate-rows", type=int, default=5_000_000)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", dest="overrides",
                        help="a setting of the model's config, e.g. --set lambda_corr=3 (repeatable; values as JSON)")
    parser.add_argument("--floor-draws", type=int, metavar="K",
                        help="instead of training: K pairs of independent samples per data set, the MC's own scatter")
    args = parser.parse_args()
    if args.floor_draws:
        path = RESULTS / f"tabular-floors-{'-'.join(args.datasets)}-{args.rows}rows.json"
        path.write_text(json.dumps(floor_draws(args.datasets, args.rows, args.floor_draws), indent=2))
        print(f"(results: {path})")
        return
    args.overrides = dict(parse_override(item) for item in args.overrides)
    torch.set_num_threads(args.threads)
    RESULTS.mkdir(exist_ok=True)
    tag = "".join(f"-{k}={v}" for k, v in args.overrides.items()).replace(" ", "")
    models = "" if args.model == ["gan"] else "-" + "-".join(args.model)
    size = "" if args.rows == toy_xic.DEFAULT_N else f"-{args.rows}rows-{args.time_limit:g}s"
    size += "" if args.threads == 2 else f"-{args.threads}threads"
    path = RESULTS / f"tabular{models}-{args.device}-{'-'.join(args.datasets)}{size}{tag}.json"
    results = []
    for name, (mc, independent) in datasets(args.datasets, args.rows).items():
        for seed in args.seeds:
            for model in args.model:  # written after each training: a long benchmark cut short keeps its runs
                results.append(bench(name, mc, independent, seed, model, args))
                path.write_text(json.dumps(results, indent=2))
    print(table(results))
    if len(args.seeds) > 1:
        print("\n" + summary(results))
    print(f"\n(results: {path})")


if __name__ == "__main__":
    main()
