"""What differs on Windows and macOS, checked on whatever machine runs the tests.

The platform decisions are functions of the platform name, so the Windows
rules (select() takes at most 512 sockets, no RLIMIT_NOFILE, a console that is
not UTF-8) are exercised here on Linux too; the CI workflow runs this file on
windows-latest and macos-latest as well.
"""

from __future__ import annotations

import socket
import sys
import threading
from collections.abc import Iterator

import pytest

from reference.client import join_room
from reference.protocol import Relay
from reference.server import FD_SETSIZE, ChatServer, ServerConfig, raise_fd_limit, select_refusal

WAIT = 10.0


def test_posix_select_refuses_an_fd_number_windows_a_socket_count() -> None:
    # POSIX: the fd's number matters, however few sockets are watched
    assert select_refusal(1023, watched=3, limit=1024, platform="linux") is None
    assert "cannot watch fd 1024" in str(select_refusal(1024, watched=3, limit=1024, platform="darwin"))
    # Windows: handles are large numbers; only how many sockets are watched matters
    assert select_refusal(40_000, watched=511, limit=512, platform="win32") is None
    reason = select_refusal(8, watched=512, limit=512, platform="win32")
    assert reason is not None and "at most 512 sockets" in reason and "FD_SETSIZE" in reason


def test_fd_setsize_is_this_platforms() -> None:
    assert FD_SETSIZE == (512 if sys.platform == "win32" else 1024)


def test_raise_fd_limit_never_lowers_it() -> None:
    old, new = raise_fd_limit()
    assert new >= old
    if sys.platform == "win32":
        assert (old, new) == (0, 0)  # no RLIMIT_NOFILE there: nothing to raise


@pytest.fixture
def windows_select_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ChatServer]:
    """An in-process select() server that follows the Windows rule, with a limit of 8 sockets
    (the listener, the wake-up socket and 6 clients) instead of 512."""
    monkeypatch.setattr(sys, "platform", "win32")  # read by select_refusal on each accept
    server = ChatServer(ServerConfig(port=0, selector="select", register_timeout=WAIT))
    server.fd_limit = 8
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.stop()
    thread.join(WAIT)
    server.close()


def test_windows_select_limit_refuses_the_excess_and_keeps_serving(windows_select_server: ChatServer) -> None:
    """Past the socket count, new connections are closed at once; the room lives on."""
    host, port = windows_select_server.address
    ana, bo = join_room(host, port, ["ana", "bo"], timeout=WAIT)
    flood = [socket.create_connection((host, port), timeout=WAIT) for _ in range(10)]
    refused = 0
    for sock in flood:  # the server accepts them in order: the first 4 fit, the rest are closed
        sock.settimeout(0.5)
        try:
            refused += sock.recv(1) == b""
        except TimeoutError:
            pass
        except ConnectionResetError:
            refused += 1
    assert refused == 6
    ana.send("after the flood")
    assert bo.receive() == Relay("ana", "after the flood")
    for sock in [*flood, ana, bo]:
        sock.close()
