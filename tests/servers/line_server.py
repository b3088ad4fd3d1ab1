"""A line-based chat server: name, then messages, a line each, as ``name: text`` (breaks FRAME-1, RELAY-1).

Many first chat servers frame by newline instead of by length: read a line
for the username, then relay each further line to the others as text.  It
works with ``telnet`` and with its author's own client, but a client of this
protocol never sends a newline, so the server waits for one forever and
relays nothing; a newline inside a message, or a client whose bytes contain
one, gets an unframed ``name: text`` line back.

    python tests/servers/line_server.py PORT
"""

from __future__ import annotations

import select
import socket
import sys

port = int(sys.argv[-1]) if len(sys.argv) > 1 else 1234  # PORT or --port PORT
server = socket.create_server(("127.0.0.1", port))
print(f"line chat server listening on 127.0.0.1:{port}", flush=True)

buffers: dict[socket.socket, bytes] = {}
names: dict[socket.socket, str] = {}


def drop(sock: socket.socket) -> None:
    buffers.pop(sock, None)
    names.pop(sock, None)
    sock.close()


while True:
    readable, _, _ = select.select([server, *buffers], [], [])
    for sock in readable:
        if sock is server:
            conn, _ = server.accept()
            buffers[conn] = b""
            continue
        try:
            data = sock.recv(4096)
        except OSError:
            data = b""
        if not data:
            drop(sock)
            continue
        buffers[sock] += data
        while b"\n" in buffers[sock]:
            line, buffers[sock] = buffers[sock].split(b"\n", 1)
            text = line.decode("utf-8", "replace").rstrip("\r")
            if sock not in names:
                names[sock] = text
                continue
            for other in list(names):
                if other is not sock:
                    try:
                        other.sendall(f"{names[sock]}: {text}\n".encode())
                    except OSError:
                        drop(other)
