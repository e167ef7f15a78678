"""Device choice and naming, and the threads a dashboard's training gets."""

import os

import pytest
import torch

from recogan_app.errors import InputError
from recogan_app.training.device import describe_device, page_training_threads, resolve_device


def test_cpu_is_named_with_its_threads():
    assert describe_device(torch.device("cpu")) == describe_device(torch.device("cpu"), torch.get_num_threads())
    assert describe_device(torch.device("cpu"), 3) == "CPU (3 threads)"
    assert describe_device(torch.device("cpu"), 1) == "CPU (1 thread)"
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(InputError, match="unknown device"):
        resolve_device("tpu")


def test_dashboard_training_leaves_a_core_to_the_page_unless_told(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert page_training_threads() == max(1, cores - 1)
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    assert page_training_threads() is None
