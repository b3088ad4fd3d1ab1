"""A server that tidies each username and message with ``.strip()`` (breaks RELAY-1).

Students often "clean up" input the way they would for a command line:
``message = data.decode().strip()``, so that stray spaces and the ``\\r\\n`` of
a Windows client disappear.  On a chat relay that changes the user's bytes:
leading and trailing spaces, tabs and line ends are lost, a message of only
spaces becomes empty, and " bea " is relayed as "bea".  Everything else is the
reference server.

    python tests/servers/strip_payload_server.py PORT
"""

from __future__ import annotations

import sys

from _variant import run

from reference.server import ChatServer, Client


class StripPayloadServer(ChatServer):
    def _on_register(self, client: Client, name: str) -> None:
        super()._on_register(client, name.strip())  # the defect, for names too

    def _broadcast(self, sender: Client, payload: bytes) -> None:
        message = payload.decode("utf-8").strip()  # the defect: "clean" the user's text
        super()._broadcast(sender, message.encode("utf-8"))


if __name__ == "__main__":
    sys.exit(run(StripPayloadServer))
