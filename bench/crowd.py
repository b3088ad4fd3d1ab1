"""Drivers for the crowd benchmarks: saturation throughput and memory per idle client.

* ``Crowd``: N registered clients that all chat at once.  One round: every
  client sends one message, then the round ends when every client has read
  the N-1 relays it is owed.  Names and messages have fixed lengths, so a
  relay is always ``RELAY_BYTES`` long and most clients just count bytes (the
  cheapest reader, so the server is what limits the rate); client 0 parses
  everything it gets with the shared codec and checks senders and texts, so a
  server that garbles, drops or duplicates relays fails the round.
* ``server_cpu_seconds(pid)``: CPU time of a process (every thread), in
  nanosecond resolution from /proc/PID/schedstat where the kernel has it,
  else in clock ticks from /proc/PID/stat.
* ``idle_crowd``: open and register many idle connections with plain
  sockets, proven registered by a relay each of them receives.

Every wait is bounded (``WAIT_TIMEOUT``): a server that stalls fails the
benchmark with TimeoutError instead of hanging it.
"""

from __future__ import annotations

import os
import selectors
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from bench.rooms import WAIT_TIMEOUT
from reference.client import ChatClient, join_room
from reference.protocol import NEED_DATA, Connection, Relay, Role, encode_frame
from reference.tls import connect as tls_connect

CROWD_TEXT = "saturation benchmark message 32B"
_NAME_WIDTH = 5  # "c0000".."c9999": every name frame has the same length


def crowd_name(i: int) -> str:
    return f"c{i:0{_NAME_WIDTH - 1}d}"


#: Bytes of one relay to one client: the name frame, then the message frame.
RELAY_BYTES = len(encode_frame(crowd_name(0).encode())) + len(encode_frame(CROWD_TEXT.encode()))


class Crowd:
    """``size`` registered clients chatting all at once (see the module docstring)."""

    def __init__(self, clients: list[ChatClient]) -> None:
        self.clients = clients
        self.socks = [c.sock for c in clients]
        for sock in self.socks:
            sock.setblocking(False)
        self.frame = encode_frame(CROWD_TEXT.encode())
        self.checker = Connection(Role.CLIENT)  # client 0's relays, parsed in full
        self.selector = selectors.DefaultSelector()
        for i, sock in enumerate(self.socks):
            self.selector.register(sock, selectors.EVENT_READ, i)
        self.deliveries = 0

    def close(self) -> None:
        self.selector.close()
        for client in self.clients:
            client.close()

    def round(self) -> int:
        """One message from every client; return when every relay arrived (deliveries)."""
        size = len(self.socks)
        owed = [(size - 1) * RELAY_BYTES] * size
        senders_seen: dict[str, int] = {}
        for sock in self.socks:
            _send_all(sock, self.frame)
        deadline = time.monotonic() + WAIT_TIMEOUT
        waiting = size
        while waiting:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                late = sum(1 for o in owed if o > 0)
                raise TimeoutError(f"{late} of {size} clients still owed relays after {WAIT_TIMEOUT:g} s")
            for key, _ in self.selector.select(remaining):
                i = key.data
                data = self.socks[i].recv(1 << 20)
                if not data:
                    raise ConnectionError(f"the server closed client {crowd_name(i)}")
                owed[i] -= len(data)
                if owed[i] < 0:
                    raise AssertionError(f"client {crowd_name(i)} got {-owed[i]} bytes more than relayed")
                if owed[i] == 0:
                    waiting -= 1
                if i == 0:
                    self._check(data, senders_seen)
        if len(senders_seen) != size - 1 or set(senders_seen.values()) != {1}:
            raise AssertionError(f"client {crowd_name(0)} got relays {senders_seen} in this round")
        self.deliveries += size * (size - 1)
        return size * (size - 1)

    def _check(self, data: bytes, senders_seen: dict[str, int]) -> None:
        self.checker.receive_data(data)
        while (event := self.checker.next_event()) is not NEED_DATA:
            if not isinstance(event, Relay) or event.text != CROWD_TEXT:
                raise AssertionError(f"client {crowd_name(0)} got {event!r}")
            senders_seen[event.sender] = senders_seen.get(event.sender, 0) + 1


def _send_all(sock: socket.socket, data: bytes) -> None:
    """sendall on a non-blocking socket (a few bytes: the buffer is nearly always free)."""
    view = memoryview(data)
    deadline = time.monotonic() + WAIT_TIMEOUT
    while view:
        try:
            view = view[sock.send(view):]
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise TimeoutError("the server stopped reading") from None
            time.sleep(0.0005)


@contextmanager
def open_crowd(address: tuple[str, int], size: int) -> Iterator[Crowd]:
    clients = join_room(*address, [crowd_name(i) for i in range(size)], timeout=WAIT_TIMEOUT)
    crowd = Crowd(clients)
    try:
        yield crowd
    finally:
        crowd.close()


def server_cpu_seconds(pid: int) -> float | None:
    """CPU seconds the process ``pid`` has used so far (all its threads); None without /proc."""
    if not Path(f"/proc/{pid}").exists():
        return None
    total_ns = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            total_ns += int((task / "schedstat").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        total_ns = 0
    if total_ns > 0:
        return total_ns / 1e9
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def idle_crowd(address: tuple[str, int], size: int) -> Iterator[list[socket.socket]]:
    """``size`` registered, silent connections (plain sockets); closed on exit.

    Registration has no acknowledgement, so a registered hub says "sync" until
    every one of them has received a relay, which proves the server registered
    it (JOIN-3).  Early ones get several; they are read, so nothing stays queued.
    """
    with ExitStack() as stack:
        hub = stack.enter_context(ChatClient.connect(*address, name="hub", timeout=WAIT_TIMEOUT))
        socks: list[socket.socket] = []
        for i in range(size):
            sock = stack.enter_context(tls_connect(address, WAIT_TIMEOUT))  # TLS to a TLS target
            sock.sendall(encode_frame(crowd_name(i).encode()))
            socks.append(sock)
        selector = stack.enter_context(selectors.DefaultSelector())
        for sock in socks:
            selector.register(sock, selectors.EVENT_READ)
        deadline = time.monotonic() + WAIT_TIMEOUT
        hub_frame = encode_frame(b"hub")
        pending = len(socks)
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{pending} of {size} idle clients got no relay: not registered?")
            hub.send("sync")
            while ready := selector.select(0.2):
                for key, _ in ready:
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    data = sock.recv(1 << 16)
                    if not data or not hub_frame.startswith(data[:len(hub_frame)]):
                        raise AssertionError(f"an idle client got {data[:40]!r}, not the hub's relay")
                    selector.unregister(sock)
                    pending -= 1
        yield socks
