"""Fixtures the training tests share."""

import pytest

from recogan_app.data import toy_zdc


@pytest.fixture(scope="module")
def toy_file(tmp_path_factory):
    """300 toy ZP events in the ``.npz`` layout: what a ZDC training reads."""
    path = tmp_path_factory.mktemp("zdc") / "toy.npz"
    toy_zdc.generate(300, seed=1).save(path)
    return path
