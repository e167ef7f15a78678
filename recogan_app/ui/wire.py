"""Bounds on what one websocket message from a page can make the server hold.

Bokeh decodes every ``{"type": "bytes", "data": "<base64>"}`` value in an incoming message by
gunzipping it whole (``bokeh.core.serialization.Deserializer._decode_bytes``), before any check of
ours runs: a 648 kB message inflated to 500 MB in 1.5 s, and one at the message size limit would
inflate to ~20 GB. Tornado's ``websocket_max_message_size`` bounds only what is sent, not what it
inflates to. :func:`guard_decoder` replaces that decoding with one that inflates incrementally and
stops at :func:`decoded_bytes_cap`; the refusal is a ``DeserializationError``, which Bokeh's message
handler answers with an ERROR reply on that connection, the server and other pages unaffected.

The largest legitimate bytes value is one upload chunk (a browser sends it as a binary frame, never
compressed; a Python Bokeh client would send it gzipped), so the cap is a chunk, or the upload limit
when that is smaller.
"""

from __future__ import annotations

import base64
import zlib

from bokeh.core.serialization import Deserializer, DeserializationError

from recogan_app.ui.data import CappedFileDropper, DataView

UPLOAD_CHUNK_BYTES: int = CappedFileDropper.param.chunk_size.default
"""How much of a file one upload message carries (Panel's FileDropper default)."""

WEBSOCKET_MAX_MESSAGE_BYTES = 2 * UPLOAD_CHUNK_BYTES
"""Largest websocket message the server reads. A page sends an upload chunk as one binary frame of
``UPLOAD_CHUNK_BYTES`` and every other message in a few kB; twice a chunk leaves room for a chunk
base64-encoded in JSON (4/3 of it) by another Bokeh client. Equal to Bokeh's default (20 MB), stated
here so that it moves with the chunk size."""

_bokeh_decode_bytes = Deserializer._decode_bytes
_cap = 0  # set by guard_decoder


def decoded_bytes_cap(max_upload_mb: int | None = None) -> int:
    """Most bytes one value in a message may inflate to: an upload chunk, or the whole upload limit
    when that is smaller (``None``: the dashboard's default limit)."""
    max_upload_mb = DataView.param.max_upload_mb.default if max_upload_mb is None else int(max_upload_mb)
    return min(UPLOAD_CHUNK_BYTES, max_upload_mb * 1_000_000)


def gunzip_capped(data: bytes, cap: int) -> bytes:
    """``gzip.decompress(data)``, refused with a ``DeserializationError`` as soon as the output passes
    ``cap`` bytes. It inflates 64 KiB at a time into one growing buffer, so a refusal costs about ``cap``
    bytes and a millisecond per MB whatever the input claims."""
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
        return gunzip_capped(base64.b64decode(data), _cap)
    return _bokeh_decode_bytes(self, obj)  # a binary frame: no bigger than the message that carried it


def guard_decoder(max_upload_mb: int | None = None) -> int:
    """Make this process's Bokeh decoder refuse a bytes value inflating past
    :func:`decoded_bytes_cap`; call before serving (idempotent, the last cap wins). Returns the cap."""
    global _cap
    _cap = decoded_bytes_cap(max_upload_mb)
    Deserializer._decode_bytes = _decode_bytes
    return _cap
