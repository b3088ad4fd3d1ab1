"""Drivers for the server benchmarks: rooms of ChatClients and one round of each benchmark.

Everything here reuses ``reference.client.ChatClient`` (and through it the
shared codec); every wait has a timeout, so a server that loses a message
fails the benchmark with TimeoutError instead of hanging it.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from reference.client import ChatClient, join_room
from reference.protocol import encode_frame

#: Generous: a loaded 2-core CI machine must never turn a slow round into an error.
WAIT_TIMEOUT = 30.0
SENDER = "sender"


@dataclass(frozen=True)
class BenchServer:
    """A server a benchmark talks to (the ``server`` fixture in bench/conftest.py)."""

    kind: str                    # "reference", "target", "naive" or "asyncio"
    address: tuple[str, int]
    label: str
    pid: int | None = None       # the server's process, when this run started it


@dataclass
class Room:
    """One registered sender and ``len(receivers)`` registered receivers."""

    sender: ChatClient
    receivers: list[ChatClient]

    def close(self) -> None:
        for client in [self.sender, *self.receivers]:
            client.close()


@contextmanager
def open_room(address: tuple[str, int], receivers: int,
              timeout: float = WAIT_TIMEOUT) -> Iterator[Room]:
    """A registered sender and ``receivers`` registered receivers, queues empty."""
    names = [SENDER, *(f"r{i}" for i in range(receivers))]
    sender, *rest = join_room(*address, names, timeout=timeout)
    room = Room(sender, rest)
    try:
        yield room
    finally:
        room.close()


def fanout_round(room: Room, text: str) -> None:
    """One message from the sender, until the last receiver has it."""
    room.sender.send(text)
    for receiver in room.receivers:
        relay = receiver.receive(timeout=WAIT_TIMEOUT)
        if relay.sender != SENDER:
            raise AssertionError(f"expected a relay from {SENDER!r}, got {relay!r}")


def connect_round(address: tuple[str, int], observer: ChatClient) -> None:
    """Connect, register, say hello, and wait until the observer has the hello.

    The relay proves the server accepted, registered and served the new
    connection, not just that the kernel completed the handshake.
    """
    joiner = ChatClient.connect(*address, name="joiner", timeout=WAIT_TIMEOUT)
    try:
        joiner.send("hello")
        relay = observer.receive(timeout=WAIT_TIMEOUT)
        if relay.sender != "joiner":
            raise AssertionError(f"expected the joiner's hello, got {relay.sender!r}")
    finally:
        joiner.close()


def big_message_frame(size: int) -> tuple[bytes, str]:
    """A pre-encoded message frame of ``size`` ASCII bytes, and its text."""
    text = ("0123456789abcdef" * (size // 16 + 1))[:size]
    return encode_frame(text.encode()), text


def relay_big_round(room: Room, frame: bytes, size: int) -> None:
    """Send one pre-encoded big message and receive it whole at one receiver."""
    room.sender.send_raw(frame)
    relay = room.receivers[0].receive(timeout=WAIT_TIMEOUT)
    if len(relay.text) != size:
        raise AssertionError(f"relayed {len(relay.text)} bytes, sent {size}")


@contextmanager
def pingpong_socket(address: tuple[str, int], timeout: float = WAIT_TIMEOUT) -> Iterator[socket.socket]:
    """A TCP connection to the echo peer, Nagle off like every chat socket here."""
    sock = socket.create_connection(address, timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        yield sock
    finally:
        sock.close()


def pingpong_round(sock: socket.socket, data: bytes) -> None:
    """Send ``data`` and read the same number of bytes back."""
    sock.sendall(data)
    need = len(data)
    while need:
        chunk = sock.recv(need)
        if not chunk:
            raise ConnectionError("echo peer closed the connection")
        need -= len(chunk)
