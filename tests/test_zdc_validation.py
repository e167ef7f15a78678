"""What a ZDC run is compared with, called as a notebook would: the toy's noise floor against a
direct five-channel WS of a re-simulation, and the held-out gallery of a real (tiny) run."""

import math

import numpy as np
import pytest

from recogan_app.config import ZDCConfig
from recogan_app.data import toy_zdc
from recogan_app.data.zdc import IMAGE_SHAPE
from recogan_app.metrics.zdc import channel_sums, five_channel_ws
from recogan_app.training.events import Snapshot
from recogan_app.families.zdc import train_zdc
from recogan_app.zdc_validation import GALLERY_EVENTS, HELDOUT_DRAWS, Comparison, compare_heldout, toy_noise_floor

QUICK = {"generator_channels": 4, "batch_size": 32, "max_epochs": 1, "aux_epochs": 1, "snapshot_rows": 50,
         "eval_draws": 1, "lambda_aux": 0, "device": "cpu"}


@pytest.fixture(scope="module")
def toy():
    return toy_zdc.generate(300, seed=0)


def test_noise_floor_is_the_ws_of_a_resimulation_of_the_monitor_events(toy):
    config = ZDCConfig(snapshot_rows=10_000)  # more than the monitor events: all of them
    kept = toy.subset(toy.photon_sums >= config.min_photon_sum)
    # the monitor split, drawn with numpy alone: the first 10 % of stream 0 ("split") of the seed's permutation
    order = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(0,))).permutation(len(kept))
    monitor = np.sort(order[:math.ceil(0.1 * len(kept))])
    again = toy_zdc.simulate(kept.conditions[monitor], seed=1)
    expected = five_channel_ws(kept.images[monitor], [again], config.channels)["per_channel"]
    np.testing.assert_allclose(toy_noise_floor(toy, config), expected)
    assert expected.shape == (5,) and (expected > 0).all()


def test_noise_floor_on_the_snapshot_size_is_seeded(toy):
    config = ZDCConfig(snapshot_rows=60)
    floor = toy_noise_floor(toy, config)
    assert floor.shape == (5,) and np.isfinite(floor).all()
    assert np.array_equal(floor, toy_noise_floor(toy, config))
    assert not np.array_equal(floor, toy_noise_floor(toy, config, seed=2))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A real ZDC run, one epoch on 120 toy events: seconds."""
    return train_zdc(toy_zdc.generate(120, seed=0), ZDCConfig(**QUICK), tmp_path_factory.mktemp("runs") / "zdc")


def test_heldout_comparison_generates_for_exactly_the_shown_events(run):
    test = run.heldout()
    comparison = compare_heldout(run, seed=5)
    assert comparison.real.shape == (min(GALLERY_EVENTS, len(test)), *IMAGE_SHAPE)
    assert comparison.generated.shape == (len(comparison.real), HELDOUT_DRAWS, *IMAGE_SHAPE)
    for image, conditions in zip(comparison.real, comparison.conditions):  # held-out events, as they are
        match = np.flatnonzero((test.conditions == conditions).all(axis=1))
        assert any(np.array_equal(test.images[i], image) for i in match)
    # independent noise draws: the children of stream 6 ("validation") of the seed, one per gallery draw, then one
    draws = [int(child.generate_state(1)[0]) for child in np.random.SeedSequence(5, spawn_key=(6,)).spawn(3)]
    for k in range(HELDOUT_DRAWS):  # each draw: the run's response to exactly the shown conditions
        assert np.array_equal(comparison.generated[:, k], run.generate(comparison.conditions, seed=draws[k]))
    assert np.array_equal(comparison.channels_real, channel_sums(test.images))  # fewer than 2000: every event
    assert np.array_equal(comparison.channels_generated,
                          channel_sums(run.generate(test.conditions, seed=draws[HELDOUT_DRAWS])))
    assert comparison.label.startswith("held-out events") and f"{len(test):,} held-out events" in comparison.label
    again, other = compare_heldout(run, seed=5), compare_heldout(run, seed=6)
    assert np.array_equal(again.conditions, comparison.conditions)
    assert not np.array_equal(other.conditions, comparison.conditions)


def test_a_snapshot_comparison_is_its_gallery_with_one_response_each(toy):
    images, conditions = toy.images[:8], toy.conditions[:8]
    details = {"gallery_real": images, "gallery_generated": images[::-1], "gallery_conditions": conditions,
               "channels_real": channel_sums(images), "channels_generated": channel_sums(images[::-1])}
    comparison = Comparison.of_snapshot(Snapshot(epoch=2, step=9, elapsed_s=1.0, score=0.5, metrics={},
                                                 sample_size=8, details=details))
    assert np.array_equal(comparison.real, images[:GALLERY_EVENTS])
    assert comparison.generated.shape == (GALLERY_EVENTS, 1, *IMAGE_SHAPE)
    assert np.array_equal(comparison.generated[:, 0], images[::-1][:GALLERY_EVENTS])
    assert np.array_equal(comparison.conditions, conditions[:GALLERY_EVENTS])
    assert comparison.channels_real.shape == (8, 5) and comparison.label.startswith("epoch 3: monitor events")
