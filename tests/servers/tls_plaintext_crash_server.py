"""A TLS server that dies when a client speaks plaintext to it (breaks TLS-3 and ROBUST-7).

The student's second try at TLS in the select() loop: ``accept()`` the plain
socket, then ``wrap_socket`` it there and then, a blocking handshake under a
short ``settimeout``.  The student catches the errors met while testing: a
silent client once froze the room (``socket.timeout``, a ``TimeoutError``: that client is
dropped, so a stalled handshake holds the room for half a second at most),
and a client that left before its handshake (``nc -z``, a port check:
``ssl.SSLZeroReturnError``, ``SSLEOFError`` or a reset).  What the student never tried is a client
that is not TLS at all: the ``ssl.SSLError`` of a plaintext
ClientHello (``WRONG_VERSION_NUMBER``) is not caught, leaves the select loop
and kills the server, and with it everybody's chat.  Everything else is the
reference server.  It always serves TLS: without ``--tls-cert`` it makes a
throwaway certificate and prints its CA file, as ``chat-server
--tls-self-signed`` does.

    python tests/servers/tls_plaintext_crash_server.py PORT
    chat-conformance --tls --server-cmd 'python tests/servers/tls_plaintext_crash_server.py {port}'
"""

from __future__ import annotations

import selectors
import ssl
import sys
import time

from _variant import run

from reference.server import ChatServer, Client, log

HANDSHAKE_TIMEOUT = 0.5  # seconds a stalled handshake may hold the room


class PlaintextCrashServer(ChatServer):
    def _accept(self) -> None:
        try:
            sock, addr = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        assert self.config.tls is not None
        sock.setblocking(True)
        sock.settimeout(HANDSHAKE_TIMEOUT)
        try:
            # The defect: only the errors the student met are caught; the ssl.SSLError of a
            # plaintext client (WRONG_VERSION_NUMBER) propagates out of the select loop.
            sock = self.config.tls.wrap_socket(sock, server_side=True)
        except (TimeoutError, ssl.SSLZeroReturnError, ssl.SSLEOFError, ConnectionError) as exc:
            log.info("%s:%s: TLS handshake did not complete: %s", addr[0], addr[1], exc)
            sock.close()
            return
        sock.setblocking(False)
        client = Client(sock, addr, self.config.max_payload, self.config.max_username,
                        time.monotonic())
        self.clients[client.fd] = client
        self._unregistered[client.fd] = client
        self.memory_held += self.connection_cost
        self.selector.register(sock, selectors.EVENT_READ, client)


if __name__ == "__main__":
    argv = sys.argv[1:]
    if "--tls-cert" not in argv and "--tls-self-signed" not in argv:
        argv.append("--tls-self-signed")
    sys.exit(run(PlaintextCrashServer, argv))
