"""Building blocks the cases share: misbehaving clients, cuts of a byte stream, room checks.

Kept apart from the case files so each case reads as its requirement: who
joins, what is sent, what must (not) arrive.  Every frame is built with the
shared codec (``reference.protocol.encode_frame``); the deliberately bad
bytes are spelled out here, once.
"""

from __future__ import annotations

import functools
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from conformance.corpus import sizes_to_probe
from conformance.peer import CaseFailure, Peer, Room, describe
from reference.client import ServerClosedError
from reference.protocol import HEADER_LENGTH, Relay, RemoteProtocolError, encode_frame, encode_header

__all__ = [
    "BAD_HEADERS",
    "RESET_ROUNDS",
    "CUTS",
    "MISBEHAVIOURS",
    "Misbehaviour",
    "SizeProbe",
    "closed",
    "expect_verbatim",
    "first_non_canonical",
    "header_of",
    "leave_cleanly",
    "probe_largest",
    "resets_while_relaying",
    "room_still_works",
]

# -- bad bytes: FRAME-3, FRAME-4, FRAME-6, JOIN-2 ------------------------------------
#: Headers that are not a decimal length (PROTOCOL.md's FRAME-3 examples), each followed by a payload.
BAD_HEADERS: dict[str, bytes] = {
    "letters": b"hello\n   ",
    "negative": b"-1        ",
    "plus-sign": b"+5        ",
    "all-spaces": b"          ",
    "underscore": b"1_0       ",
}
INVALID_UTF8 = b"ok \xc3\x28 \xff bad"
OVER_LIMIT_HEADER = b"9999999999"


@dataclass(frozen=True)
class Misbehaviour:
    requirement: str
    what: str                                   # in a student's words
    act: Callable[[Room], Peer]                 # opens the offender and sends the bad bytes


def _registered_offender(room: Room, data: bytes) -> Peer:
    offender = room.join("mallory")
    offender.send_raw(data, "the bad frame")
    return offender


def _unregistered_offender(room: Room, data: bytes) -> Peer:
    offender = room.connect("mallory")
    offender.send_raw(data, "the bad username frame")
    return offender


MISBEHAVIOURS: dict[str, Misbehaviour] = {
    "bad-header": Misbehaviour("FRAME-3", "a header that is not a decimal length",
                               lambda room: _registered_offender(room, b"-1        hello")),
    "invalid-utf8-name": Misbehaviour("FRAME-4", "a username that is not UTF-8",
                                      lambda room: _unregistered_offender(room, encode_frame(INVALID_UTF8))),
    "invalid-utf8-message": Misbehaviour("FRAME-4", "a message that is not UTF-8",
                                         lambda room: _registered_offender(room, encode_frame(INVALID_UTF8))),
    "over-limit": Misbehaviour("FRAME-6", "a header declaring 9,999,999,999 bytes",
                               lambda room: _registered_offender(room, OVER_LIMIT_HEADER)),
    "empty-name": Misbehaviour("JOIN-2", "an empty username",
                               lambda room: _unregistered_offender(room, encode_frame(b""))),
}


# -- delivery granularity: ROBUST-1 ------------------------------------------------------
def _split_at(frames: list[bytes], position: int) -> list[bytes]:
    return [piece for f in frames for piece in (f[:position], f[position:]) if piece]


def _split_utf8(frames: list[bytes]) -> list[bytes]:
    pieces = []
    for frame in frames:
        lead = next((i for i in range(HEADER_LENGTH, len(frame)) if frame[i] >= 0xC0), None)
        if lead is None:
            pieces.append(frame)
        else:
            pieces += [frame[:lead + 1], frame[lead + 1:]]  # between a lead byte and its continuation
    return pieces


#: How a client's frames (username first) are cut into send() calls, by parameter ID.
CUTS: dict[str, Callable[[list[bytes]], list[bytes]]] = {
    "whole-frames": lambda frames: list(frames),
    "one-byte-per-send": lambda frames: [bytes([b]) for f in frames for b in f],
    **{f"header-split-at-{k}": functools.partial(_split_at, position=k) for k in range(1, 10)},
    "header-payload-split": lambda frames: _split_at(frames, HEADER_LENGTH),
    "utf8-char-split": _split_utf8,
    "coalesced-frames": lambda frames: [frames[0], b"".join(frames[1:])],
    "name-and-message-in-one-send": lambda frames: [frames[0] + frames[1], *frames[2:]],
}


# -- checks -------------------------------------------------------------------------------
def first_non_canonical(raw: bytes) -> tuple[int, bytes] | None:
    """(offset, header) of the first header in ``raw`` that is not ``f"{n:<10}"``, or None."""
    pos = 0
    while pos + HEADER_LENGTH <= len(raw):
        header = raw[pos:pos + HEADER_LENGTH]
        digits = header.strip(b" ")
        if not digits.isdigit() or encode_header(int(digits)) != header:
            return pos, header
        pos += HEADER_LENGTH + int(digits)
    return None


def header_of(raw: bytes, payload: bytes) -> bytes | None:
    """The header of the first frame in ``raw`` carrying ``payload`` (headers read leniently), or None."""
    pos = 0
    while pos + HEADER_LENGTH <= len(raw):
        header = raw[pos:pos + HEADER_LENGTH]
        digits = header.strip(b" ")
        if not digits.isdigit():
            return None
        end = pos + HEADER_LENGTH + int(digits)
        if raw[pos + HEADER_LENGTH:end] == payload:
            return header
        pos = end
    return None


def expect_verbatim(reader: Peer, sender: str, text: str, timeout: float | None = None) -> None:
    """The reader's next relay is (sender, text), byte for byte; else say where it differs."""
    __tracebackhide__ = True
    wanted = Relay(sender, text)
    got = reader.next_relay(describe(wanted), timeout)
    if got == wanted:
        return
    for what, sent, came in (("username", sender, got.sender), ("message", text, got.text)):
        a, b = sent.encode(), came.encode()
        if a != b:
            at = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
            raise CaseFailure(f"{reader.label} receives {describe(wanted)}, byte for byte",
                              f"{describe(got)}: the {what} is {len(b)} bytes instead of {len(a)}, "
                              f"first different at byte {at} "
                              f"(sent {a[at:at + 12]!r}, relayed {b[at:at + 12]!r})",
                              "a server relays exactly the bytes it read: no trimming, cleaning, "
                              "re-encoding or cutting")


def leave_cleanly(peer: Peer) -> None:
    """Leave cleanly (FIN) and wait, bounded, until the server has closed its side too.

    Once the server has closed it, the leave is behind it: the stream goes on
    without a race between the leave and the next relay, which would make the
    verdict of a server that mishandles writes to a departing client a matter
    of luck (lifecycle.reset-during-fanout provokes that on purpose).
    """
    peer.sock.shutdown(socket.SHUT_WR)
    deadline = time.monotonic() + peer.timeouts.close
    while time.monotonic() < deadline:
        try:
            peer.receive(max(0.0, deadline - time.monotonic()))
        except (TimeoutError, ServerClosedError, CaseFailure, RemoteProtocolError):
            break
    peer.close()


def room_still_works(room: Room, a: Peer, b: Peer, newcomer: str = "newt") -> None:
    """a and b still chat both ways, and a newcomer can still join and hear a."""
    __tracebackhide__ = True
    if a.name is None or b.name is None:
        raise CaseFailure("two registered clients", "a peer that never registered")
    a.send("are you still there?")
    b.expect_relay(a.name, "are you still there?")
    b.send("still here")
    a.expect_relay(b.name, "still here")
    late = room.join(newcomer)
    a.send(f"welcome, {newcomer}")
    late.expect_relay(a.name, f"welcome, {newcomer}")
    b.expect_relay(a.name, f"welcome, {newcomer}")


# -- the largest message a server accepts: FRAME-5, RELAY-1 --------------------------------
@dataclass(frozen=True)
class SizeProbe:
    """What sending ever larger messages found out."""

    accepted: int                 # the largest size relayed intact (0: none)
    stopped_at: int | None        # the first size not relayed intact (None: all were)
    altered: bool                 # that size came back changed, rather than refused
    why: str                      # how it was refused or changed


def closed(peer: Peer) -> bool:
    """Whether the server has closed ``peer``'s connection (without waiting)."""
    try:
        peer.receive(0.05)
    except ServerClosedError:
        return True
    except (TimeoutError, CaseFailure):
        return False
    return False


def _relayed_unless_refused(sender: Peer, reader: Peer, timeout: float) -> Relay:
    """The reader's next relay; ServerClosedError as soon as the sender's connection is closed."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return reader.receive(min(0.2, max(0.0, deadline - time.monotonic())))
        except TimeoutError:
            if closed(sender):
                raise ServerClosedError("the server closed the sender's connection") from None
            if time.monotonic() >= deadline:
                raise


def probe_largest(sender: Peer, reader: Peer) -> SizeProbe:
    """Send 1, 2, 4 ... 16 MiB messages until one is not relayed intact; say what happened."""
    accepted = 0
    for size in sizes_to_probe():
        text = f"{size} bytes ".ljust(size, "m")
        try:
            sender.send_raw(encode_frame(text.encode()))
            # Generous: 16 MiB through a slow server takes a while.
            got = _relayed_unless_refused(sender, reader, reader.timeouts.arrive + size / 2**20)
        except (CaseFailure, ServerClosedError, TimeoutError) as exc:
            why = exc.got if isinstance(exc, CaseFailure) else str(exc) or "nothing came"
            return SizeProbe(accepted, size, False, why)
        if got.text != text:
            return SizeProbe(accepted, size, True,
                             f"a relay from {got.sender!r} of {len(got.text.encode())} bytes, "
                             f"differing from the {size} bytes sent")
        accepted = size
    return SizeProbe(accepted, None, False, "")


# -- a reset while the server relays to the client: ROBUST-6, forced, not hoped for -----------
RESET_ROUNDS, FANOUT_MESSAGES, FANOUT_SIZE = 5, 2000, 400
#: The leaver's receive buffer holds a whole round (800 KB), so the server writes to it
#: directly, as it would to any client that reads, up to the moment it resets.
LEAVER_RCVBUF = 4 * 1024 * 1024


def resets_while_relaying(room: Room, sender: Peer, reader: Peer, prefix: str, rounds: int) -> None:
    """``rounds`` times, a newly joined client resets while the server relays a burst to it.

    The reset must reach the server while it is still relaying the burst to the leaver, so that
    a write hits the reset connection before the server has read the RST.  The burst goes out
    in one send, the RST right after it: the server has tens of milliseconds of relaying left
    when the RST lands, and reads the burst (queued first) before it can learn of the reset.
    Several rounds make a near miss in one of them (the suite descheduled at the wrong moment)
    irrelevant.  Every message must still reach ``reader``.
    """
    __tracebackhide__ = True
    for number in range(rounds):
        leaver = room.join(f"{prefix}{number}", rcvbuf=LEAVER_RCVBUF)
        _reset_while_relaying(sender, reader, leaver, f"round {number + 1} of {rounds}")


def _reset_while_relaying(sender: Peer, reader: Peer, leaver: Peer, which: str) -> None:
    """``sender`` sends a 2,000-message burst in one go, ``leaver`` resets right after; all arrive."""
    __tracebackhide__ = True
    texts = [f"{which} fan-out {n} ".ljust(FANOUT_SIZE, "~") for n in range(FANOUT_MESSAGES)]
    sender.send_raw(b"".join(encode_frame(t.encode()) for t in texts), f"{FANOUT_MESSAGES} messages")
    leaver.abort()
    try:
        reader.expect_relays([Relay(str(sender.name), t) for t in texts],
                             timeout=reader.timeouts.arrive * 2)
    except CaseFailure as exc:
        raise CaseFailure(exc.expected, exc.got, f"{which}: {leaver.label} reset its connection while "
                          f"the server was relaying {FANOUT_MESSAGES} messages of {sender.label} "
                          "to it") from None
    # The reader answers: a member that reads, not a silent one (relay.patient-reader's
    # subject), so a server that kicks quiet members cannot fail this on a slow machine.
    reader.send(f"{which}: all arrived")
    sender.expect_relay(str(reader.name), f"{which}: all arrived")
