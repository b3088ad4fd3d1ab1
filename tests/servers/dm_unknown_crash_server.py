"""A dm-profile server that dies on a private message to a name nobody has (breaks DM-3 and ROBUST-7).

The student keeps a dictionary from usernames to sockets and looks the recipient
up with ``clients_by_name[name]``: fine for every name in the room, a ``KeyError``
that escapes the event loop for a typo.  One mistyped ``/dm`` ends the server for
everyone.  Everything else is the reference server with ``--profile dm``.

    python tests/servers/dm_unknown_crash_server.py PORT
"""

from __future__ import annotations

import sys

from _variant import run

from reference.protocol import HEADER_LENGTH, encode_frame
from reference.server import ChatServer, Client


class DmUnknownCrashServer(ChatServer):
    def _direct(self, sender: Client, payload: bytes, recipient: bytes) -> None:
        clients_by_name = {c.name_frame[HEADER_LENGTH:]: c for c in self.registered.values()}
        target = clients_by_name[recipient]  # the defect: KeyError for a name nobody has
        self._write(target, sender.name_frame + encode_frame(payload), sender)


if __name__ == "__main__":
    sys.exit(run(DmUnknownCrashServer, profiles="dm"))
