"""A server that dies when a registered client leaves (breaks RELAY-6).

On a clean close the student announces the departure to everybody, the
leaver included, and the send to the closed socket raises out of the loop.
Every case ends by closing its clients, so the crash happens in the suite's
teardown: the case that caused it must be blamed.  Everything else is the
reference server.

    python tests/servers/leave_crash_server.py PORT
"""

from __future__ import annotations

import logging
import sys

from _variant import run

from reference.server import ChatServer, Client


class LeaveCrashServer(ChatServer):
    def _drop(self, client: Client, reason: str, level: int = logging.WARNING) -> None:
        was_registered = client.fd in self.registered
        super()._drop(client, reason, level)
        if was_registered and reason == "closed by peer":
            # the defect: "announce" the departure on the socket that is already closed
            client.sock.sendall(b"left")


if __name__ == "__main__":
    sys.exit(run(LeaveCrashServer))
