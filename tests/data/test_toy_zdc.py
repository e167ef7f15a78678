"""Tests of the embedded proton-ZDC toy: layout, reproducibility and the physics behind it."""

import time

import numpy as np
import pytest

from recogan_app.data import toy_zdc
from recogan_app.data.zdc import CONDITIONS, IMAGE_SHAPE
from recogan_app.metrics.zdc import hottest_pixel


@pytest.fixture(scope="module")
def sample():
    return toy_zdc.generate(6000, seed=3)


def test_layout(sample):
    assert sample.images.shape == (6000, *IMAGE_SHAPE) and sample.images.dtype == np.int32
    assert sample.conditions.shape == (6000, len(CONDITIONS)) and np.isfinite(sample.conditions).all()
    assert sample.images.min() >= 0


def test_same_seed_same_sample_other_seed_another():
    a, b, c = toy_zdc.generate(300, seed=1), toy_zdc.generate(300, seed=1), toy_zdc.generate(300, seed=2)
    assert np.array_equal(a.images, b.images) and np.array_equal(a.conditions, b.conditions)
    assert not np.array_equal(a.conditions, c.conditions)


def test_realistic_share_of_empty_and_zero_pixels(sample):
    sums = sample.photon_sums
    assert 0.2 < np.mean(sums == 0) < 0.6
    assert 0.02 < np.mean((sums > 0) & (sums < 18)) < 0.3  # near-empty responses
    assert np.mean(sample.images == 0) > 0.95


def test_groups_of_identical_conditions(sample):
    _, counts = np.unique(sample.conditions, axis=0, return_counts=True)
    assert counts.max() > 1 and 2 < len(sample) / len(counts) < 4


def test_yield_grows_with_energy_and_showers_follow_the_bend(sample):
    energy, vz, mass, charge = (sample.conditions[:, CONDITIONS.index(c)] for c in ("Energy", "Vz", "mass", "charge"))
    sums = sample.photon_sums
    protons = (np.abs(mass - 938.272) < 0.01) & (charge == 1) & (vz < 1) & (sums > 50)
    near_zp = (vz > 90) & (sums > 0)
    assert np.corrcoef(np.log(energy[near_zp]), np.log(sums[near_zp]))[0, 1] > 0.5
    # the dipoles bend a slower proton further out, i.e. to larger rows
    rows = hottest_pixel(sample.images[protons])[:, 0]
    assert np.corrcoef(1 / energy[protons], rows)[0, 1] > 0.8


def test_resimulating_the_same_conditions_gives_new_responses(sample):
    again = toy_zdc.simulate(sample.conditions[:2000], seed=11)
    assert again.shape == (2000, *IMAGE_SHAPE)
    assert not np.array_equal(again, sample.images[:2000])
    # a particle that misses the ZP stays empty; only a few near-empty responses flip
    assert np.mean((again.sum(axis=(1, 2)) == 0) != (sample.photon_sums[:2000] == 0)) < 0.05
    ratio = again.sum() / sample.images[:2000].sum()
    assert 0.9 < ratio < 1.1


def test_fast_enough():
    start = time.perf_counter()
    toy_zdc.generate(10_000, seed=0)
    assert time.perf_counter() - start < 10  # ~1 s on one free core; the CI machine is shared


def test_refuses_bad_conditions():
    with pytest.raises(ValueError, match=r"\(N, 9\)"):
        toy_zdc.simulate(np.zeros((3, 8)))
    with pytest.raises(ValueError):
        toy_zdc.generate(0)
