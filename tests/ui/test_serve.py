"""What ``recogan serve`` guards, against the real server in a subprocess: it listens on this machine
only, Panel's login stands in front of the page and the downloads, downloads come from the work
folder's exports and nowhere else, a websocket message that inflates without end is refused, a taken
port is a clear refusal; and the page caps uploads.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time
import tracemalloc
import zlib
from pathlib import Path

import pytest
from bokeh.core.serialization import DeserializationError, Deserializer, Serialized, Serializer
from panel.models.file_dropper import UploadEvent
from tornado.httpclient import HTTPRequest
from tornado.websocket import WebSocketClosedError, websocket_connect

from browser import wait_until_listening

from recogan_app.cli import main
from recogan_app.ui import app, wire
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
            wait_until_listening(process, port, folder / "server.log")
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


def gzip_bomb(size: int) -> bytes:
    """Valid gzip of ``size`` zero bytes, about a thousandth of that, built without holding ``size``:
    one fully flushed deflate block of a million zeros, repeated (it refers to nothing before it)."""
    block = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = block.compress(bytes(1_000_000)) + block.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(size // 1_000_000):
        crc = zlib.crc32(bytes(1_000_000), crc)
    last = zlib.compressobj(9, zlib.DEFLATED, -15).flush()  # an empty final block
    return (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + block * (size // 1_000_000) + last
            + crc.to_bytes(4, "little") + (size % 2**32).to_bytes(4, "little"))


def bytes_value(compressed: bytes) -> dict:
    """A bytes value as Bokeh writes one into a JSON message."""
    return {"type": "bytes", "data": base64.b64encode(compressed).decode()}


@pytest.fixture
def guarded(monkeypatch):
    """This process's Bokeh decoder guarded as ``recogan serve`` guards it; Bokeh's own back after."""
    monkeypatch.setattr(Deserializer, "_decode_bytes", Deserializer._decode_bytes)
    wire.guard_decoder()
    return wire.UPLOAD_CHUNK_BYTES


def test_a_gzip_bomb_is_refused_in_a_moment_and_a_few_megabytes(guarded):
    assert gzip.decompress(gzip_bomb(3_000_000)) == bytes(3_000_000)  # the construction is honest gzip
    bomb, cap = bytes_value(gzip_bomb(500_000_000)), guarded
    assert cap == 1_000_000
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(DeserializationError, match="inflates to more than 1,000,000 bytes"):
            Deserializer().decode({"events": [], "upload": bomb})
        seconds = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert seconds < 1 and peak < cap + 3_000_000, (seconds, peak)  # the cap, the message, growth room


def test_legitimate_bytes_values_decode_exactly(guarded):
    """Up to the cap (one upload chunk) what Bokeh's own encoder writes comes back exactly, several
    gzip members included; past it, or truncated, it is refused."""
    chunk = os.urandom(guarded)  # incompressible: gzip makes it slightly larger
    assert Deserializer().decode(Serializer(deferred=False).encode(chunk)) == chunk
    assert Deserializer().decode(bytes_value(gzip.compress(b"pt,eta\n") + gzip.compress(b"1.5,0.25\n"))) == \
        b"pt,eta\n1.5,0.25\n"
    assert Deserializer().decode(bytes_value(b"")) == b""
    serialized = Serializer(deferred=True).serialize(chunk + b"!")  # as a binary frame: Bokeh's own path
    assert bytes(Deserializer().deserialize(Serialized(serialized.content, serialized.buffers))) == chunk + b"!"
    for compressed, problem in [(gzip.compress(chunk + b"!"), "inflates to more than 1,000,000 bytes"),
                                (gzip.compress(chunk)[:-100], "truncated"), (b"not gzip", "not valid gzip")]:
        with pytest.raises(DeserializationError, match=problem):
            Deserializer().decode(bytes_value(compressed))


def peak_rss(pid: int) -> int:
    """The process's most resident memory so far, in bytes (Linux ``VmHWM``)."""
    line = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


def over_websocket(process: subprocess.Popen, port: int, message: list[str], headers=None, page="/"):
    """Open the ``page`` and its websocket as Bokeh's client does and send ``message`` (its fragments:
    header, metadata, content); the reply's fragments (up to 3; ``None`` once the server closed the
    connection), and how much the server's peak resident memory grew meanwhile."""
    status, _, html = request(port, page, headers=headers)
    assert status == 200
    token = re.search(rb'"token":\s*"([^"]+)"', html).group(1).decode()

    async def exchange():
        url = f"ws://127.0.0.1:{port}{page.rstrip('/')}/ws"
        connection = await websocket_connect(
            HTTPRequest(url, headers={**(headers or {}), "Origin": f"http://localhost:{port}"}),
            subprotocols=["bokeh", token])
        try:
            for _ in range(3):  # the server's ACK: header, metadata, content
                await connection.read_message()
            before = peak_rss(process.pid)
            try:
                for fragment in message:
                    await connection.write_message(fragment)
            except WebSocketClosedError:
                pass  # closed by the server while this was still sending
            replies = []
            while len(replies) < 3 and (not replies or replies[-1] is not None):
                reply = await asyncio.wait_for(connection.read_message(), 10)
                replies.append(reply and json.loads(reply))
            return replies, peak_rss(process.pid) - before
        finally:
            connection.close()

    return asyncio.run(exchange())


def bomb_message() -> list[str]:
    """A 660 kB PATCH-DOC whose bytes value inflates to 500 MB."""
    message = [json.dumps(fragment) for fragment in ({"msgid": "bomb", "msgtype": "PATCH-DOC"}, {},
                                                     {"events": [], "upload": bytes_value(gzip_bomb(500_000_000))})]
    assert sum(map(len, message)) < 700_000
    return message


def test_a_websocket_gzip_bomb_gets_an_error_reply_and_the_server_carries_on(server, login):
    process, port, _ = server
    (header, _, content), growth = over_websocket(process, port, bomb_message(), login)
    assert header["msgtype"] == "ERROR" and header["reqid"] == "bomb"
    assert "inflates to more than 1,000,000 bytes" in content["text"]
    assert process.poll() is None and growth < 100_000_000, growth
    too_long = json.dumps({"msgid": "x" * wire.WEBSOCKET_MAX_MESSAGE_BYTES, "msgtype": "PATCH-DOC"})
    assert over_websocket(process, port, [too_long], login)[0] == [None]  # closed before Bokeh parses it
    status, _, page = request(port, "/", headers=login)
    assert status == 200 and b"recogan" in page


def test_a_plain_panel_serve_of_the_app_is_guarded_too(tmp_path):
    """Under ``panel serve recogan_app/ui/app.py`` the app guards the decoder itself."""
    port, log_path = free_port(), tmp_path / "server.log"
    with log_path.open("w") as log:
        process = subprocess.Popen([sys.executable, "-m", "panel", "serve", app.__file__, "--port", str(port),
                                    "--address", "127.0.0.1"], stdout=log, stderr=subprocess.STDOUT,
                                   env={**os.environ, "OMP_NUM_THREADS": "1"})
        try:
            wait_until_listening(process, port, log_path)
            (header, _, content), growth = over_websocket(process, port, bomb_message(), page="/app")
            assert header["msgtype"] == "ERROR" and "inflates to more than 1,000,000 bytes" in content["text"]
            assert process.poll() is None and growth < 100_000_000, growth
            assert request(port, "/app")[0] == 200
        finally:
            process.terminate()
            process.wait(timeout=30)


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


def test_a_page_closed_mid_update_leaves_no_traceback_but_other_task_errors_still_do(caplog):
    """The one error of a page closed while the server wrote it an update (tornado's unawaited write
    task, ``WebSocketClosedError``) is dropped on the server's loop; any other still reaches the log."""
    from recogan_app.ui.server import quiet_closed_websockets

    async def closed_and_broken():
        quiet_closed_websockets()
        quiet_closed_websockets()  # once per loop: a second page does not wrap the handler again
        loop = asyncio.get_running_loop()
        for error in (WebSocketClosedError(), ValueError("a real bug")):
            loop.call_exception_handler({"message": "Task exception was never retrieved", "exception": error})

    with caplog.at_level("ERROR", logger="asyncio"):
        asyncio.run(closed_and_broken())
    assert "a real bug" in caplog.text and "WebSocketClosedError" not in caplog.text
    assert len(caplog.records) == 1
