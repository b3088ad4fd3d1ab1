"""What differs on Windows and macOS, checked on whatever machine runs the tests.

The platform decisions are functions of the platform name, so the Windows
rules (select() takes at most 512 sockets, no RLIMIT_NOFILE, a console that is
not UTF-8) are exercised here on Linux too; the CI workflow runs this file on
windows-latest and macos-latest as well.
"""

from __future__ import annotations

import asyncio
import io
import multiprocessing
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from rich.console import Console
from rich.table import Table

from loadtest.latency_worker import _wait_for_start
from reference.client import join_room
from reference.console import EncodedBuffer, degrade, tolerate_unencodable
from reference.protocol import Relay
from reference.server import (
    FD_SETSIZE,
    UNLIMITED_FD_TARGET,
    ChatServer,
    ServerConfig,
    fd_limit_target,
    raise_fd_limit,
    select_refusal,
)
from reports.results import make_document, target_info, write_document

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


def test_fd_limit_target_takes_the_hard_limit_or_open_max_when_unlimited() -> None:
    unlimited = -1  # resource.RLIM_INFINITY as Python gives it on Linux (macOS: 2**63 - 1)
    assert fd_limit_target(1024, 524_288, unlimited) == 524_288  # Linux: up to the hard limit
    assert fd_limit_target(256, unlimited, unlimited) == UNLIMITED_FD_TARGET == 10240  # macOS' shells
    assert fd_limit_target(20_000, unlimited, unlimited) == 20_000  # never lowered
    assert fd_limit_target(4096, 4096, unlimited) == 4096


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
    # The server accepts them in order: the first 4 fit, the rest are closed.  Wait for the
    # closes together, then 0.5 s more in which no other connection may close.
    refused, open_ = 0, set(flood)
    deadline, quiet = time.monotonic() + WAIT, None
    while open_ and time.monotonic() < (quiet or deadline):
        if refused >= 6 and quiet is None:
            quiet = time.monotonic() + 0.5
        readable, _, _ = select.select(list(open_), [], [], max(0.0, (quiet or deadline) - time.monotonic()))
        for sock in readable:
            open_.discard(sock)
            try:
                refused += sock.recv(1) == b""
            except ConnectionResetError:
                refused += 1
    assert refused == 6
    ana.send("after the flood")
    assert bo.receive() == Relay("ana", "after the flood")
    for sock in [*flood, ana, bo]:
        sock.close()


EMOJI_LABEL = "Zoë's server 🎉"


def conformance_doc(label: str, *, broken: bool = True) -> dict[str, Any]:
    """A small conformance results document: one pass, and (broken) one failed relay case."""
    records = [{"id": "frame.canonical-header", "requirement": "FRAME-2", "requirement_text": "headers",
                "group": "FRAME", "level": "MUST", "verdict": "pass", "duration_s": 0.01, "detail": "",
                "transcript": None},
               {"id": "relay.basic", "requirement": "RELAY-1", "requirement_text": "relayed to others",
                "group": "RELAY", "level": "MUST", "verdict": "fail" if broken else "pass",
                "duration_s": 0.01,
                "detail": "expected b'5         hello' from bob, got nothing", "transcript": None}]
    summary = {"pass": 1 + (not broken), "fail": int(broken), "total": 2, "strict": False,
               "exit_status": int(broken), "duration_s": 1.0, "dialects": []}
    return make_document("conformance", tool="chat-conformance 0.1.0", target=target_info(label),
                         summary=summary, records=records)


def test_degrade_keeps_what_the_code_page_has() -> None:
    assert degrade("Zoë 🎉 日本", "cp1252") == "Zoë ? ??"
    assert degrade("Zoë 🎉", "utf-8") == "Zoë 🎉"


def test_rich_renders_ascii_tables_for_a_cp1252_buffer() -> None:
    buffer = EncodedBuffer("cp1252")
    table = Table("who", "said")
    table.add_row("Zoë", "emoji 🎉🚀")
    Console(file=buffer, width=40).print(table)
    text = buffer.getvalue()
    text.encode("cp1252")  # nothing a cp1252 stream cannot write
    assert "emoji ??" in text and "Zoë" in text and "+--" in text and "┏" not in text


def test_tolerate_unencodable_replaces_instead_of_raising() -> None:
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="cp1252")
    tolerate_unencodable(stream)
    stream.write("Zoë 🎉\n")
    stream.flush()
    assert raw.getvalue() == "Zoë ?\n".encode("cp1252")


def test_chat_report_shows_emoji_on_a_cp1252_console(tmp_path: Path) -> None:
    """A report naming an emoji target, on a stdout that is cp1252 (a redirected Windows console)."""
    path = tmp_path / "conformance.json"
    write_document(str(path), conformance_doc(EMOJI_LABEL, broken=True))
    env = {**os.environ, "PYTHONIOENCODING": "cp1252", "COLUMNS": "120"}
    run = subprocess.run([sys.executable, "-m", "reports.cli", "show", str(path)], capture_output=True,
                         env=env, timeout=60)
    assert run.returncode == 0, run.stderr.decode("cp1252", "replace")
    text = run.stdout.decode("cp1252")  # every byte is cp1252
    assert "Zoë's server ?" in text and "+--" in text


class _Writer:
    """The part of pytest's TerminalWriter that render_report uses, on a cp1252 stream."""

    fullwidth = 100
    hasmarkup = False

    def __init__(self) -> None:
        self._file = io.TextIOWrapper(io.BytesIO(), encoding="cp1252")  # strict, as pytest's would be


class _Reporter:
    def __init__(self) -> None:
        self._tw = _Writer()
        self.out: list[str] = []

    def write_sep(self, sep: str, title: str) -> None:
        self.out.append(title)

    def write(self, text: str) -> None:
        self._tw._file.write(text)  # raises UnicodeEncodeError on what cp1252 lacks
        self.out.append(text)


def test_conformance_report_is_rendered_for_the_terminals_encoding() -> None:
    from conformance.report import render_report
    doc = conformance_doc(EMOJI_LABEL, broken=True)
    doc["records"][1]["detail"] = "expected 'emoji 🎉🚀' from Zoë, got nothing"
    reporter = _Reporter()
    render_report(reporter, doc, "head")
    render_report(reporter, doc, "tail")
    text = "".join(reporter.out)
    assert "Zoë's server ?" in text and "'emoji ??' from Zoë" in text
    assert "+--" in text and "\u2501" not in text  # ASCII borders, not box drawing


@pytest.mark.parametrize("platform", ["linux", "win32"])
def test_latency_worker_waits_for_the_start_message(platform: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """chat-load latency's workers: add_reader on the pipe (POSIX), polling it on Windows, where
    no asyncio loop can watch a pipe handle; other messages are skipped, ("stop",) ends the wait."""
    if platform != "win32" and sys.platform == "win32":
        pytest.skip("add_reader cannot watch a pipe on Windows")
    monkeypatch.setattr(sys, "platform", platform)
    coordinator, worker = multiprocessing.Pipe()
    coordinator.send(("progress", {}))
    coordinator.send(("start", 123))
    assert asyncio.run(asyncio.wait_for(_wait_for_start(worker), WAIT)) == 123
    coordinator.send(("stop",))
    with pytest.raises(RuntimeError, match="stopped by the coordinator"):
        asyncio.run(asyncio.wait_for(_wait_for_start(worker), WAIT))


def test_limits_probe_on_windows_says_there_is_no_file_limit_and_never_needs_resource(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """docs/platforms.md: Windows has no open-file limit, and chat-load limits says so instead of
    raising one (``resource`` does not exist there: any import of it here is an ImportError)."""
    from loadtest.cli import main as load_main
    from reference.target import TargetSpec, open_target

    # Windows for the limits probe only: the rest of this process (signals, stopping the server)
    # stays on this platform's calls.  raise_fd_limit's Windows answer is (0, 0) (tested above).
    monkeypatch.setattr("loadtest.limits.sys", SimpleNamespace(platform="win32"))
    monkeypatch.setattr("loadtest.limits.raise_fd_limit", lambda: (0, 0))
    monkeypatch.setitem(sys.modules, "resource", None)
    screen = io.StringIO()
    with open_target(TargetSpec()) as server:
        host, port = server.address
        status = load_main(["limits", "--server", f"{host}:{port}", "--max", "20", "--step", "10",
                            "--json", str(tmp_path / "limits.json")], console=Console(file=screen, width=200))
    shown = screen.getvalue()
    assert status == 0, shown
    assert "Windows has no open-file limit to raise" in shown
    assert "Traceback" not in shown
