"""A TLS server that dies when a client speaks plaintext to it (breaks TLS-3 and ROBUST-7).

The student's second try at TLS in the select() loop: after the blocking
handshake of a first try froze the room whenever a client said nothing, each
accepted socket is wrapped unconnected (``do_handshake_on_connect=False``) and
the loop drives ``do_handshake()``, waiting for whichever way OpenSSL wants
(``SSLWantReadError``/``SSLWantWriteError``), so a stalled handshake holds
nobody up.  The student catches the errors met while testing: a client that
left before its handshake (``nc -z``, a port check: ``ssl.SSLZeroReturnError``,
``SSLEOFError`` or a reset).  What the student never tried is a client that is
not TLS at all: the ``ssl.SSLError`` of a plaintext ClientHello
(``WRONG_VERSION_NUMBER``) is not caught, leaves the select loop and kills the
server, and with it everybody's chat.  Everything else is the reference server.
It always serves TLS: without ``--tls-cert`` it makes a throwaway certificate
and prints its CA file, as ``chat-server --tls-self-signed`` does.

(An earlier version did a blocking handshake under a 0.5 s ``settimeout`` in
``accept``: it also dropped a legitimate client that paused longer than that
mid-handshake on a loaded machine, so an unrelated case failed now and then.)

    python tests/servers/tls_plaintext_crash_server.py PORT
    chat-conformance --tls --server-cmd 'python tests/servers/tls_plaintext_crash_server.py {port}'
"""

from __future__ import annotations

import logging
import selectors
import ssl
import sys

from _variant import run

from reference.server import ChatServer, Client, log


class PlaintextCrashServer(ChatServer):
    def _handshake(self, client: Client) -> None:
        sock = client.sock
        assert isinstance(sock, ssl.SSLSocket)
        try:
            sock.do_handshake()
        except ssl.SSLWantReadError:
            self._want(client, selectors.EVENT_READ)
            return
        except ssl.SSLWantWriteError:
            self._want(client, selectors.EVENT_READ | selectors.EVENT_WRITE)
            return
        # The defect: only the errors the student met are caught; the ssl.SSLError of a
        # plaintext client (WRONG_VERSION_NUMBER) propagates out of the select loop.
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError, ConnectionError) as exc:
            self._drop(client, f"TLS handshake did not complete: {exc}", level=logging.INFO)
            return
        client.handshaking = False
        self._want(client, selectors.EVENT_READ)
        log.debug("%s: TLS handshake done", client.label)
        self._on_readable(client)  # the username may have come with the Finished message


if __name__ == "__main__":
    argv = sys.argv[1:]
    if "--tls-cert" not in argv and "--tls-self-signed" not in argv:
        argv.append("--tls-self-signed")
    sys.exit(run(PlaintextCrashServer, argv))
