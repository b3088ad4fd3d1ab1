"""A server that dies when a client resets while a message is being sent to it (breaks ROBUST-6).

The student's send catches "the socket is full" (``BlockingIOError``) but not
``ConnectionResetError`` or ``BrokenPipeError``: a client that resets between
the moment the server last read from it and the next relay to it raises out of
the fan-out loop and takes the whole server down.  Whether that happens
depends on when the reset arrives, so the suite provokes it several times in a
row.  Everything else is the reference server.

    python tests/servers/reset_crash_server.py PORT
"""

from __future__ import annotations

import sys

from _variant import run

from reference.server import ChatServer, Client


class ResetCrashServer(ChatServer):
    def _write(self, client: Client, data: bytes, sender: Client | None = None) -> None:
        if not client.out:
            try:
                sent = client.sock.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            # the defect: no "except OSError": a reset peer's error escapes and kills the loop
            if sent == len(data):
                return
            data = bytes(data[sent:])
        super()._write(client, data, sender)  # the rest: queued, as the reference does


if __name__ == "__main__":
    sys.exit(run(ResetCrashServer))
