"""chat-conformance shows what a hostile server sent escaped, in its terminal report and its JSON.

``flood_server.py escapes`` relays an endless stream whose sender and text are
an OSC 8 link, a screen clear, a C1 CSI (U+009B), a bidi override and a
carriage return: the failure's detail and transcript must quote them as
escapes, never as the characters themselves.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SERVERS = Path(__file__).resolve().parents[1] / "servers"
CONTROLS = ["\x1b", "\u009b", "\u202e", "\r", "\x07"]


@pytest.mark.slow
def test_a_hostile_relay_is_quoted_escaped(tmp_path: Path) -> None:
    command = f"{sys.executable} {SERVERS / 'flood_server.py'} escapes {{port}}"
    proc = subprocess.run([sys.executable, "-m", "conformance.cli", "--server-cmd", command,
                           "--json", str(tmp_path / "r.json"), "relay.no-echo"],
                          capture_output=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    for raw in (proc.stdout, proc.stderr, (tmp_path / "r.json").read_bytes()):
        text = raw.decode("utf-8", "surrogateescape")
        for char in CONTROLS:
            assert char not in text, f"{char!r} reached the output"
    assert "\\x1b]8;;http://evil/" in proc.stdout.decode()
    assert "\\x9b31m\\u202eevil[/]\\r" in proc.stdout.decode()
