"""Named random streams: every random choice of a run comes from one seed, through its own stream.

A run's ``seed`` is the entropy of one :class:`numpy.random.SeedSequence`; each use of randomness
takes the child stream of its name (``spawn_key=(index,)``), so that changing how many numbers one
use draws never shifts another (a longer snapshot does not change the split), and the CLI, a
notebook and the dashboard draw the same sample for the same seed. The indices are part of the
run format: :func:`record` writes them into ``run.json``, never renumber them.
"""

from __future__ import annotations

import numpy as np
import torch

STREAMS = {
    "split": 0,        # which MC rows are trained on, monitored and tested
    "training": 1,     # initial weights and the training noise (torch's global generator)
    "batches": 2,      # the order of the training batches and the marginal targets' subset
    "preprocessing": 3,  # the quantile transforms' subsample
    "snapshot": 4,     # the per-epoch snapshot's monitor rows and fixed noise
    "evaluation": 5,   # the final figures on the test split
    "validation": 6,   # the default sample, floors and bootstraps of a run's validation
    "gate": 7,         # the export gate's validation sample
    "subsample": 8,    # a quick look's random subset of the loaded MC
    "resample": 9,     # an ensemble member's bootstrap of the training rows
}


def sequence(seed: int, name: str) -> np.random.SeedSequence:
    """The stream ``name`` of ``seed``."""
    return np.random.SeedSequence(seed, spawn_key=(STREAMS[name],))


def stream_seed(seed: int, name: str) -> int:
    """A 32-bit seed drawn from stream ``name`` (for torch generators and APIs taking an int)."""
    return spawned_seed(seed, (STREAMS[name],))


def rng(seed: int, name: str) -> np.random.Generator:
    """A numpy generator on stream ``name``."""
    return np.random.default_rng(sequence(seed, name))


def torch_generator(seed: int, name: str, device="cpu") -> torch.Generator:
    """A torch generator on ``device`` seeded from stream ``name``."""
    return torch.Generator(device=device).manual_seed(stream_seed(seed, name))


def record(seed: int) -> dict:
    """What ``run.json`` keeps: the seed and each stream's spawn key, enough to redraw any of them."""
    return {"seed": seed, "scheme": "numpy SeedSequence(seed, spawn_key=(index,))", "streams": dict(STREAMS)}


def spawned_seed(seed: int, key: tuple[int, ...]) -> int:
    """A 32-bit seed of the child ``spawn_key=key`` of ``seed``: one training of a scan (its grid
    point and repeat, :func:`recogan_app.scan.plan`), independent of every other."""
    return int(np.random.SeedSequence(seed, spawn_key=key).generate_state(1)[0])
