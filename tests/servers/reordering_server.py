"""A reference server that swaps adjacent relays to the same recipient (breaks RELAY-4).

Every 10th relay to a recipient is held back and written after the next one,
so that recipient sees two messages in the wrong order; a held relay with
no successor is written after 50 ms, so nothing is lost, only reordered.
Same options and first line as the reference server::

    chat-load latency --server-cmd 'python tests/servers/reordering_server.py --port {port}'
"""

from __future__ import annotations

import sys
import time

from reference.server import ChatServer, Client, ServerConfig, main

HOLD_EVERY = 10
HOLD_AT_MOST_S = 0.05


class ReorderingServer(ChatServer):
    def __init__(self, config: ServerConfig) -> None:
        super().__init__(config)
        self.relays: dict[int, int] = {}
        self.held: dict[int, tuple[Client, bytes, float]] = {}

    def _write(self, client: Client, data: bytes) -> None:
        count = self.relays[client.fd] = self.relays.get(client.fd, 0) + 1
        held = self.held.pop(client.fd, None)
        if held is not None and held[0] is client:
            super()._write(client, data)
            super()._write(client, held[1])  # the defect: the older message comes second
            return
        if count % HOLD_EVERY == 0:
            self.held[client.fd] = (client, data, time.monotonic())
            return
        super()._write(client, data)

    def _expire_unregistered(self) -> None:
        super()._expire_unregistered()
        cutoff = time.monotonic() - HOLD_AT_MOST_S
        for fd, (client, data, since) in list(self.held.items()):
            if since < cutoff:
                del self.held[fd]
                if self.clients.get(fd) is client:
                    super()._write(client, data)


if __name__ == "__main__":
    sys.exit(main(server_class=ReorderingServer))
