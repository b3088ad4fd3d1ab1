"""A select() server that crashes at FD_SETSIZE, like the classic tutorial server (breaks LIMIT-1).

The reference server with ``--selector select`` refuses connections whose fd
select() cannot watch.  This one forgets that guard, as the tutorial server
does: the first client to get fd 1024 makes ``select()`` raise
``ValueError: filedescriptor out of range in select()`` and the process dies
with that as its last stderr line, at about 1,000 clients::

    chat-load limits --server-cmd 'python tests/servers/select_crash_server.py --port {port}'
"""

from __future__ import annotations

import sys

from reference.server import ChatServer, ServerConfig, main


class SelectCrashServer(ChatServer):
    def __init__(self, config: ServerConfig) -> None:
        super().__init__(config)
        self.fd_limit = None  # the defect: no refusal before select() sees fd >= FD_SETSIZE


if __name__ == "__main__":
    sys.exit(main(["--selector", "select", *sys.argv[1:]], server_class=SelectCrashServer))
