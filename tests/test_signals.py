"""No orphans on any signal: each tool, sent SIGINT or SIGTERM, stops everything it started.

Every tool runs in its own process group with a unique marker in its
environment; everything it starts inherits the marker (servers in their own
sessions included), so "nothing left" is checked by looking for the marker in
``/proc/*/environ`` after the tool has exited -- a spawned server that outlived
its tool is found whatever its pid.  The signal goes to the tool's process
group, as a terminal's Ctrl-C or a CI runner's cancel does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc")]

PY = sys.executable


def marked_processes(marker: str) -> dict[int, str]:
    """pid -> command line of every live process whose environment holds ``marker``."""
    found = {}
    needle = f"CHAT_SIGNAL_TEST={marker}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state != "Z":
                    found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError):
            continue
    return found


def run_and_signal(argv: list[str], sig: int, ready: str, tmp_path: Path, settle: float = 1.5,
                   started_by_tool: bool = True) -> tuple[int, str, dict[int, str], str]:
    """Start ``argv``; once a process whose command line contains ``ready`` runs, signal the group.

    Returns (exit status, stderr, what it had started that is still alive, stdout); stdout goes
    to an unnamed file, so that nothing is written into the tool's working directory.
    """
    marker = uuid.uuid4().hex
    env = dict(os.environ, CHAT_SIGNAL_TEST=marker, COLUMNS="120")
    out = tempfile.TemporaryFile()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                            stderr=subprocess.PIPE, env=env, cwd=tmp_path, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not any(ready in cmd for pid, cmd in marked_processes(marker).items()
                      if pid != proc.pid or not started_by_tool):
            assert proc.poll() is None, f"{argv} ended before {ready!r} ran"
            assert time.monotonic() < deadline, f"{ready!r} never started"
            time.sleep(0.1)
        time.sleep(settle)  # well inside the run
        # Between the preflight's server and the cases' one there is a moment with none.
        wanted, until = (2 if started_by_tool else 1), time.monotonic() + 10
        while len(started := marked_processes(marker)) < wanted and time.monotonic() < until:
            time.sleep(0.1)
        assert len(started) >= wanted, started
        os.killpg(proc.pid, sig)
        _, err = proc.communicate(timeout=60)
        deadline = time.monotonic() + 5  # a process may still be on its way out
        while (left := marked_processes(marker)) and time.monotonic() < deadline:
            time.sleep(0.1)
        out.seek(0)
        return proc.returncode, err.decode("utf-8", "replace"), left, out.read().decode("utf-8", "replace")
    finally:
        out.close()
        for pid in marked_processes(marker):
            os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


SIGNALS = [pytest.param(signal.SIGINT, 130, id="SIGINT"), pytest.param(signal.SIGTERM, 143, id="SIGTERM")]
SERVER_CMD = f"{PY} -m reference.server --port {{port}}"


def _assert_clean_end(status: int, err: str, left: dict[int, str], expected: int, tool: str) -> None:
    __tracebackhide__ = True
    assert not left, f"{tool} left these running: {left}"
    assert status == expected, err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"{tool}:") and "interrupted by SIG" in last, err


@pytest.mark.parametrize(("sig", "expected"), SIGNALS)
def test_chat_conformance(sig: int, expected: int, tmp_path: Path) -> None:
    """The suite's server (--server-cmd) is stopped, the JSON is written and says incomplete."""
    status, err, left, _ = run_and_signal(
        [PY, "-m", "conformance.cli", "--server-cmd", SERVER_CMD, "--json", "out.json"],
        sig, "reference.server", tmp_path, settle=3.0)
    _assert_clean_end(status, err, left, expected, "chat-conformance")
    import json
    summary = json.loads((tmp_path / "out.json").read_text())["summary"]
    assert summary["incomplete"].startswith("interrupted after")


#: subcommand -> (arguments that keep it busy for a minute, the process to wait for)
LOAD_RUNS = {
    "latency": (["latency", "--clients", "4", "--duration", "60", "--warmup", "0"], "reference.server"),
    "limits": (["limits", "--max", "100000", "--step", "20", "--time-limit", "60"], "reference.server"),
    "soak": (["soak", "--clients", "4", "--duration", "60"], "reference.server"),
    # signalled in its absorb phase, while it runs a relay firehose as well as the server
    "calibrate": (["calibrate", "--rounds", "1", "--seconds", "1", "--absorb-count", "50000000"],
                  "loadtest.feeder"),
}


@pytest.mark.parametrize("command", sorted(LOAD_RUNS))
@pytest.mark.parametrize(("sig", "expected"), SIGNALS)
def test_chat_load(command: str, sig: int, expected: int, tmp_path: Path) -> None:
    """Each subcommand stops the embedded server it started and its worker processes."""
    args, ready = LOAD_RUNS[command]
    status, err, left, out = run_and_signal([PY, "-m", "loadtest.cli", *args], sig, ready, tmp_path)
    assert not left, f"chat-load {command} left these running: {left}"
    assert status == expected, err
    assert list(tmp_path.iterdir()) == []  # nothing written into the working directory
    _assert_clean_end(status, err, left, expected, "chat-load")  # its one line on stderr, as every tool's
    assert "chat-load: interrupted by" not in out, out[-2000:]  # (the report may say it was cut short)


@pytest.mark.parametrize(("sig", "expected"), SIGNALS)
def test_chat_report_scorecard(sig: int, expected: int, tmp_path: Path) -> None:
    """The running step's group gets SIGTERM and cleans up; the report says INCOMPLETE."""
    status, err, left, _ = run_and_signal(
        [PY, "-m", "reports.cli", "scorecard", "--out", "card"], sig, "conformance", tmp_path,
        settle=3.0)
    _assert_clean_end(status, err, left, expected, "chat-report scorecard")
    assert "INCOMPLETE: interrupted during the step 'Conformance suite'" in \
        (tmp_path / "card" / "report.txt").read_text()


@pytest.mark.parametrize(("sig", "expected"), SIGNALS)
def test_chat_server(sig: int, expected: int, tmp_path: Path) -> None:
    """The reference server stops on either signal and leaves nothing."""
    status, err, left, _ = run_and_signal([PY, "-m", "reference.server", "--port", "0"],
                                       sig, "reference.server", tmp_path, started_by_tool=False)
    assert not left, left
    assert status == 0, err  # a requested stop: it closed every connection and exited cleanly
    assert err.strip().splitlines()[-1].endswith("shutting down")
