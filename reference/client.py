"""A small blocking chat client on the shared codec.

The conformance suite, the load tools, the Tk client and the tests build on
this instead of writing their own framing::

    with ChatClient.connect("127.0.0.1", 1234, name="ana") as ana:
        ana.send("hello")
        relay = ana.receive(timeout=2.0)     # Relay(sender=..., text=...)

``send_raw`` puts arbitrary bytes on the wire (for robustness tests), and
``abort`` closes with an RST instead of a FIN.  Every blocking call has a
timeout; nothing here waits forever.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Sequence
from types import TracebackType

from reference.barrier import LINEAR, JoinBarrier, RoomJoin
from reference.protocol import (
    DEFAULT_HOST,
    DEFAULT_MAX_PAYLOAD,
    DEFAULT_PORT,
    NEED_DATA,
    Connection,
    ConnectionClosed,
    Message,
    Register,
    Relay,
    Role,
)
from reference.tls import ClientTLS
from reference.tls import connect as tls_connect

__all__ = ["ChatClient", "ServerClosedError", "abort_socket", "join_room", "wait_registered"]

DEFAULT_TIMEOUT = 5.0
_RECV_SIZE = 64 * 1024  # below glibc's mmap threshold: a larger recv() costs an mmap+munmap per call


class ServerClosedError(ConnectionError):
    """The server closed the connection (cleanly or by reset)."""


def abort_socket(sock: socket.socket) -> None:
    """Close ``sock`` with a TCP RST (SO_LINGER with a zero timeout)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


class ChatClient:
    """One blocking connection to a chat server."""

    def __init__(
        self,
        sock: socket.socket,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
    ) -> None:
        self.sock = sock
        self.timeout = timeout
        self.conn = Connection(Role.CLIENT, max_payload=max_payload)
        self.closed = False

    # -- life cycle ---------------------------------------------------------
    @classmethod
    def connect(
        cls,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        *,
        name: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        source_address: tuple[str, int] | None = None,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
        tls: ClientTLS | None = None,
    ) -> ChatClient:
        """Open a connection and, if ``name`` is given, register it."""
        # TLS when asked, or when (host, port) is a TLS target open_target registered.
        sock = tls_connect((host, port), timeout, tls=tls, source_address=source_address)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client = cls(sock, timeout=timeout, max_payload=max_payload)
        if name is not None:
            client.register(name)
        return client

    def close(self) -> None:
        """Close cleanly (FIN)."""
        if not self.closed:
            self.closed = True
            self.sock.close()

    def abort(self) -> None:
        """Close abruptly (RST)."""
        if not self.closed:
            self.closed = True
            abort_socket(self.sock)

    def __enter__(self) -> ChatClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def name(self) -> str | None:
        return self.conn.name

    # -- sending ----------------------------------------------------------
    def register(self, name: str) -> None:
        self.send_raw(self.conn.send(Register(name)))

    def send(self, text: str) -> None:
        self.send_raw(self.conn.send(Message(text)))

    def send_raw(self, data: bytes) -> None:
        """Send bytes as they are, bypassing the codec's checks."""
        self.sock.settimeout(self.timeout)
        self.sock.sendall(data)

    # -- receiving --------------------------------------------------------
    def receive(self, timeout: float | None = None) -> Relay:
        """The next relayed (sender, text); raise TimeoutError or ServerClosedError.

        ``timeout`` bounds the whole call, not each recv.
        """
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            event = self.conn.next_event()
            if isinstance(event, Relay):
                return event
            if isinstance(event, ConnectionClosed):
                raise ServerClosedError("server closed the connection")
            assert event is NEED_DATA
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no complete relay within the timeout")
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(_RECV_SIZE)
            except TimeoutError:
                raise TimeoutError("no complete relay within the timeout") from None
            except ConnectionResetError as exc:
                raise ServerClosedError("server reset the connection") from exc
            self.conn.receive_data(data)

    def receive_all(self, count: int, timeout: float | None = None) -> list[Relay]:
        """Exactly ``count`` relays within ``timeout`` seconds in total."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        return [self.receive(max(0.0, deadline - time.monotonic())) for _ in range(count)]

    def expect_silence(self, duration: float) -> Relay | None:
        """Wait ``duration`` seconds; return the first relay that came, or None."""
        try:
            return self.receive(timeout=duration)
        except TimeoutError:
            return None


def wait_registered(sender: ChatClient, newcomer: ChatClient, others: Sequence[ChatClient] = (),
                    timeout: float = DEFAULT_TIMEOUT, tag: str = "sync") -> None:
    """Return once ``newcomer`` is certainly registered (a barrier, not a sleep).

    Registration has no acknowledgement, and a server may read another
    connection's frame before the newcomer's username.  So ``sender`` (already
    registered) sends numbered sentinels until the newcomer receives one; then
    everyone drains up to the last sentinel sent, which per-sender order
    (RELAY-4) guarantees is the last of them to arrive.  ``others`` are the
    other registered clients, which receive the sentinels too.  The logic is
    :class:`reference.barrier.JoinBarrier`; this drives it with a deadline.
    """
    # Known by text alone, as always: a server that mislabels relays is the checks' to judge.
    barrier = JoinBarrier(None, f"{tag}-", backoff=LINEAR)
    _drive_join(barrier, sender, newcomer, others, time.monotonic() + timeout)


def _drive_join(barrier: JoinBarrier, hub: ChatClient, newcomer: ChatClient,
                others: Sequence[ChatClient], deadline: float) -> None:
    """Send the barrier's sentinels until the newcomer has one; drain everyone to the last."""
    started = time.monotonic()
    while not barrier.done:
        hub.send(barrier.next_sentinel())
        wait_until = min(deadline, time.monotonic() + barrier.next_wait())
        try:
            while not barrier.done:  # skip what is not the hub's sentinel, within this wait
                got = newcomer.receive(timeout=_left(wait_until))
                barrier.observe(got)
        except TimeoutError:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{newcomer.name!r} did not receive {hub.name!r}'s sentinel "
                                   f"within {deadline - started:g} s: not registered?") from None
    if not barrier.drained(got):  # the confirming sentinel may be the last one already
        while not barrier.drained(newcomer.receive(timeout=_left(deadline))):
            pass
    for client in others:
        while not barrier.drained(client.receive(timeout=_left(deadline))):
            pass


def join_room(host: str, port: int, names: Sequence[str],
              timeout: float = DEFAULT_TIMEOUT) -> list[ChatClient]:
    """Connect and register ``names``; return when all are registered, queues empty.

    The first client is the hub.  ``wait_registered`` proves the hub and the
    second client registered; then every other client says ``ready:<i>``
    after its username (a server handles one connection's frames in order, so
    the hub hearing it proves that client registered), and the hub's final
    ``go`` drains everyone's queue: each round of a test starts clean.  That is
    a linear number of rounds, so a room of hundreds joins quickly.  The
    rounds are :class:`reference.barrier.RoomJoin`; this drives them.
    """
    deadline = time.monotonic() + timeout
    plan = RoomJoin(names, "sync-", LINEAR)
    clients: list[ChatClient] = []
    try:
        for name in names[:2]:
            clients.append(ChatClient.connect(host, port, name=name, timeout=timeout))
        if plan.first is not None:
            _drive_join(plan.first, clients[0], clients[1], (), deadline)
        for i, name in enumerate(names[2:], start=2):
            client = ChatClient.connect(host, port, name=name, timeout=timeout)
            clients.append(client)
            client.send(plan.ready_text(i))
        hub, others = clients[0], clients[1:]
        while not plan.ready_done:
            plan.observe_ready(hub.receive(timeout=_left(deadline)))
        if plan.go is not None:
            hub.send(plan.go.text)
            for client in others:
                while not plan.go.drained(client.receive(timeout=_left(deadline))):
                    pass
    except BaseException:
        for c in clients:
            c.close()
        raise
    return clients


def _left(deadline: float) -> float:
    """Seconds until ``deadline`` (monotonic), never negative."""
    return max(0.0, deadline - time.monotonic())
