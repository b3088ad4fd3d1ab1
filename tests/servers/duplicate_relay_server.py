"""A server whose room list gains the sender again with every message (breaks RELAY-4).

The student keeps the room as a list and, to be safe, makes sure the sender
is in it before relaying: ``room.append(sender)``, where ``if sender not in
room`` was meant.  A client that has sent n messages is in the list n + 1
times, so it receives every later message n + 1 times.  Everything else is
the reference server.

    python tests/servers/duplicate_relay_server.py PORT
"""

from __future__ import annotations

import sys

from _variant import run

from reference.server import ChatServer, Client, ServerConfig


class DuplicateRelayServer(ChatServer):
    def __init__(self, config: ServerConfig) -> None:
        super().__init__(config)
        self.room: list[Client] = []

    def _on_register(self, client: Client, name: str) -> None:
        super()._on_register(client, name)
        self.room.append(client)

    def _broadcast(self, sender: Client, payload: bytes) -> None:
        self.room.append(sender)  # the defect: meant "if sender not in self.room"
        self.room = [c for c in self.room if self.registered.get(c.fd) is c]
        data = sender.name_frame + f"{len(payload):<10}".encode() + payload
        for client in self.room:
            if client is not sender:
                self._write(client, data)


if __name__ == "__main__":
    sys.exit(run(DuplicateRelayServer))
