"""How well does the per-epoch monitor score pick the ZDC checkpoint? (issue 20; a benchmark, not a test)

One training of the CLI's defaults (profile cpu) on the toy, bounded by epochs, keeping the
generator's weights every ``--every`` steps and at every epoch's end, and an exponential moving
average (EMA) of them (its batch-norm statistics recomputed before it is scored). Afterwards each
kept generator is scored by

- the held-out figure the bar judges: five-channel WS on the whole test split, ``--heldout-draws``;
- monitor scores with the same noise for every generator (common random numbers): the snapshot's
  500 events with one draw (the score before issue 20's change) and all monitor events with one
  and with three draws, each with ``--repeats`` seeds, so that their spread (the score's noise)
  and their choice among the generators can be compared with the held-out figure.

Usage::

    python benchmarks/zdc_monitor.py --n 40000 --seed 1 --epochs 6 --every 60 --threads 1 \\
        --out benchmarks/results/zdc-monitor-steps.json

The training's learning rates are the family's (constant). ``zdc-monitor-noise.json`` was written by
this script's first version, ``zdc-monitor-cosine.json`` by the version of commit b57c41d with
``--cosine`` (the rates down a cosine over the epochs: tried, not kept).
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


class KeepGenerators(Callback):
    """The generator's weights every ``every`` steps (a multiple of the trainer's log interval, 10)
    and at each epoch's end, with an EMA of them updated every 10 steps (``decay`` per step)."""

    def __init__(self, decay: float, every: int):
        self.decay, self.every = decay ** 10, every
        self.kept, self.average = [], None

    def on_step_end(self, trainer, event) -> None:
        weights = trainer.module.generator.state_dict()
        if self.average is None:
            self.average = {k: v.detach().clone() for k, v in weights.items()}
        for k, v in weights.items():
            if v.dtype.is_floating_point:
                self.average[k].mul_(self.decay).add_(v.detach(), alpha=1 - self.decay)
        if event.step % self.every == 0:
            self.keep(trainer, event.step, event.epoch, False)

    def on_snapshot(self, trainer, snapshot) -> None:
        self.keep(trainer, snapshot.step, snapshot.epoch, True)

    def keep(self, trainer, step: int, epoch: int, epoch_end: bool) -> None:
        if self.kept and self.kept[-1]["step"] == step:
            self.kept[-1]["epoch_end"] = True
            return
        self.kept.append({"step": step, "epoch": epoch, "epoch_end": epoch_end,
                          "raw": copy.deepcopy(trainer.module.generator.state_dict()),
                          "ema": copy.deepcopy(self.average)})


def built(state, config, conditions=None) -> Generator:
    """The generator of ``state``, fused; with ``conditions``, its batch-norm statistics first
    recomputed on them (an EMA's averaged weights do not match the statistics of any step)."""
    generator = Generator(config.latent_dim, config.generator_channels)
    generator.load_state_dict(state)
    if conditions is not None:
        norms = [m for m in generator.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # a cumulative average over the chunks
        generator.train()
        noise = torch.Generator().manual_seed(7)
        with torch.no_grad():
            for chunk in conditions.split(512):
                generator(generator.sample_noise(len(chunk), generator=noise), chunk)
    return generator.fused()


def figures(generator, config, scaler, events, seeds) -> list[float]:
    """Five-channel WS of ``generator`` on ``events``, one value per list of draw seeds (averaged)."""
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
    parser.add_argument("--epochs", type=int, default=7)
    parser.add_argument("--every", type=int, default=60, help="steps between kept generators")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--ema-decay", type=float, default=0.99, help="per step")
    parser.add_argument("--heldout-draws", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2, help="seeds per monitor-score variant")
    parser.add_argument("--out", default=str(RESULTS / "zdc-monitor-steps.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    sample = toy_zdc.generate(args.n, seed=0)
    family = ZDCFamily(ZDCConfig(seed=args.seed, max_epochs=args.epochs, device="cpu"))
    keep = KeepGenerators(args.ema_decay, args.every)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as workdir:
        fit_to_run(family, sample, Path(workdir) / "run", callbacks=[keep])
    fit_s = time.perf_counter() - started
    config, scaler = family.config, family.scaler
    usable = family.usable(sample)
    split = draw_split(len(usable), *heldout_sizes(len(usable), config.monitor_fraction, config.test_fraction),
                       config.seed)
    monitor, test = usable.subset(split.monitor), usable.subset(split.test)
    shown = monitor.subset(snapshot_positions(len(monitor), 500, config.seed))
    monitor_conditions = torch.from_numpy(scaler.transform(monitor.conditions))
    heldout_seeds = [draw_seeds(config.seed, args.heldout_draws)]
    single = [[s] for s in draw_seeds(config.seed, args.repeats, "validation")]
    triple = [draw_seeds(1000 + k, 3, "validation") for k in range(args.repeats)]
    rows = []
    for kept in keep.kept:
        for name in ("raw", "ema"):
            generator = built(kept[name], config, monitor_conditions if name == "ema" else None)
            timed = time.perf_counter()
            row = {"weights": name, "step": kept["step"], "epoch": kept["epoch"], "epoch_end": kept["epoch_end"],
                   "monitor_all_3draws": figures(generator, config, scaler, monitor, triple)}
            row["monitor_all_3draws_s"] = (time.perf_counter() - timed) / args.repeats
            row.update(heldout=figures(generator, config, scaler, test, heldout_seeds)[0],
                       snapshot_500_1draw=figures(generator, config, scaler, shown, single),
                       monitor_all_1draw=figures(generator, config, scaler, monitor, single))
            rows.append(row)
            print(f"{name} step {kept['step']} (epoch {kept['epoch']}{' end' if kept['epoch_end'] else ''}): "
                  f"held-out {row['heldout']:.2f}; 500×1 {np.mean(row['snapshot_500_1draw']):.2f}; all×1 "
                  f"{np.mean(row['monitor_all_1draw']):.2f}; all×3 {np.mean(row['monitor_all_3draws']):.2f} "
                  f"± {np.std(row['monitor_all_3draws']):.2f}", file=sys.stderr, flush=True)
    summary = {}
    for name in ("raw", "ema"):
        for candidates in ("epoch_end", "every"):
            mine = [r for r in rows if r["weights"] == name and (candidates == "every" or r["epoch_end"])]
            truth = [r["heldout"] for r in mine]
            for variant in ("snapshot_500_1draw", "monitor_all_1draw", "monitor_all_3draws"):
                table = np.array([r[variant] for r in mine])  # candidates × repeats
                picked = table.argmin(axis=0)
                summary[f"{name}/{candidates}/{variant}"] = {
                    "spearman": float(np.mean([spearmanr(table[:, k], truth)[0] for k in range(table.shape[1])])),
                    "score_std": float(table.std(axis=1).mean()),
                    "picked_steps": [mine[p]["step"] for p in picked],
                    "picked_heldout": [truth[p] for p in picked],
                    "best_heldout": float(min(truth)), "best_step": mine[int(np.argmin(truth))]["step"]}
                print(name, candidates, variant, summary[f"{name}/{candidates}/{variant}"], file=sys.stderr)
    write_json(Path(args.out), {"settings": vars(args), "fit_s": fit_s, "n_monitor": len(monitor),
                                "n_test": len(test), "generators": rows, "summary": summary})
    return 0


if __name__ == "__main__":
    sys.exit(main())
