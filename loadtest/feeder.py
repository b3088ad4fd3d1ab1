"""A relay firehose for ``chat-load calibrate``: how many frames/s can one generator absorb?

Not a chat server: every connection that registers gets ``--count`` stamped
relays from sender 0 (sequence 0, 1, 2, ...) as fast as the socket takes
them, then the connection is closed.  The stream is encoded once at start-up
(so its stamps are old and its latencies meaningless: this measures
throughput only).  Relays are encoded with the shared
codec and stamped with reference.stamp, so the generator's receive path does
exactly the work it does against a real server, and the server's speed is
taken out of the measurement.  Started through reference.target like any
server::

    python -m loadtest.feeder --port {port} --count 200000
"""

from __future__ import annotations

import argparse
import socket
import sys
import threading
import time
from collections.abc import Sequence

from loadtest.scenario import client_name
from reference.protocol import HEADER_LENGTH, Connection, Relay, Role, parse_header
from reference.stamp import make_payload

__all__ = ["main"]

def _read_username(sock: socket.socket) -> bool:
    """Wait for a complete username frame; False if the peer left without one."""
    data = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            return False
        data += chunk
        if len(data) >= HEADER_LENGTH and len(data) >= HEADER_LENGTH + parse_header(data[:HEADER_LENGTH]):
            return True


def encode_stream(count: int, size: int) -> bytes:
    """``count`` relays from sender 0, stamped now, as one block of bytes."""
    codec = Connection(Role.SERVER)
    now = time.monotonic_ns()
    sender = client_name(0)  # the name that goes with sender id 0, as a server would label it
    return b"".join(codec.send(Relay(sender, make_payload(0, seq, now, size))) for seq in range(count))


def feed(sock: socket.socket, stream: bytes) -> None:
    with sock:
        sock.settimeout(60.0)
        try:
            if _read_username(sock):
                sock.sendall(stream)
        except OSError:
            return  # the generator went away: nothing to feed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.feeder", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--count", type=int, default=200_000, help="relays per connection")
    parser.add_argument("--size", type=int, default=64, help="payload bytes")
    args = parser.parse_args(argv)
    # Encoded once, up front: the feeder then costs only the kernel's copy, so the
    # generator, not the feeder, is what the absorb test measures.
    stream = encode_stream(args.count, args.size)
    listener = socket.create_server((args.host, args.port), backlog=128)
    host, port = listener.getsockname()[:2]
    print(f"chat-feeder listening on {host}:{port}", flush=True)
    while True:
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=feed, args=(conn, stream), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
