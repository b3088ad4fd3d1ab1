"""A reference server that labels every relay with the wrong sender (breaks RELAY-3).

Defect: the username frame before each relayed message names the most
recently registered *other* client than the real sender (or the recipient
itself when there is no other), so every message arrives whole, once and in
order, but attributed to someone who did not send it.  A load tool that only
checks sequence numbers passes it; ``chat-load`` counts every relay as
*mislabelled*.  Same options and first line as the reference server::

    chat-load latency --server-cmd 'python tests/servers/wrong_sender_server.py --port {port}'
"""

from __future__ import annotations

import sys

from reference.protocol import encode_frame
from reference.server import ChatServer, Client, main


class WrongSenderServer(ChatServer):
    def _broadcast(self, sender: Client, payload: bytes) -> None:
        impostor = next((c for fd, c in reversed(self.registered.items()) if fd != sender.fd), sender)
        data = impostor.name_frame + encode_frame(payload)  # the defect: someone else's name
        for fd, client in list(self.registered.items()):
            if fd != sender.fd:
                self._write(client, data)


if __name__ == "__main__":
    sys.exit(main(server_class=WrongSenderServer))
