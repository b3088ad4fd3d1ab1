"""A reference server that silently drops every 20th relay it writes (breaks RELAY-4).

Everything else is the reference server: same options, same first line
(``chat-server listening on HOST:PORT``).  The load generators must report
non-zero ``lost`` against it::

    chat-load latency --server-cmd 'python tests/servers/lossy_server.py --port {port}'
"""

from __future__ import annotations

import sys

from reference.server import ChatServer, Client, main

#: One relay in this many is thrown away instead of written.
DROP_EVERY = 20


class LossyServer(ChatServer):
    relays = 0

    def _write(self, client: Client, data: bytes, sender: Client | None = None) -> None:
        self.relays += 1
        if self.relays % DROP_EVERY == 0:
            return  # the defect: this recipient never gets this message
        super()._write(client, data, sender)


if __name__ == "__main__":
    sys.exit(main(server_class=LossyServer))
