"""A server that takes an empty message for a closed connection (breaks FRAME-8, a SHOULD).

``if not data: close`` is the usual way to spot end of stream, but applied to
a payload it also fires for the valid frame ``b"0         "``: the sender is
disconnected and its empty message is not relayed.  Everything else is the
reference server.

    python tests/servers/empty_message_drop_server.py PORT
"""

from __future__ import annotations

import sys

from _variant import run

from reference.server import ChatServer, Client


class EmptyMessageDropServer(ChatServer):
    def _broadcast(self, sender: Client, text: bytes) -> None:
        if not text:  # the defect: an empty payload read as "the peer closed"
            self._drop(sender, "closed by peer")
            return
        super()._broadcast(sender, text)


if __name__ == "__main__":
    sys.exit(run(EmptyMessageDropServer))
