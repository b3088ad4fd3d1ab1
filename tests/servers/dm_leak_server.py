"""A dm-profile server that sends every private message to the whole room (breaks DM-2).

The student added ``/dm NAME TEXT``: it checks that NAME is someone in the room
(and answers "no one named ..." otherwise, as DM-3 asks), then sends the message
with the loop it already had for public messages, which writes to every other
client.  The recipient gets it, so a quick test with two clients looks right;
with three, the third reads everyone's "private" messages.  Everything else is
the reference server with ``--profile dm``.

    python tests/servers/dm_leak_server.py PORT
"""

from __future__ import annotations

import sys

from _variant import run

from reference.protocol import encode_frame
from reference.server import ChatServer, Client


class DmLeakServer(ChatServer):
    def _direct(self, sender: Client, payload: bytes, recipient: bytes) -> None:
        names = [c.name_frame for c in self.registered.values() if c is not sender]
        if encode_frame(recipient) not in names:
            super()._direct(sender, payload, recipient)  # the "no one named" notice
            return
        # The defect: "recipient exists, send it" -- with the broadcast loop.
        for client in list(self.registered.values()):
            if client is not sender and not client.closed:
                self._write(client, sender.name_frame + encode_frame(payload), sender)


if __name__ == "__main__":
    sys.exit(run(DmLeakServer, profiles="dm"))
