"""Choice of the torch device: CUDA, then Apple's MPS, then the CPU, which always works."""

from __future__ import annotations

import torch

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
        raise InputError(f"unknown device '{name}'", hint="one of auto, cpu, cuda, mps") from None


def describe_device(device: torch.device) -> str:
    """A human name for the device: the GPU model, or the CPU with its thread count."""
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA)"
    if device.type == "mps":
        return "Apple GPU (MPS)"
    return f"CPU ({torch.get_num_threads()} threads)"
