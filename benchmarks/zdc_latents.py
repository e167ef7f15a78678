"""Where should the Poisson VAE's z come from at generation? (issue 20; a benchmark, not a test)

One training of the ZDC Poisson VAE on the toy, bounded by epochs (the KL warm-up and the
learning rate's cosine over them, as a time limit would spread them), and at every epoch's end the
five-channel WS of the monitor events, one draw, with z taken from

- ``prior``: N(0, 1), the KL term's prior (the generation before the exemplar library);
- ``posterior``: the monitor event's own posterior q(z | its image): a reconstruction, the best
  any choice of z can do;
- ``aggregate``: a full-covariance Gaussian fitted to posterior draws of the monitor events;
- ``linear``: z regressed on the conditions over posterior draws of ``--library`` training events,
  the residuals' full-covariance Gaussian around the fit (a conditional Gaussian prior);
- ``nearest``: the posterior draw of the training event (of the same ``--library``) nearest in the
  standardised conditions (what :meth:`~recogan_app.models.zdc_poisson.ExpectedLight.latents` does
  with ``exemplars`` = 1);

with the KL per latent dimension, the monitor ELBO and the mean photon sum of the prior's draw.
The training's own snapshot is the family's (z from its library).

Usage::

    python benchmarks/zdc_latents.py --n 40000 --seed 1 --epochs 66 --threads 1 \\
        --out benchmarks/results/zdc-latents-seed1.json

``zdc-latents-seed1.json`` was written before the library existed (the snapshot then scored the
prior), by this script with one more probe (an exponential moving average of the decoder's weights,
not kept: averaged over ~2 epochs, they drew near-empty responses, WS ~50).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from recogan_app.config import ZDCVAEConfig
from recogan_app.data import toy_zdc
from recogan_app.families.recipe import fit_to_run
from recogan_app.families.zdc_vae import ZDCVAEFamily
from recogan_app.metrics.zdc import five_channel_ws
from recogan_app.training.callbacks import Callback

RESULTS = Path(__file__).parent / "results"


class Family(ZDCVAEFamily):
    """The family, keeping its splits and scaler for the probe."""

    def prepare(self, train, monitor, test, folder, device, deadline):
        self.train_split, self.monitor_split = train, monitor
        return super().prepare(train, monitor, test, folder, device, deadline)


class LatentProbe(Callback):
    """At every snapshot, the monitor WS of the decoder with z from each source (see the module)."""

    def __init__(self, family: Family, library: int):
        self.family, self.library, self.rows = family, library, []

    @torch.no_grad()
    def on_snapshot(self, trainer, snapshot) -> None:
        module, family = trainer.module, self.family
        draw = torch.Generator().manual_seed(7)
        monitor, train = family.monitor_split, family.train_split.subset(np.arange(min(self.library, len(family.train_split))))

        def encoded(events):
            conditions = torch.from_numpy(family.scaler.transform(events.conditions))
            mean, log_var = module.encoder(torch.from_numpy(events.images.astype(np.float32)[:, None]), conditions)
            return conditions, mean, log_var, mean + (0.5 * log_var).exp() * torch.randn(mean.shape, generator=draw)

        def ws(z):
            counts = torch.poisson(module.generator(z, conditions).exp(), generator=draw)[:, 0].int().numpy()
            return five_channel_ws(monitor.images, [counts], "published")["mean"], counts

        conditions, mean, log_var, own = encoded(monitor)
        library_conditions, _, _, library_z = encoded(train)
        design = lambda c: torch.cat([c, torch.ones(len(c), 1)], 1)  # noqa: E731
        slope = torch.linalg.lstsq(design(library_conditions), library_z).solution
        residual = library_z - design(library_conditions) @ slope
        spread = torch.linalg.cholesky(torch.cov(residual.T) + 1e-6 * torch.eye(own.shape[1]))
        aggregate = torch.distributions.MultivariateNormal(own.mean(0), torch.cov(own.T) + 1e-6 * torch.eye(own.shape[1]))
        prior_ws, prior_counts = ws(torch.randn(own.shape, generator=draw))
        kl = 0.5 * (mean ** 2 + log_var.exp() - 1 - log_var).mean(0)
        log_light = module.generator(own, conditions)
        nll = (log_light.exp() - torch.from_numpy(monitor.images.astype(np.float32)[:, None]) * log_light).flatten(1).sum(1).mean()
        row = {"epoch": snapshot.epoch, "kl_weight": module.kl_weight, "snapshot": snapshot.score,
               "prior": prior_ws, "posterior": ws(own)[0], "aggregate": ws(aggregate.sample((len(own),)))[0],
               "linear": ws(design(conditions) @ slope + torch.randn(own.shape, generator=draw) @ spread.T)[0],
               "nearest": ws(library_z[torch.cdist(conditions, library_conditions).argmin(1)])[0],
               "linear_r2": float(1 - residual.var(0).sum() / library_z.var(0).sum()),
               "kl_per_dim": sorted((float(v) for v in kl), reverse=True), "elbo": float(nll + kl.sum()),
               "photon_sum_real": float(monitor.images.sum((1, 2)).mean()),
               "photon_sum_prior": float(prior_counts.sum((1, 2)).mean())}
        self.rows.append(row)
        print(" ".join(f"{k} {v:.2f}" for k, v in row.items() if isinstance(v, float)), flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40_000, help="toy events before the photon-sum cut")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=66, help="the epochs a 300 s run makes on a quiet core")
    parser.add_argument("--library", type=int, default=8_000, help="training events the conditional sources use")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(RESULTS / "zdc-latents.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    config = ZDCVAEConfig(seed=args.seed, time_limit=None, max_epochs=args.epochs, patience=args.epochs)
    family = Family(config)
    probe = LatentProbe(family, args.library)
    with tempfile.TemporaryDirectory() as folder:
        fit_to_run(family, toy_zdc.generate(args.n, seed=0), Path(folder) / "run", callbacks=[probe])
    Path(args.out).write_text(json.dumps({"settings": vars(args), "epochs": probe.rows}, indent=1))
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
