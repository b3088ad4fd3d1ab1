"""A reference server that interleaves the frames of consecutive relays (breaks RELAY-3).

Defect: relays are written in pairs, both username frames first and then both
message frames (``name A, name B, message A, message B``), instead of each
username frame directly followed by its message.  Every byte arrives, so a
tool that counts only sequence numbers calls the garbled pairs *lost*;
``chat-load`` decodes ``(name A, name B)`` and ``(message A, message B)`` and
counts them as *unpaired*.  An odd relay waits for its partner about
``HOLD_AT_MOST_S`` (up to the server's one-second sweep when all is quiet),
then is written whole, so nothing is lost.  Same options and first line as the reference server::

    chat-load latency --server-cmd 'python tests/servers/interleaving_server.py --port {port}'
"""

from __future__ import annotations

import sys
import time

from reference.protocol import encode_frame
from reference.server import ChatServer, Client, ServerConfig, main

HOLD_AT_MOST_S = 0.2


class InterleavingServer(ChatServer):
    def __init__(self, config: ServerConfig) -> None:
        super().__init__(config)
        # recipient fd -> its unsent relay, and since when it waits for a partner
        self.waiting: dict[int, tuple[Client, bytes, bytes, float]] = {}

    def _broadcast(self, sender: Client, payload: bytes) -> None:
        message = encode_frame(payload)
        for fd, client in list(self.registered.items()):
            if fd == sender.fd:
                continue
            held = self.waiting.pop(fd, None)
            if held is not None and held[0] is client:
                # the defect: both names, then both messages
                self._write(client, held[1] + sender.name_frame + held[2] + message)
            else:
                self.waiting[fd] = (client, sender.name_frame, message, time.monotonic())

    def _expire_unregistered(self) -> None:
        super()._expire_unregistered()
        cutoff = time.monotonic() - HOLD_AT_MOST_S
        for fd, (client, name, message, since) in list(self.waiting.items()):
            if since > cutoff:
                continue
            del self.waiting[fd]
            if self.clients.get(fd) is client:
                self._write(client, name + message)  # a lone relay is written whole


if __name__ == "__main__":
    sys.exit(main(server_class=InterleavingServer))
