"""A server that floods every client: endless valid frames, or endless garbage.

Defect (harness robustness, not a protocol rule): whatever a client sends, the
server writes to it as fast as the client reads, for as long as it stays
connected, in one of three modes:

* ``frames``: endless well-formed relays with 4 MiB usernames and 4 MiB texts,
  the largest frames a client must accept (FRAME-5, FRAME-6);
* ``garbage``: a header that declares 4 MiB, then endless random bytes;
* ``escapes``: endless small relays whose sender and text are terminal escapes.

A tool that buffers what it receives without a bound, or prints it raw, fails.

    python tests/servers/flood_server.py MODE PORT
"""

from __future__ import annotations

import os
import socket
import sys
import threading

BIG = 4 * 1024 * 1024
HOSTILE = "\x1b]8;;http://evil/\x1b\\\x1b[2J\u009b31m\u202eevil[/]\r"


def _frame(payload: bytes) -> bytes:
    return f"{len(payload):<10}".encode() + payload


def _chunks(mode: str) -> bytes:
    if mode == "frames":
        return _frame(b"n" * BIG) + _frame("é".encode() * (BIG // 2))
    if mode == "escapes":
        return (_frame(HOSTILE.encode()) + _frame(HOSTILE.encode())) * 1000
    return os.urandom(BIG)


def _flood(conn: socket.socket, mode: str) -> None:
    with conn:
        conn.settimeout(60)
        try:
            if mode == "garbage":
                conn.sendall(f"{BIG:<10}".encode())
            data = _chunks(mode)
            while True:
                conn.sendall(data)
        except OSError:
            pass


def main() -> int:
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode not in ("frames", "garbage", "escapes"):
        raise SystemExit(f"unknown mode {mode!r}")
    server = socket.create_server(("127.0.0.1", port))
    while True:
        conn, _ = server.accept()
        threading.Thread(target=_flood, args=(conn, mode), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
