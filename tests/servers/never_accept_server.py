"""A server that listens but never accepts a connection (breaks everything).

A common slip: ``listen()`` is called and the program then blocks on
something else (``input()``, a ``join()`` on a thread that never started)
before its ``accept()`` loop.  The kernel completes the first handshake into
the listen backlog (0 here), so a port check succeeds; every later connection
attempt waits.

    python tests/servers/never_accept_server.py PORT
"""

import socket
import sys
import time

port = int(sys.argv[-1]) if len(sys.argv) > 1 else 1234
listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", port))
listener.listen(0)
print(f"listening on 127.0.0.1:{port}", flush=True)
while True:
    time.sleep(3600)  # the defect: accept() is never reached
