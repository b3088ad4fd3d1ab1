"""A reference server that silently stops relaying once the room is large (breaks RELAY-1).

Defect: past ``--stop-after`` registered clients (default 300) it still
accepts connections and reads every frame, but relays nothing any more, as a
server whose broadcast loop died on an exception it swallowed would.  Nothing
is refused or closed, so only a probe broadcast shows it: ``chat-load
limits`` must report it as a finding (``stopped-relaying``, exit 1), not as
the room's natural size.  Same options as the reference server, plus
``--stop-after N``::

    chat-load limits --server-cmd 'python tests/servers/stops_relaying_server.py --port {port}'
"""

from __future__ import annotations

import argparse
import sys

from reference.server import ChatServer, Client, main


def build(stop_after: int) -> type[ChatServer]:
    class StopsRelayingServer(ChatServer):
        def _broadcast(self, sender: Client, payload: bytes) -> None:
            if len(self.registered) <= stop_after:
                super()._broadcast(sender, payload)
            # the defect: a large room gets nothing, and nobody is told

    return StopsRelayingServer


if __name__ == "__main__":
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--stop-after", type=int, default=300)
    known, rest = parser.parse_known_args()
    sys.exit(main(rest, server_class=build(known.stop_after)))
