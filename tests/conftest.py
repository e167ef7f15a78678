"""Shared tiny fixtures: a seeded toy sample and a tiny fast training configuration."""

import pytest

from recogan_app.config import TabularConfig
from recogan_app.data import toy_xic


@pytest.fixture(scope="session")
def tiny_config():
    """A factory of settings that train in about a second on 2 CPU cores."""

    def make(**overrides) -> TabularConfig:
        values = dict(max_epochs=3, batch_size=256, snapshot_rows=500, latent_dim=8,
                      generator_widths=[32, 32, 32], discriminator_widths=[32, 32], device="cpu")
        values.update(overrides)
        return TabularConfig(**values)

    return make


@pytest.fixture(scope="session")
def toy_frame():
    return toy_xic.generate(n=3000, seed=0, n_features=12)


@pytest.fixture(scope="session")
def toy_parquet(tmp_path_factory, toy_frame):
    path = tmp_path_factory.mktemp("mc") / "xic.parquet"
    toy_frame.to_parquet(path, index=False)
    return path


class Payload:
    """Unpickling it opens (creates) ``marker``: proof that code from a file ran. Its pickle holds
    only ``builtins.open`` and the path, so any reader that unpickles runs it."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture
def payload(tmp_path):
    """A code-carrying object to pickle into a file; the test fails if it ever runs."""
    marker = tmp_path / "PAYLOAD_RAN"
    yield Payload(marker)
    assert not marker.exists(), "the payload ran: code from a file was executed"
