"""A TLS server whose certificate names localhost only, not the address its clients use (breaks TLS-4).

The certificate a student makes by following a tutorial: one for
``localhost`` (``openssl req -x509 ... -subj /CN=localhost -addext
subjectAltName=DNS:localhost``), signed by the student's own CA.  It works
on the student's laptop with ``--host localhost``; in the classroom every
client connects by address (127.0.0.1 here, 10.0.0.5 there), and a client
that checks the certificate against that CA refuses it: "IP address
mismatch".  The server itself is the reference server.  Without
``--tls-cert`` it makes that CA and certificate and prints the CA file, as
``chat-server --tls-self-signed`` does.  A certificate that does not verify
stops the run before any case, in one line (docs/tls.md), so its proof is the
exit status 3 and that line, not case verdicts.

    python tests/servers/tls_wrong_name_cert_server.py PORT
    chat-conformance --tls --server-cmd 'python tests/servers/tls_wrong_name_cert_server.py {port}'
"""

from __future__ import annotations

import sys

from _variant import run

from reference import server, tls


def localhost_only(folder: str | None = None, names: tuple[str, ...] = ()) -> tls.SelfSigned:
    """reference.tls.self_signed, but the certificate is issued for ``localhost`` alone."""
    made = tls.self_signed(folder, names)
    import trustme  # present: self_signed succeeded

    ca = trustme.CA(organization_name="student laptop")
    issued = ca.issue_cert("localhost")  # the defect: not 127.0.0.1, not the classroom's address
    ca.cert_pem.write_to_path(str(made.ca))
    issued.cert_chain_pems[0].write_to_path(str(made.cert))
    issued.private_key_pem.write_to_path(str(made.key))
    return made


if __name__ == "__main__":
    server.self_signed = localhost_only  # type: ignore[attr-defined]
    argv = sys.argv[1:]
    if "--tls-cert" not in argv and "--tls-self-signed" not in argv:
        argv.append("--tls-self-signed")
    sys.exit(run(argv=argv))
