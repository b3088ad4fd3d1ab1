"""The output half of the reference server: per-client queues, and who pays when they fill.

The server writes a relay straight to a reader's socket when it can and
queues the rest.  A queue that passes ``--max-backlog``, or buffered data
that passes the server-wide ``--max-memory``, means somebody must go, and
it must be the one causing it (PROTOCOL.md ROBUST-4, ROBUST-8, LIMIT-3):

* a reader slower than the sender that fills its queue is dropped ("not
  reading");
* a sender whose relays outgrow a reader that keeps up with what the sender
  sends (a long name, zero-length messages: the server owes more than it
  got) is dropped for flooding, and its relays no reader has begun to
  receive are withdrawn, so the memory is free at once.

``ChatServer`` (reference/server.py) mixes ``OutputQueues`` in; the loop,
reading and accepting stay there.
"""

from __future__ import annotations

import collections
import logging
import selectors
import socket
import ssl

from reference.protocol import Connection, Role
from reference.tls import WOULD_BLOCK as WOULD_BLOCK

#: Server memory one connection costs beyond the bytes it has buffered: its
#: socket object, Client, Connection, decoder, deque and selector entries
#: (tracemalloc, measured by tests/reference/test_server_memory.py; see docs/hostile-clients.md).
#: A read's usual size, below glibc's mmap threshold (reference/server.py reads more
#: for the rest of a large frame).
RECV_SIZE = 64 * 1024
CLIENT_OVERHEAD = 4096  # measured ~2,200 (docs/hostile-clients.md): about twice, for dict growth and slack
#: What OpenSSL holds for one idle TLS connection on top (its buffers and state, outside
#: Python's allocator): measured 15.3 KiB of server RSS per registered idle client
#: (16.5 KiB with TLS, 1.2 KiB without, 400 clients, docs/tls.md).
TLS_OVERHEAD = 16 * 1024
DEAD_CONNECTION = Connection(Role.SERVER, max_payload=0)  # replaces a dropped client's codec


class Client:
    """One accepted connection: its socket, codec and output queue."""

    __slots__ = ("accepted_at", "addr", "closed", "conn", "drained", "fd", "in_bytes", "label",
                 "name_frame", "out", "out_bytes", "queued_from", "received", "received_before",
                 "recv_size", "sock", "writing", "handshaking",
                 "__weakref__")  # weakref: tests prove a closed one is freed

    def __init__(self, sock: socket.socket, addr: tuple[str, int], max_payload: int,
                 max_username: int, now: float):
        self.sock = sock
        self.fd = sock.fileno()
        self.addr = addr
        self.conn = Connection(Role.SERVER, max_payload=max_payload,
                               max_username=max_username)
        self.name_frame = b""          # the encoded username frame, once registered
        # Queued output: (bytes, the client whose relay they are, or None).
        self.out: collections.deque[tuple[memoryview, Client | None]] = collections.deque()
        self.out_bytes = 0             # total bytes waiting in ``out``
        #: For each sender with relays in ``out``: [bytes queued, our ``drained``
        #: and its ``received_before`` when its first one was queued] (ROBUST-8).
        self.queued_from: dict[Client, list[int]] = {}
        self.drained = 0               # bytes ever sent from ``out`` (not the direct sends)
        self.received = 0              # bytes of the messages it sent so far (not its name)
        self.received_before = 0       # ``received`` before the message being relayed
        self.in_bytes = 0              # bytes its codec holds (part of a frame)
        self.accepted_at = now
        self.writing = False           # registered for EVENT_WRITE
        self.handshaking = False       # a TLS connection whose handshake is not done
        self.closed = False            # set by _drop: any later event for it is stale
        self.recv_size = RECV_SIZE    # the next read's size: more for the rest of a large frame
        self.label = f"{addr[0]}:{addr[1]}"


class OutputQueues:
    """Writing, queueing and the charge for full queues; needs the attributes below."""

    clients: dict[int, Client]
    selector: selectors.BaseSelector
    memory_held: int   # bytes buffered for clients + CLIENT_OVERHEAD each (LIMIT-3)
    max_backlog: int
    max_memory: int

    def _drop(self, client: Client, reason: str, level: int = logging.WARNING) -> None:
        raise NotImplementedError

    # -- writing ----------------------------------------------------------------
    def _write(self, client: Client, data: bytes, sender: Client | None = None) -> None:
        """Send ``data`` to ``client`` now, or queue what the socket does not take.

        ``sender`` is the client whose relay this is: the queue charges it for
        the bytes (ROBUST-8).  The common case, an empty queue and a socket
        that takes everything, costs one send() and no bookkeeping.
        """
        if client.out:
            self._queue_rest(client, data, True, sender)
            return
        try:
            sent = client.sock.send(data)
        except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
            # OpenSSL may hold part of ``data`` in records already written, and
            # must be given the same bytes again: queued whole, never withdrawn.
            self._queue_rest(client, data, False, sender)
            return
        except WOULD_BLOCK:
            sent = 0
        except OSError as exc:
            self._drop(client, f"send failed: {exc.strerror or exc}")
            return
        if sent != len(data):
            self._write_rest(client, data, sent, sender)

    def _write_rest(self, client: Client, data: bytes, sent: int, sender: Client | None) -> None:
        """The socket took ``sent`` bytes of ``data`` (perhaps none): queue the rest."""
        self._queue_rest(client, memoryview(data)[sent:] if sent else data, sent == 0, sender)

    def _queue_rest(self, client: Client, data: bytes | memoryview, whole: bool,
                    sender: Client | None) -> None:
        """Queue ``data`` (``whole``: none of this relay is on the wire yet), within the limits."""
        n = len(data)
        if client.out_bytes + n > self.max_backlog or self.memory_held + n > self.max_memory:
            if not self._make_room(client, n):
                return
            if sender is not None and sender.closed and whole:
                return  # the relay of a sender refused for flooding: withdrawn
        self._queue(client, memoryview(data), sender)

    def _queue(self, client: Client, view: memoryview, sender: Client | None) -> None:
        client.out.append((view, sender))
        n = len(view)
        client.out_bytes += n
        self.memory_held += n
        if sender is not None:
            entry = client.queued_from.get(sender)
            if entry is None:  # the starting point of ROBUST-8's comparison
                client.queued_from[sender] = [n, client.drained, sender.received_before]
            else:
                entry[0] += n
        if not client.writing:
            client.writing = True
            self.selector.modify(client.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, client)

    def _flush(self, client: Client) -> None:
        out = client.out
        queued_from = client.queued_from
        while out:
            chunk, sender = out[0]
            try:
                sent = client.sock.send(chunk)
            except WOULD_BLOCK:
                return
            except OSError as exc:
                self._drop(client, f"send failed: {exc.strerror or exc}")
                return
            client.out_bytes -= sent
            client.drained += sent
            self.memory_held -= sent
            if sender is not None and (entry := queued_from.get(sender)) is not None:
                entry[0] -= sent
                if entry[0] <= 0:
                    del queued_from[sender]
            if sent < len(chunk):
                out[0] = (chunk[sent:], sender)
                return
            out.popleft()
        client.writing = False
        self.selector.modify(client.sock, selectors.EVENT_READ, client)

    # -- who pays for a full queue (ROBUST-4, ROBUST-8, LIMIT-3) ---------------------
    def _make_room(self, reader: Client, n: int) -> bool:
        """Queueing ``n`` more bytes for ``reader`` passes a limit: drop whoever causes it.

        Returns False when that is ``reader`` itself (nothing more to send it).
        """
        if reader.out_bytes + n > self.max_backlog:
            flooder = self._flooder(reader)
            if flooder is None:
                self._drop(reader, "not reading: output backlog would exceed "
                                   f"{self.max_backlog} bytes")
                return False
            self._drop_flooder(flooder, reader)
        if self.memory_held + n > self.max_memory:
            self._over_budget()
        return not reader.closed

    def _flooder(self, reader: Client) -> Client | None:
        """The sender to refuse for ``reader``'s full queue, or None if the reader is to blame.

        The candidate is the live sender with the most bytes in the queue.  If
        the reader has taken at least as many bytes since that sender's relays
        began to queue as the sender has sent in the same time, the reader
        keeps up with the sender and the backlog is the relays' amplification
        (a long name, zero-length messages): the sender pays.  Otherwise the
        reader is slower than its sender: the reader pays, as ROBUST-4 says.
        """
        top: Client | None = None
        top_bytes = 0
        for sender, (queued, _, _) in reader.queued_from.items():
            if queued > top_bytes and not sender.closed:
                top, top_bytes = sender, queued
        if top is None:
            return None
        _, drained_at, received_at = reader.queued_from[top]
        progress = reader.drained - drained_at
        return top if top.received - received_at <= progress else None

    def _drop_flooder(self, flooder: Client, reader: Client) -> None:
        """Refuse ``flooder`` and withdraw its relays that no reader has begun to receive."""
        self._drop(flooder, f"flooding: its relays fill the output queue of {reader.label} "
                            f"faster than it sends them ({reader.out_bytes} bytes queued)")
        for client in list(self.clients.values()):
            if flooder in client.queued_from:
                self._withdraw(client, flooder)

    def _withdraw(self, client: Client, sender: Client) -> None:
        out = client.out
        head = out.popleft()  # perhaps half written: it stays, or the stream would break
        kept = collections.deque(item for item in out if item[1] is not sender)
        kept.appendleft(head)
        removed = client.out_bytes - sum(len(chunk) for chunk, _ in kept)
        client.out = kept
        client.out_bytes -= removed
        self.memory_held -= removed
        entry = client.queued_from[sender]
        entry[0] -= removed
        if entry[0] <= 0:
            del client.queued_from[sender]

    def _over_budget(self) -> None:
        """--max-memory is reached: the client holding the most bytes, or its flooder, goes."""
        biggest = max(self.clients.values(), key=lambda c: c.out_bytes + c.in_bytes, default=None)
        if biggest is None or biggest.out_bytes + biggest.in_bytes == 0:
            return  # only per-connection charges: accept() refuses newcomers, nobody is to blame
        if biggest.in_bytes >= biggest.out_bytes:
            self._drop(biggest, f"server memory budget: holds {biggest.in_bytes} bytes of a "
                                f"frame (--max-memory {self.max_memory})")
            return
        flooder = self._flooder(biggest)
        if flooder is not None:
            self._drop_flooder(flooder, biggest)
        else:
            self._drop(biggest, f"server memory budget: not reading, {biggest.out_bytes} bytes "
                                f"queued (--max-memory {self.max_memory})")
