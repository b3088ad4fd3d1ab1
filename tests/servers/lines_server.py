"""A server that speaks newline-delimited lines: the "newline-delimited lines" dialect (breaks FRAME-1).

Many first chat servers read text lines: the first line is the name, every
later line is relayed to the others as ``name: text\n``.  It never sees a
newline in 10-byte-header frames, so a client of this protocol hears nothing.

    python tests/servers/lines_server.py PORT
"""

from __future__ import annotations

import selectors
import socket
import sys

port = int(sys.argv[-1]) if len(sys.argv) > 1 else 1234
listener = socket.create_server(("127.0.0.1", port), backlog=128)
listener.setblocking(False)
print(f"listening on 127.0.0.1:{port}", flush=True)
selector = selectors.DefaultSelector()
selector.register(listener, selectors.EVENT_READ)
buffers: dict[socket.socket, bytes] = {}
names: dict[socket.socket, bytes] = {}


def drop(conn: socket.socket) -> None:
    selector.unregister(conn)
    buffers.pop(conn, None)
    names.pop(conn, None)
    conn.close()


while True:
    for key, _ in selector.select():
        if key.fileobj is listener:
            conn, _ = listener.accept()
            conn.setblocking(False)
            buffers[conn] = b""
            selector.register(conn, selectors.EVENT_READ)
            continue
        conn = key.fileobj  # type: ignore[assignment]
        try:
            data = conn.recv(65536)
        except OSError:
            data = b""
        if not data:
            drop(conn)
            continue
        buffers[conn] += data
        *lines, buffers[conn] = buffers[conn].split(b"\n")
        for line in lines:
            if conn not in names:
                names[conn] = line.strip()
                continue
            for other in list(names):
                if other is not conn:
                    try:
                        other.sendall(names[conn] + b": " + line + b"\n")
                    except OSError:
                        drop(other)
