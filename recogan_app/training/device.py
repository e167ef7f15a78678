"""Choice of the torch device: CUDA, then Apple's MPS, then the CPU, which always works."""

from __future__ import annotations

import os

import torch

from recogan_app.config import DEVICES
from recogan_app.errors import InputError


def resolve_device(name: str = "auto") -> torch.device:
    """The device for ``name`` ('auto', 'cpu', 'cuda', 'cuda:1', 'mps'), refusing absent hardware."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("device 'cuda' requested but no CUDA GPU is visible", column=None,
                         hint="use --device auto or --device cpu")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise InputError("device 'mps' requested but Apple MPS is not available", hint="use --device cpu")
    try:
        return torch.device(name)
    except RuntimeError:
        raise InputError(f"unknown device '{name}'", hint=f"one of {', '.join(DEVICES)}") from None


def describe_device(device: torch.device, threads: int | None = None) -> str:
    """A human name for the device: the GPU model, or the CPU with its thread count (this
    process's, or ``threads``)."""
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA)"
    if device.type == "mps":
        return "Apple GPU (MPS)"
    threads = threads or torch.get_num_threads()
    return f"CPU ({threads} thread{'s' if threads > 1 else ''})"


def page_training_threads() -> int | None:
    """CPU threads for a training started from the dashboard: every core but one, which the page
    keeps (training on both cores of a 2-core machine delayed 1 click in 30 by ~0.5 s); None when
    ``OMP_NUM_THREADS`` says what the user wants."""
    if "OMP_NUM_THREADS" in os.environ:
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 2
    return max(1, cores - 1)
