"""A server that relays ``name> text`` as one frame: the "single-frame relay" dialect (breaks RELAY-1).

Some tutorials' servers format the line for display before sending it, so a
client receives one frame ``ana> hello`` instead of a username frame and a
message frame.  Everything else is the reference server.

    python tests/servers/single_frame_server.py PORT
"""

from __future__ import annotations

import sys

from _variant import run

from reference.protocol import encode_frame
from reference.server import ChatServer, Client


class SingleFrameServer(ChatServer):
    def _broadcast(self, sender: Client, text: bytes) -> None:
        line = f"{sender.conn.name}> ".encode() + text  # the defect: one frame, pre-formatted
        for fd, client in list(self.registered.items()):
            if fd != sender.fd:
                self._write(client, encode_frame(line))


if __name__ == "__main__":
    sys.exit(run(SingleFrameServer))
