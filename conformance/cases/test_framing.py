"""Frames (PROTOCOL.md section 1): headers, byte counts, sizes, and what a bad frame must cause."""

from __future__ import annotations

import pytest

from conformance.peer import CaseFailure, Peer, Room
from conformance.requirements import case
from conformance.scenarios import (
    BAD_HEADERS,
    INVALID_UTF8,
    OVER_LIMIT_HEADER,
    first_non_canonical,
    header_of,
)
from reference.protocol import MIN_MAX_PAYLOAD, Relay, encode_frame, encode_header


@case("frame.canonical-headers", "FRAME-2")
def test_canonical_headers(chat_room: Room) -> None:
    """FRAME-2: both frames of every relay carry the canonical header f"{n:<10}"."""
    ana = chat_room.join("ana")
    bea = chat_room.join("bea", keep_received=True)
    texts = ["x", "ten bytes!", "a" * 12345]
    for text in texts:
        ana.send(text)
    bea.expect_relays([Relay("ana", t) for t in texts])
    bad = first_non_canonical(bea.received)
    if bad is not None:
        offset, header = bad
        raise CaseFailure("every header bea receives is the length left-justified in 10 bytes, "
                          'e.g. b"3         "', f"the header {header!r} at byte {offset} of bea's stream")


@case("frame.lenient-header-relayed-canonically", "FRAME-2")
def test_lenient_header_relayed_canonically(chat_room: Room) -> None:
    """FRAME-2: a message sent with a right-justified header is relayed with a canonical one (or refused)."""
    ana = chat_room.join("ana")
    bea = chat_room.join("bea", keep_received=True)
    sent = b"         5"
    ana.send_raw(sent + b"hello", "a message with a right-justified header")
    ana.send("after")
    try:
        first = bea.receive(bea.timeouts.arrive)
    except (TimeoutError, ConnectionError):
        return  # refused (FRAME-7 allows that); frame.lenient-headers reports it
    if first == Relay("ana", "hello"):
        header = header_of(bea.received, b"hello")
        if header is not None and header != encode_header(5):
            # Only a server whose own frames (the username's) are canonical can be said to copy.
            own = header_of(bea.received, b"ana")
            if own is not None and own != encode_header(3):
                how = f"the server writes non-canonical headers itself (ana's username frame: {own!r})"
            elif header == sent:
                how = "the server copied the sender's header instead of writing its own"
            else:
                how = "not the canonical form"
            raise CaseFailure('the relay of "hello" has the header b"5         "',
                              f"the header {header!r}: {how}")


@case("frame.utf8-byte-counts", "FRAME-1")
def test_utf8_byte_counts(chat_room: Room) -> None:
    """FRAME-1: lengths count bytes, not characters: multi-byte names and messages arrive intact."""
    ana = chat_room.join("Zoë 日本")
    bea = chat_room.join("bea")
    texts = ["naïve café", "日本語のテキスト", "emoji 🎉🚀 and more", "ÿ" * 300]
    for text in texts:
        ana.send(text)
    bea.expect_relays([Relay("Zoë 日本", t) for t in texts])


@case("frame.zero-length-message", "FRAME-8")
def test_zero_length_message(chat_room: Room) -> None:
    """FRAME-8: an empty message is a valid frame, relayed like any other, and the stream goes on."""
    ana, bea = chat_room.join_all("ana", "bea")
    ana.send("")
    ana.send("after the empty one")
    bea.expect_relays([Relay("ana", ""), Relay("ana", "after the empty one")])


@case("frame.large-message", "FRAME-5")
def test_large_message(chat_room: Room) -> None:
    """FRAME-5: a message of exactly 1 MiB is relayed intact, and a small one after it too."""
    ana, bea = chat_room.join_all("ana", "bea")
    unit = "0123456789abcdefghijklmnopqrstuvwxyzé"  # é: a two-byte character now and then
    text = unit * (MIN_MAX_PAYLOAD // len(unit.encode()))
    text += "." * (MIN_MAX_PAYLOAD - len(text.encode()))  # exactly 1 MiB of bytes
    frame = encode_frame(text.encode())
    # In four sends, 10 ms apart, as a busy network delivers it: a server that reads the
    # payload with one recv() then sees a part of it, however large its socket buffers.
    quarter = len(frame) // 4
    ana.send_pieces([frame[i:i + quarter] for i in range(0, len(frame), quarter)], gap=0.01)
    ana.send("small one after")
    got = bea.next_relay("ana's 1 MiB message", timeout=bea.timeouts.arrive * 2)
    if got != Relay("ana", text):
        _raise_if_cut(bea, got, text)
        same = next((i for i, (x, y) in enumerate(zip(got.text, text, strict=False)) if x != y),
                    min(len(got.text), len(text)))
        raise CaseFailure(f"bea receives ana's {MIN_MAX_PAYLOAD}-byte message intact",
                          f"a relay from {got.sender!r} of {len(got.text.encode())} bytes, "
                          f"differing from the original at character {same}")
    bea.expect_relay("ana", "small one after")


def _raise_if_cut(bea: Peer, got: Relay, text: str) -> None:
    """Tell truncation from a partial read: a shorter copy of the start, *then the next message*.

    A server that reads the payload with one recv() relays the part it got and then reads the
    rest of the payload as the next header, so what follows is garbage or nothing (ROBUST-1).
    A server that cuts long messages relays a well-framed prefix and stays in step: the next
    relay is the small message, intact (RELAY-1: relayed byte for byte, never cut).
    """
    __tracebackhide__ = True
    kept = got.text.rstrip("\ufffd")  # a cut inside a two-byte character
    if got.sender != "ana" or not kept or len(kept) >= len(text) or not text.startswith(kept):
        return
    try:
        after = bea.next_relay("the small message after the large one", timeout=bea.timeouts.arrive)
    except CaseFailure:
        return
    if after == Relay("ana", "small one after"):
        raise CaseFailure(f"bea receives ana's {MIN_MAX_PAYLOAD}-byte message intact",
                          f"the message cut to its first {len(got.text.encode())} bytes, in a frame of "
                          "its own, then the next message in step: the server truncated it")


@case("frame.bad-header", "FRAME-3")
@pytest.mark.parametrize("header", [pytest.param(h, id=name) for name, h in BAD_HEADERS.items()])
def test_bad_header(chat_room: Room, header: bytes) -> None:
    """FRAME-3: a header that is not a decimal length closes that connection; nothing of it is relayed."""
    ana, bea, mallory = chat_room.join_all("ana", "bea", "mallory")
    mallory.send_raw(header + b"hello", "the frame with a bad header")
    mallory.expect_closed(f"its header {header!r} is not a decimal length")
    ana.send("after the bad header")
    bea.expect_relay("ana", "after the bad header")


@case("frame.invalid-utf8", "FRAME-4")
@pytest.mark.parametrize("where", ["name", "message"])
def test_invalid_utf8(chat_room: Room, where: str) -> None:
    """FRAME-4: a username or message that is not UTF-8 closes that connection and is not relayed."""
    ana, bea = chat_room.join_all("ana", "bea")
    if where == "name":
        mallory = chat_room.connect("mallory")
    else:
        mallory = chat_room.join("mallory")
    mallory.send_raw(encode_frame(INVALID_UTF8), f"a {where} that is not UTF-8")
    mallory.expect_closed(f"its {where} {INVALID_UTF8!r} is not UTF-8")
    ana.send("after the invalid bytes")
    bea.expect_relay("ana", "after the invalid bytes")


@case("frame.over-limit", "FRAME-6")
def test_over_limit(chat_room: Room) -> None:
    """FRAME-6: a header declaring 9,999,999,999 bytes closes the connection before any payload."""
    ana, bea, mallory = chat_room.join_all("ana", "bea", "mallory")
    mallory.send_raw(OVER_LIMIT_HEADER, "the over-limit header")
    mallory.expect_closed("the declared length is above any server's limit; "
                          "the header alone must be enough to decide")
    ana.send("after the huge header")
    bea.expect_relay("ana", "after the huge header")
