"""A server that reads the header properly but the payload with one ``recv(n)`` (breaks FRAME-5, ROBUST-1).

The half-fixed tutorial: it loops until it has all 10 header bytes, but then
trusts one ``recv(length)`` to return the whole payload.  On loopback that
holds for short messages sent whole, and fails for a large message or one
that arrives in pieces: the rest of the payload is then read as the next
header.  Blocking sockets in a ``select()`` loop, like the tutorial.

    python tests/servers/single_recv_payload_server.py PORT
"""

import select
import socket
import sys

HEADER_LENGTH = 10
port = int(sys.argv[-1]) if len(sys.argv) > 1 else 1234

listener = socket.create_server(("127.0.0.1", port))
print(f"listening on 127.0.0.1:{port}", flush=True)
names = {}  # socket -> encoded username frame, once registered
sockets = [listener]


def read_frame(sock):
    """One frame's payload, or None if the peer closed or sent garbage."""
    header = b""
    while len(header) < HEADER_LENGTH:  # the header is read carefully ...
        chunk = sock.recv(HEADER_LENGTH - len(header))
        if not chunk:
            return None
        header += chunk
    try:
        length = int(header.strip())
    except ValueError:
        return None
    if length < 0 or length > 4 * 1024 * 1024:
        return None
    return sock.recv(length) if length else b""  # ... the payload is not: the defect


def drop(sock):
    sockets.remove(sock)
    names.pop(sock, None)
    sock.close()


while True:
    readable, _, _ = select.select(sockets, [], [])
    for sock in readable:
        if sock is listener:
            client, _ = listener.accept()
            sockets.append(client)
            continue
        try:
            payload = read_frame(sock)
        except OSError:
            payload = None
        if payload is None:
            drop(sock)
            continue
        if sock not in names:
            if not payload:
                drop(sock)
                continue
            names[sock] = f"{len(payload):<{HEADER_LENGTH}}".encode() + payload
            continue
        data = names[sock] + f"{len(payload):<{HEADER_LENGTH}}".encode() + payload
        for other in list(names):
            if other is not sock:
                try:
                    other.sendall(data)
                except OSError:
                    drop(other)
