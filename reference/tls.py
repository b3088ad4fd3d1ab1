"""TLS for chat-harness: the one place that builds contexts and wraps sockets.

The chat protocol is unchanged inside TLS (PROTOCOL.md, "Profile: tls"); only
the transport differs.  This module holds:

* :class:`ClientTLS`: how a client verifies a TLS target (``--tls-ca FILE`` or
  ``--tls-insecure``), with :meth:`ClientTLS.wrap` for blocking sockets and
  :meth:`ClientTLS.context` for asyncio (``loop.create_connection(ssl=...)``);
* :func:`server_context` and :func:`self_signed`: the server side, the latter a
  throwaway certificate authority made with ``trustme`` (the ``tls`` extra);
* a small registry, address -> :class:`ClientTLS`, filled by
  :func:`reference.target.open_target`, so that every client in the process
  (``ChatClient.connect``, ``connect_client``, the conformance peers) speaks
  TLS to a TLS target without each tool passing it along.

Every failure is a :class:`TLSSetupError` or an ``ssl.SSLError`` whose text
:func:`describe_ssl_error` turns into one plain line.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "WOULD_BLOCK",
    "asyncio_ssl",
    "ClientTLS",
    "SelfSigned",
    "TLSSetupError",
    "connect",
    "describe_ssl_error",
    "shutdown_write",
    "register_target",
    "self_signed",
    "server_context",
    "tls_for",
]

#: A non-blocking send or recv that must wait: on a TLS socket OpenSSL says so with
#: SSLWantReadError / SSLWantWriteError (OSErrors, not BlockingIOErrors).
WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)
#: The scheme of a TLS target: ``tls://HOST:PORT``.
SCHEME = "tls://"
#: What a server started with --tls-self-signed prints after its "listening on" line;
#: reference.target reads the path from it.
CA_LINE_PREFIX = "chat-server TLS CA certificate: "


class TLSSetupError(ValueError):
    """A TLS option cannot be used (missing file, bad certificate, no trustme)."""


@dataclass(frozen=True)
class ClientTLS:
    """How a client checks a TLS server: ``ca`` (a PEM file) or the system's
    roots; ``insecure`` accepts any certificate (a classroom's self-signed one)."""

    ca: str | None = None
    insecure: bool = False

    def context(self) -> ssl.SSLContext:
        try:
            ctx = ssl.create_default_context(cafile=self.ca)
        except (OSError, ssl.SSLError) as exc:
            raise TLSSetupError(f"cannot load --tls-ca {self.ca}: "
                                f"{getattr(exc, 'strerror', None) or exc}") from None
        ctx.options |= getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", 0)  # as server_context
        if self.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def wrap(self, sock: socket.socket, host: str) -> ssl.SSLSocket:
        """Wrap a connected blocking socket and complete the handshake (within the
        socket's timeout); the socket is closed if that fails."""
        try:
            return self.context().wrap_socket(sock, server_hostname=host)
        except BaseException:
            sock.close()
            raise

    def describe(self) -> str:
        if self.insecure:
            return "TLS, certificate not checked (--tls-insecure)"
        return f"TLS, verified against {self.ca}" if self.ca else "TLS, verified against system roots"


#: OpenSSL's X509_V_ERR_HOSTNAME_MISMATCH and X509_V_ERR_IP_ADDRESS_MISMATCH.
_NAME_MISMATCH = (62, 64)


def describe_ssl_error(exc: BaseException) -> str:
    """One line for a failed handshake: what a user can act on."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = (exc.verify_message or exc.reason or str(exc)).rstrip(".")
        if exc.verify_code in _NAME_MISMATCH:  # the CA is right; the name or address is not
            return (f"the server's TLS certificate does not verify ({reason}): it is not "
                    "issued for the address used; connect by a name it lists, or reissue it "
                    "for this one (chat-server --tls-name HOST)")
        return (f"the server's TLS certificate does not verify ({reason}); "
                "give --tls-ca FILE with its CA, or --tls-insecure")
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed: {exc.reason or exc}"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "TLS handshake did not complete (timed out)"
    if isinstance(exc, OSError):
        return f"TLS handshake failed: {exc.strerror or exc}"
    return f"TLS handshake failed: {exc}"


# -- which targets speak TLS -------------------------------------------------
_TARGETS: dict[tuple[str, int], ClientTLS] = {}


def register_target(address: tuple[str, int], tls: ClientTLS | None) -> None:
    """Record (or with None forget) that ``address`` speaks TLS."""
    if tls is None:
        _TARGETS.pop(address, None)
    else:
        _TARGETS[address] = tls


def tls_for(address: tuple[str, int]) -> ClientTLS | None:
    """The TLS settings of a target registered by open_target, or None (plain TCP)."""
    return _TARGETS.get(address)


def connect(address: tuple[str, int], timeout: float | None, *, tls: ClientTLS | None = None,
            source_address: tuple[str, int] | None = None) -> socket.socket:
    """The one blocking client connect: TCP, then the TLS handshake if ``tls`` is given
    or ``address`` is a registered TLS target.  Raises OSError (ssl.SSLError included)."""
    sock = socket.create_connection(address, timeout=timeout, source_address=source_address)
    tls = tls or tls_for(address)
    if tls is None:
        return sock
    return tls.wrap(sock, address[0])


def asyncio_ssl(address: tuple[str, int], tls: ClientTLS | None = None) -> ssl.SSLContext | None:
    """The ``ssl=`` argument of ``loop.create_connection`` for ``address`` (None: plain TCP)."""
    tls = tls or tls_for(address)
    return tls.context() if tls is not None else None


def shutdown_write(sock: socket.socket) -> None:
    """Half-close (FIN) and keep reading.  ``SSLSocket.shutdown`` would drop the TLS layer
    and leave later reads seeing ciphertext, so a TLS socket is shut at the TCP level."""
    socket.socket.shutdown(sock, socket.SHUT_WR)


# -- server side ---------------------------------------------------------------
def server_context(cert: str, key: str | None = None) -> ssl.SSLContext:
    """A server context for a PEM certificate (chain) and key."""
    for path in (cert, key):
        if path is not None and not os.path.isfile(path):  # OpenSSL's error would not name it
            raise TLSSetupError(f"cannot read {path}: no such file")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    # A TCP FIN without close_notify ends the connection like a FIN in plain TCP (a half-close
    # too), instead of a decode_error alert: chat clients rarely send close_notify.
    ctx.options |= getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", 0)
    try:
        ctx.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise TLSSetupError(f"cannot load certificate {cert} / key {key}: "
                            f"{getattr(exc, 'reason', None) or exc}") from None
    return ctx


@dataclass(frozen=True)
class SelfSigned:
    """A throwaway CA and a certificate it issued for localhost, as PEM files."""

    folder: Path
    ca: Path
    cert: Path
    key: Path
    temporary: bool

    def remove(self) -> None:
        if self.temporary:
            shutil.rmtree(self.folder, ignore_errors=True)


def self_signed(folder: str | None = None, names: tuple[str, ...] = ()) -> SelfSigned:
    """Make a CA and a server certificate for 127.0.0.1, ::1, localhost and ``names``.

    Written to ``folder`` (kept) or to a temporary folder (``remove()`` it).
    Needs ``trustme`` (``pip install 'chat-harness[tls]'``).
    """
    try:
        import trustme
    except ImportError:
        raise TLSSetupError("--tls-self-signed needs trustme: pip install 'chat-harness[tls]'") from None
    temporary = folder is None
    path = Path(tempfile.mkdtemp(prefix="chat-tls-")) if folder is None else Path(folder)
    try:
        path.mkdir(parents=True, exist_ok=True)
        ca = trustme.CA(organization_name="chat-harness classroom")
        issued = ca.issue_cert("127.0.0.1", "::1", "localhost", *names)
        files = SelfSigned(path, path / "ca.pem", path / "cert.pem", path / "key.pem", temporary)
        ca.cert_pem.write_to_path(str(files.ca))
        issued.cert_chain_pems[0].write_to_path(str(files.cert))
        issued.private_key_pem.write_to_path(str(files.key))
        files.key.chmod(0o600)
    except OSError as exc:
        if temporary:
            shutil.rmtree(path, ignore_errors=True)
        raise TLSSetupError(f"cannot write the certificate to {path}: {exc.strerror or exc}") from None
    return files
