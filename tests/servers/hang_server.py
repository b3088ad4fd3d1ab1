"""A server that accepts connections and then does nothing at all (breaks nearly everything).

It never reads, never writes and never closes: the worst case for a test
suite's timeouts.  The conformance suite must still finish in bounded time
against it, with every case failing on a timeout rather than hanging.

    python tests/servers/hang_server.py PORT
"""

import socket
import sys

port = int(sys.argv[-1]) if len(sys.argv) > 1 else 1234
listener = socket.create_server(("127.0.0.1", port), backlog=1024)
print(f"listening on 127.0.0.1:{port}", flush=True)
held = []
listener.settimeout(1.0)
while True:
    try:
        conn, _ = listener.accept()
    except TimeoutError:
        continue
    held.append(conn)  # kept open, never read: the defect
