"""``chat-load soak``: churn with exact accounting, against correct and broken servers."""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from loadtest.cli import main
from reports.results import load_document

pytestmark = pytest.mark.slow  # subprocesses and real servers: not in the fast lane

SERVERS = Path(__file__).resolve().parents[1] / "servers"
SHORT = ["--clients", "8", "--rate", "60", "--duration", "2", "--churn", "4"]


def run_soak(args: list[str], tmp_path: Path) -> tuple[int, dict[str, Any]]:
    __tracebackhide__ = True
    out = tmp_path / "soak.json"
    status = main(["soak", *args, "--json", str(out)], console=Console(file=io.StringIO(), width=140))
    return status, load_document(out, kind="soak")


def test_reference_server_survives_churn_with_nothing_lost(tmp_path: Path) -> None:
    status, doc = run_soak([*SHORT, "--abrupt", "0.5"], tmp_path)
    s = doc["summary"]
    assert status == 0 and s["ok"]
    assert s["joins"] >= 4 and s["leaves_clean"] + s["leaves_abrupt"] == s["joins"]
    assert s["leaves_clean"] > 0 and s["leaves_abrupt"] > 0
    assert s["expected_deliveries"] > 0 and s["delivered"] == s["expected_deliveries"]
    assert (s["lost"], s["duplicated"], s["reordered"]) == (0, 0, 0)
    assert s["rss_start_bytes"] > 0 and s["rss_growth_bytes"] is not None
    assert doc["records"] and doc["records"][-1]["sent"] == s["sent"]


def test_lossy_server_is_caught_in_a_soak(tmp_path: Path) -> None:
    cmd = f"{sys.executable} {SERVERS / 'lossy_server.py'} --port {{port}}"
    # No churn: a leaver waits (up to seconds) for messages a lossy server never sends.
    status, doc = run_soak([*SHORT, "--churn", "0", "--server-cmd", cmd], tmp_path)
    s = doc["summary"]
    assert status == 1 and not s["ok"]
    assert s["lost"] > 0 and s["delivered"] + s["lost"] == s["expected_deliveries"]


def test_reordering_server_is_caught_in_a_soak(tmp_path: Path) -> None:
    cmd = f"{sys.executable} {SERVERS / 'reordering_server.py'} --port {{port}}"
    status, doc = run_soak([*SHORT, "--churn", "0", "--server-cmd", cmd], tmp_path)
    s = doc["summary"]
    assert status == 1 and s["reordered"] > 0 and s["lost"] == 0
