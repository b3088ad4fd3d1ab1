"""TLS: reference/tls.py, chat-server --tls-*, and tls:// targets (PROTOCOL.md, Profile: tls).

The server runs as a real ``chat-server --tls-self-signed`` subprocess; every
wait is bounded.  The stalled-handshake and plaintext tests are the server's
side of TLS-2 and TLS-3 (the conformance cases judge any server the same way).
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from reference import tls as tls_module
from reference.client import ChatClient, join_room
from reference.protocol import Relay, encode_frame
from reference.target import (
    SpawnedServer,
    TargetError,
    TargetSpec,
    open_target,
    parse_server,
    reference_command,
)
from reference.tls import ClientTLS, TLSSetupError, describe_ssl_error, self_signed, server_context, tls_for

WAIT = 10.0


@pytest.fixture(scope="module")
def tls_server() -> Iterator[SpawnedServer]:
    """``chat-server --tls-self-signed`` on a free port; its handle knows the CA it printed."""
    with open_target(TargetSpec.parse(tls=True)) as handle:
        assert isinstance(handle, SpawnedServer)
        yield handle


def ca_of(server: SpawnedServer) -> str:
    assert server.tls is not None and server.tls.ca
    return server.tls.ca


# -- reference/tls.py ---------------------------------------------------------------------
def test_self_signed_makes_files_that_a_context_loads(tmp_path: Path) -> None:
    made = self_signed(str(tmp_path / "certs"), ("chat.example",))
    assert {p.name for p in made.folder.iterdir()} == {"ca.pem", "cert.pem", "key.pem"}
    assert made.key.stat().st_mode & 0o077 == 0  # the key is the owner's only
    server_context(str(made.cert), str(made.key))
    made.remove()  # a folder the caller named is kept
    assert made.ca.exists()


def test_temporary_self_signed_is_removed() -> None:
    made = self_signed()
    assert made.ca.exists()
    made.remove()
    assert not made.folder.exists()


def test_missing_trustme_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "trustme", None)  # import trustme raises ImportError
    with pytest.raises(TLSSetupError, match=r"needs trustme: pip install 'chat-harness\[tls\]'"):
        self_signed()


def test_server_context_names_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TLSSetupError, match="cannot read .*nope.pem"):
        server_context(str(tmp_path / "nope.pem"))


def test_bad_ca_file_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    with pytest.raises(TLSSetupError, match="cannot load --tls-ca"):
        ClientTLS(ca=str(bad)).context()


def test_unverified_certificate_is_described_plainly(tls_server: SpawnedServer) -> None:
    stranger = trustme.CA()  # a CA that never signed the server's certificate
    with stranger.cert_pem.tempfile() as other_ca:
        with pytest.raises(ssl.SSLCertVerificationError) as caught:
            ClientTLS(ca=other_ca).wrap(socket.create_connection(tls_server.address, timeout=WAIT),
                                        tls_server.address[0])
    line = describe_ssl_error(caught.value)
    assert "\n" not in line and "does not verify" in line and "--tls-ca" in line


def test_certificate_for_another_name_is_described_plainly(tls_server: SpawnedServer) -> None:
    """The right CA, the wrong name: the line says so, and does not ask for another CA."""
    with pytest.raises(ssl.SSLCertVerificationError) as caught:
        ClientTLS(ca=ca_of(tls_server)).wrap(socket.create_connection(tls_server.address, timeout=WAIT),
                                             "classroom.invalid")
    line = describe_ssl_error(caught.value)
    assert "\n" not in line and "does not verify (Hostname mismatch" in line
    assert "not issued for the address used" in line and "--tls-ca" not in line


def test_insecure_accepts_the_self_signed_certificate(tls_server: SpawnedServer) -> None:
    sock = ClientTLS(insecure=True).wrap(socket.create_connection(tls_server.address, timeout=WAIT),
                                         tls_server.address[0])
    with sock:
        assert sock.version() in ("TLSv1.2", "TLSv1.3")


# -- targets --------------------------------------------------------------------------------
def test_parse_server_knows_tls_and_tcp() -> None:
    assert parse_server("tls://127.0.0.1:5000") == (("127.0.0.1", 5000), True)
    assert parse_server("tcp://127.0.0.1:5000") == (("127.0.0.1", 5000), False)
    assert parse_server("[::1]:5000") == (("::1", 5000), False)
    with pytest.raises(ValueError, match="only tcp:// and tls://"):
        parse_server("http://127.0.0.1:5000")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"server": "127.0.0.1:5000", "tls_ca": "x.pem"}, "need a TLS target"),
    ({"server": "tls://127.0.0.1:5000", "tls_ca": "/no/such/ca.pem"}, "no such file"),
    ({"server": "tls://127.0.0.1:5000", "tls_ca": "x", "tls_insecure": True}, "not both"),
    ({"server": "127.0.0.1:5000", "tls": True}, "write tls://127.0.0.1:5000"),
])
def test_bad_tls_target_options_are_one_line(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TargetSpec.parse(**kwargs)  # type: ignore[arg-type]


def test_tls_spec_labels_and_reference_flags() -> None:
    spec = TargetSpec.parse(server="tls://127.0.0.1:5000", tls_insecure=True)
    assert spec.label == "tls://127.0.0.1:5000" and spec.tls == ClientTLS(insecure=True)
    embedded = TargetSpec.parse(tls=True)
    assert "--tls-self-signed" in embedded.reference_args and embedded.tls == ClientTLS()


def test_open_target_registers_the_tls_address_for_every_client(tls_server: SpawnedServer) -> None:
    assert tls_for(tls_server.address) == tls_server.tls
    # No tls= given: ChatClient finds the target's TLS settings itself.
    ana, bea = join_room(*tls_server.address, ["ana", "bea"], timeout=WAIT)
    with ana, bea:
        assert isinstance(ana.sock, ssl.SSLSocket)
        ana.send("over tls")
        assert bea.receive(timeout=WAIT) == Relay("ana", "over tls")


def test_external_tls_target_with_the_wrong_ca_fails_in_one_line(tls_server: SpawnedServer) -> None:
    host, port = tls_server.address
    stranger = trustme.CA()
    with stranger.cert_pem.tempfile() as other_ca:
        spec = TargetSpec.parse(server=f"tls://{host}:{port}", tls_ca=other_ca, start_timeout=3)
        with pytest.raises(TargetError) as caught, open_target(spec):
            pass
    assert "\n" not in str(caught.value) and "does not verify" in str(caught.value)
    assert tls_for(tls_server.address) == tls_server.tls  # the failed one registered nothing


def test_plain_client_of_a_tls_target_connects_plainly_when_asked(tls_server: SpawnedServer) -> None:
    sock = tls_module.connect(tls_server.address, WAIT, tls=None)
    with sock:
        assert isinstance(sock, ssl.SSLSocket)  # registered: TLS even without tls=
    raw = socket.create_connection(tls_server.address, timeout=WAIT)
    raw.close()


# -- the server over TLS ----------------------------------------------------------------------
def test_first_line_names_a_tls_address_and_the_ca(tls_server: SpawnedServer) -> None:
    lines = tls_server.stdout_path.read_text().splitlines()
    assert lines[0].startswith("chat-server listening on tls://127.0.0.1:")
    assert lines[1] == f"chat-server TLS CA certificate: {ca_of(tls_server)}"


def test_stalled_handshakes_and_plaintext_do_not_stall_the_room(tls_server: SpawnedServer) -> None:
    """TLS-2, TLS-3: a silent TCP connection, half a ClientHello and a plaintext client, at once."""
    from conformance.cases.test_tls import client_hello
    silent = socket.create_connection(tls_server.address, timeout=WAIT)
    half = socket.create_connection(tls_server.address, timeout=WAIT)
    hello = client_hello()
    half.sendall(hello[:len(hello) // 2])
    plain = socket.create_connection(tls_server.address, timeout=WAIT)
    plain.sendall(encode_frame(b"mallory") + encode_frame(b"in plaintext"))
    try:
        ana, bea = join_room(*tls_server.address, ["ana", "bea"], timeout=WAIT)
        with ana, bea:
            for number in range(5):
                ana.send(f"while three stall {number}")
                assert bea.receive(timeout=WAIT) == Relay("ana", f"while three stall {number}")
        plain.settimeout(WAIT)
        received = b""
        try:
            while chunk := plain.recv(4096):  # an alert, then EOF (or a reset): never a relay
                received += chunk
        except ConnectionResetError:
            pass
        assert b"in plaintext" not in received and b"ana" not in received
    finally:
        for sock in (silent, half, plain):
            sock.close()


def test_one_mebibyte_arrives_intact_over_tls(tls_server: SpawnedServer) -> None:
    """Many TLS records per frame, and what OpenSSL holds beyond select()'s sight (pending())."""
    text = "é" * (512 * 1024)  # 1 MiB of UTF-8
    ana, bea = join_room(*tls_server.address, ["big-ana", "big-bea"], timeout=WAIT)
    with ana, bea:
        ana.send(text)
        ana.send("and a small one right behind")
        assert bea.receive(timeout=WAIT) == Relay("big-ana", text)
        assert bea.receive(timeout=WAIT) == Relay("big-ana", "and a small one right behind")


def test_half_close_over_tls_ends_like_a_clean_close(tls_server: SpawnedServer) -> None:
    """A TCP FIN without close_notify is a clean leave (OP_IGNORE_UNEXPECTED_EOF), not an error."""
    cy, dee = join_room(*tls_server.address, ["cy", "dee"], timeout=WAIT)
    with cy, dee:
        cy.send("bye")
        tls_module.shutdown_write(cy.sock)
        assert dee.receive(timeout=WAIT) == Relay("cy", "bye")
        cy.sock.settimeout(WAIT)
        assert cy.sock.recv(100) == b""  # the server closed it: EOF, no alert
        dee.send("after cy left")  # nobody else to hear it; the room goes on
        with ChatClient.connect(*tls_server.address, name="eve", timeout=WAIT) as eve:
            eve.send("still here")
            assert dee.receive(timeout=WAIT) == Relay("eve", "still here")


def run_server(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reference.server", "--port", "0", *args],
                          capture_output=True, text=True, timeout=WAIT)


@pytest.mark.parametrize(("args", "message"), [
    (("--tls-key", "k.pem"), "--tls-key needs --tls-cert"),
    (("--tls-cert", "c.pem", "--tls-self-signed"), "not both"),
    (("--tls-name", "host"), "--tls-name goes with --tls-self-signed"),
    (("--tls-cert", "/no/such/cert.pem"), "chat-server: cannot read /no/such/cert.pem"),
])
def test_bad_tls_options_are_one_line(args: tuple[str, ...], message: str) -> None:
    proc = run_server(*args)
    assert proc.returncode == 2
    assert message in proc.stderr.strip().splitlines()[-1]


def test_server_with_given_cert_and_key(tmp_path: Path) -> None:
    made = self_signed(str(tmp_path))
    server = SpawnedServer(reference_command("--tls-cert", str(made.cert), "--tls-key", str(made.key)),
                           tls=ClientTLS(ca=str(made.ca)))
    server.start()
    try:
        with ChatClient.connect(*server.address, name="solo", timeout=WAIT) as solo:
            assert isinstance(solo.sock, ssl.SSLSocket)
    finally:
        server.close()


def test_self_signed_folder_is_removed_when_the_server_stops() -> None:
    server = SpawnedServer(reference_command("--tls-self-signed"), tls=ClientTLS())
    server.start()
    assert server.tls is not None and server.tls.ca
    ca = Path(server.tls.ca)
    assert ca.exists()
    server.close()  # SIGTERM: the server removes its temporary folder on the way out
    deadline = time.monotonic() + WAIT
    while ca.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not ca.parent.exists()


def test_tls_connections_are_charged_openssls_share_of_the_memory_budget() -> None:
    """LIMIT-3 over TLS: each connection costs CLIENT_OVERHEAD + TLS_OVERHEAD, freed when it
    closes, also when it never finished its handshake (in-process server, stepped by hand)."""
    from reference.server import ChatServer, ServerConfig
    from reference.server_output import CLIENT_OVERHEAD, TLS_OVERHEAD

    made = self_signed()
    server = ChatServer(ServerConfig(port=0, tls=server_context(str(made.cert), str(made.key))))
    tls = ClientTLS(ca=str(made.ca))
    socks: list[socket.socket] = []
    try:
        assert server.connection_cost == CLIENT_OVERHEAD + TLS_OVERHEAD
        socks.append(socket.create_connection(server.address, timeout=WAIT))  # never handshakes
        for _ in range(200):
            server.run_once(0.01)
            if server.clients:
                break
        assert server.memory_held == CLIENT_OVERHEAD + TLS_OVERHEAD
        raw = socket.create_connection(server.address, timeout=WAIT)
        raw.setblocking(False)
        wrapped = tls.context().wrap_socket(raw, server_hostname="127.0.0.1", do_handshake_on_connect=False)
        socks.append(wrapped)
        for _ in range(400):  # both ends step the handshake, neither blocks
            server.run_once(0.01)
            try:
                wrapped.do_handshake()
                break
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                continue
        assert wrapped.version() is not None and len(server.clients) == 2
        assert server.memory_held == 2 * (CLIENT_OVERHEAD + TLS_OVERHEAD)
        for sock in socks:
            sock.close()
        for _ in range(200):
            server.run_once(0.01)
            if not server.clients:
                break
        assert not server.clients and server.memory_held == 0
    finally:
        for sock in socks:
            sock.close()
        server.close()
        made.remove()
