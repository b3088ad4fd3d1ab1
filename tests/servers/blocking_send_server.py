"""A server with no output buffering: it blocks writing to a client that does not read (breaks ROBUST-3).

Reading is non-blocking and reassembles frames properly, but each relay is
written with a blocking ``sendall()``, so once one client stops reading and its
socket buffer is full, the whole loop waits on it and every other client
stalls.  Everything else is the reference server.

    python tests/servers/blocking_send_server.py PORT
"""

from __future__ import annotations

import sys

from _variant import run

from reference.server import ChatServer, Client


class BlockingSendServer(ChatServer):
    def _write(self, client: Client, data: bytes, sender: Client | None = None) -> None:
        try:
            client.sock.setblocking(True)  # the defect: wait until the reader takes it all
            client.sock.sendall(data)
        except OSError as exc:
            self._drop(client, f"send failed: {exc.strerror or exc}")
        else:
            client.sock.setblocking(False)


if __name__ == "__main__":
    sys.exit(run(BlockingSendServer))
