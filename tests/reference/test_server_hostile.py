"""The reference server against hostile clients, stepped in-process so each case is deterministic.

The server runs in the test's own thread, one batch of selector events per
``pump`` step, so the order of reads, writes and drops is fixed by the test:
fd reuse within one batch, an amplifying sender against a reader that keeps
reading, a slow reader, the memory budget, and closed clients freed at once
(issue 14, "The reference server").
"""

from __future__ import annotations

import errno
import gc
import logging
import selectors
import socket
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from reference.protocol import NEED_DATA, Connection, Relay, Role, encode_frame
from reference.server import CLIENT_OVERHEAD, ChatServer, Client, ServerConfig


@pytest.fixture
def make_server() -> Iterator[Callable[..., ChatServer]]:
    servers: list[ChatServer] = []

    def make(**config: Any) -> ChatServer:
        server = ChatServer(ServerConfig(port=0, **config))
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


def pump(server: ChatServer, until: Callable[[], bool] = lambda: False, steps: int = 50) -> None:
    """Step the server until ``until()`` holds (or ``steps`` batches, each waiting up to 50 ms)."""
    for _ in range(steps):
        if until():
            return
        server.run_once(0.05)


def connect(server: ChatServer, name: bytes | None = None) -> tuple[socket.socket, Client]:
    """A raw client socket and the server's Client for it (registered if ``name``)."""
    before = set(server.clients.values())
    sock = socket.create_connection(server.address, timeout=5)
    if name is not None:
        sock.sendall(encode_frame(name))
    pump(server, lambda: bool(set(server.clients.values()) - before)
         and (name is None or all(c.conn.registered for c in set(server.clients.values()) - before)))
    (client,) = set(server.clients.values()) - before
    return sock, client


def read_relays(sock: socket.socket, conn: Connection, limit: int = 1 << 30) -> tuple[list[Relay], bool]:
    """Relays readable now without blocking (at most ``limit`` bytes read); and whether EOF came."""
    got: list[Relay] = []
    taken = 0
    sock.setblocking(False)
    eof = False
    try:
        while taken < limit:
            data = sock.recv(min(65536, limit - taken))
            if not data:
                eof = True
                break
            taken += len(data)
            conn.receive_data(data)
    except (BlockingIOError, ConnectionResetError):
        pass
    finally:
        sock.setblocking(True)
    while (event := conn.next_event()) is not NEED_DATA:
        assert isinstance(event, Relay)
        got.append(event)
    return got, eof


def test_stale_event_after_fd_reuse_does_not_touch_the_newcomer(
        make_server: Callable[..., ChatServer]) -> None:
    """One batch: a client closes, a newcomer gets its fd number, then the old client's stale event."""
    server = make_server()
    gone_sock, gone = connect(server, b"gone")
    gone_sock.close()  # its next read is EOF, so handling its first event drops it
    newcomer_sock = socket.create_connection(server.address, timeout=5)
    # The batch goes in through _ready, the one seam both ways of polling share: with the
    # default selector (epoll on Linux) run_once never calls selector.select, so a batch
    # planted there went unread and this test passed with the fix reverted.
    batch = [(gone, selectors.EVENT_READ), (None, selectors.EVENT_READ),
             (gone, selectors.EVENT_READ | selectors.EVENT_WRITE)]
    served: list[float | None] = []
    server._ready = lambda timeout: served.append(timeout) or batch  # type: ignore[method-assign]
    server.run_once(0)  # before the fix: ValueError: Invalid file descriptor: -1
    del server._ready
    assert served == [0], "run_once did not take its batch from _ready"
    newcomer = server.clients[gone.fd]
    assert newcomer is not gone and gone.closed and not newcomer.closed
    assert server.selector.get_key(newcomer.sock).data is newcomer
    # The newcomer is whole: it registers and is relayed to.
    newcomer_sock.sendall(encode_frame(b"newcomer"))
    sender_sock, _ = connect(server, b"sender")
    pump(server, lambda: newcomer.conn.registered)
    sender_sock.sendall(encode_frame(b"hello"))
    got: list[Relay] = []
    conn = Connection(Role.CLIENT)
    pump(server, lambda: bool(got.extend(read_relays(newcomer_sock, conn)[0]) or got))
    assert got == [Relay("sender", "hello")]
    for s in (newcomer_sock, sender_sock):
        s.close()


class FailingListener:
    """The listening socket, except that accept() fails once with ``error``."""

    def __init__(self, real: socket.socket, error: int) -> None:
        self.real = real
        self.error = error

    def fileno(self) -> int:
        return self.real.fileno()

    def accept(self) -> tuple[socket.socket, Any]:
        if self.error:
            error, self.error = self.error, 0
            raise OSError(error, "simulated")
        return self.real.accept()

    def close(self) -> None:
        self.real.close()


@pytest.mark.parametrize("error", [errno.ENOBUFS, errno.ENOMEM, errno.EINVAL])
def test_accept_errors_do_not_stop_the_server(make_server: Callable[..., ChatServer], error: int,
                                              caplog: pytest.LogCaptureFixture) -> None:
    """Any accept() error is logged, the listener rests briefly, and the connection is taken after."""
    server = make_server()
    server.selector.unregister(server.listener)
    server.listener = FailingListener(server.listener, error)  # type: ignore[assignment]
    server.selector.register(server.listener, selectors.EVENT_READ, None)
    with caplog.at_level(logging.WARNING, "chat-server"):
        sock, client = connect(server, b"patient")  # before the fix: OSError out of run_once
    assert client.conn.registered
    assert "accept() failed" in caplog.text
    sock.close()


def test_emfile_without_a_spare_fd_does_not_stop_the_server(
        make_server: Callable[..., ChatServer], monkeypatch: pytest.MonkeyPatch) -> None:
    """EMFILE, and then no fd for the spare either (ENFILE): shed nothing, rest, carry on."""
    server = make_server()
    server.selector.unregister(server.listener)
    server.listener = FailingListener(server.listener, errno.EMFILE)  # type: ignore[assignment]
    server.selector.register(server.listener, selectors.EVENT_READ, None)

    def no_fd(*args: object) -> int:
        raise OSError(errno.ENFILE, "simulated")

    with monkeypatch.context() as m:
        m.setattr("reference.server.os.open", no_fd)
        doomed = socket.create_connection(server.address, timeout=5)
        server.run_once(1.0)  # before the fix: OSError ENFILE out of _shed_one
    assert server._spare_fd is None
    server.listener.error = errno.EMFILE  # type: ignore[attr-defined]
    sock, client = connect(server, b"patient")  # no spare: the listener rests, then accepts
    assert client.conn.registered
    for s in (doomed, sock):
        s.close()


def test_amplifying_sender_is_refused_and_the_reader_kept(make_server: Callable[..., ChatServer],
                                                          caplog: pytest.LogCaptureFixture) -> None:
    """ROBUST-8: a long name and zero-length messages outgrow a reader reading 16x faster than they come."""
    server = make_server(max_backlog=1024 * 1024)
    reader_sock, reader = connect(server, b"reader")
    # Small socket buffers, so that the backlog is in the server's queue, not the kernel's.
    reader_sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    reader.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
    flood_sock, flooder = connect(server, b"f" * 256)
    honest_sock, _ = connect(server, b"honest")
    flood = encode_frame(b"") * 20_000  # 200 kB in, 5.5 MB owed to the reader
    flood_sock.setblocking(False)
    sent = 0
    conn = Connection(Role.CLIENT)
    relays: list[Relay] = []
    with caplog.at_level(logging.WARNING, "chat-server"):
        for _ in range(1000):
            if sent < len(flood) and not flooder.closed:
                try:
                    sent += flood_sock.send(flood[sent:sent + 4096])  # 4 kB sent per step...
                except (BlockingIOError, ConnectionResetError):
                    pass
            server.run_once(0.01)
            got, _ = read_relays(reader_sock, conn, limit=65536)  # ...64 kB read per step
            relays += got
            if flooder.closed and not reader.out:
                break
    assert flooder.closed, "the amplifying sender was not refused"
    assert not reader.closed, "the reader who kept reading was dropped"
    assert "flooding" in caplog.text
    honest_sock.sendall(encode_frame(b"still here"))
    pump(server, lambda: bool(relays.extend(read_relays(reader_sock, conn)[0])
                              or relays and relays[-1].sender == "honest"))
    assert relays[-1] == Relay("honest", "still here")
    assert all(r == Relay("f" * 256, "") for r in relays[:-1])  # whole frames, none torn
    for s in (reader_sock, flood_sock, honest_sock):
        s.close()


def test_slow_reader_is_dropped_not_the_sender(make_server: Callable[..., ChatServer]) -> None:
    """ROBUST-4: a reader slower than what its sender sends pays for its own queue."""
    server = make_server(max_backlog=256 * 1024)
    slow_sock, slow = connect(server, b"slow")
    slow_sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)  # the backlog is the server's
    sender_sock, sender = connect(server, b"sender")
    conn = Connection(Role.CLIENT)
    message = encode_frame(b"x" * 8192)
    for _ in range(400):
        if slow.closed:
            break
        sender_sock.sendall(message)
        server.run_once(0.01)
        read_relays(slow_sock, conn, limit=512)  # reads, but far slower than the sender sends
    assert slow.closed and not sender.closed
    for s in (slow_sock, sender_sock):
        s.close()


def test_closed_clients_are_freed_at_once(make_server: Callable[..., ChatServer]) -> None:
    """A silent connection accepted first must not keep later closed ones in memory (JOIN-4),
    and a client dropped for a protocol error is freed without waiting for the garbage collector."""
    server = make_server()
    silent_sock, _ = connect(server)
    refs = []
    goodbyes = [b"", encode_frame(b"bye"), b"GET / HTTP/1.1\r\n", encode_frame(b"\xff")]
    gc.disable()  # freed by reference counting, at once, not by a later collection
    try:
        for i in range(20):
            sock, client = connect(server, f"c{i}".encode() if i % 2 else None)
            refs.append(weakref.ref(client))
            del client
            sock.sendall(goodbyes[i % 4])
            sock.close()
        pump(server, lambda: len(server.clients) == 1)
        assert [r for r in refs if r() is not None] == []
    finally:
        gc.enable()
    assert server.memory_held == CLIENT_OVERHEAD  # only the silent one is left, holding nothing
    silent_sock.close()


def test_memory_budget_bounds_partial_frames_and_refuses_newcomers(
        make_server: Callable[..., ChatServer]) -> None:
    """LIMIT-3: half-sent frames cannot hold more than --max-memory; past 3/4 nobody new gets in."""
    budget = 1024 * 1024
    server = make_server(max_memory=budget)
    room = [connect(server, f"slow{i}".encode()) for i in range(6)]
    for sock, client in room:  # each sends 300 kB of a 1 MB frame: six would hold 1.8 MB
        sock.sendall(b"1000000   " + b"x" * 300_000)
        pump(server, lambda c=client: c.closed or c.in_bytes >= 300_000, steps=100)  # type: ignore[misc]
        assert server.memory_held <= budget
    dropped = [client for _, client in room if client.closed]
    assert 0 < len(dropped) < 6  # the biggest holders went, the rest stay
    assert server.memory_held > budget * 0.75
    late = socket.create_connection(server.address, timeout=5)
    pump(server, steps=3)
    assert late.recv(1) == b""  # refused: no room for another client's frames
    for sock, _ in room:
        sock.close()
    pump(server, lambda: not server.clients)
    assert server.memory_held == 0  # every byte and every client's overhead is given back
    late.close()


# -- the loop's wait: no timer unless something is due on a clock --------------------------
@pytest.mark.skipif(not hasattr(selectors, "EpollSelector"), reason="the untimed wait is epoll's")
def test_loop_waits_without_a_timer_only_when_nothing_is_due(make_server: Callable[..., ChatServer]) -> None:
    server = make_server(selector="epoll")
    assert server._timeout() is None  # nobody connected: only a connection or a signal wakes it
    sock, client = connect(server)
    assert server._timeout() == 1.0  # a connection owes its username (JOIN-4): tick
    sock.sendall(encode_frame(b"ana"))
    pump(server, lambda: client.conn.registered)
    assert server._timeout() is None
    server._accept_resume = 1.0  # the listener at rest after an accept() error
    assert server._timeout() == 0.1
    sock.close()


def test_loop_ticks_for_a_subclass_hook_and_for_select(make_server: Callable[..., ChatServer]) -> None:
    class Hooked(ChatServer):
        ticks = 0

        def _expire_unregistered(self) -> None:
            self.ticks += 1

    hooked = Hooked(ServerConfig(port=0))
    try:
        assert hooked._timeout() == 1.0
        hooked.run_once(0)
        assert hooked.ticks == 1  # the hook runs after every wakeup, as before
    finally:
        hooked.close()
    assert make_server(selector="select")._timeout() == 1.0


def test_a_reader_dropped_while_a_relay_goes_out_gets_none_of_it(
        make_server: Callable[..., ChatServer]) -> None:
    """The relay loop has no ``closed`` test on its common path: a reader dropped earlier in
    the same loop (by _over_budget or ROBUST-8) has a closed socket, whose send fails at once."""
    server = make_server()
    sender_sock, sender = connect(server, b"s")
    a_sock, a = connect(server, b"a")
    b_sock, b = connect(server, b"b")
    real = a.sock

    class DropsB:  # a's send drops b first, as a memory-budget drop in the loop would
        def send(self, data: bytes) -> int:
            server._drop(b, "dropped while a relay goes out")
            return real.send(data)

        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

    a.sock = DropsB()  # type: ignore[assignment]
    sender_sock.sendall(encode_frame(b"hi"))
    pump(server, lambda: b.closed)
    a.sock = real
    relay = encode_frame(b"s") + encode_frame(b"hi")
    a_sock.settimeout(5)
    b_sock.settimeout(5)
    assert a_sock.recv(100) == relay
    assert b_sock.recv(100) == b""  # closed, and nothing of the relay reached it
    assert not sender.closed and not a.closed and b.closed
    pump(server, steps=2)
    assert set(server.registered.values()) == {sender, a}
    for sock in (sender_sock, a_sock, b_sock):
        sock.close()
