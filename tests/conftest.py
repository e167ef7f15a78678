"""Shared tiny fixtures: a seeded toy sample, a tiny fast training configuration, a local web server
of ROOT files."""

import http.server
import io
import re
import threading
from functools import partial
from pathlib import Path

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


TINY_TRAINING = ["--set", "max_epochs=2", "--set", "batch_size=256", "--set", "snapshot_rows=100",
                 "--set", "latent_dim=8", "--set", "generator_widths=[16,16,16]",
                 "--set", "discriminator_widths=[16,16]", "--device", "cpu"]
"""Settings of the tiniest GAN trainings (ensemble members, runs beside them)."""


@pytest.fixture(scope="session")
def tiny_ensemble(tmp_path_factory):
    """A real ``recogan ensemble`` of 3 tiny members on 500 Ξc+ toy candidates (split seed 3, 125 held
    out: enough to validate and export) on a 2-worker LocalCluster, built once per session: its
    directory, MC file and the settings a run on the same split takes."""
    pytest.importorskip("distributed")
    from types import SimpleNamespace

    from recogan_app.cli import main

    folder = tmp_path_factory.mktemp("ensemble")
    data = folder / "xic.parquet"
    toy_xic.generate(n=500, seed=0, n_features=8).to_parquet(data, index=False)
    out = folder / "ens"
    settings = [*TINY_TRAINING, "--set", "test_fraction=0.25"]
    assert main(["ensemble", "--data", str(data), "--members", "3", *settings, "--generate-rows", "2000",
                 "--bins", "6", "--seed", "3", "--workers", "2", "--out", str(out)]) == 0
    return SimpleNamespace(path=out, data=data, settings=settings)


class _RangeRequests(http.server.SimpleHTTPRequestHandler):
    """A file server that answers byte-range requests, as EOS and every web server do (Python's
    own does not): uproot reads only the baskets of the branches it needs."""

    def send_head(self):
        wanted = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        path = Path(self.translate_path(self.path))
        if not wanted or not path.is_file():
            return super().send_head()
        size = path.stat().st_size
        start, end = int(wanted[1]), min(int(wanted[2] or size - 1), size - 1)
        with path.open("rb") as handle:
            handle.seek(start)
            body = handle.read(end - start + 1)
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        return io.BytesIO(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def web_folder():
    """Serve a folder over http on this machine (byte ranges answered): ``web_folder(folder)`` gives
    its base URL; reading it needs aiohttp (the extra [remote]), so the test is skipped without it."""
    pytest.importorskip("aiohttp")
    servers = []

    def serve(folder) -> str:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_RangeRequests, directory=str(folder)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield serve
    for server in servers:
        server.shutdown()
