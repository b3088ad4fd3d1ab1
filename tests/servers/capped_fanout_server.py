"""A server that relays each message to the first 8 other clients only (breaks RELAY-8).

A classroom chat rarely has more than a handful of people, so a student sizes
the room once: ``for client in clients[:MAX_ROOM]``.  Rooms of up to 8
listeners work perfectly; the 9th client to join is registered but never
hears anything.  Everything else is the reference server.

    python tests/servers/capped_fanout_server.py PORT
"""

from __future__ import annotations

import sys

from _variant import run

from reference.server import ChatServer, Client

#: How many recipients a message goes to: "nobody will ever have more than 8 friends online".
MAX_ROOM = 8


class CappedFanoutServer(ChatServer):
    def _broadcast(self, sender: Client, payload: bytes) -> None:
        data = sender.name_frame + f"{len(payload):<10}".encode() + payload
        others = [c for fd, c in self.registered.items() if fd != sender.fd]
        for client in others[:MAX_ROOM]:  # the defect: the fan-out stops at MAX_ROOM
            self._write(client, data)


if __name__ == "__main__":
    sys.exit(run(CappedFanoutServer))
