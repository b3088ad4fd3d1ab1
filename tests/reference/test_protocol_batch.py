"""``Connection.next_relays``: the batched client-side decode agrees with ``next_event`` exactly."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference.protocol import (
    NEED_DATA,
    Connection,
    Relay,
    RemoteProtocolError,
    Role,
    encode_frame,
)

WIRE = b"".join(encode_frame(s.encode()) + encode_frame(t.encode())
                for s, t in [("ana", "hi"), ("bo", ""), ("cé", "ü" * 300), ("d", "x" * 5000)])
EXPECTED = [Relay("ana", "hi"), Relay("bo", ""), Relay("cé", "ü" * 300), Relay("d", "x" * 5000)]


def _one_by_one(conn: Connection) -> list[Relay]:
    out = []
    while (event := conn.next_event()) is not NEED_DATA:
        assert isinstance(event, Relay)
        out.append(event)
    return out


def _batched(conn: Connection) -> list[Relay]:
    out: list[Relay] = []
    while relays := conn.next_relays():
        out.extend(relays)
    return out


@given(st.lists(st.integers(min_value=1, max_value=len(WIRE)), max_size=12))
def test_batched_relays_equal_event_by_event_for_any_split(cuts: list[int]) -> None:
    points = sorted({0, len(WIRE), *cuts})
    batched, single, direct = Connection(Role.CLIENT), Connection(Role.CLIENT), Connection(Role.CLIENT)
    got_batched: list[Relay] = []
    got_single: list[Relay] = []
    got_direct: list[Relay] = []
    for a, b in zip(points, points[1:], strict=False):
        batched.receive_data(WIRE[a:b])
        single.receive_data(WIRE[a:b])
        got_batched += _batched(batched)
        got_single += _one_by_one(single)
        got_direct += direct.receive_relays(WIRE[a:b])  # parsed in place when nothing is left over
    assert got_batched == got_single == got_direct == EXPECTED
    assert not batched.mid_frame and not direct.mid_frame


@given(st.lists(st.integers(min_value=1, max_value=len(WIRE)), max_size=12))
def test_relay_frames_are_the_relays_payloads_for_any_split(cuts: list[int]) -> None:
    """``receive_relay_frames`` (the load generator's path): the same relays, as flat UTF-8 bytes,
    whole pairs only, a sender frame that waits for its message in another read included."""
    points = sorted({0, len(WIRE), *cuts})
    conn = Connection(Role.CLIENT)
    frames: list[bytes] = []
    for a, b in zip(points, points[1:], strict=False):
        got = conn.receive_relay_frames(WIRE[a:b])
        assert len(got) % 2 == 0 and all(type(f) is bytes for f in got)
        frames += got
    assert frames == [part.encode() for relay in EXPECTED for part in (relay.sender, relay.text)]
    assert not conn.mid_frame


def test_relay_frames_keep_the_good_relays_before_a_bad_frame() -> None:
    conn = Connection(Role.CLIENT)
    assert conn.receive_relay_frames(encode_frame(b"ana") + encode_frame(b"hi") + encode_frame(b"bo")
                                     + encode_frame(b"\xff")) == [b"ana", b"hi"]
    with pytest.raises(RemoteProtocolError) as caught:
        conn.next_relay_frames()
    assert caught.value.requirement == "FRAME-4"


def test_trailing_bytes_stay_buffered_for_the_next_read() -> None:
    conn = Connection(Role.CLIENT)
    conn.receive_data(WIRE + b"7         ab")
    assert conn.next_relays() == EXPECTED and conn.next_relays() == []
    assert conn.mid_frame and conn.buffered == 2
    conn.receive_data(b"cdefg" + encode_frame(b"text"))
    assert conn.next_relays() == [Relay("abcdefg", "text")]


@pytest.mark.parametrize(("bad", "requirement"), [
    (b"-1        ", "FRAME-3"),                     # a sign in the header
    (b"12x", "FRAME-3"),                            # a partial header that can never be valid
    (encode_frame(b"\xff\xfe"), "FRAME-4"),         # not UTF-8
    (b"99999999  ", "FRAME-6"),                     # above the payload limit
])
def test_good_relays_before_a_bad_frame_come_first_then_the_error(bad: bytes, requirement: str) -> None:
    conn = Connection(Role.CLIENT, max_payload=1 << 20)
    conn.receive_data(WIRE + bad)
    assert conn.next_relays() == EXPECTED
    with pytest.raises(RemoteProtocolError) as exc:
        conn.next_relays()
    assert exc.value.requirement == requirement
    fresh = Connection(Role.CLIENT, max_payload=1 << 20)
    fresh.receive_data(bad)
    with pytest.raises(RemoteProtocolError):      # nothing good before it: raised at once
        fresh.next_relays()


def test_relay_batches_refuse_to_go_on_after_a_protocol_error() -> None:
    """ERROR state on the batch path too: after a FRAME-4 message frame, later good bytes never
    pair the stale sender ("ana") with the next frame; every later call names the first error."""
    conn = Connection(Role.CLIENT)
    with pytest.raises(RemoteProtocolError) as first:
        conn.receive_relays(encode_frame(b"ana") + encode_frame(b"\xff"))
    assert first.value.requirement == "FRAME-4" and conn.errored
    for again in (lambda: conn.receive_relays(encode_frame(b"bo") + encode_frame(b"hi")),
                  conn.next_relays, conn.next_event):
        with pytest.raises(RemoteProtocolError, match="ERROR state") as info:
            again()
        assert info.value.requirement == "FRAME-4"
    assert conn.buffered == 0


def test_receive_relays_keeps_a_partial_tail_and_reports_errors_like_next_relays() -> None:
    conn = Connection(Role.CLIENT)
    assert conn.receive_relays(WIRE[:-3]) == EXPECTED[:-1] and conn.mid_frame
    assert conn.receive_relays(WIRE[-3:]) == EXPECTED[-1:] and not conn.mid_frame
    assert conn.receive_relays(WIRE + b"-1        ") == EXPECTED
    with pytest.raises(RemoteProtocolError):
        conn.receive_relays(b"")


def test_one_relay_per_read_takes_the_short_path_and_agrees_with_event_by_event() -> None:
    """A receiver that keeps up reads one whole relay at a time: the commonest read of all."""
    relays = [Relay("c12", "12:5:99:xx"), Relay("bo", ""), Relay("cé", "ü"), Relay("c12", "12:6:99:xx"),
              Relay("ana", "x" * 5000), Relay("ana", "x" * 5000)]
    fast, slow = Connection(Role.CLIENT), Connection(Role.CLIENT)
    for relay in relays * 2:  # the second pass finds every header already parsed
        wire = encode_frame(relay.sender.encode()) + encode_frame(relay.text.encode())
        got = fast.receive_relays(wire)
        slow.receive_data(wire)
        assert got == _one_by_one(slow) == [relay]
        assert type(got[0].sender) is str and not fast.mid_frame
    # A read that ends between the two frames, then one that completes it with one more relay.
    wire = encode_frame(b"c12") + encode_frame(b"12:7:99:xx")
    assert fast.receive_relays(wire[:13]) == [] and fast.mid_frame
    assert fast.receive_relays(wire[13:] + wire) == [Relay("c12", "12:7:99:xx")] * 2


def test_the_short_path_applies_this_connections_payload_limit() -> None:
    """Parsed headers are shared by every connection; the limit is each connection's own."""
    wire = encode_frame(b"ana") + encode_frame(b"x" * 50)
    assert Connection(Role.CLIENT).receive_relays(wire) == [Relay("ana", "x" * 50)]  # header now known
    small = Connection(Role.CLIENT, max_payload=20)
    with pytest.raises(RemoteProtocolError) as exc:
        small.receive_relays(wire)
    assert exc.value.requirement == "FRAME-6"
