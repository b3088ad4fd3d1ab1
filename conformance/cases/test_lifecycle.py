"""Leaving (PROTOCOL.md RELAY-6, ROBUST-6): clean closes, resets, and a reset in the middle of a fan-out."""

from __future__ import annotations

import socket

import pytest

from conformance.peer import Peer, Room
from conformance.requirements import case
from conformance.scenarios import RESET_ROUNDS, leave_cleanly, resets_while_relaying, room_still_works
from reference.client import ServerClosedError


@case("lifecycle.leave", "RELAY-6")
@pytest.mark.parametrize("how", ["clean-close", "reset"])
def test_leave(chat_room: Room, how: str) -> None:
    """RELAY-6: after a client leaves (FIN or RST) the others keep chatting and newcomers can join."""
    ana, bea = chat_room.join_all("ana", "bea")
    if how == "clean-close":
        # Left, and the server has closed its side too, before anyone speaks again: a race
        # between the FIN and the next relay would make the verdict a matter of luck.
        leave_cleanly(chat_room.join("cy"))
    else:
        # A reset always lands while the server is relaying to cy (twice), never by luck
        # just before or just after: see lifecycle.reset-during-fanout.
        resets_while_relaying(chat_room, ana, bea, "cy", 2)
    for number in range(3):
        ana.send(f"after cy left {number}")
        bea.expect_relay("ana", f"after cy left {number}")
    room_still_works(chat_room, ana, bea)


@case("lifecycle.reset-during-fanout", "ROBUST-6")
def test_reset_during_fanout(chat_room: Room) -> None:
    """ROBUST-6: five times, a client resets while the server relays 2,000 messages to it; all survive."""
    # The reset must reach the server while it is still relaying the burst to the leaver, so that
    # a write hits the reset connection before the server has read the RST.  The burst goes out
    # in one send, the RST right after it: the server has tens of milliseconds of relaying left
    # when the RST lands, and reads the burst (queued first) before it can learn of the reset.
    # Five rounds make a near miss in one of them (the suite descheduled at the wrong moment)
    # irrelevant.
    ana, bea = chat_room.join_all("ana", "bea")
    resets_while_relaying(chat_room, ana, bea, "leaver", RESET_ROUNDS)
    room_still_works(chat_room, ana, bea)


@case("lifecycle.closed-client-sent-nothing", "RELAY-6")
def test_closed_client_sent_nothing(chat_room: Room) -> None:
    """RELAY-6: once a client has closed its side (FIN), the server sends it nothing more."""
    ana, bea, cy = chat_room.join_all("ana", "bea", "cy")
    cy.sock.shutdown(socket.SHUT_WR)  # cy leaves cleanly but keeps reading to see what still comes
    _give_time_to_see_the_fin(cy, limit=1.0)
    ana.send("sent after cy left")
    bea.expect_relay("ana", "sent after cy left")
    cy.expect_nothing("it has left the room")


def _give_time_to_see_the_fin(peer: Peer, limit: float) -> None:
    """Wait (bounded) for the server to close its side too, proof that it saw the FIN.

    A server may keep its side open a while; that is not a failure, so after
    ``limit`` the case goes on.  Anything relayed meanwhile is kept for the
    case to judge.
    """
    try:
        peer.pending.append(peer.receive(limit))
    except (TimeoutError, ServerClosedError):
        pass
