"""The CUDA path, end to end: training, generation and export on a GPU (skipped without one; CI
has none). Run on a GPU machine with ``python -m pytest -q tests/test_cuda.py``."""

import json

import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
from scipy import stats

from recogan_app.config import TabularConfig, ZDCConfig
from recogan_app.data import toy_xic, toy_zdc
from recogan_app.data.sources import MCSample
from recogan_app.data.zdc import IMAGE_SHAPE
from recogan_app.export import PROVENANCE_KEY, export
from recogan_app.families.tabular import TabularRun as Run
from recogan_app.families.tabular import train_tabular
from recogan_app.families.zdc import train_zdc

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(scope="module")
def gpu_run(tmp_path_factory):
    frame = toy_xic.generate(n=20_000, seed=0, n_features=12)
    config = TabularConfig(max_epochs=3, batch_size=512, snapshot_rows=2000, device="cuda")
    sample = MCSample(frame, source="toy-xic-12", tree=None, n_dropped=0, invalid_counts={})
    return train_tabular(sample, config, tmp_path_factory.mktemp("cuda") / "run")


def test_training_runs_on_the_gpu_and_says_so(gpu_run):
    assert next(gpu_run.module.parameters()).device.type == "cuda"
    assert gpu_run.info["device"] == f"{torch.cuda.get_device_name()} (CUDA)"


def test_gpu_rows_depend_only_on_seed_and_position(gpu_run):
    rows = gpu_run.module.generator.sampler()
    whole = rows(3, 0, 40_000)
    assert whole.device.type == "cuda"
    pieces = torch.cat([rows(3, a, min(a + 7_000, 40_000)) for a in range(0, 40_000, 7_000)])
    torch.testing.assert_close(pieces, whole, rtol=0, atol=0)


def test_gpu_and_cpu_generate_the_same_distribution(gpu_run):
    """Other noise streams, one model: each feature's KS between the two samples stays within what
    two 50k-row samples of one distribution reach (0.0086 at 95 %), with margin."""
    on_cpu = Run.load(gpu_run.path, device="cpu").generate(50_000, seed=1)
    on_gpu = gpu_run.generate(50_000, seed=2)
    assert (on_cpu.dtypes == on_gpu.dtypes).all()
    for feature in gpu_run.features:
        assert stats.ks_2samp(on_cpu[feature], on_gpu[feature]).statistic < 0.015, feature


def test_gpu_export_streams_to_parquet(gpu_run, tmp_path):
    out = tmp_path / "sample.parquet"
    export(gpu_run, out, 300_000, require="none", seed=1, chunk_rows=100_000)
    frame = pd.read_parquet(out)
    assert len(frame) == 300_000 and list(frame.columns) == gpu_run.features
    assert json.loads(pq.read_schema(out).metadata[PROVENANCE_KEY.encode()])["rows"] == 300_000


def test_zdc_training_and_generation_on_the_gpu(tmp_path):
    sample = toy_zdc.generate(300, seed=1)
    config = ZDCConfig(generator_channels=4, batch_size=32, max_epochs=1, aux_epochs=1, snapshot_rows=50,
                       eval_draws=2, device="cuda")
    run = train_zdc(sample, config, tmp_path / "zdc")
    images = run.generate(sample.conditions[:10], seed=0)
    assert images.shape == (10, *IMAGE_SHAPE) and (images >= 0).all()
