"""A server that disconnects registered clients that have been silent for a while (breaks RELAY-7).

"Clean up dead connections": the student records when each client last sent
something and closes those that have said nothing for ``IDLE_TIMEOUT``
seconds.  That also throws out every member who only reads.  A real one uses
30 or 60 s (the long profile, ``--patience 65``, catches those); this one uses
2 s so that the default ``--patience`` of 3 s does.  Everything else is the
reference server.

    python tests/servers/idle_kick_server.py PORT
"""

from __future__ import annotations

import sys
import time

from _variant import run

from reference.server import ChatServer, Client, ServerConfig

IDLE_TIMEOUT = 2.0


class IdleKickServer(ChatServer):
    def __init__(self, config: ServerConfig) -> None:
        super().__init__(config)
        self.last_heard: dict[int, float] = {}

    def _on_readable(self, client: Client) -> None:
        self.last_heard[client.fd] = time.monotonic()
        super()._on_readable(client)

    def _expire_unregistered(self) -> None:
        super()._expire_unregistered()
        cutoff = time.monotonic() - IDLE_TIMEOUT
        for fd, client in list(self.registered.items()):
            # the defect: silence is taken for a dead client, registered or not
            if self.last_heard.get(fd, client.accepted_at) < cutoff:
                self._drop(client, f"idle for {IDLE_TIMEOUT:g} s")


if __name__ == "__main__":
    sys.exit(run(IdleKickServer))
