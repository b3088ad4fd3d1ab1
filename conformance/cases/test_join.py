"""Joining (PROTOCOL.md section 2): who counts as registered, and what an unregistered connection gets."""

from __future__ import annotations

import pytest

from conformance.peer import Room
from conformance.requirements import case
from reference.protocol import encode_frame


@case("join.unregistered-receives-nothing", "JOIN-3")
@pytest.mark.parametrize("state", ["silent", "half-sent-name"])
def test_unregistered_receives_nothing(chat_room: Room, state: str) -> None:
    """JOIN-3: a connection that has not (fully) sent its username gets none of the room's messages."""
    lurker = chat_room.connect("lurker")
    if state == "half-sent-name":
        lurker.send_raw(encode_frame(b"lurker")[:12], "half of a username frame")
    ana, bea = chat_room.join_all("ana", "bea")
    for number in range(3):
        ana.send(f"not for the lurker {number}")
        bea.expect_relay("ana", f"not for the lurker {number}")
    # bea has them all, so anything sent to the lurker alongside has been sent too.
    lurker.expect_nothing("it never registered")


@case("join.empty-name", "JOIN-2")
def test_empty_name(chat_room: Room) -> None:
    """JOIN-2: an empty username is refused by closing the connection, which gets no messages."""
    ana, bea = chat_room.join_all("ana", "bea")
    nobody = chat_room.connect("nobody")
    nobody.send_raw(encode_frame(b""), "an empty username")
    # Closed first, then the room speaks: the other order would race the refusal against
    # the relay, and a server that relays to unregistered connections would fail by luck.
    nobody.expect_closed("an empty username is refused")
    ana.send("said after the empty username")
    bea.expect_relay("ana", "said after the empty username")
