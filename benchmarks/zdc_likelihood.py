"""Likelihood models of ZP responses against the SDI-GAN at equal budget (issue 20's "a second ZDC
family if it wins"; a benchmark, not a test).

Two candidates, each trained for ``--train-s`` seconds (default 270: the SDI-GAN's fit in its
300 s bar runs, ``zdc-bar-300-monitor-constant-lr.json``) on one thread, on the same toy-zdc
split the CLI draws for a seed (``splits.draw_split``, the events with a photon), learning rate
down a half cosine to 0 at the end of the budget, the final weights scored:

- ``flow-matching``: conditional flow matching (linear path from N(0, 1) noise, velocity
  regression) of the dequantised log1p image (log1p(n + u), u ~ U(0, 1), back by
  floor(expm1(·)): a pixel below log 2 is exactly 0), the velocity a small conv net at half
  resolution (pixel-unshuffle) reading a spatial map and FiLM of the conditions and t; sampled
  with ``--steps`` Euler steps.
- ``poisson-vae``: the ZDC VAE family's module (:mod:`recogan_app.models.zdc_poisson`): each
  pixel's photons Poisson given the conditions and a latent z, sampled by one decoder pass and a
  Poisson draw; here with the KL weight falling from ``--beta`` to 1 over ``--warm-up`` of the
  budget. (``results/zdc-poisson-vae.json`` was written by this script's first version, 41f335e,
  with its own copy of the same networks; the family's run through the CLI is ``zdc.py --bar
  --model vae``.)

Scored as ``benchmarks/zdc.py --bar`` scores a run: five-channel WS (and per channel), empty
responses and hottest-pixel error on the test split (5 noise draws) against the toy's floor (5
re-simulations of the same conditions, the same seeds); generation of 50,000 responses timed on
the trained model (the network and the sampling, no files)::

    OMP_NUM_THREADS=1 python benchmarks/zdc_likelihood.py --model flow-matching --seeds 0 --steps 8 \
        --out benchmarks/results/zdc-flow-matching.json
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from recogan_app import streams
from recogan_app.config import ZDCConfig, ZDCVAEConfig
from recogan_app.data import toy_zdc
from recogan_app.data.zdc import CONDITIONS, IMAGE_SHAPE, ConditionScaler
from recogan_app.families.zdc import compare_zdc
from recogan_app.models.zdc import CHANNELS_LAST, LEAKY_SLOPE
from recogan_app.models.zdc_poisson import COARSE_GRID, HALF_GRID, PoissonVAE, from_blocks, to_blocks
from recogan_app.files import write_json
from recogan_app.splits import draw_split, heldout_sizes

RESULTS = Path(__file__).parent / "results"
FIGURES = ("ws_mean", "ws_ch1", "ws_ch2", "ws_ch3", "ws_ch4", "ws_ch5", "empty_generated", "hottest_pixel_error")


# -- flow matching -------------------------------------------------------------------------------

class Velocity(nn.Module):
    """v(x_t, t, c) on the Poisson VAE's half-resolution grid (:func:`to_blocks`): the conditions
    and t give a coarse spatial map (where the shower goes) and a FiLM of each layer."""

    def __init__(self, width: int = 16, map_channels: int = 8, embed: int = 256):
        super().__init__()
        self.map_channels = map_channels
        self.embed = nn.Sequential(nn.Linear(len(CONDITIONS) + 8, embed), nn.LeakyReLU(LEAKY_SLOPE),
                                   nn.Linear(embed, embed), nn.LeakyReLU(LEAKY_SLOPE))
        self.spatial = nn.Sequential(nn.Linear(embed, map_channels * COARSE_GRID[0] * COARSE_GRID[1]),
                                     nn.LeakyReLU(LEAKY_SLOPE))
        self.film = nn.Linear(embed, 4 * width)
        self.conv_in = nn.Conv2d(4 + map_channels, width, 3, padding=1)
        self.conv_mid = nn.Conv2d(width, width, 3, padding=2, dilation=2)
        self.conv_out = nn.Conv2d(width, 4, 3, padding=1)

    def forward(self, x, t, c):
        angles = t[:, None] * math.pi * 2.0 ** torch.arange(4, device=x.device, dtype=x.dtype)
        h = self.embed(torch.cat([c, angles.sin(), angles.cos()], 1))
        coarse = self.spatial(h).view(-1, self.map_channels, *COARSE_GRID).contiguous(memory_format=CHANNELS_LAST)
        grid = F.interpolate(coarse, size=HALF_GRID)
        scale1, shift1, scale2, shift2 = self.film(h)[:, :, None, None].chunk(4, 1)
        y = F.silu(self.conv_in(torch.cat([to_blocks(x), grid], 1)) * (1 + scale1) + shift1)
        y = F.silu(self.conv_mid(y) * (1 + scale2) + shift2)
        return from_blocks(self.conv_out(y))


class FlowMatching(nn.Module):
    def __init__(self, steps: int):
        super().__init__()
        self.velocity, self.steps = Velocity(), steps

    def loss(self, counts, c):
        x1 = torch.log1p(counts + torch.rand_like(counts))
        x0 = torch.randn_like(x1)
        t = torch.rand(len(x1), device=x1.device)
        xt = x0 + t[:, None, None, None] * (x1 - x0)
        return {"loss": ((self.velocity(xt, t, c) - (x1 - x0)) ** 2).mean()}

    @torch.inference_mode()
    def counts(self, c, generator):
        x = torch.randn(len(c), 1, *IMAGE_SHAPE, generator=generator)
        dt = 1.0 / self.steps
        for k in range(self.steps):
            x = x + dt * self.velocity(x, torch.full((len(c),), k * dt), c)
        return torch.expm1(x).floor().clamp_(min=0).to(torch.int32)[:, 0].numpy()


# -- Poisson VAE: the family's module (recogan_app.models.zdc_poisson) --------------------------

class PoissonVAEPrototype(PoissonVAE):
    def __init__(self):
        super().__init__(ZDCVAEConfig())

    def counts(self, c, generator):
        return self.generator.counts(c, generator=generator)


MODELS = {"flow-matching": lambda args: FlowMatching(args.steps), "poisson-vae": lambda args: PoissonVAEPrototype()}


def generate(model, conditions: torch.Tensor, seed: int, chunk: int = 512) -> np.ndarray:
    generator = torch.Generator().manual_seed(seed)
    return np.concatenate([model.counts(c, generator) for c in conditions.split(chunk)])


def run_seed(args, seed: int, sample) -> dict:
    usable = sample.subset(sample.photon_sums >= 1)
    config = ZDCConfig()
    n_monitor, n_test = heldout_sizes(len(usable), config.monitor_fraction, config.test_fraction)
    split = draw_split(len(usable), n_monitor, n_test, seed)
    train, test = usable.subset(split.train), usable.subset(split.test)
    scaler = ConditionScaler().fit(train.conditions)
    counts = torch.from_numpy(train.images.astype(np.float32)[:, None])
    conditions = torch.from_numpy(scaler.transform(train.conditions))

    torch.manual_seed(streams.stream_seed(seed, "training"))
    model = MODELS[args.model](args).to(memory_format=CHANNELS_LAST)
    optimiser = torch.optim.Adam(model.parameters(), lr=args.lr)
    order = streams.torch_generator(seed, "batches")
    started, steps, losses = time.perf_counter(), 0, []
    while (elapsed := time.perf_counter() - started) < args.train_s:
        for group in optimiser.param_groups:
            group["lr"] = args.lr * 0.5 * (1 + math.cos(math.pi * min(elapsed / args.train_s, 1.0)))
        if isinstance(model, PoissonVAE):  # the KL's weight from --beta down to 1 over the first --warm-up of the budget
            model.kl_weight = 1 + (args.beta - 1) * max(0.0, 1 - elapsed / (args.warm_up * args.train_s))
        rows = torch.randint(len(counts), (args.batch,), generator=order)
        loss = model.loss(counts[rows], conditions[rows])["loss"]
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        steps += 1
        losses.append(float(loss.detach()))
        if steps % 200 == 0:
            print(f"  step {steps} {elapsed:.0f} s loss {np.mean(losses[-200:]):.3f}", file=sys.stderr, flush=True)
    fit_s = time.perf_counter() - started
    model.eval()

    test_c = torch.from_numpy(scaler.transform(test.conditions))
    draws = [generate(model, test_c, seed=1000 * seed + k) for k in range(5)]
    metrics = compare_zdc(test.images, draws)
    again = [toy_zdc.simulate(test.conditions, seed=10_000 + 10 * seed + k) for k in range(5)]
    floor = compare_zdc(test.images, again)
    many = torch.from_numpy(scaler.transform(toy_zdc.generate(args.generate, seed=99).conditions))
    generate(model, many[:512], seed=0)  # warm
    t0 = time.perf_counter()
    generate(model, many, seed=1)
    generate_s = time.perf_counter() - t0
    return {"seed": seed, "steps": steps, "epochs": steps * args.batch / len(train), "fit_s": fit_s,
            "loss_last_200": float(np.mean(losses[-200:])), "sample_size": len(test),
            "model": {k: metrics[k] for k in FIGURES}, "floor": {k: floor[k] for k in FIGURES},
            "ws_over_floor": metrics["ws_mean"] / floor["ws_mean"],
            "generate_events": args.generate, "generate_s": generate_s,
            "generate_events_per_s": args.generate / generate_s,
            "parameters": sum(p.numel() for p in model.parameters()), "load_average": os.getloadavg()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=list(MODELS), required=True)
    parser.add_argument("--n", type=int, default=40_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--train-s", type=float, default=270.0)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--steps", type=int, default=8, help="flow matching: Euler steps when sampling")
    parser.add_argument("--beta", type=float, default=1000.0, help="poisson-vae: the KL's weight at the start")
    parser.add_argument("--warm-up", type=float, default=0.5, help="poisson-vae: share of the budget the KL weight falls to 1 in")
    parser.add_argument("--generate", type=int, default=50_000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out or RESULTS / f"zdc-{args.model}.json")
    sample, rows = toy_zdc.generate(args.n, seed=0), []
    for seed in args.seeds:
        rows.append(run_seed(args, seed, sample))
        r = rows[-1]
        print(f"{args.model} seed {seed}: {r['steps']} steps ({r['epochs']:.1f} epochs) in {r['fit_s']:.0f} s; WS "
              f"{r['model']['ws_mean']:.2f} = {r['ws_over_floor']:.1f} × floor {r['floor']['ws_mean']:.2f}; ch "
              + " / ".join(f"{r['model'][f'ws_ch{k}']:.2f}" for k in range(1, 6))
              + f"; empty {r['model']['empty_generated']:.0f} ({r['floor']['empty_generated']:.0f}); hottest "
                f"{r['model']['hottest_pixel_error']:.2f} px ({r['floor']['hottest_pixel_error']:.2f}); "
                f"generate {args.generate:,} in {r['generate_s']:.1f} s", file=sys.stderr, flush=True)
        write_json(out, {"settings": {k: v for k, v in vars(args).items() if k != "out"}, "cpu": os.cpu_count(),
                         "runs": rows})
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
