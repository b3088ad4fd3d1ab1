"""A server that also sends each message back to its sender: the "echo" dialect (breaks RELAY-2).

A common first attempt: loop over *all* registered clients when relaying,
forgetting to skip the sender.  Everything else is the reference server.

    python tests/servers/echo_server.py PORT
"""

from __future__ import annotations

import sys

from _variant import run

from reference.protocol import encode_frame
from reference.server import ChatServer, Client


class EchoServer(ChatServer):
    def _broadcast(self, sender: Client, text: bytes) -> None:
        super()._broadcast(sender, text)
        self._write(sender, sender.name_frame + encode_frame(text))  # the defect: back to the sender


if __name__ == "__main__":
    sys.exit(run(EchoServer))
