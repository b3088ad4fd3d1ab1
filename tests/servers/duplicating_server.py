"""A reference server that writes every 10th message of a sender to a recipient twice (breaks RELAY-4).

RELAY-4 asks for each message exactly once; this server sends a sender's
10th, 20th, ... message to each recipient a second time, right after the
first copy, as a retry loop that re-sends after a send() that in fact
succeeded would.  Nothing is lost or reordered.  Same options and first line
as the reference server::

    chat-conformance --server-cmd 'python tests/servers/duplicating_server.py --port {port}'
"""

from __future__ import annotations

import sys

from reference.protocol import encode_frame
from reference.server import ChatServer, Client, ServerConfig, main

DUPLICATE_EVERY = 10


class DuplicatingServer(ChatServer):
    def __init__(self, config: ServerConfig) -> None:
        super().__init__(config)
        self.relays: dict[tuple[int, int], int] = {}  # (recipient fd, sender fd) -> relays so far

    def _broadcast(self, sender: Client, text: bytes) -> None:
        data = sender.name_frame + encode_frame(text)
        for fd, client in list(self.registered.items()):
            if fd == sender.fd:
                continue
            key = (fd, sender.fd)
            count = self.relays[key] = self.relays.get(key, 0) + 1
            self._write(client, data)
            if count % DUPLICATE_EVERY == 0:
                self._write(client, data)  # the defect: the same message once more


if __name__ == "__main__":
    sys.exit(main(server_class=DuplicatingServer))
