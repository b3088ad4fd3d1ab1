"""A reference server that writes every 10th message of a sender to a recipient twice (breaks RELAY-4).

RELAY-4 asks for each message exactly once; this server sends a sender's
10th, 20th, ... message to each recipient a second time, right after the
first copy, as a retry loop that re-sends after a send() that in fact
succeeded would.  Nothing is lost or reordered.  Same options and first line
as the reference server::

    chat-conformance --server-cmd 'python tests/servers/duplicating_server.py --port {port}'
"""

from __future__ import annotations

import logging
import sys

from reference.protocol import encode_frame
from reference.server import ChatServer, Client, ServerConfig, main

DUPLICATE_EVERY = 10


class DuplicatingServer(ChatServer):
    def __init__(self, config: ServerConfig) -> None:
        super().__init__(config)
        # (recipient, sender) -> relays so far, per connection: keyed by fd numbers, a newcomer
        # that reused a closed client's fd would inherit its count, and which message is
        # doubled would depend on the order the server saw closes and accepts.
        self.relays: dict[tuple[Client, Client], int] = {}

    def _broadcast(self, sender: Client, text: bytes) -> None:
        data = sender.name_frame + encode_frame(text)
        for client in list(self.registered.values()):
            if client is sender:
                continue
            key = (client, sender)
            count = self.relays[key] = self.relays.get(key, 0) + 1
            self._write(client, data)
            if count % DUPLICATE_EVERY == 0:
                self._write(client, data)  # the defect: the same message once more

    def _drop(self, client: Client, reason: str, level: int = logging.WARNING) -> None:
        super()._drop(client, reason, level)
        self.relays = {key: n for key, n in self.relays.items() if client not in key}


if __name__ == "__main__":
    sys.exit(main(server_class=DuplicatingServer))
