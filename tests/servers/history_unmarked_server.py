"""A history-profile server that replays the last messages as if they were live (breaks HISTORY-2).

The student added history by keeping the bytes it had just relayed (the
sender's username frame and the message frame) and writing them to each
newcomer.  The newcomer cannot tell them from messages said right now: it sees
ana say "see you at 5" again, at 6.  Everything else, the bound on the replay
included, is the reference server with ``--profile history``.

    python tests/servers/history_unmarked_server.py PORT
"""

from __future__ import annotations

import sys

from _variant import run

from reference.server import ChatServer, Client


class HistoryUnmarkedServer(ChatServer):
    def _remember(self, sender: Client, data: bytes) -> None:
        assert self.replay is not None
        self.replay.add(data)  # the defect: the relay as sent, without the "*history* " mark


if __name__ == "__main__":
    sys.exit(run(HistoryUnmarkedServer, profiles="history"))
