"""What the reference server holds per client and per buffered byte, measured with tracemalloc.

``--max-memory`` (LIMIT-3) counts the bytes clients make the server buffer
plus ``CLIENT_OVERHEAD`` per connection.  These tests measure both in-process
(only allocations made under reference/ count, not the test's own sockets)
and fail if the constant is below what a connection really costs, so the
budget stays honest.  Run with ``-s`` to see the figures (docs/hostile-clients.md).
"""

from __future__ import annotations

import socket
import tracemalloc
from collections.abc import Iterator

import pytest

from reference.protocol import encode_frame
from reference.server import CLIENT_OVERHEAD, ChatServer, ServerConfig

CLIENTS = 200
_ONLY_SERVER = [tracemalloc.Filter(True, "*/reference/*", all_frames=True)]


@pytest.fixture
def server() -> Iterator[ChatServer]:
    srv = ChatServer(ServerConfig(port=0))
    yield srv
    srv.close()


def server_bytes() -> int:
    return sum(s.size for s in tracemalloc.take_snapshot().filter_traces(_ONLY_SERVER).statistics("filename"))


def pump_until(server: ChatServer, done: object) -> None:
    for _ in range(2000):
        if callable(done) and done():
            return
        server.run_once(0.01)
    raise AssertionError("the server did not get there")


def test_idle_registered_client_costs_at_most_client_overhead(server: ChatServer) -> None:
    tracemalloc.start(8)
    try:
        before = server_bytes()
        socks = []
        for i in range(CLIENTS):
            s = socket.create_connection(server.address, timeout=5)
            s.sendall(encode_frame(f"idle-client-{i:04d}".encode()))
            socks.append(s)
        pump_until(server, lambda: len(server.registered) == CLIENTS)
        per_client = (server_bytes() - before) / CLIENTS
        for s in socks:
            s.close()
        pump_until(server, lambda: not server.clients)
        after_close = server_bytes() - before
    finally:
        tracemalloc.stop()
    print(f"\nserver memory per registered idle client: {per_client:.0f} bytes "
          f"(CLIENT_OVERHEAD = {CLIENT_OVERHEAD}); left after all closed: {after_close} bytes")
    assert per_client <= CLIENT_OVERHEAD
    # Closed clients are freed: what stays is the registry's grown dict and the last batch
    # of selector events (both proportional to the room, ~90 KB for 200), far below what
    # the 200 clients held; a leak of each closed client would keep all of it.
    assert after_close < 0.25 * per_client * CLIENTS


def test_buffered_bytes_cost_about_one_byte_each(server: ChatServer) -> None:
    """Half-sent frames: what the server holds is about what the clients sent, and it is counted."""
    partial = 200_000
    tracemalloc.start(8)
    try:
        before = server_bytes()
        socks = []
        for i in range(20):
            s = socket.create_connection(server.address, timeout=5)
            s.sendall(encode_frame(f"slow{i}".encode()) + b"1000000   " + b"x" * partial)
            socks.append(s)
        pump_until(server, lambda: sum(c.in_bytes for c in server.clients.values()) >= 20 * partial)
        grown = server_bytes() - before
        held = server.memory_held
    finally:
        tracemalloc.stop()
    per_byte = (grown - 20 * CLIENT_OVERHEAD) / (20 * partial)
    print(f"\nserver memory per byte of half-sent frames: {per_byte:.3f} "
          f"({grown} bytes for {20 * partial} buffered); counted against --max-memory: {held}")
    assert held >= 20 * partial
    assert per_byte < 1.5
    for s in socks:
        s.close()
