"""Nothing left behind: no per-server log folder in the temp directory, nothing in the working one.

Each tool runs with its own ``TMPDIR`` and an empty working directory.  After
a clean run both are empty; after a run where the server died during a case,
the one log folder kept is the one the failure report names.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

SERVERS = Path(__file__).parent / "servers"
pytestmark = pytest.mark.slow  # each runs a whole tool


def run_tool(args: list[str], tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], Path, Path]:
    temp, work = tmp_path / "tmp", tmp_path / "work"
    temp.mkdir()
    work.mkdir()
    proc = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=300,
                          cwd=work, env=dict(os.environ, TMPDIR=str(temp)))
    return proc, temp, work


def test_chat_conformance_leaves_nothing(tmp_path: Path) -> None:
    """A passing run: the log folders of the trial start and of the suite's server are gone."""
    proc, temp, work = run_tool(["conformance.cli", "relay.no-echo", "join.*"], tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    assert list(temp.iterdir()) == []
    assert list(work.iterdir()) == []


def test_chat_load_leaves_nothing(tmp_path: Path) -> None:
    proc, temp, work = run_tool(["loadtest.cli", "latency", "--clients", "3", "--duration", "0.5",
                                 "--warmup", "0"], tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    assert list(temp.iterdir()) == []
    assert list(work.iterdir()) == []


def test_a_crashed_servers_logs_are_kept_where_the_report_points(tmp_path: Path) -> None:
    """The server dies on a case: its log folder stays, and the case's detail names it."""
    command = f"{sys.executable} {SERVERS / 'utf8_crash_server.py'} {{port}}"
    proc, temp, work = run_tool(["conformance.cli", "--server-cmd", command, "--json",
                                 str(tmp_path / "r.json"), "frame.invalid-utf8[message]", "relay.no-echo"],
                                tmp_path)
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr
    details = "\n".join(r["detail"] for r in json.loads((tmp_path / "r.json").read_text())["records"])
    named = set(re.findall(r"its output is kept in (\S+?)\)", details))
    kept = {str(p) for p in temp.iterdir()}
    assert kept and kept == named, (kept, details)
    assert any("UnicodeDecodeError" in p.read_text() for p in Path(next(iter(kept))).iterdir())
    assert list(work.iterdir()) == []
