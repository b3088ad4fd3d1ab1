"""The web UI's Chat tab, in a real headless Chromium against a real swarm.

A locust process with its web UI on loopback runs a short swarm against a
private reference server (``--autostart``); once ``/chat/stats`` shows
deliveries, Chromium loads ``/?tab=chat`` (locust selects an extended tab by
its key in the query) and the rendered DOM must hold the chat table: the µs
percentile headers and a row of numbers, with zero lost/duplicated/reordered.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from reference.target import TargetSpec, find_free_port, open_target

ROOT = Path(__file__).resolve().parents[3]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
HEADERS = ["Deliveries/s", "Deliveries", "p50 (µs)", "p90 (µs)", "p99 (µs)", "p99.9 (µs)", "Max (µs)",
           "Lost", "Duplicated", "Reordered", "Mislabelled", "Unpaired"]

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(CHROMIUM is None, reason="needs a Chromium to render the web UI"),
              pytest.mark.skipif(sys.platform == "win32", reason="stops locust's process group with "
                                 "os.killpg (POSIX only)")]


def _json(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return dict(json.load(response))


def _cells(dom: str) -> list[str]:
    """The text of every table cell, in document order."""
    return [re.sub(r"<[^>]+>", "", cell).strip()
            for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", dom, flags=re.S)]


def test_chat_tab_shows_live_deliveries_latency_in_microseconds_and_check_counts(tmp_path: Path) -> None:
    web_port = find_free_port()
    base = f"http://127.0.0.1:{web_port}"
    with open_target(TargetSpec()) as server:
        host = f"{server.address[0]}:{server.address[1]}"
        locust = subprocess.Popen(
            [sys.executable, "-m", "locust", "-f", str(ROOT / "loadtest" / "locustfile.py"),
             "--host", host, "--web-host", "127.0.0.1", "--web-port", str(web_port), "--autostart",
             "-u", "4", "-r", "10", "-t", "60s", "--chat-rate", "10", "Chatter", "Lurker"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path, start_new_session=True)
        try:
            deadline = time.monotonic() + 45
            row: dict[str, object] = {}
            while time.monotonic() < deadline:
                try:
                    row = _json(f"{base}/chat/stats")
                except OSError:
                    row = {}
                if int(str(row.get("deliveries", 0))) >= 50:
                    break
                time.sleep(0.5)
            assert int(str(row.get("deliveries", 0))) >= 50, f"the swarm delivered too little: {row}"
            rendered = subprocess.run(
                [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=8000", "--dump-dom",
                 f"{base}/?tab=chat"],
                capture_output=True, text=True, timeout=90)
        finally:
            os.killpg(locust.pid, signal.SIGTERM)
            locust.wait(30)
    cells = _cells(rendered.stdout)
    assert all(h in cells for h in HEADERS), f"no chat table in the page: {cells[:40]}"
    start = cells.index("Deliveries/s")
    columns = cells[start:start + len(HEADERS) + 3]  # + Echoed, Locust itself, then the first value
    values = cells[start + columns.index("Locust itself") + 1:][:len(HEADERS)]
    by_name = dict(zip(HEADERS, values, strict=True))
    assert int(by_name["Deliveries"]) >= 50
    assert 0 < int(by_name["p50 (µs)"]) <= int(by_name["p99 (µs)"]) <= int(by_name["Max (µs)"])
    assert by_name["Lost"] == by_name["Duplicated"] == by_name["Reordered"] == "0"
    assert by_name["Mislabelled"] == by_name["Unpaired"] == "0"
    assert "(ms)" not in " ".join(HEADERS)
