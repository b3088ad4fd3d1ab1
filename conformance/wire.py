"""Wire transcripts: what each connection of a case sent and received, and when.

:class:`RecordingSocket` wraps the socket inside a
:class:`reference.client.ChatClient` and reports every chunk to a shared
:class:`Wire`.  When a case fails, ``Wire.render()`` gives a transcript a
student can read: per connection, timestamped from the start of the case,
direction, byte count, the bytes as text and as hex.  Memory and output are
capped: each chunk keeps its first ``BYTES_PER_EVENT`` bytes, and only the first
and last events of a long case are kept, with a count of what was left out.
"""

from __future__ import annotations

import collections
import socket
import time
from dataclasses import dataclass
from typing import Any

from reference.printable import printable
from reference.tls import shutdown_write

__all__ = ["RecordingSocket", "Wire", "WireEvent", "printable"]

BYTES_PER_EVENT = 32
HEAD_EVENTS = 60
TAIL_EVENTS = 30

SEND, RECV, NOTE = ">>", "<<", "--"
#: Notes that record what the server did or what failed, rather than a client's action.
_NOT_ACTIONS = ("the server", "read ", "send ", "connect failed")
#: A peer opened with keep_received keeps at most this many bytes of its stream, so a
#: server that floods it cannot grow the suite past its memory bound
#: (README, "When the server under test is hostile").
MAX_KEPT_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class WireEvent:
    t: float           # seconds since the start of the case
    conn: str          # the connection's label, usually the client's name
    direction: str     # SEND (client to server), RECV (server to client) or NOTE
    size: int          # how many bytes moved (0 for notes)
    head: bytes        # the first BYTES_PER_EVENT of them
    note: str = ""

    def render(self, conn_width: int) -> list[str]:
        stamp = f"+{self.t:7.3f}s"
        who = self.conn.ljust(conn_width)
        if self.direction == NOTE:
            return [f"{stamp}  {who}  --  {self.note}"]
        more = f" (first {len(self.head)} shown)" if self.size > len(self.head) else ""
        first = f'{stamp}  {who}  {self.direction}  {self.size} B{more}  "{printable(self.head)}"'
        pad = " " * (len(stamp) + conn_width + 8)
        return [first] + [pad + self.head[i:i + 16].hex(" ") for i in range(0, len(self.head), 16)]


class Wire:
    """The capped, timestamped transcript of one case's connections."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self._clock = clock
        self.start = clock()
        self.head: list[WireEvent] = []
        self.tail: collections.deque[WireEvent] = collections.deque(maxlen=TAIL_EVENTS)
        self.count = 0

    def _add(self, event: WireEvent) -> None:
        self.count += 1
        if len(self.head) < HEAD_EVENTS:
            self.head.append(event)
        else:
            self.tail.append(event)

    def record(self, conn: str, direction: str, data: bytes) -> None:
        self._add(WireEvent(self._clock() - self.start, conn, direction, len(data),
                            bytes(data[:BYTES_PER_EVENT])))

    def note(self, conn: str, text: str) -> None:
        self._add(WireEvent(self._clock() - self.start, conn, NOTE, 0, b"", text))

    def last_action(self) -> str:
        """What a client last did (sent bytes, closed, reset) before the server died, in words.

        A dying server cuts every connection and sends nothing more.  So the death came after
        the last bytes any client received and no later than the first cut after them (the
        server closing or resetting a connection, or a client's send failing): the action
        charged is the last one before that cut, not the case's own closing of its clients
        afterwards.  Without such a cut, it is the case's last action.  '' if none.
        """
        events = [*self.head, *self.tail]
        alive = max((i for i, e in enumerate(events) if e.direction == RECV), default=-1)
        cut = next((i for i, e in enumerate(events) if i > alive and e.direction == NOTE
                    and e.note.startswith(("the server closed", "the server reset", "send failed"))),
                   len(events))
        for event in reversed(events[:cut]):
            if event.direction == SEND:
                return (f'{event.conn} sent {event.size} B "{printable(event.head)}" '
                        f"at +{event.t:.3f}s")
            if event.direction == NOTE and not event.note.startswith(_NOT_ACTIONS):
                return f"{event.conn}: {event.note} at +{event.t:.3f}s"
        return ""

    def render(self) -> str:
        """The transcript as text ('' when nothing happened on the wire)."""
        if not self.count:
            return ""
        events = self.head + list(self.tail)
        width = max(len(e.conn) for e in events)
        lines = [f"wire transcript: {SEND} client to server, {RECV} server to client, "
                 f"times from the start of the case;",
                 "('~sync:N' messages are the suite's own: they confirm that a client is registered)"]
        for e in self.head:
            lines += e.render(width)
        omitted = self.count - len(self.head) - len(self.tail)
        if omitted:
            lines.append(f"... {omitted} events left out ...")
        for e in self.tail:
            lines += e.render(width)
        return "\n".join(lines)


class RecordingSocket:
    """A socket that reports every chunk it sends and receives to a :class:`Wire`.

    It stands in for ``socket.socket`` inside ChatClient, which only calls
    ``sendall``, ``recv``, ``settimeout``, ``setsockopt`` and ``close``; every
    other attribute is the real socket's.
    """

    def __init__(self, sock: socket.socket, wire: Wire, conn: str, keep_received: bool = False):
        self._sock = sock
        self.wire = wire
        self.conn = conn
        #: Every byte received, for cases that judge the raw stream (canonical headers).
        self.received: bytearray | None = bytearray() if keep_received else None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)

    def sendall(self, data: bytes) -> None:
        self.wire.record(self.conn, SEND, data)
        try:
            self._sock.sendall(data)
        except TimeoutError:
            self.wire.note(self.conn, "send timed out: the server is not reading from this connection")
            raise
        except OSError as exc:
            self.wire.note(self.conn, f"send failed: {exc.strerror or exc}")
            raise

    def recv(self, bufsize: int) -> bytes:
        try:
            data = self._sock.recv(bufsize)
        except ConnectionResetError:
            self.wire.note(self.conn, "the server reset the connection (RST)")
            raise
        if data:
            self.wire.record(self.conn, RECV, data)
            if self.received is not None and len(self.received) < MAX_KEPT_BYTES:
                self.received += data[:MAX_KEPT_BYTES - len(self.received)]
        else:
            self.wire.note(self.conn, "the server closed the connection (EOF)")
        return data

    def shutdown(self, how: int) -> None:
        self.wire.note(self.conn, "client shut down its sending side (FIN), still reading")
        if how == socket.SHUT_WR:
            shutdown_write(self._sock)  # over TLS too: keeps the TLS layer for the reads
        else:
            self._sock.shutdown(how)

    def close(self) -> None:
        self._sock.close()
