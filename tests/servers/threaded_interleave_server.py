"""A thread-per-client server writing a relay's two frames with two unlocked sends (breaks RELAY-5, RELAY-3).

The usual second version of a student chat server: one thread per client,
blocking sockets, frames reassembled properly, bad input refused.  To relay,
each sender's thread writes the username frame and then the message frame to
every other client with two ``sendall()`` calls, without a lock per
recipient.  When two clients talk at once and a recipient reads slowly, one
thread's ``sendall`` blocks half-way and the other's frames land in between:
username and message no longer come in pairs, and frames are even cut apart.

    python tests/servers/threaded_interleave_server.py PORT
"""

from __future__ import annotations

import socket
import sys
import threading

HEADER_LENGTH = 10
MAX_PAYLOAD = 4 * 1024 * 1024

clients: dict[socket.socket, bytes] = {}   # socket -> its encoded username frame
clients_lock = threading.Lock()


def frame(payload: bytes) -> bytes:
    return f"{len(payload):<{HEADER_LENGTH}}".encode() + payload


def recv_exactly(sock: socket.socket, n: int) -> bytes | None:
    data = b""
    while len(data) < n:
        chunk = sock.recv(min(n - len(data), 65536))
        if not chunk:
            return None
        data += chunk
    return data


def read_frame(sock: socket.socket) -> bytes | None:
    header = recv_exactly(sock, HEADER_LENGTH)
    if header is None:
        return None
    digits = header.strip(b" ")
    if not digits.isdigit() or int(digits) > MAX_PAYLOAD:
        return None
    payload = recv_exactly(sock, int(digits))
    if payload is None:
        return None
    payload.decode("utf-8")  # UnicodeDecodeError: the caller closes this client
    return payload


def relay(sender: socket.socket, payload: bytes) -> None:
    with clients_lock:
        others = [(s, n) for s, n in clients.items() if s is not sender]
    for sock, _ in others:
        try:
            sock.sendall(clients[sender])      # the defect: two sends, no lock per recipient,
            sock.sendall(frame(payload))       # so another thread can write in between
        except (OSError, KeyError):
            pass


def handle(sock: socket.socket) -> None:
    try:
        name = read_frame(sock)
        if not name:
            return
        with clients_lock:
            clients[sock] = frame(name)
        while (payload := read_frame(sock)) is not None:
            relay(sock, payload)
    except (OSError, UnicodeDecodeError):
        pass
    finally:
        with clients_lock:
            clients.pop(sock, None)
        sock.close()


def main() -> None:
    port = int(sys.argv[-1]) if len(sys.argv) > 1 else 1234  # PORT or --port PORT
    server = socket.create_server(("127.0.0.1", port))
    print(f"threaded chat server listening on 127.0.0.1:{port}", flush=True)
    while True:
        sock, _ = server.accept()
        threading.Thread(target=handle, args=(sock,), daemon=True).start()


if __name__ == "__main__":
    main()
