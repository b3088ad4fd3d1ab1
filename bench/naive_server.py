"""BENCHMARK BASELINE ONLY -- a naive, tutorial-style chat server with blocking sends.

This is the classic teaching server's design, kept as the yardstick that
issue 2 asks the reference server to beat at 100 receivers: one
``select.select`` loop over *blocking* sockets; when a client is readable the
loop reads a whole frame with blocking ``recv`` calls, then relays it with a
blocking ``sendall`` to every other client in turn.  A client that stops reading
therefore stalls everybody (PROTOCOL.md ROBUST-3); do not use it for anything
but measurement.

Two deliberate departures from the tutorial, so that the benchmark compares the
I/O strategy and nothing else:

* frames are read with a loop until complete (the tutorial's single
  ``recv(n)`` breaks 1 MiB messages, which the benchmarks send);
* no per-message ``print`` and TCP_NODELAY on, like the reference server
  (otherwise Nagle's algorithm and a log write per message would dominate).

Framing comes from the shared codec helpers (reference.protocol).  Run as
``python bench/naive_server.py [PORT]`` or ``--port 0``; the first line on
stdout is ``naive chat-server listening on HOST:PORT``.
"""

from __future__ import annotations

import argparse
import select
import signal
import socket
import sys
from collections.abc import Sequence

from reference.protocol import (
    DEFAULT_HOST,
    DEFAULT_MAX_PAYLOAD,
    DEFAULT_PORT,
    HEADER_LENGTH,
    RemoteProtocolError,
    encode_frame,
    parse_header,
)


def recv_exactly(sock: socket.socket, size: int) -> bytes | None:
    """Block until ``size`` bytes arrived; None if the peer closed first."""
    chunks = []
    while size:
        chunk = sock.recv(min(size, 256 * 1024))
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def receive_frame(sock: socket.socket, max_payload: int) -> bytes | None:
    """One whole frame's payload, blocking; None on close or a bad frame."""
    try:
        header = recv_exactly(sock, HEADER_LENGTH)
        if header is None:
            return None
        length = parse_header(header)
        if length > max_payload:
            return None
        return recv_exactly(sock, length)
    except (OSError, RemoteProtocolError):
        return None


def serve(listener: socket.socket, max_payload: int) -> None:
    sockets: list[socket.socket] = [listener]
    name_frames: dict[socket.socket, bytes] = {}

    def forget(sock: socket.socket) -> None:
        if sock in sockets:
            sockets.remove(sock)
        name_frames.pop(sock, None)
        sock.close()

    while True:
        readable, _, broken = select.select(sockets, [], sockets)
        for sock in broken:
            forget(sock)
        for sock in readable:
            if sock.fileno() < 0:
                continue  # closed earlier in this pass
            if sock is listener:
                client, _ = listener.accept()
                client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sockets.append(client)
                continue
            payload = receive_frame(sock, max_payload)
            if payload is None:
                forget(sock)
            elif sock not in name_frames:
                if payload:
                    name_frames[sock] = encode_frame(payload)
                else:
                    forget(sock)
            else:
                relay = name_frames[sock] + encode_frame(payload)
                for other in list(name_frames):
                    if other is not sock:
                        try:
                            other.sendall(relay)  # blocking: the naive part
                        except OSError:
                            forget(other)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="BENCHMARK BASELINE: naive blocking-send chat server")
    parser.add_argument("port_arg", nargs="?", type=int, metavar="PORT", help="port (same as --port)")
    parser.add_argument("--port", type=int, default=None, help=f"port, 0 = any (default {DEFAULT_PORT})")
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to bind (default %(default)s)")
    parser.add_argument("--max-payload", type=int, default=DEFAULT_MAX_PAYLOAD)
    args = parser.parse_args(argv)
    if args.port is not None and args.port_arg is not None:
        parser.error("give the port once, as PORT or --port")
    port = args.port if args.port is not None else args.port_arg
    port = DEFAULT_PORT if port is None else port
    if not 0 <= port <= 65535:
        parser.error(f"port {port} is not in 0..65535")
    if args.max_payload <= 0:
        parser.error(f"--max-payload {args.max_payload} must be positive")
    # SIGTERM (how reference.target stops servers) exits via KeyboardInterrupt.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    listener = socket.create_server((args.host, port), backlog=1024)
    host, bound_port = listener.getsockname()[:2]
    print(f"naive chat-server listening on {host}:{bound_port}", flush=True)
    try:
        serve(listener, args.max_payload)
    except KeyboardInterrupt:
        pass
    finally:
        listener.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
