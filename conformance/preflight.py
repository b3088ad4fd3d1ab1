"""The preflight: before the first case, say in plain words what the target is.

Two probe clients join and one speaks, first in this protocol, then (only if
nothing came of it) in the other ways a target is known to behave.  The
answer is one of the classes below, with the smallest evidence that shows it:

=================  ============================================================
``protocol``       a message was relayed in 10-byte frames: the cases judge the
                   rest (an echo alongside a correct relay is only noted)
``dialect``        a recognised other dialect: single-frame ``name> text``,
                   newline-delimited lines, another header width, a pure echo
``silent``         connections are accepted but nothing is ever relayed
``needs-trigger``  nothing is relayed until something else happens first (the
                   receiver speaks, or the sender disconnects)
``never-accepts``  connections are refused, time out, or wait in the listen
                   backlog without ever being accepted
=================  ============================================================

In every class but ``protocol`` the suite stops with the headline instead of
failing every case at the join barrier (``--no-preflight`` runs them all).
The probe reads at most :data:`READ_LIMIT` bytes per connection, so a target
that floods it cannot grow the suite's memory.  This module succeeds the old
dialect probe: its words for the dialects are PROTOCOL.md section 6.
"""

from __future__ import annotations

import re
import select
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from reference.printable import printable
from reference.protocol import HEADER_LENGTH, encode_frame
from reference.tls import WOULD_BLOCK
from reference.tls import connect as tls_connect

__all__ = ["CLASSES", "OTHER_WIDTHS", "READ_LIMIT", "Exchange", "Preflight", "detect", "exchange",
           "parse_frames", "run_preflight"]

SENDER, RECEIVER = "probe-sender", "probe-receiver"
TEXT = "dialect probe"
CLASSES = ("protocol", "dialect", "silent", "needs-trigger", "never-accepts")
#: Bytes kept per probe connection; the rest is left unread in the kernel.
READ_LIMIT = 64 * 1024
_SINGLE_FRAME = re.compile(rf"^\s*\[?{SENDER}\]?\s*[>:]\s*{TEXT}")
_WIDTHS = [w for w in range(2, 33) if w != HEADER_LENGTH]
#: The widths tried when 10-byte clients hear nothing (a changed HEADER_LENGTH constant).
OTHER_WIDTHS = (8, 16, 4, 5, 6, 12, 20)
#: Extra connections opened to tell a listener that never accepts from a silent one.
BACKLOG_PROBES = 16


@dataclass(frozen=True)
class Preflight:
    """The target's class, the headline that says it, and the evidence."""

    kind: str                          # one of CLASSES
    headline: str                      # one plain sentence
    dialects: tuple[str, ...] = ()     # recognised dialects in plain words (PROTOCOL.md 6)
    evidence: str = ""                 # the smallest piece of what came back
    duration_s: float = 0.0
    steps: tuple[str, ...] = field(default=())  # what the probe tried, in order

    @property
    def stops_run(self) -> bool:
        return self.kind != "protocol"

    def record(self, stopped: bool) -> dict[str, Any]:
        """The ``summary.preflight`` object of the results document (reports/FORMAT.md)."""
        return {"class": self.kind, "headline": self.headline, "dialects": list(self.dialects),
                "evidence": self.evidence, "duration_s": round(self.duration_s, 3),
                "steps": list(self.steps), "stopped": stopped}


@dataclass
class Exchange:
    """What two probe clients saw: the receiver's bytes, the sender's, and connection trouble."""

    received: bytes = b""
    echoed: bytes = b""
    connect_error: str = ""
    closed: bool = False                # the server closed or reset a probe connection

    @property
    def relayed(self) -> bool:
        return TEXT.encode() in self.received


def parse_frames(raw: bytes, width: int) -> list[bytes] | None:
    """Split ``raw`` into whole frames with ``width``-byte headers, or None if it does not fit."""
    frames: list[bytes] = []
    pos = 0
    while pos < len(raw):
        header = raw[pos:pos + width]
        digits = header.strip(b" ")
        if len(header) < width or not digits.isdigit():
            return None
        end = pos + width + int(digits)
        if end > len(raw):
            return frames if frames else None  # a frame still on its way
        frames.append(raw[pos + width:end])
        pos = end
    return frames


def detect(received: bytes, echoed: bytes) -> list[str]:
    """The dialects that ``received`` (at the other client) and ``echoed`` (at the sender) show."""
    found = []
    frames = parse_frames(received, HEADER_LENGTH)
    if frames is None:
        for other in _WIDTHS:
            frames = parse_frames(received, other)
            if frames and len(frames) >= 2 and any(TEXT.encode() in f for f in frames):
                found.append(f"other header width: the server's frames have {other}-byte headers, "
                             f"not 10-byte ones (breaks FRAME-2; a 10-byte client cannot read them)")
                break
        else:
            frames = None
    if frames:
        first = frames[0].decode("utf-8", "replace")
        if _SINGLE_FRAME.match(first):
            found.append(f"single-frame relay: the server forwards each message as one frame "
                         f"{first.strip()!r} instead of a username frame followed by a message "
                         f"frame (breaks RELAY-1)")
    elif TEXT.encode() in received and b"\n" in received:
        start = received.rfind(b"\n", 0, received.find(TEXT.encode())) + 1
        line = received[start:].split(b"\n")[0] + b"\n"
        found.append(f"newline-delimited lines: the server relays text lines such as "
                     f'"{printable(line, 60)}" instead of 10-byte-header frames (breaks FRAME-1)')
    if TEXT.encode() in echoed:
        found.append("echo: the server also sends each message back to its sender (breaks RELAY-2)")
    return found


def _drain(sock: socket.socket, into: bytearray) -> bool:
    """Take what has arrived, without waiting, up to READ_LIMIT; True if the server closed."""
    try:
        while len(into) < READ_LIMIT:
            chunk = sock.recv(min(65536, READ_LIMIT - len(into)))
            if not chunk:
                return True
            into += chunk
    except WOULD_BLOCK:  # a TLS socket says SSLWantReadError
        pass
    except OSError:  # reset
        return True
    return False


def _frame(payload: bytes, width: int | None) -> bytes:
    if width is None:  # the newline-delimited dialect
        return payload + b"\n"
    if width == HEADER_LENGTH:
        return encode_frame(payload)
    # Speaking another width on purpose, to recognise a server that does (never otherwise).
    return f"{len(payload):<{width}}".encode() + payload


Trigger = Callable[[socket.socket, socket.socket, Callable[[bytes], bytes]], None]


def exchange(address: tuple[str, int], width: int | None, timeout: float,
             trigger: Trigger | None = None) -> Exchange:
    """Join two probe clients (``width``-byte headers, or lines when None); one sends until
    the other hears, after ``trigger(receiver, sender, frame)`` if one is given."""
    seen = Exchange()
    received, echoed = bytearray(), bytearray()
    socks: list[socket.socket] = []
    try:
        for _ in range(2):
            socks.append(tls_connect(address, min(timeout, 3.0)))  # TLS if the target is
    except OSError as exc:
        seen.connect_error = exc.strerror or type(exc).__name__
        for sock in socks:
            sock.close()
        return seen
    receiver, sender = socks
    try:
        for sock in socks:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            # Non-blocking: a socket with a timeout waits for data before every recv.
            sock.setblocking(False)
        receiver.sendall(_frame(RECEIVER.encode(), width))
        sender.sendall(_frame(SENDER.encode(), width))
        if trigger is not None:
            trigger(receiver, sender, lambda p: _frame(p, width))
        deadline = time.monotonic() + timeout
        number = 0
        while time.monotonic() < deadline and TEXT.encode() not in received and not seen.closed:
            if sender.fileno() >= 0:
                sender.sendall(_frame(f"{TEXT} {number}".encode(), width))
            number += 1
            time.sleep(0.05 * min(number, 4))
            seen.closed = _drain(receiver, received)
        time.sleep(0.1)  # let the rest of the first relay and any echo arrive
        _drain(receiver, received)
        if sender.fileno() >= 0:
            seen.closed = _drain(sender, echoed) or seen.closed
    except OSError:
        seen.closed = True
    finally:
        for sock in socks:
            sock.close()
    seen.received, seen.echoed = bytes(received), bytes(echoed)
    return seen


def _receiver_speaks(receiver: socket.socket, sender: socket.socket,
                     frame: Callable[[bytes], bytes]) -> None:
    receiver.sendall(frame(b"probe-receiver says hello first"))
    time.sleep(0.1)


def _sender_leaves(receiver: socket.socket, sender: socket.socket,
                   frame: Callable[[bytes], bytes]) -> None:
    sender.sendall(frame(f"{TEXT} before leaving".encode()))
    time.sleep(0.1)
    sender.close()


def _never_accepted(address: tuple[str, int], timeout: float) -> int | None:
    """Open BACKLOG_PROBES connections at once; how many completed, if some never did."""
    socks = []
    try:
        for _ in range(BACKLOG_PROBES):
            sock = socket.socket(socket.AF_INET6 if ":" in address[0] else socket.AF_INET)
            sock.setblocking(False)
            socks.append(sock)
            sock.connect_ex(address)
        _, writable, _ = select.select([], socks, [], timeout)
        done = sum(1 for s in writable if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0)
        return done if done < len(socks) else None
    finally:
        for sock in socks:
            sock.close()


def _evidence(seen: Exchange) -> str:
    if TEXT.encode() in seen.echoed and not seen.relayed:
        return f'the sending client got back "{printable(seen.echoed, 60)}"'
    if seen.received:
        return f'the receiving client got "{printable(seen.received, 60)}"'
    if seen.echoed:
        return f'the sending client got back "{printable(seen.echoed, 60)}"'
    return "nothing came back on either connection" + (" (the server closed them)" if seen.closed
                                                       else "")


def run_preflight(address: tuple[str, int], timeout: float = 3.0) -> Preflight:
    """Classify the target at ``address`` (see the module docstring); at most ~15 s."""
    started = time.monotonic()
    steps = ["two clients joined with 10-byte headers; one sent messages"]

    def done(kind: str, headline: str, seen: Exchange, dialects: list[str] | None = None) -> Preflight:
        return Preflight(kind, headline, tuple(dialects or ()), _evidence(seen),
                         time.monotonic() - started, tuple(steps))

    first = exchange(address, HEADER_LENGTH, timeout)
    if first.connect_error:
        return done("never-accepts", f"the server never accepts a connection: connecting to "
                    f"{address[0]}:{address[1]} failed ({first.connect_error})", first)
    if first.relayed:
        dialects = detect(first.received, first.echoed)
        foreign = [d for d in dialects if not d.startswith("echo")]
        if foreign:
            return done("dialect", f"the server speaks another dialect -- {foreign[0]}", first,
                        dialects)
        return done("protocol", "the server relays messages in 10-byte-header frames", first,
                    dialects)
    if TEXT.encode() in first.echoed:
        return done("dialect", "the server speaks another dialect -- echo: it sends each message "
                    "back to its sender and relays nothing to the other clients (breaks RELAY-1)",
                    first, ["echo: the server sends each message back to its sender only"])
    # Nothing relayed to 10-byte clients: try the other ways a server is known to speak.
    for width in (*OTHER_WIDTHS, None):
        seen = exchange(address, width, min(timeout, 0.5))
        steps.append(f"the same with {width}-byte headers" if width else "the same with "
                     "newline-terminated lines")
        if seen.relayed:
            dialects = detect(seen.received, seen.echoed) or [
                f"the server relays only when clients speak "
                f"{f'{width}-byte headers' if width else 'lines'}"]
            return done("dialect", f"the server speaks another dialect -- {dialects[0]}", seen,
                        dialects)
    triggers: list[tuple[str, Trigger]] = [
        ("the receiving client sent a message of its own first", _receiver_speaks),
        ("the sending client disconnected", _sender_leaves)]
    for words, trigger in triggers:
        steps.append(f"10-byte clients again, after: {words}")
        seen = exchange(address, HEADER_LENGTH, min(timeout, 1.0), trigger)
        if seen.relayed:
            return done("needs-trigger", f"the server relays nothing until something else "
                        f"happens first: it relayed only after {words} (breaks RELAY-1: a "
                        "registered client receives every message)", seen)
    steps.append(f"{BACKLOG_PROBES} more connections opened at once")
    completed = _never_accepted(address, min(timeout, 1.0))
    if completed is not None:
        return done("never-accepts", f"the server never accepts connections: its listen backlog "
                    f"filled after {completed} of {BACKLOG_PROBES} connection attempts, and the "
                    "rest waited", first)
    closing = " and closes them" if first.closed else ""
    return done("silent", f"the server accepts connections{closing} but never relays anything: "
                f"no message reached another client in any known dialect within "
                f"{time.monotonic() - started:.0f} s", first)
