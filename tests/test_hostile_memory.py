"""The harness's memory stays bounded whatever a server under test sends or logs.

Each check runs against a server from tests/servers/ built to hurt a reader:
``huge_log_server.py`` (1 GiB sparse stdout and stderr) and ``flood_server.py``
(endless 4 MiB frames, or garbage).  Where a whole tool or library call is
checked, it runs in a child process under ``RLIMIT_AS`` = the documented bound
(docs/hostile.md, "Memory"), so reading a log whole or buffering a flood is
a MemoryError there, not a slow test here.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from conformance.wire import MAX_KEPT_BYTES, RecordingSocket, Wire
from reference import aclient
from reference.aclient import connect_client
from reference.process_group import join_command
from reference.stamp import receive_limit
from reference.target import SpawnedServer, TargetSpec, open_target

if sys.platform != "win32":
    import resource

SERVERS = Path(__file__).parent / "servers"
#: run_capped's address-space cap is POSIX, and only Linux enforces RLIMIT_AS.
CAPPED = pytest.mark.skipif(sys.platform != "linux", reason="caps the address space with RLIMIT_AS, "
                            "which only Linux enforces (and Windows lacks)")
#: The harness's documented memory bound (docs/hostile.md): address space, so it is a hard limit.
MEMORY_BOUND = 200 * 1024 * 1024


def run_capped(argv: list[str], limit: int = MEMORY_BOUND, timeout: float = 120.0,
               env: dict[str, str] | None = None) -> tuple[int, str, int]:
    """Run ``argv`` with its address space capped at ``limit``: (exit status, output, peak RSS)."""
    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            preexec_fn=cap, start_new_session=True, env=env)
    chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: chunks.append(proc.stdout.read()))  # type: ignore[union-attr]
    reader.start()
    # os.wait4 gives this child's own peak RSS; getrusage(RUSAGE_CHILDREN) would be the
    # largest of every child this test process ever waited for (a browser, a swarm...).
    deadline = time.monotonic() + timeout
    status, usage = 0, None
    try:
        while usage is None:
            pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                usage = rusage
            elif time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(argv, timeout)
            else:
                time.sleep(0.05)
    finally:
        if usage is None:
            os.killpg(proc.pid, 9)
            _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        reader.join(10)
    return proc.returncode, b"".join(chunks).decode("utf-8", "replace"), usage.ru_maxrss * 1024


def _server_cmd(name: str, *args: str) -> str:
    return join_command([sys.executable, str(SERVERS / name), *args])


@CAPPED
def test_huge_server_logs_are_read_within_the_bound() -> None:
    """1 GiB of stdout before nothing and of stderr before the last line: both read in bounded memory."""
    script = textwrap.dedent(f"""
        from reference.target import SpawnedServer, TargetSpec, open_target
        with open_target(TargetSpec(command={_server_cmd("huge_log_server.py")!r})) as t:
            print("address", t.address[1] > 0)
        s = SpawnedServer({_server_cmd("huge_log_server.py", "--crash")!r})
        s.start()
        s.proc.wait(10)
        print("exit", s.describe_exit())
        s.close()
    """)
    status, out, _ = run_capped([sys.executable, "-c", script])
    assert status == 0, out
    assert "address True" in out
    assert "exited with status 3; last stderr line: boom:" in out
    assert "\x1b" not in out and "\u009b" not in out and "\u202e" not in out
    assert "\\x1b]0;pwned\\x07\\x1b[2J\\x9b31m \\u202e gnp.exe [/] done" in out


def test_a_crashed_servers_log_folder_is_kept_and_named_others_removed() -> None:
    """The log folder goes at close, unless describe_exit reported a crash and pointed at it."""
    with open_target(TargetSpec(command=_server_cmd("huge_log_server.py"))) as target:
        assert isinstance(target, SpawnedServer)
        folder = target.log_dir
        assert folder.is_dir()
    assert not folder.exists()
    crashed = SpawnedServer(_server_cmd("huge_log_server.py", "--crash"))
    crashed.start()
    assert crashed.proc is not None
    crashed.proc.wait(10)
    try:
        assert f"its output is kept in {crashed.log_dir}" in crashed.describe_exit()
        crashed.close()
        assert (crashed.log_dir / "stderr.1").exists()
    finally:
        import shutil
        shutil.rmtree(crashed.log_dir, ignore_errors=True)


class _FloodSocket:
    """Stands in for a socket that a server floods: every recv is a full buffer."""

    def recv(self, size: int) -> bytes:
        return b"x" * size


def test_a_recorded_stream_is_capped() -> None:
    """keep_received keeps at most MAX_KEPT_BYTES however much the server sends."""
    sock = RecordingSocket(_FloodSocket(), Wire(), "bea", keep_received=True)  # type: ignore[arg-type]
    for _ in range(MAX_KEPT_BYTES // 65536 + 100):
        sock.recv(65536)
    assert sock.received is not None and len(sock.received) == MAX_KEPT_BYTES
    assert sock.wire.count == MAX_KEPT_BYTES // 65536 + 100


@pytest.fixture()
def frame_flood() -> object:
    with open_target(TargetSpec(command=_server_cmd("flood_server.py", "frames", "{port}"))) as target:
        yield target


def test_load_generator_connections_refuse_a_flood_at_its_header(frame_flood: SpawnedServer) -> None:
    """A load client accepts frames no larger than what it sends: a 4 MiB frame is refused unbuffered."""
    async def main() -> list[tuple[str, int]]:
        clients = [await connect_client(*frame_flood.address, name=f"c{i}",
                                        max_payload=receive_limit(64)) for i in range(20)]
        reasons = await asyncio.wait_for(asyncio.gather(*(c.closed for c in clients)), 10)
        return [(reason, c.conn.buffered) for reason, c in zip(reasons, clients, strict=True)]

    for reason, buffered in asyncio.run(main()):
        assert "FRAME-6" in reason
        assert buffered <= 2 * receive_limit(64) + 64 * 1024


def test_aborting_a_connection_the_flood_closed_is_quiet(frame_flood: SpawnedServer) -> None:
    """chat-load limits aborts every client at its end; one the flood closed already (FRAME-6)
    must not raise on the tools' event loop (uvloop: "ValueError: negative file descriptor",
    which ended chat-load limits against a flood with a traceback)."""
    async def main() -> str:
        client = await connect_client(*frame_flood.address, name="c", max_payload=receive_limit(64))
        reason = await asyncio.wait_for(client.closed, 10)
        client.abort()
        client.abort()
        return reason

    assert "FRAME-6" in aclient.run(main())


@CAPPED
@pytest.mark.slow
@pytest.mark.parametrize("mode", ["frames", "garbage"])
def test_chat_load_stays_within_the_bound_against_a_flood(mode: str) -> None:
    """chat-load latency with 50 clients, capped at the bound, reports the flood in one panel."""
    status, out, peak = run_capped([sys.executable, "-m", "loadtest.cli", "latency", "--clients", "50",
                                    "--duration", "2", "--warmup", "0.5", "--drain", "2",
                                    "--server-cmd", _server_cmd("flood_server.py", mode, "{port}")])
    assert status == 1, out
    assert "MemoryError" not in out and "Traceback" not in out
    assert "the run could not finish" in out
    assert peak < MEMORY_BOUND


#: Every tool the memory table of docs/hostile.md measures, beside chat-load latency above.
FLOODED_RUNS = {
    "chat-conformance": ["conformance.cli"],
    "chat-load limits": ["loadtest.cli", "limits", "--max", "1000", "--step", "250"],
    "chat-load soak": ["loadtest.cli", "soak", "--clients", "20", "--duration", "5"],
    "chat-swarm": ["loadtest.swarm.cli", "-u", "10", "-t", "5"],
}


@CAPPED
@pytest.mark.slow
@pytest.mark.parametrize("tool", sorted(FLOODED_RUNS))
def test_each_tool_stays_within_the_bound_against_a_frame_flood(tool: str) -> None:
    """Capped at the bound, each tool judges the flooding server (exit 1) in its own words.

    Before: chat-conformance's probe read the whole flood (MemoryError in every case under the
    cap), and chat-load limits ended in a traceback when it aborted a client the flood had closed.
    """
    module, *args = FLOODED_RUNS[tool]
    locust = ["--", "--only-summary"] if tool == "chat-swarm" else []
    # The cap is on address space, not memory: gevent's default resolver runs getaddrinfo in
    # a pool of threads, each reserving an 8 MiB stack, and one CI run in about five hit the
    # cap starting one ("g_switchstack: ... MemoryError") at 54 MB of RSS.  The address is a
    # numeric loopback one, so the blocking resolver costs nothing and starts no thread.
    env = dict(os.environ, GEVENT_RESOLVER="block") if tool == "chat-swarm" else None
    status, out, peak = run_capped([sys.executable, "-m", module, *args, "--server-cmd",
                                    _server_cmd("flood_server.py", "frames", "{port}"), *locust],
                                   timeout=240, env=env)
    assert "MemoryError" not in out and "Traceback" not in out, out[-3000:]
    assert status == 1, out[-3000:]
    assert peak < MEMORY_BOUND
