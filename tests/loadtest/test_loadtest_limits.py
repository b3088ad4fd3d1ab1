"""``chat-load limits``: the ramp stops at the first failure and names its cause.

Small ramps (hundreds of clients, a few seconds each).  The 10,000-client
proof is a documented run in the README, not a default test.
"""

from __future__ import annotations

import io
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from loadtest.cli import main
from reference import exit_codes
from reference.target import TargetSpec, open_target
from reports.results import load_document

pytestmark = pytest.mark.slow  # subprocesses and real servers: not in the fast lane

SERVERS = Path(__file__).resolve().parents[1] / "servers"


def run_limits(args: list[str], tmp_path: Path) -> tuple[int, dict[str, Any]]:
    __tracebackhide__ = True
    out = tmp_path / "limits.json"
    status = main(["limits", *args, "--json", str(out)],
                  console=Console(file=io.StringIO(), width=140))
    return status, load_document(out, kind="limits")


def test_reference_server_reaches_max(tmp_path: Path) -> None:
    status, doc = run_limits(["--max", "600", "--step", "200"], tmp_path)
    summary = doc["summary"]
    assert status == 0
    assert summary["cause"] == "reached-max" and summary["highest_healthy"] == 600
    assert [r["clients"] for r in doc["records"]] == [200, 400, 600]
    assert all(r["healthy"] and r["probe_latency_ms"] is not None for r in doc["records"])
    # The held clients got the probe too (when the last of them had it is measured).
    assert all(r["probe_fanout_ms"] is not None and r["probe_fanout_ms"] > 0 for r in doc["records"])
    assert summary["fd_limit"] >= 600


def test_select_server_that_crashes_at_fd_setsize_is_reported_as_died(tmp_path: Path) -> None:
    cmd = f"{sys.executable} {SERVERS / 'select_crash_server.py'} --port {{port}}"
    _, doc = run_limits(["--max", "1500", "--step", "250", "--server-cmd", cmd], tmp_path)
    summary = doc["summary"]
    assert summary["cause"] == "server-died" and summary["finding"] and not summary["ok"]
    assert "filedescriptor out of range in select()" in summary["cause_detail"]
    assert summary["highest_healthy"] == 1000
    assert doc["records"][-1]["healthy"] is False


def test_reference_with_select_refuses_cleanly_past_fd_setsize(tmp_path: Path) -> None:
    cmd = f"{sys.executable} -m reference.server --port {{port}} --selector select"
    _, doc = run_limits(["--max", "1500", "--step", "250", "--server-cmd", cmd], tmp_path)
    summary = doc["summary"]
    assert summary["cause"] == "connection-refused", summary
    assert "closed" in summary["cause_detail"]
    assert summary["highest_healthy"] == 1000


def test_a_server_that_stops_relaying_mid_ramp_is_a_finding_and_exit_1(tmp_path: Path) -> None:
    # 2 probe clients + 100 held relay; the first registration of the next step stops it
    cmd = f"{sys.executable} {SERVERS / 'stops_relaying_server.py'} --stop-after 102 --port {{port}}"
    status, doc = run_limits(["--max", "300", "--step", "100",
                              "--server-cmd", cmd], tmp_path)
    summary = doc["summary"]
    assert status == 1 and summary["cause"] == "stopped-relaying", summary
    assert summary["finding"] and not summary["ok"]
    assert summary["highest_healthy"] == 100 and doc["records"][-1]["healthy"] is False


def _low_fd_limit() -> None:
    import resource  # POSIX only: the test below is skipped elsewhere
    resource.setrlimit(resource.RLIMIT_NOFILE, (150, 150))


@pytest.mark.skipif(sys.platform == "win32", reason="Windows has no open-file limit (RLIMIT_NOFILE) to lower")
def test_own_fd_limit_is_named_not_blamed_on_the_server(tmp_path: Path) -> None:
    out = tmp_path / "limits.json"
    with open_target(TargetSpec()) as target:  # the server keeps its own, normal limit
        host, port = target.address
        proc = subprocess.run(
            [sys.executable, "-m", "loadtest.cli", "limits", "--max", "400", "--step", "50",
             "--server", f"{host}:{port}", "--json", str(out)],
            preexec_fn=_low_fd_limit, capture_output=True, text=True, timeout=100)
        assert target.is_alive()
    summary = load_document(out)["summary"]
    assert summary["cause"] == "own-fd-limit", proc.stdout
    assert summary["fd_limit"] == 150 and 50 <= summary["highest_healthy"] < 150
    assert "open-file limit is 150" in proc.stdout


def test_server_that_accepts_but_never_relays_fails_before_the_ramp(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # the kernel accepts; nobody reads
        port = silent.getsockname()[1]
        status, doc = run_limits(["--max", "100", "--step", "50", "--connect-timeout", "1",
                                  "--server", f"127.0.0.1:{port}"], tmp_path)
    summary = doc["summary"]
    assert status == 1 and summary["highest_healthy"] == 0 and not doc["records"]
    assert summary["cause"] == "stopped-relaying" and "does not relay" in summary["cause_detail"]
    assert summary["finding"] and not summary["ok"]


def test_dead_target_is_reported_in_one_line_not_waited_on() -> None:
    """Nothing listening: one line naming the address and the error, exit 3, within seconds."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound but not listening: connections are refused
        proc = subprocess.run([sys.executable, "-m", "loadtest.cli", "limits", "--server",
                               f"127.0.0.1:{port}", "--start-timeout", "1"],
                              capture_output=True, text=True, timeout=60,
                              env={"COLUMNS": "60", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == exit_codes.TARGET_UNAVAILABLE
    assert proc.stdout == ""  # the error is on stderr: `chat-load ... > file` still shows it
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"chat-load: target server unavailable: nothing accepted connections on "
                               f"127.0.0.1:{port}")
    assert "[Errno 111]" in lines[0]


@pytest.mark.skipif(sys.platform != "linux", reason="reads the server's descriptors from /proc and "
                    "lowers its limit with sh's ulimit (Linux only)")
def test_without_max_the_ramp_finds_the_servers_file_limit_and_names_it(tmp_path: Path) -> None:
    """No --max: the ramp goes on until something gives out; here the server's RLIMIT_NOFILE."""
    server = f"{sys.executable} -m reference.server --port {{port}}"
    cmd = f"sh -c 'ulimit -n 300 && exec {server}'"
    status, doc = run_limits(["--step", "100", "--server-cmd", cmd], tmp_path)
    summary = doc["summary"]
    assert summary["cause"] == "server-fd-limit", summary
    assert "300 file descriptors" in summary["cause_detail"]
    assert summary["highest_healthy"] == 200 and summary["max"] > 10_000
    assert summary["server_fds"][1] == 300
