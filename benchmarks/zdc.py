"""Ablation of seed 001's Table 1 on the embedded ZP toy (a benchmark, not a test).

Four models, each trained with three seeds on the same toy sample (a seed fixes the split, 20 % test
and 10 % monitor, the initialisation and the noise, so the four models of one seed share their test split):

- GAN                       adversarial loss only
- + diversity (SDI-GAN)     λ_div = 0.1, per-event form
- + intensity               λ_in = 1e-3, per-event photon sums
- + aux regressor           λ_aux = 1e-3, regressor pretrained on the real training images

For each: mean ± standard deviation over seeds of the five-channel Wasserstein distance on the
test split (photons, averaged over 5 noise draws, published channel convention), per-channel
values, empty responses and hottest-pixel error. The toy's noise floor is the same figure
between the test events and 5 re-simulations of exactly their conditions (what
``recogan data toy-zdc --conditions-from`` does): no model can be shown to do better.

Sizing: seed 001 trained for hours on a GPU; this runs on 2 CPU threads in ≤ 25 minutes, so every
model trains for 2 epochs on ~3,000 events or ``--time-limit`` (80 s) of training, whichever comes first, with
learning rates 10× seed 001's (same 10:1 ratio) and a generator of 16 instead of 128 channels.
The figures therefore compare the models early in training, far from convergence; the steps each
run made are recorded, because on a shared machine the time limit may cut the costlier models short.

Usage::

    python benchmarks/zdc.py                      # the full ablation, ~20–25 min on 2 threads
    python benchmarks/zdc.py --seeds 0 --time-limit 20 --n 2000   # a quick look

Results go to ``benchmarks/results/zdc.json`` and a Markdown table on stdout.

``--bar`` measures issue 20's bar instead, as a user meets it: for each profile (``default``: the
CLI's, no ``--profile``), time limit and seed, ``recogan train --kind zdc --model M --time-limit T`` on a toy
of ``--n`` events (40,000: ~4,800 test events) and ``recogan generate`` of 50,000 responses, each a
subprocess whose wall time is measured; the five-channel WS (and per channel), empty share and
hottest-pixel error of the run's held-out figures against the toy's floor on the same test
conditions (5 re-simulations). The JSON is rewritten after each run::

    python benchmarks/zdc.py --bar --n 40000 --time-limits 300 --seeds 0 1 2 --threads 1 \
        --out benchmarks/results/zdc-bar.json

``--generation RUN_DIR`` times the generation of ``--generate`` responses from a ZDC run on
``--threads`` threads, three times: ``recogan generate`` end to end, the generator alone, and the
imports of that command's path (``python -X importtime``)::

    python benchmarks/zdc.py --generation runs/zdc --threads 2 --out benchmarks/results/zdc-generate-2-threads.json
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from recogan_app.config import ZDCConfig
from recogan_app.data import toy_zdc
from recogan_app.files import write_json
from recogan_app.families.zdc import compare_zdc, train_zdc

RESULTS = Path(__file__).parent / "results"
VARIANTS = {
    "GAN": {"lambda_diversity": 0.0, "lambda_intensity": 0.0, "lambda_aux": 0.0},
    "+ diversity (SDI-GAN)": {"lambda_diversity": 0.1, "lambda_intensity": 0.0, "lambda_aux": 0.0},
    "+ intensity": {"lambda_diversity": 0.1, "lambda_intensity": 1e-3, "lambda_aux": 0.0},
    "+ aux regressor": {"lambda_diversity": 0.1, "lambda_intensity": 1e-3, "lambda_aux": 1e-3},
}
FIGURES = ("ws_mean", "ws_ch1", "ws_ch2", "ws_ch3", "ws_ch4", "ws_ch5", "empty_generated", "hottest_pixel_error")


def summary(values: list[float]) -> dict:
    """Mean and sample standard deviation (ddof 1) over seeds."""
    x = np.asarray(values, dtype=float)
    return {"mean": float(x.mean()), "std": float(x.std(ddof=1)) if x.size > 1 else 0.0, "values": x.tolist()}


def timed_command(*args: str, threads: int) -> tuple[float, str]:
    """Run ``recogan ARGS`` in a subprocess on ``threads`` threads; its wall seconds and stdout."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "recogan_app.cli", *args], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    if done.returncode:
        raise RuntimeError(f"recogan {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - started, done.stdout


def bar(args) -> int:
    """Issue 20's figures: train and generate through the CLI, per profile, time limit and seed."""
    from recogan_app.families import load_run

    out, rows = Path(args.out), []
    with tempfile.TemporaryDirectory() as workdir:
        data, conditions = Path(workdir) / "toy.npz", Path(workdir) / "conditions.npz"
        toy_zdc.generate(args.n, seed=0).save(data)
        toy_zdc.generate(args.generate, seed=99).save(conditions)
        for profile in args.profiles:
            for limit in args.time_limits:
                for seed in args.seeds:
                    run_dir = Path(workdir) / f"{profile}-{limit:g}-{seed}"
                    load_before = os.getloadavg()
                    wall, stdout = timed_command(
                        "train", "--kind", "zdc", "--data", str(data), "--out", str(run_dir), "--time-limit",
                        f"{limit:g}", "--seed", str(seed), *([] if profile == "default" else ["--profile", profile]),
                        "--model", args.model, *sum((["--set", setting] for setting in args.set), []),
                        threads=args.threads)
                    generate_s, _ = timed_command("generate", "--run", str(run_dir), "--conditions", str(conditions),
                                                  "--out", str(Path(workdir) / "generated.npz"), "--seed", "1",
                                                  "--overwrite", threads=args.threads)
                    run = load_run(run_dir)
                    metrics, fit, test = run.metrics(), run.info["fit"], run.heldout()
                    again = [toy_zdc.simulate(test.conditions, seed=10_000 + 10 * seed + k) for k in range(5)]
                    floor = compare_zdc(test.images, again, run.config.channels)
                    rows.append({
                        "kind": run.kind, "profile": run.info.get("profile", {"name": profile}),
                        "time_limit_s": limit, "seed": seed, "wall_s": wall,
                        "steps": fit["steps"], "epochs": fit["epochs"], "best_epoch": fit["best_epoch"],
                        "fit_s": fit["elapsed_s"], "aux": run.info.get("aux_regressor"), "sample_size": len(test),
                        "monitor_scores": run.history()["score"].tolist(),
                        "draws": metrics["draws"], "model": {k: metrics[k] for k in FIGURES},
                        "floor": {k: floor[k] for k in FIGURES}, "ws_over_floor": metrics["ws_mean"] / floor["ws_mean"],
                        "empty_share": metrics["empty_generated"] / len(test),
                        "generate_events": args.generate, "generate_s": generate_s,
                        "generate_events_per_s": args.generate / generate_s,
                        "load_average_before": load_before, "load_average_after": os.getloadavg(),
                        "summary": stdout.strip().splitlines()[-3:]})
                    r = rows[-1]
                    print(f"{args.model} {profile} {limit:g} s seed {seed}: wall {wall:.0f} s, WS {metrics['ws_mean']:.2f} = "
                          f"{r['ws_over_floor']:.1f} × floor {floor['ws_mean']:.2f}, {fit['steps']} steps; "
                          f"generate {args.generate:,} in {generate_s:.1f} s", file=sys.stderr, flush=True)
                    write_json(out, {"settings": {"n_events": args.n, "threads": args.threads, "cpu": os.cpu_count(), "model": args.model,
                                                  "set": args.set},
                                     "runs": rows})
    print("\n| profile | time limit | seed | wall [s] | steps | 5-ch WS (floor) | × floor | ch1–5 WS | empty share "
          "| hottest-pixel error [px] (floor) | generate 50k [s] (events/s) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        m, f = r["model"], r["floor"]
        print(f"| {r['profile']['name']} | {r['time_limit_s']:g} s | {r['seed']} | {r['wall_s']:.0f} | {r['steps']} | "
              f"{m['ws_mean']:.2f} ({f['ws_mean']:.2f}) | {r['ws_over_floor']:.1f} | "
              + " / ".join(f"{m[f'ws_ch{k}']:.1f}" for k in range(1, 6))
              + f" | {r['empty_share']:.4f} | {m['hottest_pixel_error']:.2f} ({f['hottest_pixel_error']:.2f}) | "
                f"{r['generate_s']:.1f} ({r['generate_events_per_s']:,.0f}) |")
    print(f"written to {out}")
    return 0


def import_seconds(statement: str, threads: int) -> float:
    """Seconds a fresh interpreter spends importing for ``statement`` (the sum of ``python -X
    importtime``'s top-level cumulative times)."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", statement], capture_output=True, text=True,
                          check=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    top = [line.split("|") for line in done.stderr.splitlines() if line.startswith("import time:")]
    return sum(int(cumulative) for _, cumulative, name in top[1:] if not name.startswith("  ")) / 1e6


def generation(args) -> int:
    """Issue 20's generation figures for the run ``args.generation``: ``recogan generate`` of
    ``args.generate`` responses end to end (a subprocess on ``args.threads`` threads), the
    generator alone in this process (events/s), and the imports of the command's path."""
    from recogan_app.families import load_run

    run, rows = load_run(args.generation), []
    with tempfile.TemporaryDirectory() as workdir:
        conditions = Path(workdir) / "conditions.npz"
        sample = toy_zdc.generate(args.generate, seed=99)
        sample.save(conditions)
        run.generate(sample.conditions[:512], seed=0)  # warm
        for repeat in range(3):
            wall, _ = timed_command("generate", "--run", str(args.generation), "--conditions", str(conditions),
                                    "--out", str(Path(workdir) / "generated.npz"), "--seed", "1", "--overwrite",
                                    threads=args.threads)
            started = time.perf_counter()
            run.generate(sample.conditions, seed=repeat)
            alone = time.perf_counter() - started
            rows.append({"command_s": wall, "command_events_per_s": args.generate / wall,
                         "generator_s": alone, "generator_events_per_s": args.generate / alone,
                         "imports_s": import_seconds("import recogan_app.cli; from recogan_app.families.zdc "
                                                     "import ZDCRun", args.threads),
                         "torch_import_s": import_seconds("import torch", args.threads),
                         "load_average": os.getloadavg()})
            print(rows[-1], file=sys.stderr, flush=True)
    write_json(Path(args.out), {"settings": {"events": args.generate, "threads": args.threads, "run": str(args.generation),
                                             "profile": run.info.get("profile"), "cpu": os.cpu_count()}, "repeats": rows})
    print(f"written to {args.out}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=6000, help="toy events before the photon-sum cut")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--time-limit", type=float, default=80.0, help="seconds of GAN training per run at most")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(RESULTS / "zdc.json"))
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS),
                        help="the models to train (default: all four)")
    parser.add_argument("--bar", action="store_true", help="issue 20's bar through the CLI instead of the ablation")
    parser.add_argument("--profiles", nargs="+", default=["default"], help="--bar: 'default' (the CLI's) or profiles")
    parser.add_argument("--model", choices=["gan", "vae"], default="gan", help="--bar: the ZDC model trained")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="--bar: a setting of every training (train's --set)")
    parser.add_argument("--time-limits", type=float, nargs="+", default=[300.0], help="--bar: seconds per command")
    parser.add_argument("--generate", type=int, default=50_000, help="--bar: responses generated per run")
    parser.add_argument("--generation", metavar="RUN_DIR", help="time generation from this ZDC run instead")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.bar:
        return bar(args)
    if args.generation:
        return generation(args)
    variants = {name: VARIANTS[name] for name in args.variants}
    base = ZDCConfig(generator_channels=16, batch_size=32, lr_generator=1e-3, lr_discriminator=1e-4,
                     max_epochs=args.epochs, time_limit=args.time_limit, patience=args.epochs, aux_epochs=2,
                     snapshot_rows=300, eval_draws=5, device="cpu")
    started, load_before = time.perf_counter(), os.getloadavg()
    sample = toy_zdc.generate(args.n, seed=0)
    runs, floors = {name: [] for name in variants}, []
    with tempfile.TemporaryDirectory() as workdir:
        for seed in args.seeds:
            for i, (name, lambdas) in enumerate(variants.items()):
                t0 = time.perf_counter()
                run = train_zdc(sample, base.updated(**lambdas, seed=seed), Path(workdir) / f"seed{seed}-model{i}")
                metrics, fit = run.metrics(), run.info["fit"]
                runs[name].append({"seed": seed, "steps": fit["steps"], "epochs": fit["epochs"],
                                   "stopped_by": fit["reason"], "best_epoch": fit["best_epoch"],
                                   "wall_s": time.perf_counter() - t0, "aux": run.info["aux_regressor"],
                                   **{k: metrics[k] for k in (*FIGURES, "sample_size")}})
                print(f"seed {seed} {name:24s} WS {metrics['ws_mean']:8.3f}  steps {fit['steps']:4d}  "
                      f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
            test = run.heldout()
            resimulated = [toy_zdc.simulate(test.conditions, seed=10_000 + 10 * seed + k) for k in range(base.eval_draws)]
            floors.append({"seed": seed, **compare_zdc(test.images, resimulated, base.channels)})

    table = {name: {k: summary([r[k] for r in rows]) for k in FIGURES} for name, rows in runs.items()}
    floor = {k: summary([f[k] for f in floors]) for k in FIGURES}
    verdict = None
    if {"GAN", "+ aux regressor"} <= set(runs):
        gan, full = table["GAN"]["ws_mean"], table["+ aux regressor"]["ws_mean"]
        paired = [g["ws_mean"] - f["ws_mean"] for g, f in zip(runs["GAN"], runs["+ aux regressor"])]
        verdict = {
            "full_minus_gan_paired": paired,
            "full_beats_gan_beyond_spread": bool(full["mean"] + full["std"] < gan["mean"] - gan["std"]),
            "criterion": "mean ± std (over seeds) intervals of the full model and the plain GAN do not overlap",
        }
    result = {
        "settings": {"n_events": args.n, "seeds": args.seeds, "config": base.to_dict(), "variants": variants,
                     "threads": args.threads, "cpu": os.cpu_count(),
                     "load_average_before": load_before, "load_average_after": os.getloadavg(),
                     "note": "machine shared with other jobs: wall times and, through the time limit, steps vary"},
        "elapsed_s": time.perf_counter() - started,
        "noise_floor": floor, "table": table, "runs": runs, "noise_floor_runs": floors, "verdict": verdict,
    }
    write_json(Path(args.out), result)

    print(f"\n| model | five-channel WS (mean ± std, {len(args.seeds)} seeds) | ch1 | ch2 | ch3 | ch4 | ch5 | "
          "empty | hottest-pixel error [px] | steps |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, row in [*table.items(), ("toy noise floor", floor)]:
        steps = "/".join(str(r["steps"]) for r in runs[name]) if name in runs else "–"
        print(f"| {name} | {row['ws_mean']['mean']:.2f} ± {row['ws_mean']['std']:.2f} | "
              + " | ".join(f"{row[f'ws_ch{k}']['mean']:.2f}" for k in range(1, 6))
              + f" | {row['empty_generated']['mean']:.1f} | {row['hottest_pixel_error']['mean']:.2f} | {steps} |")
    if verdict:
        print(f"\nfull model − GAN per seed: {', '.join(f'{d:+.2f}' for d in verdict['full_minus_gan_paired'])}; "
              f"beats it beyond the seed spread: {verdict['full_beats_gan_beyond_spread']}")
    print(f"total {result['elapsed_s'] / 60:.1f} min; written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
