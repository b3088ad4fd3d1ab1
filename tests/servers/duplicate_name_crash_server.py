"""A server that dies when a second client takes a name already in use (breaks ROBUST-7).

Names may repeat (JOIN-2, a MAY case reports it), but this student meant to
refuse duplicates and wrote an ``assert`` instead, which ends the process for
everyone.  A repeated name is no protocol error (so not ROBUST-5): the server
must keep running whatever its clients do (ROBUST-7).  The crash happens
inside a MAY case and must still fail the run.  Everything else is the
reference server.

    python tests/servers/duplicate_name_crash_server.py PORT
"""

from __future__ import annotations

import sys

from _variant import run

from reference.server import ChatServer, Client


class DuplicateNameCrashServer(ChatServer):
    def _on_register(self, client: Client, name: str) -> None:
        taken = {c.name_frame for c in self.registered.values()}
        super()._on_register(client, name)
        assert client.name_frame not in taken, f"duplicate user {name!r}"  # the defect


if __name__ == "__main__":
    sys.exit(run(DuplicateNameCrashServer))
