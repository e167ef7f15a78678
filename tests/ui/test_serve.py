"""What ``recogan serve`` guards, against the real server in a subprocess: it listens on this machine
only, Panel's login stands in front of the page and the downloads, downloads come from the work
folder's exports and nowhere else, a taken port is a clear refusal; and the page caps uploads.
"""

from __future__ import annotations

import asyncio
import http.client
import os
import re
import socket
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest
from panel.models.file_dropper import UploadEvent

from recogan_app.cli import main
from recogan_app.ui.data import DataView
from recogan_app.ui.state import Session

PASSWORD = "correct horse battery staple"
LOOPBACK = ("127.0.0.1", "::1", "[::1]")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(port: int, *options: str, log=subprocess.PIPE) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "recogan_app.cli", "serve", "--port", str(port), "--no-show",
                             *options], stdout=log, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``recogan serve --basic-auth PASSWORD`` with its defaults otherwise (no --address)."""
    folder = tmp_path_factory.mktemp("serve")
    workdir, port = folder / "work", free_port()
    with (folder / "server.log").open("w") as log:
        process = serve(port, "--workdir", str(workdir), "--basic-auth", PASSWORD, log=log)
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    assert process.poll() is None, (folder / "server.log").read_text()
                    assert time.monotonic() < deadline, "recogan serve did not open its port"
                    time.sleep(0.2)
            yield process, port, workdir
        finally:
            process.terminate()
            process.wait(timeout=30)


def request(port: int, path: str, *, method: str = "GET", body: str | None = None, headers=None):
    """One raw HTTP request (the path sent as written, ``..`` included); returns (status, headers, body)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


@pytest.fixture(scope="module")
def login(server):
    """The cookie header of a logged-in browser."""
    _, port, _ = server
    status, headers, _ = request(port, "/login", method="POST", body=f"username=physicist&password={PASSWORD}",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 302
    cookies = [value.split(";")[0] for name, value in headers.items() if name.lower() == "set-cookie"]
    assert any(c.startswith("user=") for c in cookies)
    return {"Cookie": "; ".join(cookies)}


def test_listens_on_this_machine_only(server):
    process, port, _ = server
    listening = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, check=True).stdout
    addresses = [line.split()[3].rsplit(":", 1)[0] for line in listening.splitlines()
                 if f"pid={process.pid}," in line]
    assert addresses and all(address in LOOPBACK for address in addresses), listening


def test_page_and_downloads_need_the_login(server, login):
    _, port, workdir = server
    (workdir / "exports" / "mine.parquet").write_bytes(b"PAR1 synthetic rows")
    for path in ("/", "/exports/mine.parquet"):
        status, headers, _ = request(port, path)
        assert status == 302 and "login" in headers["Location"], (path, status, headers["Location"])
    _, headers, _ = request(port, "/login", method="POST", body="username=x&password=wrong",
                            headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert "user=" not in str(headers.get_all("Set-Cookie"))  # a wrong password gets no login cookie
    status, _, page = request(port, "/", headers=login)
    assert status == 200 and b"recogan" in page


def test_downloads_come_from_the_exports_folder_only(server, login):
    _, port, workdir = server
    content = os.urandom(50_000)
    (workdir / "exports" / "run-1-1000.parquet").write_bytes(content)
    (workdir / "uploads").mkdir(exist_ok=True)
    (workdir / "uploads" / "secret.csv").write_bytes(b"secret MC")
    status, _, body = request(port, "/exports/run-1-1000.parquet", headers=login)
    assert status == 200 and body == content  # Tornado's file handler answers 403 to a path leaving its folder
    for path in ("/exports/../uploads/secret.csv", "/exports/%2e%2e/uploads/secret.csv",
                 "/exports/..%2fuploads%2fsecret.csv", "/exports/%2e%2e%2fuploads%2fsecret.csv",
                 "/exports//etc/passwd", "/uploads/secret.csv", "/runs/", "/exports/"):
        status, _, body = request(port, path, headers=login)
        assert status in (403, 404) and b"secret MC" not in body and b"root:" not in body, (path, status)


def test_websocket_from_another_origin_is_refused(server, login):
    _, port, _ = server
    upgrade = {**login, "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
    status, _, _ = request(port, "/ws", headers={**upgrade, "Origin": "http://evil.example"})
    assert status == 403
    status, _, _ = request(port, "/ws", headers={**upgrade, "Origin": f"http://localhost:{port}"})
    assert status != 403


def test_a_taken_port_is_refused_clearly(server):
    _, port, _ = server
    process = serve(port)
    out, _ = process.communicate(timeout=120)
    assert process.returncode == 2 and re.search(rf"cannot listen on 127\.0\.0\.1:{port}", out), out
    assert "Traceback" not in out


def upload_events(name, content: bytes, total_chunks=None, chunk=400_000):
    """The events a dropper sends for a file, made one at a time; a client may claim any total."""
    parts = range(0, max(len(content), 1), chunk)
    for number, start in enumerate(parts, 1):
        yield UploadEvent(None, data={"chunk": number, "data": content[start:start + chunk], "name": name,
                                      "total_chunks": total_chunks or len(parts), "type": "text/csv"})


def test_an_upload_over_the_cap_is_dropped_as_it_arrives(tmp_path):
    """The browser refuses a file over the cap before sending a byte; a client that skips that check
    and sends chunks without end is cut off at the cap, and what was buffered is released."""
    session = Session(workdir=tmp_path)
    view = DataView(state=session, max_upload_mb=1)
    dropper = view.upload
    assert dropper.max_file_size == "1MB"
    endless = upload_events("big.csv", b"1.5,0.25\n" * 1_000_000, total_chunks=10**9)  # 9 MB sent
    tracemalloc.start()
    try:
        for _ in range(2):
            dropper._process_event(next(endless))
        assert sum(map(len, dropper._file_buffer["big.csv"])) == 800_000  # under the cap: kept
        for event in endless:
            dropper._process_event(event)
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert dropper._file_buffer == {} and dropper.value == {} and held < 500_000
    assert session.notice_level == "danger"
    assert session.notice == "big.csv: not uploaded: 1.2 MB sent is over this server's 1 MB upload limit"
    assert not (tmp_path / "uploads").exists() and session.sample is None
    small = "pt,eta\n" + "1.5,0.25\n2.5,0.5\n" * 50
    for event in upload_events("small.csv", small.encode()):
        dropper._process_event(event)
    assert dropper.value == {"small.csv": small}  # the dropper hands text files over decoded
    asyncio.run(view._upload(type("Event", (), {"new": dropper.value})))
    assert session.notice_level == "success" and len(session.sample.frame) == 100
    assert Path(session.source).read_text() == small


@pytest.mark.parametrize(("content", "problem"), [(None, "does not exist"), ("{not json", "cannot be read as JSON"),
                                                  ('["alice"]', "is not a JSON object")])
def test_a_bad_login_file_is_refused_before_serving(tmp_path, capsys, content, problem):
    """Panel would take a mistyped file name for the password itself."""
    logins = tmp_path / "logins.json"
    if content is not None:
        logins.write_text(content)
    assert main(["serve", "--basic-auth", str(logins), "--port", str(free_port())]) == 2
    error = capsys.readouterr().err
    assert str(logins) in error and problem in error and "Traceback" not in error
