"""Profile: tls (PROTOCOL.md): the same protocol inside TLS, and a TLS port that nobody can stall.

These cases run only when the target is TLS (``--server tls://HOST:PORT``, or
``--tls`` with the embedded reference or a ``--server-cmd``); then every base
case runs inside TLS as well, since every connection of the suite is TLS.
"""

from __future__ import annotations

import socket
import ssl
import time

import pytest

from conformance.corpus import NAMES, PAYLOADS
from conformance.peer import CaseFailure, Peer, Room
from conformance.requirements import case
from reference.protocol import Relay, encode_frame
from reference.tls import ClientTLS, describe_ssl_error, tls_for


def client_hello() -> bytes:
    """The first flight of a real TLS client (its ClientHello), made without a socket."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_side=False)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def _target_tls(room: Room) -> ClientTLS:
    tls = tls_for(room.address)
    assert tls is not None, "the TLS cases run only on TLS targets"
    return tls


@case("tls.handshake", "TLS-1")
def test_handshake(chat_room: Room) -> None:
    """TLS-1: a TLS handshake completes, with TLS 1.2 or later, and the client can register."""
    ana, bea = chat_room.join_all("ana", "bea")  # each connection is TLS: join = handshake + sync
    raw = getattr(ana.sock, "_sock", None)  # the RecordingSocket's own socket
    version = raw.version() if isinstance(raw, ssl.SSLSocket) else None
    if version not in ("TLSv1.2", "TLSv1.3"):
        raise CaseFailure("a TLS 1.2 or 1.3 connection", f"negotiated {version or 'no TLS'}")
    cipher = raw.cipher() if isinstance(raw, ssl.SSLSocket) else None
    chat_room.found(f"{version}, {cipher[0] if cipher else 'unknown cipher'}")
    ana.send("inside TLS")
    bea.expect_relay("ana", "inside TLS")


@case("tls.corpus", "TLS-1")
def test_corpus_inside_tls(chat_room: Room) -> None:
    """TLS-1: every awkward payload and name of the corpus comes out of TLS byte for byte."""
    reader, ana = chat_room.join_all("reader", "ana")
    for text in PAYLOADS.values():
        ana.send(text)
    reader.expect_relays([Relay("ana", text) for text in PAYLOADS.values()],
                         timeout=chat_room.timeouts.arrive * 4)
    for label, name in NAMES.items():
        sender = chat_room.join(name)
        sender.send(f"from {label}")
        reader.expect_relay(name, f"from {label}")


def _stall(room: Room, how: str) -> Peer:
    staller = room.connect("staller", plain=True)
    if how == "half-client-hello":
        hello = client_hello()
        staller.send_raw(hello[:len(hello) // 2], "half of a TLS ClientHello, then nothing")
    return staller


@case("tls.stalled-handshake", "TLS-2")
@pytest.mark.parametrize("how", ["silent", "half-client-hello"])
def test_stalled_handshake(chat_room: Room, how: str) -> None:
    """TLS-2: a connection stalled before or in its handshake delays no one; newcomers still join."""
    ana, bea = chat_room.join_all("ana", "bea")
    _stall(chat_room, how)
    time.sleep(0.1)  # let the server take the staller in before the room speaks
    for number in range(3):
        ana.send(f"while the handshake stalls {number}")
        bea.expect_relay("ana", f"while the handshake stalls {number}")
    cy = chat_room.join("cy")  # a newcomer's own handshake is not held up either
    cy.send("a newcomer got in")
    ana.expect_relay("cy", "a newcomer got in")


@case("tls.plaintext-client", "TLS-3")
def test_plaintext_client(chat_room: Room) -> None:
    """TLS-3: a client speaking plaintext to the TLS port is closed, relayed nothing, and hurts no one."""
    ana, bea = chat_room.join_all("ana", "bea")
    mallory = chat_room.connect("mallory", plain=True)
    mallory.send_raw(encode_frame(b"mallory") + encode_frame(b"plaintext hello"),
                     "a username and a message in plaintext")
    _expect_closed_raw(mallory, chat_room.timeouts.close)
    ana.send("after the plaintext client")
    bea.expect_relay("ana", "after the plaintext client")
    ana.expect_nothing("nothing of the plaintext client is relayed")


def _expect_closed_raw(peer: Peer, timeout: float) -> None:
    """The server closes ``peer`` (EOF or reset); a TLS alert before that is fine."""
    __tracebackhide__ = True
    sock = peer.sock
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise CaseFailure("the server closes the plaintext connection",
                              f"it was still open after {timeout:g} s")
        sock.settimeout(remaining)
        try:
            if not sock.recv(4096):
                return
        except (ConnectionResetError, BrokenPipeError):
            return
        except TimeoutError:
            continue


@case("tls.certificate", "TLS-4")
def test_certificate_verifies(chat_room: Room) -> None:
    """TLS-4: the certificate verifies against the CA given with --tls-ca, for the address used."""
    tls = _target_tls(chat_room)
    host, port = chat_room.address
    if tls.insecure:
        raise CaseFailure("a certificate checked against the CA clients are given",
                          "not checked: --tls-insecure was given; give --tls-ca FILE to judge it")
    verifying = ClientTLS(ca=tls.ca)
    try:
        sock = verifying.wrap(socket.create_connection((host, port), timeout=chat_room.timeouts.connect),
                              host)
    except OSError as exc:
        raise CaseFailure(f"a certificate that verifies for {host}", describe_ssl_error(exc)) from None
    with sock:
        cert = sock.getpeercert() or {}
    names = ", ".join(str(entry[1]) for entry in cert.get("subjectAltName", ()))
    chat_room.found(f"verified ({tls.describe()}); names: {names or 'none'}; "
                    f"expires {cert.get('notAfter', 'unknown')}")
