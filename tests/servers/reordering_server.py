"""A reference server that swaps adjacent messages of one sender to one recipient (breaks RELAY-4).

RELAY-4 only promises each sender's order, so the swap must be within one
sender's stream: every 10th relay from a sender to a recipient is held back
and written after that sender's next message to that recipient.  A held
relay with no successor is written after about half a second, so nothing is
lost, only reordered.  Same options and first line as the reference server::

    chat-load latency --server-cmd 'python tests/servers/reordering_server.py --port {port}'
"""

from __future__ import annotations

import logging
import sys
import time

from reference.protocol import encode_frame
from reference.server import ChatServer, Client, ServerConfig, main

HOLD_EVERY = 10
HOLD_AT_MOST_S = 0.5


class ReorderingServer(ChatServer):
    def __init__(self, config: ServerConfig) -> None:
        super().__init__(config)
        # (recipient, sender) -> relays so far, per connection: keyed by fd numbers, a newcomer
        # that reused a closed client's fd would inherit its count, and which message is
        # held back would depend on the order the server saw closes and accepts.
        self.relays: dict[tuple[Client, Client], int] = {}
        self.held: dict[tuple[Client, Client], tuple[Client, bytes, float]] = {}

    def _broadcast(self, sender: Client, text: bytes) -> None:
        data = sender.name_frame + encode_frame(text)
        for client in list(self.registered.values()):
            if client is sender:
                continue
            key = (client, sender)
            count = self.relays[key] = self.relays.get(key, 0) + 1
            held = self.held.pop(key, None)
            if held is not None:
                self._write(client, data)
                self._write(client, held[1])  # the defect: the older message comes second
            elif count % HOLD_EVERY == 0:
                self.held[key] = (client, data, time.monotonic())
            else:
                self._write(client, data)

    def _expire_unregistered(self) -> None:
        super()._expire_unregistered()
        cutoff = time.monotonic() - HOLD_AT_MOST_S
        for key, (client, data, since) in list(self.held.items()):
            if since < cutoff:
                del self.held[key]
                if not client.closed:
                    self._write(client, data)

    def _drop(self, client: Client, reason: str, level: int = logging.WARNING) -> None:
        super()._drop(client, reason, level)
        self.relays = {key: n for key, n in self.relays.items() if client not in key}


if __name__ == "__main__":
    sys.exit(main(server_class=ReorderingServer))
