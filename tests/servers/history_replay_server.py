"""A server that greets each newcomer with the last 10 messages (breaks JOIN-5).

"So that people who join late know what is going on", the student keeps the
recent messages and sends them to every client as soon as it registers.  The
protocol has no way to mark them as history, so the newcomer sees old
messages as if they had just been said.  Everything else is the reference server.

    python tests/servers/history_replay_server.py PORT
"""

from __future__ import annotations

import collections
import sys

from _variant import run

from reference.server import ChatServer, Client, ServerConfig

HISTORY = 10


class HistoryReplayServer(ChatServer):
    def __init__(self, config: ServerConfig) -> None:
        super().__init__(config)
        self.history: collections.deque[bytes] = collections.deque(maxlen=HISTORY)

    def _on_register(self, client: Client, name: str) -> None:
        super()._on_register(client, name)
        for data in self.history:  # the defect: replay what was said before this client came
            self._write(client, data)

    def _broadcast(self, sender: Client, payload: bytes) -> None:
        self.history.append(sender.name_frame + f"{len(payload):<10}".encode() + payload)
        super()._broadcast(sender, payload)


if __name__ == "__main__":
    sys.exit(run(HistoryReplayServer))
