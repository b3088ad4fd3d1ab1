"""An asyncio chat client on the shared codec, for many connections in one process.

The blocking :class:`reference.client.ChatClient` is one socket per call site;
load generators need thousands of connections in one event loop.  This is the
same codec (``reference.protocol.Connection``) driven by an asyncio protocol::

    client = await connect_client("127.0.0.1", 1234, name="ana",
                                  on_relay=lambda relay, ns: print(relay.text))
    client.send("hello")
    client.abort()                      # RST; client.close() sends a FIN

``on_relay(relay, received_ns)`` is called synchronously from
``data_received`` for every relay, with the ``time.monotonic_ns()`` taken as
the bytes arrived, before any parsing: a receiver times a delivery as close
to the socket as asyncio allows, and the time it spends on earlier relays of
the same chunk is not charged to later ones.  A load generator, which judges
every delivery, passes ``on_frames(frames, received_ns)`` instead: one call a
read with the relays' payloads as the codec checked them, flat
(``[sender, text, ...]`` bytes, ``Connection.receive_relay_frames``), so that
no Relay object or text is made for a delivery it can judge from the bytes.
``closed`` is a future that resolves, with a plain-words reason, when the
connection ends for any cause.  Nothing here waits without a timeout.

Many connections can read in ticks instead (:class:`ReadTick`): once a tick,
one ``select()`` over their sockets, and one read of each that has bytes, so
that one read brings a tick's worth of relays.  Fewer, fuller reads cost less
CPU per relay; every relay's ``received_ns`` then includes the wait for its
read, up to one tick.
"""

from __future__ import annotations

import asyncio
import selectors
import socket
import struct
import sys
import time
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, TypeVar, cast

from reference.protocol import (
    DEFAULT_MAX_PAYLOAD,
    Connection,
    ConnectionClosed,
    Message,
    Register,
    Relay,
    RemoteProtocolError,
    Role,
)
from reference.tls import ClientTLS, asyncio_ssl

__all__ = [
    "AsyncChatClient",
    "FramesCallback",
    "ReadTick",
    "connect_client",
    "event_loop_name",
    "open_socket",
    "run",
]

T = TypeVar("T")

#: Linux's IP_BIND_ADDRESS_NO_PORT: bind a source address but leave the port
#: choice to connect(), so ports are unique per 4-tuple, not per source address.
_IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)

RelayCallback = Callable[[Relay, int], None]
FramesCallback = Callable[[list[bytes], int], None]
_RECV_SIZE = 64 * 1024


class AsyncChatClient(asyncio.Protocol):
    """One connection: codec, transport, and a future that says why it closed."""

    def __init__(self, on_relay: RelayCallback | None = None,
                 max_payload: int = DEFAULT_MAX_PAYLOAD, on_frames: FramesCallback | None = None) -> None:
        self.conn = Connection(Role.CLIENT, max_payload=max_payload)
        self.on_relay = on_relay
        self.on_frames = on_frames  # set: each read's relays as flat payloads, instead of on_relay
        self.transport: asyncio.Transport | None = None
        self.closed: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.relays_received = 0
        self.reads = 0  # data_received calls: relays_received / reads is the batching achieved
        self.error: RemoteProtocolError | None = None
        #: The connection's own socket when it is plain TCP (None over TLS): a ReadTick reads it.
        self.sock: socket.socket | None = None

    # -- asyncio.Protocol -------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        if hasattr(transport, "max_size"):
            # asyncio reads with recv(256 KiB); glibc serves a buffer that size with
            # mmap, so every read pays an mmap/munmap pair (about 20 us on a small
            # VM, ten times the read itself).  64 KiB stays on the heap.
            transport.max_size = _RECV_SIZE

    def data_received(self, data: bytes) -> None:
        self._received(data, time.monotonic_ns())

    def _received(self, data: bytes, received_ns: int) -> None:
        """The relays of one read, taken at ``received_ns``, to the callbacks."""
        conn = self.conn
        try:
            # A read often holds hundreds of relays: decode them in one pass (batched).
            if self.on_frames is not None:
                frames = conn.receive_relay_frames(data)
                self.reads += 1
                self.relays_received += len(frames) >> 1
                self.on_frames(frames, received_ns)
            else:
                relays = conn.receive_relays(data)
                self.reads += 1
                self.relays_received += len(relays)
                on_relay = self.on_relay
                if on_relay is not None:
                    for relay in relays:
                        on_relay(relay, received_ns)
            if conn.error_pending:
                conn.next_relays()  # raises the error that followed those relays
        except RemoteProtocolError as exc:
            # The server broke the protocol: nothing later on this stream can be trusted.
            self.error = exc
            self._finish(f"protocol error from the server: {exc}")
            self.abort()

    def eof_received(self) -> bool:
        self.conn.receive_data(b"")
        reason = "closed by the server"
        try:
            while not isinstance(self.conn.next_event(), ConnectionClosed):
                pass  # relays completed by the last bytes were delivered already
        except RemoteProtocolError:
            reason = "closed by the server in the middle of a frame"
        self._finish(reason)
        return False  # let asyncio close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is None:
            self._finish("closed")
        elif isinstance(exc, ConnectionResetError):
            self._finish("reset by the server")
        else:
            self._finish(f"connection error: {exc}")

    def _finish(self, reason: str) -> None:
        if not self.closed.done():
            self.closed.set_result(reason)

    # -- sending ----------------------------------------------------------------
    def register(self, name: str) -> None:
        self._write(self.conn.send(Register(name)))

    def send(self, text: str) -> None:
        self._write(self.conn.send(Message(text)))

    def send_raw(self, data: bytes) -> None:
        self._write(data)

    def _write(self, data: bytes) -> None:
        # transport.write never blocks: bytes the kernel will not take yet wait
        # in user space, so an open-loop sender is never paced by the server.
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    @property
    def name(self) -> str | None:
        return self.conn.name

    @property
    def is_open(self) -> bool:
        return not self.closed.done() and self.transport is not None \
            and not self.transport.is_closing()

    @property
    def write_buffer_size(self) -> int:
        return self.transport.get_write_buffer_size() if self.transport else 0

    # -- closing ----------------------------------------------------------------
    def close(self) -> None:
        """Close cleanly (FIN after the buffered bytes are written)."""
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        """Close abruptly with a TCP RST (SO_LINGER with a zero timeout)."""
        if self.transport is None:
            return
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except (OSError, ValueError):  # already closed: uvloop's socket says "negative fd"
                pass
        self.transport.abort()


class ReadTick:
    """Connections that read once a tick, all in one pass of one selector.

    A receiver that keeps up reads about one relay a read, and the kernel's and
    the event loop's cost of a read is a large part of the cost of a delivery.
    In ticks, a read brings every relay that came since the last one: fewer
    reads for the same relays.  Each connection's transport stops reading, and
    once a tick one ``select()`` (timeout 0) over all their sockets says which
    have bytes; each of those is read once, straight into the connection's
    codec, with ``received_ns`` taken just before its read.  Nothing is
    registered or unregistered per read, and nothing wakes the event loop
    between ticks.  The price is resolution: a relay waits in the kernel until
    the next tick, and its ``received_ns`` includes that wait, at most one tick
    (plus the loop's own delay).  Writes go on as usual; only reading rests.

        tick = ReadTick(0.005)
        tick.start(clients)  # plain TCP connections (AsyncChatClient.sock)
        ...
        tick.stop()          # the transports read as data comes again

    Not over TLS (the socket holds ciphertext) nor on Windows (its event loop
    has a read outstanding on every socket): :meth:`start` raises ValueError.
    """

    def __init__(self, seconds: float) -> None:
        if not seconds > 0:
            raise ValueError(f"a read tick must be positive, not {seconds!r}")
        self.seconds = seconds
        self._selector: selectors.BaseSelector | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0  # when the next tick is due, on the loop's clock

    def start(self, clients: Iterable[AsyncChatClient]) -> None:
        """Stop the transports' reading and read their sockets once a tick (from the event loop)."""
        clients = list(clients)
        if sys.platform == "win32":
            raise ValueError("reading in ticks does not work on Windows (its event loop keeps a "
                             "read outstanding on every socket)")
        if any(client.sock is None for client in clients):
            raise ValueError("reading in ticks needs plain TCP connections: over TLS the socket "
                             "holds ciphertext")
        self._selector = selectors.DefaultSelector()
        for client in clients:
            if client.is_open:
                assert client.transport is not None and client.sock is not None
                client.transport.pause_reading()
                self._selector.register(client.sock, selectors.EVENT_READ, client)
        loop = asyncio.get_running_loop()
        self._due = loop.time() + self.seconds
        self._handle = loop.call_at(self._due, self._tick)

    def _tick(self) -> None:
        selector = self._selector
        if selector is None:
            return
        # The next tick one period after this one was due, not after this one's work: a
        # relay waits at most one tick.  A tick that ran late is not made up for in a burst.
        loop = asyncio.get_running_loop()
        self._due = max(self._due + self.seconds, loop.time())
        self._handle = loop.call_at(self._due, self._tick)
        for key, _ in selector.select(0):
            client: AsyncChatClient = key.data
            try:
                received_ns = time.monotonic_ns()
                data = client.sock.recv(_RECV_SIZE)  # type: ignore[union-attr]  # registered: not None
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as exc:
                selector.unregister(key.fileobj)
                client.connection_lost(exc)
                client.abort()
                continue
            if data:
                client._received(data, received_ns)
                if not client.is_open:  # a protocol error: the client aborted itself
                    selector.unregister(key.fileobj)
            else:
                selector.unregister(key.fileobj)
                client.eof_received()
                client.close()

    def stop(self) -> None:
        """Stop the ticks: every transport still open reads as its data comes, from now on."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        selector, self._selector = self._selector, None
        if selector is None:
            return
        for key in list(selector.get_map().values()):
            client = key.data
            if client.is_open and client.transport is not None:
                client.transport.resume_reading()
        selector.close()


def event_loop_name() -> str:
    """Which event loop :func:`run` uses: "uvloop" where it is installed, else "asyncio"."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on uvloop's event loop where uvloop is installed (made for many
    sockets in one process: fewer Python frames per read and write), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def open_socket(host: str, source_host: str | None = None) -> socket.socket:
    """A non-blocking TCP socket, bound to ``source_host`` (port chosen at connect)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if source_host is not None:
            try:
                sock.setsockopt(socket.IPPROTO_IP, _IP_BIND_ADDRESS_NO_PORT, 1)
            except OSError:
                pass  # not Linux: bind() picks the port, which still works below ~28k
            sock.bind((source_host, 0))
    except BaseException:
        sock.close()
        raise
    return sock


async def connect_client(host: str, port: int, *, name: str | None = None,
                         on_relay: RelayCallback | None = None,
                         source_host: str | None = None, timeout: float = 5.0,
                         max_payload: int = DEFAULT_MAX_PAYLOAD,
                         tls: ClientTLS | None = None,
                         on_frames: FramesCallback | None = None) -> AsyncChatClient:
    """Connect (from ``source_host`` if given) and, if ``name`` is given, register.

    Over TLS when ``tls`` is given or ``(host, port)`` is a registered TLS target.

    Raises the OSError of the failed connect (ConnectionRefusedError,
    EMFILE, EADDRNOTAVAIL, ...) or TimeoutError after ``timeout`` seconds.
    """
    loop = asyncio.get_running_loop()
    sock = open_socket(host, source_host)
    try:
        async with asyncio.timeout(timeout):
            await loop.sock_connect(sock, (host, port))
            context = asyncio_ssl((host, port), tls)  # None: plain TCP
            _, client = await loop.create_connection(
                lambda: AsyncChatClient(on_relay, max_payload, on_frames), sock=sock, ssl=context,
                server_hostname=host if context is not None else None)
    except BaseException:
        sock.close()
        raise
    if context is None:
        client.sock = sock
    if name is not None:
        client.register(name)
    return client
