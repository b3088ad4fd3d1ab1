"""A server that cuts every message to 64 KiB and relays the cut copy (breaks RELAY-1).

"Nobody types more than that": the student caps messages with
``message = message[:MAX_MESSAGE]`` and writes a new header for the shorter
text.  The frames stay valid, so nothing looks wrong on the wire, but a long
message arrives cut.  (Refusing it by closing the connection, FRAME-6, would
be allowed; silently changing it is not.)  Everything else is the reference server.

    python tests/servers/truncating_server.py PORT
"""

from __future__ import annotations

import sys

from _variant import run

from reference.server import ChatServer, Client

MAX_MESSAGE = 64 * 1024


class TruncatingServer(ChatServer):
    def _broadcast(self, sender: Client, payload: bytes) -> None:
        super()._broadcast(sender, payload[:MAX_MESSAGE])  # the defect: cut, not refused


if __name__ == "__main__":
    sys.exit(run(TruncatingServer))
