"""Calibration peer: a bare TCP echo server, no chat protocol at all.

The calibration benchmark ping-pongs a few bytes with this process over
loopback.  It exercises what every server benchmark also pays for -- two
Python processes, syscalls, the loopback stack and the scheduler -- and
nothing of the code under test, so dividing a result by it cancels the
speed of the machine.  Run as ``python bench/echo_peer.py`` (port 0) or with
a PORT; the first line on stdout is ``echo peer listening on HOST:PORT``.
"""

from __future__ import annotations

import argparse
import selectors
import signal
import socket
import sys

from reference.protocol import DEFAULT_HOST


def serve(listener: socket.socket) -> None:
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    while True:
        for key, _ in selector.select():
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            if sock is listener:
                conn, _ = listener.accept()
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                selector.register(conn, selectors.EVENT_READ)
                continue
            try:
                data = sock.recv(65536)
                if data:
                    sock.sendall(data)  # a few bytes: always fits the send buffer
                    continue
            except OSError:
                pass
            selector.unregister(sock)
            sock.close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="calibration echo peer (no chat protocol)")
    parser.add_argument("port", nargs="?", type=int, default=0, help="port, default 0 = any free one")
    port = parser.parse_args(argv).port
    if not 0 <= port <= 65535:
        parser.error(f"port {port} is not in 0..65535")
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    listener = socket.create_server((DEFAULT_HOST, port))
    print(f"echo peer listening on {DEFAULT_HOST}:{listener.getsockname()[1]}", flush=True)
    try:
        serve(listener)
    except KeyboardInterrupt:
        return 0
    finally:
        listener.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
