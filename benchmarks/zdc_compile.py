"""Does ``torch.compile`` pay on a CPU for the ZDC Poisson VAE (issue 20: "torch.compile where it pays")?

Times, in one process on ``--threads`` threads, the default VAE's training step (batch 64, Adam) and
the frozen decoder's generation of ``--generate`` responses, eager against compiled (inductor), and
the compilation itself (the first calls). Compiling pays within a budget when the time it saves
over the budget's steps exceeds the compile time::

    python benchmarks/zdc_compile.py --threads 2 --out benchmarks/results/zdc-compile.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from recogan_app.config import ZDCVAEConfig
from recogan_app.data import toy_zdc
from recogan_app.data.zdc import ConditionScaler
from recogan_app.models.zdc import CHANNELS_LAST
from recogan_app.models.zdc_poisson import PoissonVAE


def steps_per_second(step, batches, repeats: int) -> float:
    started = time.perf_counter()
    for i in range(repeats):
        step(*batches[i % len(batches)])
    return repeats / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=200, help="timed training steps per variant")
    parser.add_argument("--generate", type=int, default=50_000)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "zdc-compile.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sample = toy_zdc.generate(6000, seed=0)
    conditions = torch.from_numpy(ConditionScaler().fit(sample.conditions).transform(sample.conditions))
    counts = torch.from_numpy(sample.images).float().unsqueeze(1).contiguous(memory_format=CHANNELS_LAST)
    batches = [(counts[i:i + 64], conditions[i:i + 64]) for i in range(0, len(counts) - 64, 64)]
    results = {"threads": args.threads, "torch": torch.__version__}
    for variant in ("eager", "compiled"):
        torch.manual_seed(0)
        module = PoissonVAE(ZDCVAEConfig()).to(memory_format=CHANNELS_LAST)
        optimiser = module.configure_optimizers()
        loss = torch.compile(module.loss) if variant == "compiled" else module.loss

        def step(x, c):
            optimiser.zero_grad()
            loss(x, c)["loss"].backward()
            optimiser.step()

        started = time.perf_counter()
        for x, c in batches[:3]:  # compilation (and warm-up) happens in the first calls
            step(x, c)
        first = time.perf_counter() - started
        rate = steps_per_second(step, batches, args.steps)
        decoder = module.generator.fused()
        forward = torch.compile(decoder.forward) if variant == "compiled" else decoder.forward
        given = conditions.repeat(args.generate // len(conditions) + 1, 1)[:args.generate]
        with torch.inference_mode():
            started = time.perf_counter()
            forward(torch.zeros(512, decoder.latent_dim), given[:512])
            generation_first = time.perf_counter() - started
            started = time.perf_counter()
            for chunk in given.split(512):
                torch.poisson(forward(decoder.latents(chunk), chunk).exp())
            generation = time.perf_counter() - started
        results[variant] = {"first_3_steps_s": first, "steps_per_s": rate, "generation_first_call_s": generation_first,
                            "generation_s": generation}
        print(variant, results[variant], flush=True)
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
