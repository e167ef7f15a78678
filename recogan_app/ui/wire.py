"""Bounds on what one websocket message from a page can make the server hold.

Bokeh decodes every ``{"type": "bytes", "data": "<base64>"}`` value in an incoming message by
gunzipping it whole (``bokeh.core.serialization.Deserializer._decode_bytes``), before any check of
ours runs: a 660 kB message inflated to 500 MB (1 GB peak) in 0.9 s, and one at Bokeh's 20 MB
message limit would inflate to ~20 GB. Tornado's ``websocket_max_message_size`` bounds only what is
sent. :func:`guard_decoder` replaces that decoding with one that inflates incrementally and stops
past one upload chunk, the largest legitimate bytes value (a browser sends it as a binary frame,
never compressed; a Python Bokeh client would send it gzipped). The refusal is a
``DeserializationError``, which Bokeh's message handler answers with an ERROR reply on that
connection, the server and other pages unaffected.
"""

from __future__ import annotations

import base64
import zlib

from bokeh.core.serialization import DeserializationError, Deserializer

from recogan_app.ui.data import CappedFileDropper

UPLOAD_CHUNK_BYTES: int = CappedFileDropper.param.chunk_size.default
"""The most bytes one upload message carries, and so one bytes value may inflate to."""

WEBSOCKET_MAX_MESSAGE_BYTES = 2 * UPLOAD_CHUNK_BYTES
"""Largest websocket message ``recogan serve`` reads (Bokeh's default: 20 MB). A page sends an upload
chunk as one binary frame and every other message in a few kB; twice a chunk leaves room for a chunk
base64-encoded in JSON (4/3 of it) by another Bokeh client. Bokeh holds ~40 times a message while it
parses one of empty JSON objects (18 MB: +780 MB and 3.6 s; 2 MB: +86 MB, 0.25 s), hence this tight bound."""

_bokeh_decode_bytes = Deserializer._decode_bytes


def gunzip_capped(data: bytes, cap: int) -> bytes:
    """``gzip.decompress(data)``, refused with a ``DeserializationError`` as soon as the output passes
    ``cap`` bytes. It inflates 64 KiB at a time into one growing buffer, so a refusal costs about ``cap``
    bytes and milliseconds, whatever the input claims."""
    inflated = bytearray()
    while data:  # gzip allows several members one after another
        member = zlib.decompressobj(wbits=31)  # 31: gzip header and trailer
        pending = data
        while not member.eof:
            try:
                piece = member.decompress(pending, 1 << 16)
            except zlib.error as exc:
                raise DeserializationError(f"bytes value is not valid gzip: {exc}") from None
            if not piece and len(member.unconsumed_tail) == len(pending):
                raise DeserializationError("bytes value is truncated gzip")
            inflated += piece
            if len(inflated) > cap:
                raise DeserializationError(f"bytes value inflates to more than {cap:,} bytes, the most this "
                                           "server accepts in one value; message refused")
            pending = member.unconsumed_tail
        data = member.unused_data
    return bytes(inflated)


def _decode_bytes(self: Deserializer, obj):
    data = obj["data"]
    if isinstance(data, str):
        return gunzip_capped(base64.b64decode(data), UPLOAD_CHUNK_BYTES)
    return _bokeh_decode_bytes(self, obj)  # a binary frame: no bigger than the message that carried it


def guard_decoder() -> None:
    """Make this process's Bokeh decoder refuse a bytes value inflating past an upload chunk; call
    before serving (idempotent)."""
    Deserializer._decode_bytes = _decode_bytes
