"""Facts reported, not judged: header leniency, the largest message, duplicate names.

These cases have the level MAY: whatever the server does, the verdict is
``informational`` and the record's detail says what was found.
"""

from __future__ import annotations

import time

import pytest

from conformance.peer import CaseFailure, Peer, Room
from conformance.requirements import Level, case
from reference.client import ServerClosedError
from reference.protocol import MIN_MAX_PAYLOAD, Relay, encode_frame

LENIENT_HEADERS = {"right-justified": b"         5", "zero-padded": b"0000000005"}


def _closed(peer: Peer) -> bool:
    """Whether the server has closed ``peer``'s connection (without waiting)."""
    try:
        peer.receive(0.05)
    except ServerClosedError:
        return True
    except (TimeoutError, CaseFailure):
        return False
    return False


@case("info.lenient-headers", "FRAME-7")
@pytest.mark.parametrize("header", [pytest.param(h, id=name) for name, h in LENIENT_HEADERS.items()])
def test_lenient_headers(chat_room: Room, header: bytes) -> None:
    """FRAME-7: does the server take a header of digits and spaces that is not canonical?"""
    ana, bea = chat_room.join_all("ana", "bea")
    ana.send_raw(header + b"hello", f"a message with the header {header!r}")
    try:
        got = bea.receive(bea.timeouts.arrive)
    except (TimeoutError, ServerClosedError):
        how = "closed the sender's connection" if _closed(ana) else "relayed nothing"
        chat_room.found(f"refused: the header {header!r} was not accepted (the server {how})")
        return
    chat_room.found(f"accepted: {header!r} + b'hello' was relayed as {got.text!r}")


def _relayed_unless_refused(sender: Peer, reader: Peer, timeout: float) -> Relay:
    """The reader's next relay; ServerClosedError as soon as the sender's connection is closed."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return reader.receive(min(0.2, max(0.0, deadline - time.monotonic())))
        except TimeoutError:
            if _closed(sender):
                raise ServerClosedError("the server closed the sender's connection") from None
            if time.monotonic() >= deadline:
                raise


@case("info.largest-message", "FRAME-5", level=Level.MAY)
def test_largest_message(chat_room: Room) -> None:
    """FRAME-5: beyond the 1 MiB floor, which message sizes up to 16 MiB does the server relay?"""
    ana, bea = chat_room.join_all("ana", "bea")
    accepted = 0
    for mib in (1, 2, 4, 8, 16):
        size = mib * MIN_MAX_PAYLOAD
        text = f"{mib} MiB ".ljust(size, "m")
        try:
            ana.send_raw(encode_frame(text.encode()))
            # Generous: 16 MiB through a slow server takes a while, and this judges nothing.
            got = _relayed_unless_refused(ana, bea, bea.timeouts.arrive + mib)
        except (CaseFailure, ServerClosedError) as exc:
            why = exc.got if isinstance(exc, CaseFailure) else str(exc)
            chat_room.found(f"relayed up to {accepted} MiB; {mib} MiB was refused ({why})")
            return
        if got.text != text:
            chat_room.found(f"relayed up to {accepted} MiB; the {mib} MiB message came back altered")
            return
        accepted = mib
    chat_room.found(f"relayed every size tried, up to {accepted} MiB")


@case("info.duplicate-names", "JOIN-2", level=Level.MAY)
def test_duplicate_names(chat_room: Room) -> None:
    """JOIN-2: names may repeat; can two clients named "twin" both be registered and chat?"""
    try:
        first, second, obs = chat_room.join_all("twin", "twin", "obs")
        first.send("from the first twin")
        second.send("from the second twin")
        got = sorted(obs.next_relay("the twins' messages").text for _ in range(2))
    except CaseFailure as exc:
        chat_room.found(f"not both: {exc.got} (expected: {exc.expected})")
        return
    if got == ["from the first twin", "from the second twin"]:
        chat_room.found("allowed: two clients named 'twin' were both registered and relayed")
    else:
        chat_room.found(f"odd: the observer received {got}")
