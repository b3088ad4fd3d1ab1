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
    LocalProtocolError,
    Message,
    Register,
    Relay,
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


# --------------------------------------------------------------------------
# receive_messages: the server's batch read (one call per recv)
# --------------------------------------------------------------------------
def registered_conn() -> Connection:
    conn = server_conn()
    assert conn.next_message() == Register("ana")
    return conn


def batch_in(conn: Connection, wire: bytes, cuts: list[int]) -> list[bytes]:
    out: list[bytes] = []
    bounds = [0, *sorted(c for c in cuts if 0 < c < len(wire)), len(wire)]
    for a, b in zip(bounds, bounds[1:], strict=False):
        if b > a:
            out += conn.receive_messages(wire[a:b])
    return out


PAYLOADS = [b"hi", b"", "zo\u00eb \U0001f600".encode(), b"y" * BIG, b"fan-out benchmark message 32 B!!"]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(PAYLOADS), max_size=8),
       st.lists(st.integers(min_value=1, max_value=3 * BIG), max_size=6))
def test_receive_messages_equals_next_message_under_every_split(payloads: list[bytes],
                                                                 cuts: list[int]) -> None:
    wire = b"".join(encode_frame(p) for p in payloads) + b"4  "
    batch, plain = registered_conn(), registered_conn()
    got = batch_in(batch, wire, cuts)
    plain.receive_data(wire)
    want = []
    while (payload := plain.next_message()) is not NEED_DATA:
        want.append(payload)
    assert got == want == payloads
    assert batch.buffered == 3 and batch.mid_frame and not batch.errored


def test_receive_messages_keeps_a_large_payload_in_pieces() -> None:
    """An incomplete large frame goes to next_frame, which collects it in pieces (no regrowth)."""
    conn = registered_conn()
    wire = encode_frame(b"a") + encode_frame(b"z" * BIG)
    assert conn.receive_messages(wire[:70_000]) == [b"a"]
    assert conn.missing == BIG - (70_000 - 11 - 10) and conn._decoder._chunks is not None
    assert conn.receive_messages(wire[70_000:]) == [b"z" * BIG]


@pytest.mark.parametrize("bad, rule", [(b"x" * 10, "FRAME-3"), (b"\xff", "FRAME-4"),
                                       (b"9999999999", "FRAME-6"), (b"1 2       ", "FRAME-3")])
def test_receive_messages_relays_what_came_before_a_bad_frame(bad: bytes, rule: str) -> None:
    """Good frames before a bad one are returned; the connection is then in ERROR state."""
    conn = registered_conn()
    wire = encode_frame(b"one") + encode_frame(b"two") + (encode_frame(bad) if rule == "FRAME-4" else bad)
    assert conn.receive_messages(wire) == [b"one", b"two"]
    assert conn.errored and conn.error is not None and conn.error.requirement == rule
    with pytest.raises(RemoteProtocolError):
        conn.receive_messages(encode_frame(b"three"))


def test_receive_messages_raises_when_the_first_frame_is_bad() -> None:
    conn = registered_conn()
    with pytest.raises(RemoteProtocolError) as info:
        conn.receive_messages(encode_frame(b"ok \xc3("))
    assert info.value.requirement == "FRAME-4" and info.value.__traceback__ is not None
    assert conn.errored


def test_receive_messages_needs_a_registered_open_peer() -> None:
    with pytest.raises(LocalProtocolError):
        server_conn().receive_messages(encode_frame(b"hi"))  # username not read yet
    with pytest.raises(LocalProtocolError):
        registered_conn().receive_messages(b"")  # end of stream goes through receive_data


# --------------------------------------------------------------------------
# The one header/limit loop of both batch readers (take_frames, next_relays)
# --------------------------------------------------------------------------
BAD_TAILS = [(b"x" * 10, "FRAME-3"), (b"12a", "FRAME-3"), (b"9999999999", "FRAME-6"),
             (b"1 2       ", "FRAME-3")]


@pytest.mark.parametrize("bad, rule", BAD_TAILS)
def test_take_frames_errors_carry_no_traceback_and_keep_the_bad_bytes(bad: bytes, rule: str) -> None:
    """The error is made, not raised, so it holds no caller's frame; as next_frame, the bytes stay."""
    decoder = FrameDecoder()
    frames, error = decoder.take_frames(encode_frame(b"one") + bad)
    assert frames == [b"one"]
    assert error is not None and error.requirement == rule and error.__traceback__ is None
    with pytest.raises(RemoteProtocolError) as again:
        decoder.next_frame()
    assert again.value.requirement == rule


@pytest.mark.parametrize("bad, rule", BAD_TAILS)
def test_next_relays_raises_a_fresh_error_after_the_good_relays(bad: bytes, rule: str) -> None:
    conn = Connection(Role.CLIENT)
    assert conn.receive_relays(encode_frame(b"ana") + encode_frame(b"hi") + bad) == [Relay("ana", "hi")]
    assert conn.error is not None and conn.error.requirement == rule and conn.error.__traceback__ is None
    with pytest.raises(RemoteProtocolError) as info:
        conn.next_relays()
    assert info.value.requirement == rule and info.value is not conn.error


def test_take_frames_keeps_a_large_payload_that_begins_a_read_in_pieces() -> None:
    """Header and first bytes of a large payload at the start of a read: pieces, no copy."""
    decoder = FrameDecoder()
    wire = encode_frame(b"z" * BIG) + encode_frame(b"next")
    first = wire[:70_000]
    assert decoder.take_frames(first) == ([], None)
    assert decoder._chunks is not None and decoder.missing == BIG - (70_000 - 10)
    assert decoder.take_frames(wire[70_000:]) == ([b"z" * BIG, b"next"], None)
    assert decoder.buffered == 0 and not decoder.mid_frame


@pytest.mark.parametrize("payload", ["na\u00efve second message".encode(), b"q" * BIG],
                         ids=["small-utf8", "large"])
def test_a_header_alone_in_a_read_then_its_payload(payload: bytes) -> None:
    """A read that ends right after a header: the header is taken, the payload comes next
    (conformance relay.basic[header-payload-split] caught this in the shared loop)."""
    wire = encode_frame(payload) + encode_frame(b"next")
    for split in (10, 10 + len(payload) // 2):
        conn = registered_conn()
        got = conn.receive_messages(wire[:split])
        got += conn.receive_messages(wire[split:]) if split < len(wire) else []
        assert got == [payload, b"next"] and not conn.errored and conn.buffered == 0
        decoder = FrameDecoder()
        first, error = decoder.take_frames(wire[:split])
        assert error is None and decoder.mid_frame and decoder.missing == len(payload) - (split - 10)
        rest, error = decoder.take_frames(wire[split:])
        assert error is None and first + rest == [payload, b"next"]
