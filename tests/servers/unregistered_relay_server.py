"""A server that relays to every connection, registered or not (breaks JOIN-3).

The relay loop walks all accepted sockets instead of the registered clients,
so a connection that has not sent its username yet (or never will) gets the
room's messages.  Everything else is the reference server.

    python tests/servers/unregistered_relay_server.py PORT
"""

from __future__ import annotations

import sys

from _variant import run

from reference.protocol import encode_frame
from reference.server import ChatServer, Client


class UnregisteredRelayServer(ChatServer):
    def _broadcast(self, sender: Client, text: bytes) -> None:
        data = sender.name_frame + encode_frame(text)
        for fd, client in list(self.clients.items()):  # the defect: clients, not registered
            if fd != sender.fd:
                self._write(client, data)


if __name__ == "__main__":
    sys.exit(run(UnregisteredRelayServer))
