"""A server that relays to a client only once that client has sent a message (breaks RELAY-1).

The student adds a connection to the list of recipients in the branch that
handles a *message*, not in the one that handles the username, so a client
that only listens never hears anything.  Everything else is the reference server.

    python tests/servers/speak_first_server.py PORT
"""

from __future__ import annotations

import sys

from _variant import run

from reference.server import ChatServer, Client


class SpeakFirstServer(ChatServer):
    def _on_register(self, client: Client, name: str) -> None:
        super()._on_register(client, name)
        del self.registered[client.fd]  # the defect: not a recipient yet

    def _broadcast(self, sender: Client, payload: bytes) -> None:
        self.registered.setdefault(sender.fd, sender)  # ...only once it has spoken
        super()._broadcast(sender, payload)


if __name__ == "__main__":
    sys.exit(run(SpeakFirstServer))
