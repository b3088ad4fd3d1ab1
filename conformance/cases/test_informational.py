"""Facts reported, not judged: header leniency, the largest message, duplicate names.

These cases have the level MAY: whatever the server does, the verdict is
``informational`` and the record's detail says what was found.
"""

from __future__ import annotations

import pytest

from conformance.corpus import MiB
from conformance.peer import CaseFailure, Room
from conformance.requirements import Level, case
from conformance.scenarios import closed, probe_largest
from reference.client import ServerClosedError

LENIENT_HEADERS = {"right-justified": b"         5", "zero-padded": b"0000000005"}


@case("info.lenient-headers", "FRAME-7")
@pytest.mark.parametrize("header", [pytest.param(h, id=name) for name, h in LENIENT_HEADERS.items()])
def test_lenient_headers(chat_room: Room, header: bytes) -> None:
    """FRAME-7: does the server take a header of digits and spaces that is not canonical?"""
    ana, bea = chat_room.join_all("ana", "bea")
    ana.send_raw(header + b"hello", f"a message with the header {header!r}")
    try:
        got = bea.receive(bea.timeouts.arrive)
    except (TimeoutError, ServerClosedError):
        how = "closed the sender's connection" if closed(ana) else "relayed nothing"
        chat_room.found(f"refused: the header {header!r} was not accepted (the server {how})")
        return
    chat_room.found(f"accepted: {header!r} + b'hello' was relayed as {got.text!r}")


@case("info.largest-message", "FRAME-5", level=Level.MAY)
def test_largest_message(chat_room: Room) -> None:
    """FRAME-5: beyond the 1 MiB floor, which message sizes up to 16 MiB does the server relay?"""
    ana, bea = chat_room.join_all("ana", "bea")
    found = probe_largest(ana, bea)
    relayed = f"relayed up to {found.accepted // MiB} MiB"
    if found.stopped_at is None:
        chat_room.found(f"relayed every size tried, up to {found.accepted // MiB} MiB")
    elif found.altered:
        chat_room.found(f"{relayed}; the {found.stopped_at // MiB} MiB message came back altered")
    else:
        chat_room.found(f"{relayed}; {found.stopped_at // MiB} MiB was refused ({found.why})")


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
