"""Who is in the room (PROTOCOL.md JOIN-5, RELAY-7, RELAY-8): big rooms, churn, silent readers, history.

Tidy tests keep rooms of two to four clients that all talk within a second.
Real servers break outside that: a fan-out capped at the first 8 clients, an
"idle" kick of members that only read, a replay of the last messages to a
newcomer.  The room size and the patience are options (``--room-size``,
``--patience``) so CI can run a long profile (``tox -e conformance-long``).
"""

from __future__ import annotations

import math
import time

from conformance.options import SuiteSettings
from conformance.peer import CaseFailure, Peer, Room, describe
from conformance.requirements import case
from conformance.scenarios import leave_cleanly

#: The silent reader's room chats at this pace: slow enough to last, fast enough to matter.
PATIENCE_TICK = 0.25


def _join_many(room: Room, names: list[str]) -> list[Peer]:
    """Join everyone, saying how full the room was when a join failed."""
    __tracebackhide__ = True
    peers = []
    for name in names:
        try:
            peers.append(room.join(name))
        except CaseFailure as exc:
            raise CaseFailure(exc.expected, exc.got,
                              f"{len(room.members)} clients were registered when {name} joined; "
                              "every one of them must get every message") from None
    return peers


def _numbers(peer: Peer, sender: str, count: int, why: str) -> list[int]:
    """Read ``count`` relays of '<sender> #<n>' and return the n's."""
    __tracebackhide__ = True
    got = []
    for number in range(count):
        relay = peer.next_relay(f"{sender}'s message {number + 1} of {count} ({why})")
        name, _, seq = relay.text.partition(" #")
        if relay.sender != sender or name != sender or not seq.isdigit():
            raise CaseFailure(f"{peer.label} receives only {sender}'s numbered messages", describe(relay))
        got.append(int(seq))
    return got


@case("relay.big-room", "RELAY-8")
def test_big_room(chat_room: Room, chat_settings: SuiteSettings) -> None:
    """RELAY-8: in a room of --room-size listeners (default 16) and two senders, all get every message."""
    size = chat_settings.room_size
    ana = chat_room.join("ana")
    listeners = _join_many(chat_room, [f"listener-{n:02d}" for n in range(1, size + 1)])
    bea = chat_room.join("bea")
    count = 5
    # One sender after the other: bea, the last to join, speaks once it has all of ana's
    # messages, so two relays never race (that is relay.concurrent-pairs' job) and a server
    # that is right only for some of the room fails the same way every run.
    for seq in range(count):
        ana.send(f"ana #{seq}")
    if _numbers(bea, "ana", count, "the other sender") != list(range(count)):
        raise CaseFailure(f"bea receives ana's messages 0..{count - 1} in order", "another order")
    for seq in range(count):
        bea.send(f"bea #{seq}")
    for peer in listeners:
        got = sorted((r.sender, r.text) for r in (peer.next_relay(f"relay of 2 x {count} messages")
                                                  for _ in range(2 * count)))
        wanted = sorted([("ana", f"ana #{s}") for s in range(count)]
                        + [("bea", f"bea #{s}") for s in range(count)])
        if got != wanted:
            missing = sorted(set(wanted) - set(got))
            raise CaseFailure(f"{peer.label} (one of {size} listeners) receives all {2 * count} "
                              "messages of ana and bea", f"{len(missing)} missing, e.g. {missing[:2]}")
    if _numbers(ana, "bea", count, "the other sender") != list(range(count)):
        raise CaseFailure(f"ana receives bea's messages 0..{count - 1} in order", "another order")


@case("relay.join-leave-mid-stream", "RELAY-8")
def test_join_leave_mid_stream(chat_room: Room) -> None:
    """RELAY-8: while ana streams 30 messages, two clients leave and one joins; nobody loses any."""
    ana = chat_room.join("ana")
    stayers = _join_many(chat_room, ["sam", "sol"])
    leavers = _join_many(chat_room, ["lee", "lou"])
    total, newt = 30, None
    for seq in range(total):
        if seq in (10, 15):
            leave_cleanly(leavers.pop(0))
        elif seq == 20:
            newt = chat_room.join("newt")
        ana.send(f"ana #{seq}")
    for peer in stayers:
        got = _numbers(peer, "ana", total, "it stayed all along")
        if got != list(range(total)):
            raise CaseFailure(f"{peer.label} receives ana's messages 0..{total - 1} in order, once",
                              f"{got[:12]}...")
    assert newt is not None
    # newt was registered before ana sent #20 (its join was confirmed by then), so it gets a
    # suffix of the stream: everything from its registration on, and at least #20..#29.
    first = newt.next_relay("ana's messages sent after it joined")
    if first.sender != "ana" or not first.text.startswith("ana #"):
        raise CaseFailure("newt receives ana's messages sent after it joined", describe(first))
    start = int(first.text.removeprefix("ana #"))
    rest = _numbers(newt, "ana", total - 1 - start, "sent after it joined") if start < total - 1 else []
    if start > 20 or [start, *rest] != list(range(start, total)):
        raise CaseFailure(f"newt receives ana's messages from its join (at the latest #20) to #{total - 1}, "
                          "in order", f"{[start, *rest][:12]}")


@case("relay.patient-reader", "RELAY-7")
def test_patient_reader(chat_room: Room, chat_settings: SuiteSettings) -> None:
    """RELAY-7: a registered client that only reads stays in the room while others chat for --patience s."""
    ana = chat_room.join("ana")
    quiet = chat_room.join("quiet", silent=True)  # confirmed by ana's sync messages: quiet sends nothing
    bea = chat_room.join("bea")
    started = time.monotonic()
    # A fixed number of exchanges, each followed by a pause: the same traffic every run.
    rounds = max(1, math.ceil(chat_settings.patience / PATIENCE_TICK))
    for seq in range(rounds + 1):
        elapsed = time.monotonic() - started
        last = seq == rounds
        for talker, other in ((ana, bea), (bea, ana)):
            text = f"{talker.name} #{seq}" + (" (the last one)" if last else "")
            talker.send(text)
            other.expect_relay(str(talker.name), text)
            try:
                quiet.expect_relay(str(talker.name), text)
            except CaseFailure as exc:
                raise CaseFailure(exc.expected, exc.got,
                                  f"quiet registered {elapsed:.1f} s earlier and has read every "
                                  "relay since, but sent nothing: a silent reader is a member "
                                  "(only connections that never registered may time out)") from None
        if not last:
            time.sleep(PATIENCE_TICK)  # the pace of a chat, not a wait for the server
    chat_room.found(f"quiet stayed {time.monotonic() - started:.1f} s without sending")


@case("join.no-history", "JOIN-5")
def test_no_history(chat_room: Room) -> None:
    """JOIN-5: a newcomer is sent none of the messages from before it joined, only those after."""
    ana, bea = chat_room.join_all("ana", "bea")
    before = [f"said before newt came {n}" for n in range(3)]
    for text in before:
        ana.send(text)
        bea.expect_relay("ana", text)  # the server has handled it: it is history now
    try:
        newt = chat_room.join("newt")
    except CaseFailure as exc:
        raise CaseFailure("newt, which has just joined, receives only messages sent after it joined",
                          exc.got, "the server replayed earlier messages to the newcomer; the base "
                          "protocol has no history (JOIN-5)") from None
    ana.send("said after newt came")
    got = newt.next_relay('a relay from "ana": "said after newt came"')
    if got.text != "said after newt came":
        raise CaseFailure('newt receives a relay from "ana": "said after newt came" first',
                          describe(got), "the server replayed history to the newcomer (JOIN-5)")
