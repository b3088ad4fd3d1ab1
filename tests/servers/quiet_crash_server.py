"""A server that dies after a second in which nothing happened (breaks ROBUST-7).

The student wakes the loop at least once a second ("so that Ctrl-C works on
Windows", as tutorials advise: ``select(..., 1.0)``) and logs which socket
woke it: ``read_sockets[0]``.  A wakeup because the second ran out brings no
socket, and the IndexError ends the server the first time the room is quiet
for a second.  Everything else is the reference server.

    python tests/servers/quiet_crash_server.py PORT
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from _variant import run

from reference.server import ChatServer

log = logging.getLogger("chat-server")


class QuietCrashServer(ChatServer):
    def _expire_unregistered(self) -> None:
        # Overriding the periodic hook is what makes the loop wake once a second (_TICK).
        super()._expire_unregistered()

    def _handle(self, ready: list[tuple[Any, int]]) -> None:
        woke_for, _ = ready[0]  # the defect: a wakeup that timed out has no socket
        log.debug("woke for %r", woke_for)
        super()._handle(ready)


if __name__ == "__main__":
    sys.exit(run(QuietCrashServer))
