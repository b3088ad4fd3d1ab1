"""A TLS server whose handshake blocks the whole room in accept() (breaks TLS-2).

The way a student adds TLS to the select() loop: ``context.wrap_socket`` on the
*listening* socket, so ``accept()`` returns an already wrapped connection --
and does its handshake right there, on a blocking socket.  A client that
connects and says nothing, or sends half a ClientHello, holds ``accept()`` (and
with it the whole loop) until it leaves: nobody is relayed, nobody joins.  A
handshake that fails (plaintext) is caught, so that connection alone goes.
Everything else is the reference server.  It always serves TLS: without
``--tls-cert`` it makes a throwaway certificate and prints its CA file, as
``chat-server --tls-self-signed`` does.

    python tests/servers/tls_blocking_handshake_server.py PORT
    chat-conformance --tls --server-cmd 'python tests/servers/tls_blocking_handshake_server.py {port}'
"""

from __future__ import annotations

import selectors
import ssl
import sys
import time

from _variant import run

from reference.server import ChatServer, Client, ServerConfig, log


class BlockingHandshakeServer(ChatServer):
    def __init__(self, config: ServerConfig) -> None:
        assert config.tls is not None
        super().__init__(config)
        self.selector.unregister(self.listener)
        # The defect: the listener is wrapped, so accept() performs a blocking handshake.
        self.listener = config.tls.wrap_socket(self.listener, server_side=True)
        self.selector.register(self.listener, selectors.EVENT_READ, None)

    def _accept(self) -> None:
        try:
            sock, addr = self.listener.accept()  # blocks until this client's handshake is done
        except (BlockingIOError, InterruptedError):
            return
        except (ssl.SSLError, OSError) as exc:
            log.info("handshake failed: %s", exc)
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
    sys.exit(run(BlockingHandshakeServer, argv))
