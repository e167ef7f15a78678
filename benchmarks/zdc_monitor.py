"""How well does the per-epoch monitor score pick the ZDC checkpoint? (issue 20; a benchmark, not a test)

One training of the CLI's defaults (profile cpu) on the toy, bounded by epochs, keeping every epoch's
generator and an exponential moving average (EMA) of its weights (updated every ``--ema-every``
steps). Afterwards each kept generator is scored by

- the held-out figure the bar judges: five-channel WS on the whole test split, 5 noise draws;
- monitor scores: ``rows`` monitor events (the snapshot's positions, or other subsets) with
  ``draws`` noise draws, several seeds each, so that their spread (the score's noise) and their
  ranking of the epochs can be compared with the held-out ranking.

Usage::

    python benchmarks/zdc_monitor.py --n 40000 --seed 1 --epochs 8 --threads 1 \
        --out benchmarks/results/zdc-monitor-noise.json
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from recogan_app.config import ZDCConfig
from recogan_app.data import toy_zdc
from recogan_app.data.zdc import counts_from_log1p
from recogan_app.families.recipe import fit_to_run
from recogan_app.families.zdc import ZDCFamily, compare_zdc, draw_seeds
from recogan_app.files import write_json
from recogan_app.models.zdc import Generator
from recogan_app.splits import draw_split, heldout_sizes, snapshot_positions
from recogan_app.training.callbacks import Callback

RESULTS = Path(__file__).parent / "results"


class KeepEpochs(Callback):
    """Every epoch's generator weights, and an EMA of them updated every ``every`` steps."""

    def __init__(self, decay: float, every: int):
        self.decay, self.every = decay ** every, every
        self.raw, self.ema, self.average = [], [], None

    def on_step_end(self, trainer, event) -> None:
        weights = trainer.module.generator.state_dict()
        if self.average is None:
            self.average = {k: v.detach().clone() for k, v in weights.items()}
            return
        for k, v in weights.items():
            if v.dtype.is_floating_point and "running" not in k:
                self.average[k].mul_(self.decay).add_(v.detach(), alpha=1 - self.decay)
            else:
                self.average[k].copy_(v)

    def on_snapshot(self, trainer, snapshot) -> None:
        self.raw.append(copy.deepcopy(trainer.module.generator.state_dict()))
        self.ema.append(copy.deepcopy(self.average))


def figures(state, config, scaler, events, seeds) -> list[float]:
    """The five-channel WS of the generator ``state`` on ``events``, one value per seed of ``seeds``
    (each a list of draw seeds averaged)."""
    generator = Generator(config.latent_dim, config.generator_channels)
    generator.load_state_dict(state)
    generator = generator.fused()
    conditions = torch.from_numpy(scaler.transform(events.conditions))
    values = []
    for draw_list in seeds:
        draws = [counts_from_log1p(generator.sample(conditions, generator=torch.Generator().manual_seed(s))
                                   .numpy()[:, 0]) for s in draw_list]
        values.append(compare_zdc(events.images, draws, config.channels)["ws_mean"])
    return values


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--ema-decay", type=float, default=0.999)
    parser.add_argument("--ema-every", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=4, help="seeds per monitor-score variant")
    parser.add_argument("--out", default=str(RESULTS / "zdc-monitor-noise.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    sample = toy_zdc.generate(args.n, seed=0)
    config = ZDCConfig(seed=args.seed, max_epochs=args.epochs, device="cpu")
    family = ZDCFamily(config)
    keep = KeepEpochs(args.ema_decay, args.ema_every)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as workdir:
        fit_to_run(family, sample, Path(workdir) / "run", callbacks=[keep])
    fit_s = time.perf_counter() - started
    config = family.config
    usable = family.usable(sample)
    n_monitor, n_test = heldout_sizes(len(usable), config.monitor_fraction, config.test_fraction)
    split = draw_split(len(usable), n_monitor, n_test, config.seed)
    monitor, test = usable.subset(split.monitor), usable.subset(split.test)
    rows = config.snapshot_rows
    shown = monitor.subset(snapshot_positions(len(monitor), rows, config.seed))
    rng = np.random.default_rng(123)
    others = [monitor.subset(np.sort(rng.permutation(len(monitor))[:rows])) for _ in range(args.repeats)]
    heldout_seeds = [draw_seeds(config.seed, 5)]
    single = [[s] for s in draw_seeds(config.seed, args.repeats, "validation")]
    triple = [draw_seeds(1000 + k, 3, "validation") for k in range(args.repeats)]
    epochs = []
    for name, states in (("raw", keep.raw), ("ema", keep.ema)):
        for epoch, state in enumerate(states):
            row = {"weights": name, "epoch": epoch,
                   "heldout": figures(state, config, family.scaler, test, heldout_seeds)[0],
                   "snapshot_500_1draw_noise": figures(state, config, family.scaler, shown, single),
                   "snapshot_500_1draw_events": [figures(state, config, family.scaler, o, single[:1])[0]
                                                 for o in others],
                   "monitor_all_1draw": figures(state, config, family.scaler, monitor, single),
                   "monitor_all_3draws": figures(state, config, family.scaler, monitor, triple)}
            timed = time.perf_counter()
            figures(state, config, family.scaler, monitor, triple[:1])
            row["monitor_all_3draws_s"] = time.perf_counter() - timed
            epochs.append(row)
            print(f"{name} epoch {epoch}: held-out {row['heldout']:.2f}; 500×1 "
                  f"{np.mean(row['snapshot_500_1draw_noise']):.2f} ± {np.std(row['snapshot_500_1draw_noise']):.2f} "
                  f"(noise), ± {np.std(row['snapshot_500_1draw_events']):.2f} (events); all×1 "
                  f"{np.mean(row['monitor_all_1draw']):.2f} ± {np.std(row['monitor_all_1draw']):.2f}; all×3 "
                  f"{np.mean(row['monitor_all_3draws']):.2f} ± {np.std(row['monitor_all_3draws']):.2f}",
                  file=sys.stderr, flush=True)
    summary = {}
    for name in ("raw", "ema"):
        mine = [r for r in epochs if r["weights"] == name]
        truth = [r["heldout"] for r in mine]
        for variant in ("snapshot_500_1draw_noise", "snapshot_500_1draw_events", "monitor_all_1draw",
                        "monitor_all_3draws"):
            table = np.array([r[variant] for r in mine])  # epochs × repeats
            picked = table.argmin(axis=0)
            summary[f"{name}/{variant}"] = {
                "spearman_mean": float(np.mean([spearmanr(table[:, k], truth)[0] for k in range(table.shape[1])])),
                "score_std_mean": float(table.std(axis=1).mean()),
                "picked_epochs": picked.tolist(),
                "picked_heldout_mean": float(np.mean([truth[p] for p in picked])),
                "best_heldout": float(min(truth)), "best_epoch": int(np.argmin(truth))}
            print(name, variant, summary[f"{name}/{variant}"], file=sys.stderr)
    write_json(Path(args.out), {"settings": vars(args), "fit_s": fit_s, "n_monitor": len(monitor),
                                "n_test": len(test), "epochs": epochs, "summary": summary})
    return 0


if __name__ == "__main__":
    sys.exit(main())
