"""The classic tutorial chat server, kept as it is (breaks ROBUST-1..3, FRAME-2..6, FRAME-8).

This is the well-known ``select()`` chat server from the socket tutorials, with
only the port taken from the command line.  Its defects are the ones PROTOCOL.md
section 7 lists:

* ``recv(HEADER_LENGTH)`` and ``recv(message_length)`` assume one call returns a
  whole header or payload: a split frame desynchronises it (ROBUST-1, FRAME-5);
* blocking sockets: a half-sent frame or a silent new connection freezes the
  loop (ROBUST-2), and ``send()`` to a client that stopped reading blocks it (ROBUST-3);
* ``int(header)`` takes ``+5`` (FRAME-3); it forwards the sender's own header
  bytes, non-canonical ones included (FRAME-2);
* it decodes payloads to print them, so invalid UTF-8 kills it (FRAME-4).

    python tests/servers/tutorial_server.py 1234
"""

import select
import socket
import sys

HEADER_LENGTH = 10

IP = "127.0.0.1"
PORT = int(sys.argv[-1]) if len(sys.argv) > 1 else 1234

server_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server_socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server_socket.bind((IP, PORT))
server_socket.listen()

sockets_list = [server_socket]
clients = {}

print(f"Listening for connections on {IP}:{PORT}...", flush=True)


def receive_message(client_socket):
    try:
        message_header = client_socket.recv(HEADER_LENGTH)
        if not len(message_header):
            return False
        message_length = int(message_header.decode("utf-8").strip())
        return {"header": message_header, "data": client_socket.recv(message_length)}
    except:  # noqa: E722 -- verbatim tutorial code
        return False


while True:
    read_sockets, _, exception_sockets = select.select(sockets_list, [], sockets_list)
    for notified_socket in read_sockets:
        if notified_socket == server_socket:
            client_socket, client_address = server_socket.accept()
            user = receive_message(client_socket)
            if user is False:
                continue
            sockets_list.append(client_socket)
            clients[client_socket] = user
            print("Accepted new connection from {}:{}, username: {}".format(
                *client_address, user["data"].decode("utf-8")), flush=True)
        else:
            message = receive_message(notified_socket)
            if message is False:
                print("Closed connection from: {}".format(clients[notified_socket]["data"].decode("utf-8")))
                sockets_list.remove(notified_socket)
                del clients[notified_socket]
                continue
            user = clients[notified_socket]
            print(f'Received message from {user["data"].decode("utf-8")}: {message["data"].decode("utf-8")}')
            for client_socket in clients:
                if client_socket != notified_socket:
                    client_socket.send(user["header"] + user["data"] + message["header"] + message["data"])
    for notified_socket in exception_sockets:
        sockets_list.remove(notified_socket)
        del clients[notified_socket]
