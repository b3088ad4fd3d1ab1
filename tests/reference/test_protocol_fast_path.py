"""Codec tests for the server's fast path: large frames collected in pieces, ``next_message``.

FrameDecoder keeps the payload of a large frame as the pieces it was fed and
joins them once (reference/protocol.py, ``_JOIN_AT``); ``Connection.next_message``
hands the server a validated payload without building a Message.  Both must
be indistinguishable from the plain path: same payloads under every split,
the next frame's bytes kept, invalid UTF-8 refused (FRAME-4) however large.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reference.protocol import (
    NEED_DATA,
    Connection,
    ConnectionClosed,
    FrameDecoder,
    Message,
    Register,
    RemoteProtocolError,
    Role,
    encode_frame,
)

KIB = 1024
BIG = 200 * KIB  # well above the 64 KiB at which pieces are kept, below the default limit


def feed_in(decoder: FrameDecoder, wire: bytes, step: int) -> list[bytes]:
    """Feed ``wire`` ``step`` bytes at a time; every complete payload, in order."""
    out: list[bytes] = []
    for start in range(0, len(wire), step):
        decoder.feed(wire[start:start + step])
        while (frame := decoder.next_frame()) is not NEED_DATA:
            assert isinstance(frame, bytes)
            out.append(frame)
    return out


@pytest.mark.parametrize("step", [1000, 4096, 65536, 65536 + 7, BIG + 10, 10 * BIG])
def test_large_frame_in_pieces_then_small_frames(step: int) -> None:
    """A large payload comes out whole and the bytes after it stay buffered, at any read size."""
    big = bytes(range(256)) * (BIG // 256)
    wire = encode_frame(big) + encode_frame(b"after") + encode_frame(b"") + b"7   "
    decoder = FrameDecoder()
    assert feed_in(decoder, wire, step) == [big, b"after", b""]
    assert decoder.trailing_data == b"7   " and decoder.buffered == 4 and decoder.mid_frame


def test_missing_counts_down_while_a_large_frame_arrives() -> None:
    decoder = FrameDecoder()
    assert decoder.missing == 0
    decoder.feed(encode_frame(b"x" * BIG)[:10 + 1000])
    assert decoder.next_frame() is NEED_DATA
    assert decoder.missing == BIG - 1000 and decoder.buffered == 1000
    decoder.feed(b"x" * (BIG - 1000))
    assert decoder.missing == 0
    assert decoder.next_frame() == b"x" * BIG
    assert decoder.buffered == 0 and not decoder.mid_frame


@settings(max_examples=40, deadline=None)
@given(sizes=st.lists(st.sampled_from([0, 1, 100, 65535, 65536, 70000, 140000]), min_size=1,
                      max_size=5),
       cuts=st.lists(st.integers(min_value=1, max_value=300000), max_size=12))
def test_any_mix_of_sizes_under_any_split(sizes: list[int], cuts: list[int]) -> None:
    payloads = [bytes([65 + i]) * size for i, size in enumerate(sizes)]
    wire = b"".join(encode_frame(p) for p in payloads)
    decoder = FrameDecoder()
    out: list[bytes] = []
    points = sorted({c for c in cuts if c < len(wire)} | {0, len(wire)})
    for start, end in zip(points, points[1:], strict=False):
        decoder.feed(wire[start:end])
        while (frame := decoder.next_frame()) is not NEED_DATA:
            assert isinstance(frame, bytes)
            out.append(frame)
    assert out == payloads
    assert decoder.buffered == 0


def server_conn(name: bytes = b"ana") -> Connection:
    conn = Connection(Role.SERVER)
    conn.receive_data(encode_frame(name))
    return conn


@pytest.mark.parametrize("payload", [b"hi", b"", "zo\u00eb \U0001f600".encode(), b"y" * BIG],
                         ids=["ascii", "empty", "multibyte", "large"])
def test_next_message_is_next_events_payload(payload: bytes) -> None:
    fast, plain = server_conn(), server_conn()
    assert fast.next_message() == Register("ana") == plain.next_event()
    for conn in (fast, plain):
        conn.receive_data(encode_frame(payload))
    assert fast.next_message() == payload
    event = plain.next_event()
    assert isinstance(event, Message) and event.payload == payload
    assert fast.next_message() is NEED_DATA
    fast.receive_data(b"")
    assert isinstance(fast.next_message(), ConnectionClosed)


@pytest.mark.parametrize("payload", [b"\xc3(", b"ok \xff", b"z" * BIG + b"\xed\xa0\x80"],
                         ids=["truncated", "ff", "large-then-surrogate"])
def test_next_message_refuses_invalid_utf8(payload: bytes) -> None:
    """FRAME-4 on the fast path too, also when the bad bytes end a large, pieced payload."""
    conn = server_conn()
    conn.next_message()
    wire = encode_frame(payload)
    for start in range(0, len(wire), 65536):
        conn.receive_data(wire[start:start + 65536])
    with pytest.raises(RemoteProtocolError) as info:
        while conn.next_message() is not NEED_DATA:
            pass
    assert info.value.requirement == "FRAME-4"


def test_next_message_closed_mid_frame_is_an_error() -> None:
    conn = server_conn()
    conn.next_message()
    conn.receive_data(b"5         hel")
    assert conn.next_message() is NEED_DATA
    conn.receive_data(b"")
    with pytest.raises(RemoteProtocolError):
        conn.next_message()


def test_batch_relays_after_a_large_frame_was_begun_by_next_event() -> None:
    """next_relays (the load tools' batch path) takes over a payload next_frame kept in pieces."""
    conn = Connection(Role.CLIENT)
    big = b"q" * BIG
    wire = encode_frame(b"ana") + encode_frame(big) + encode_frame(b"bo") + encode_frame(b"hi")
    conn.receive_data(wire[:20_000])
    assert conn.next_event() is NEED_DATA  # the sender frame is kept as pending, the payload in pieces
    relays = conn.receive_relays(wire[20_000:])
    assert [(r.sender, len(r.text)) for r in relays] == [("ana", BIG), ("bo", 2)]
