"""A server whose logs are huge: 1 GiB of stdout and of stderr, at no cost in disk space.

Defect (harness robustness, not a protocol rule): it announces its address on
the first line of stdout, then makes both its stdout and stderr files 1 GiB
long (sparse: ``ftruncate``, so no disk is used) and puts its last stderr line,
full of terminal escapes, after that gigabyte.  A harness that reads its logs
whole, or prints them raw, runs out of memory or has its terminal taken over.

    python tests/servers/huge_log_server.py [--crash]

Without ``--crash`` it accepts connections and closes them; with it, it exits
with status 3 after its first connection (the harness's own readiness probe).
"""

from __future__ import annotations

import os
import socket
import sys

GIB = 1 << 30
LAST_WORDS = b"boom: \x1b]0;pwned\x07\x1b[2J\x9b31m \xe2\x80\xae gnp.exe [/] done\n"


def main() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    line = f"listening on 127.0.0.1:{sock.getsockname()[1]}\n".encode()
    os.ftruncate(1, GIB)
    os.pwrite(1, line, 0)
    os.ftruncate(2, GIB)
    os.pwrite(2, b"\n" + LAST_WORDS, GIB)
    while True:
        conn, _ = sock.accept()
        conn.close()
        if "--crash" in sys.argv:
            return 3


if __name__ == "__main__":
    sys.exit(main())
