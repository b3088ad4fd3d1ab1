"""Codec tests: golden vectors both ways, every split, malformed headers, properties.

Shaped like h11's tests/test_io.py: each vector is checked by encoding it and
by decoding it fed whole, one byte at a time, and with trailing bytes that
must remain buffered.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference.protocol import (
    DEFAULT_MAX_PAYLOAD,
    DEFAULT_MAX_USERNAME,
    MIN_MAX_PAYLOAD,
    MIN_MAX_USERNAME,
    NEED_DATA,
    Connection,
    ConnectionClosed,
    Event,
    FrameDecoder,
    LocalProtocolError,
    Message,
    Register,
    Relay,
    RemoteProtocolError,
    Role,
    encode_frame,
    encode_header,
    parse_header,
)

# (events as the client sends them, the exact wire bytes)
CLIENT_VECTORS: list[tuple[list[Event], bytes]] = [
    ([Register("ana")], b"3         ana"),
    ([Register("ana"), Message("hello")], b"3         ana5         hello"),
    ([Register("zoë"), Message("")], b"4         zo\xc3\xab0         "),
    ([Register("x"), Message("😀 ok")], b"1         x7         \xf0\x9f\x98\x80 ok"),
]
# (events as the server sends them, the exact wire bytes)
SERVER_VECTORS: list[tuple[list[Event], bytes]] = [
    ([Relay("ana", "hi")], b"3         ana2         hi"),
    ([Relay("bo", ""), Relay("ana", "é")], b"2         bo0         3         ana2         \xc3\xa9"),
]


def encode_all(role: Role, events: list[Event]) -> bytes:
    conn = Connection(role)
    return b"".join(conn.send(e) for e in events)


def drain(conn: Connection) -> list[Event]:
    out: list[Event] = []
    while (event := conn.next_event()) is not NEED_DATA:
        assert not isinstance(event, type(NEED_DATA))
        out.append(event)
        if isinstance(event, ConnectionClosed):
            break
    return out


def decode_chunks(role: Role, chunks: list[bytes], eof: bool = False) -> tuple[list[Event], Connection]:
    conn = Connection(role)
    events: list[Event] = []
    for chunk in chunks:
        conn.receive_data(chunk)
        events += drain(conn)
    if eof:
        conn.receive_data(b"")
        events += drain(conn)
    return events, conn


def tr(receiver: Role, events: list[Event], wire: bytes) -> None:
    """Check one vector both ways, fed whole, byte by byte, and with trailing bytes."""
    __tracebackhide__ = True
    sender = Role.CLIENT if receiver is Role.SERVER else Role.SERVER
    assert encode_all(sender, events) == wire
    assert decode_chunks(receiver, [wire])[0] == events
    assert decode_chunks(receiver, [wire[i:i + 1] for i in range(len(wire))])[0] == events
    got, conn = decode_chunks(receiver, [wire + b"7   "])
    assert got == events
    assert conn.buffered == 4 and conn.mid_frame
    assert decode_chunks(receiver, [wire], eof=True)[0] == [*events, ConnectionClosed()]


@pytest.mark.parametrize(("events", "wire"), CLIENT_VECTORS)
def test_client_to_server_vectors(events: list[Event], wire: bytes) -> None:
    tr(Role.SERVER, events, wire)


@pytest.mark.parametrize(("events", "wire"), SERVER_VECTORS)
def test_server_to_client_vectors(events: list[Event], wire: bytes) -> None:
    tr(Role.CLIENT, events, wire)


def test_header_is_canonical_and_counts_bytes() -> None:
    assert encode_header(0) == b"0         "
    assert encode_header(1234567890) == b"1234567890"
    assert encode_frame("é".encode()) == b"2         \xc3\xa9"
    with pytest.raises(LocalProtocolError):
        encode_header(10**10)
    with pytest.raises(LocalProtocolError):
        encode_header(-1)


@pytest.mark.parametrize("header", [b"5         ", b"         5", b"0000000005", b"  5       "])
def test_lenient_headers_accepted(header: bytes) -> None:
    """FRAME-7: digits with spaces around them, right-justified or zero-padded."""
    assert parse_header(header) == 5


@pytest.mark.parametrize("header", [
    b"+5        ", b"-1        ", b"          ", b"1_0       ", b"5\t        ",
    b"1 0       ", b"\xd9\xa3        ", b"hello\n    ",
])
def test_malformed_headers_rejected(header: bytes) -> None:
    """FRAME-3: anything but ASCII digits (and spaces around them) is a protocol error."""
    decoder = FrameDecoder()
    decoder.feed(header + b"xxxxx")
    with pytest.raises(RemoteProtocolError) as info:
        decoder.next_frame()
    assert info.value.requirement == "FRAME-3"


def test_garbage_header_rejected_before_ten_bytes() -> None:
    """A header that can never be valid fails at once, not after 10 bytes arrive."""
    decoder = FrameDecoder()
    decoder.feed(b"GET ")
    with pytest.raises(RemoteProtocolError):
        decoder.next_frame()


def test_over_limit_rejected_before_payload_is_buffered() -> None:
    """FRAME-6: the limit is checked from the header alone."""
    decoder = FrameDecoder(max_payload=100)
    decoder.feed(encode_header(101))
    with pytest.raises(RemoteProtocolError) as info:
        decoder.next_frame()
    assert info.value.requirement == "FRAME-6"
    decoder = FrameDecoder(max_payload=100)
    decoder.feed(encode_frame(b"a" * 100))
    assert decoder.next_frame() == b"a" * 100


def test_default_limit_meets_the_floor() -> None:
    assert DEFAULT_MAX_PAYLOAD >= MIN_MAX_PAYLOAD


@pytest.mark.parametrize(("wire", "requirement"), [
    (b"1         \xff", "FRAME-4"),                # invalid UTF-8 username
    (b"1         a2         \xc3(", "FRAME-4"),    # invalid UTF-8 message
    (b"0         ", "JOIN-2"),                      # empty username
])
def test_server_side_payload_errors(wire: bytes, requirement: str) -> None:
    conn = Connection(Role.SERVER)
    conn.receive_data(wire)
    with pytest.raises(RemoteProtocolError) as info:
        drain(conn)
    assert info.value.requirement == requirement


def test_close_mid_frame_is_an_error_and_clean_close_is_an_event() -> None:
    conn = Connection(Role.SERVER)
    conn.receive_data(b"3         an")
    conn.receive_data(b"")
    with pytest.raises(RemoteProtocolError):
        conn.next_event()
    conn = Connection(Role.CLIENT)
    conn.receive_data(b"3         ana")   # half a relay: the sender without its message
    conn.receive_data(b"")
    with pytest.raises(RemoteProtocolError):
        conn.next_event()


def test_local_misuse() -> None:
    client = Connection(Role.CLIENT)
    with pytest.raises(LocalProtocolError):
        client.send(Message("before register"))
    with pytest.raises(LocalProtocolError):
        client.send(Register(""))
    client.send(Register("ana"))
    with pytest.raises(LocalProtocolError):
        client.send(Register("again"))
    with pytest.raises(LocalProtocolError):
        client.send(Relay("a", "b"))
    with pytest.raises(LocalProtocolError):
        Connection(Role.SERVER).send(Message("x"))
    server = Connection(Role.SERVER)
    server.receive_data(b"")
    with pytest.raises(LocalProtocolError):
        server.receive_data(b"x")


@pytest.mark.parametrize(("role", "wire", "then"), [
    # Client side: a FRAME-4 error in a relay's message frame left its sender
    # pending, and the next frame became a message from that stale sender.
    (Role.CLIENT, b"3         ana1         \xff", b"2         bo2         hi"),
    # Server side: after a bad header nothing later can be framed (FRAME-3).
    (Role.SERVER, b"3         anaGET / HTTP/1.1", b"2         hi"),
    # Server side: a refused username (JOIN-2) refuses what follows it too.
    (Role.SERVER, b"0         ", b"3         ana2         hi"),
])
def test_no_event_after_a_protocol_error(role: Role, wire: bytes, then: bytes) -> None:
    """After a RemoteProtocolError the connection is in ERROR, as in h11: no event ever again."""
    conn = Connection(role)
    conn.receive_data(wire)
    with pytest.raises(RemoteProtocolError) as first:
        drain(conn)
    assert conn.errored
    conn.receive_data(then)
    for _ in range(2):  # it stays refused
        with pytest.raises(RemoteProtocolError) as again:
            conn.next_event()
        assert again.value.requirement == first.value.requirement
        assert "ERROR state" in str(again.value)
    assert conn.buffered == 0  # nothing is held for a stream that can no longer be parsed


@pytest.mark.parametrize("text", ["\ud800", "ok \udfff", "\udc80x"])
def test_lone_surrogate_is_a_local_protocol_error(text: str) -> None:
    """A str that is not encodable as UTF-8 is our caller's error, not a UnicodeEncodeError."""
    client = Connection(Role.CLIENT)
    with pytest.raises(LocalProtocolError, match="lone surrogate"):
        client.send(Register(text))
    assert client.send(Register("ana")) == b"3         ana"  # the failed send changed nothing
    with pytest.raises(LocalProtocolError, match="lone surrogate"):
        client.send(Message(text))
    with pytest.raises(LocalProtocolError, match="lone surrogate"):
        Connection(Role.SERVER).send(Relay(text, "hi"))
    with pytest.raises(LocalProtocolError, match="lone surrogate"):
        Connection(Role.SERVER).send(Relay("ana", text))


def test_username_limit_is_checked_from_the_header() -> None:
    """JOIN-6: an over-long username is refused before it is buffered; messages keep FRAME-6."""
    assert MIN_MAX_USERNAME <= DEFAULT_MAX_USERNAME
    conn = Connection(Role.SERVER)
    conn.receive_data(encode_header(DEFAULT_MAX_USERNAME + 1))
    with pytest.raises(RemoteProtocolError) as info:
        conn.next_event()
    assert info.value.requirement == "JOIN-6"
    name = "n" * DEFAULT_MAX_USERNAME
    big = b"m" * (DEFAULT_MAX_USERNAME * 4)
    events, _ = decode_chunks(Role.SERVER, [encode_frame(name.encode()) + encode_frame(big)])
    assert events == [Register(name), Message(big.decode())]
    conn = Connection(Role.SERVER, max_payload=100, max_username=8)
    conn.receive_data(encode_frame(b"12345678") + encode_header(101))
    assert conn.next_event() == Register("12345678")
    with pytest.raises(RemoteProtocolError) as info:
        conn.next_event()
    assert info.value.requirement == "FRAME-6"


def test_registration_state() -> None:
    conn = Connection(Role.SERVER)
    assert not conn.registered and conn.name is None
    conn.receive_data(b"3         ana5         hello")
    assert drain(conn) == [Register("ana"), Message("hello")]
    assert conn.registered and conn.name == "ana"


# -- properties ---------------------------------------------------------------
texts = st.text(max_size=200)
names = st.text(min_size=1, max_size=30)


@st.composite
def splits(draw: st.DrawFn, data: bytes) -> list[bytes]:
    cuts = sorted(draw(st.sets(st.integers(0, len(data)), max_size=12)))
    bounds = [0, *cuts, len(data)]
    # b"" means end of stream to the codec, so a split never yields an empty chunk.
    return [data[a:b] for a, b in zip(bounds, bounds[1:], strict=False) if b > a]


@given(name=names, messages=st.lists(texts, max_size=8), data=st.data())
def test_round_trip_under_any_split_client_to_server(
        name: str, messages: list[str], data: st.DataObject) -> None:
    events: list[Event] = [Register(name), *(Message(m) for m in messages)]
    wire = encode_all(Role.CLIENT, events)
    chunks = data.draw(splits(wire))
    assert decode_chunks(Role.SERVER, chunks, eof=True)[0] == [*events, ConnectionClosed()]


@given(relays=st.lists(st.tuples(names, texts), max_size=8), data=st.data())
def test_round_trip_under_any_split_server_to_client(
        relays: list[tuple[str, str]], data: st.DataObject) -> None:
    events: list[Event] = [Relay(s, t) for s, t in relays]
    wire = encode_all(Role.SERVER, events)
    chunks = data.draw(splits(wire))
    assert decode_chunks(Role.CLIENT, chunks)[0] == events


@given(st.binary(max_size=64))
def test_arbitrary_bytes_never_crash_the_decoder(blob: bytes) -> None:
    """Any byte string yields frames, NEED_DATA or RemoteProtocolError, nothing else."""
    conn = Connection(Role.SERVER)
    conn.receive_data(blob)
    try:
        drain(conn)
    except RemoteProtocolError:
        pass
