"""A reference server that writes header and payload in two small sends, with Nagle on.

Defect (a performance one; every rule of PROTOCOL.md still holds): the
accepted sockets keep Nagle's algorithm (no ``TCP_NODELAY``) and every relay
goes out as three ``send()`` calls: the username frame, the 10-byte header,
the payload.  Nagle holds the later small segments until the first is
acknowledged, and the receiver delays that ACK (about 40 ms on Linux), so at
low rates deliveries cluster near 40 ms: the classic delayed-ACK signature
that ``chat-load latency`` recognises and explains.  Same options and first
line as the reference server::

    chat-load latency --server-cmd 'python tests/servers/delayed_ack_server.py --port {port}'
"""

from __future__ import annotations

import socket
import sys

from reference.protocol import encode_header
from reference.server import ChatServer, Client, main


class DelayedAckServer(ChatServer):
    def _accept(self) -> None:
        before = set(self.clients)
        super()._accept()
        for fd in set(self.clients) - before:  # the defect, part one: Nagle back on
            self.clients[fd].sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)

    def _broadcast(self, sender: Client, payload: bytes) -> None:
        header = encode_header(len(payload))
        for fd, client in list(self.registered.items()):
            if fd != sender.fd:
                # the defect, part two: one small send per piece
                for piece in (sender.name_frame, header, payload):
                    self._write(client, piece)
                    if client.fd not in self.clients:
                        break


if __name__ == "__main__":
    sys.exit(main(server_class=DelayedAckServer))
