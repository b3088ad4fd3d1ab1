"""chat-load over TLS: tls:// targets, and --compare-tls (TLS next to plain TCP in one run).

Only accounting and the shape of the comparison are asserted, never speed:
the ratios are whatever this machine measured.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from loadtest.cli import main
from reference.target import TargetSpec, open_target
from reports.results import load_document

pytestmark = pytest.mark.slow  # subprocesses and real servers

SHORT = ["--duration", "1", "--warmup", "0.3", "--rate", "200"]


def run_cli(args: list[str], tmp_path: Path) -> tuple[int, dict[str, Any], str]:
    out = tmp_path / "result.json"
    screen = io.StringIO()
    status = main([*args, "--json", str(out)], console=Console(file=screen, width=160))
    return status, load_document(out), screen.getvalue()


def test_latency_over_tls_in_worker_processes(tmp_path: Path) -> None:
    """The workers are other processes: the TLS settings travel with the scenario."""
    with open_target(TargetSpec.parse(tls=True)) as server:
        assert server.tls is not None and server.tls.ca
        host, port = server.address
        status, doc, _ = run_cli(["latency", "--clients", "4", "--procs", "2", "--server",
                                  f"tls://{host}:{port}", "--tls-ca", server.tls.ca, *SHORT], tmp_path)
    (record,) = doc["records"]
    assert status == 0 and doc["summary"]["ok"]
    assert doc["target"]["label"] == f"tls://{host}:{port}"
    assert record["deliveries"] == record["expected_deliveries"] == record["sent"] * 3


def test_latency_compare_tls_puts_both_runs_side_by_side(tmp_path: Path) -> None:
    status, doc, screen = run_cli(["latency", "--compare-tls", "--sweep", "2,4", *SHORT], tmp_path)
    assert status == 0 and doc["summary"]["ok"]
    assert [(r["transport"], r["clients"]) for r in doc["records"]] == \
        [("tcp", 2), ("tcp", 4), ("tls", 2), ("tls", 4)]
    for record in doc["records"]:
        assert record["deliveries"] == record["expected_deliveries"] > 0
    rows = doc["summary"]["tls_comparison"]
    assert [row["clients"] for row in rows] == [2, 4]
    tcp = {r["clients"]: r for r in doc["records"] if r["transport"] == "tcp"}
    tls = {r["clients"]: r for r in doc["records"] if r["transport"] == "tls"}
    for row in rows:
        n = row["clients"]
        assert row["tcp_p50_us"] == tcp[n]["latency_us"]["p50"]
        assert row["tls_p50_us"] == tls[n]["latency_us"]["p50"]
        assert row["p50_ratio"] == round(row["tls_p50_us"] / row["tcp_p50_us"], 2)
    assert "TLS next to plain TCP" in screen and "TLS/TCP" in screen


def test_limits_compare_tls(tmp_path: Path) -> None:
    status, doc, screen = run_cli(["limits", "--compare-tls", "--max", "40", "--step", "20"], tmp_path)
    assert status == 0, screen[-2000:]
    (row,) = doc["summary"]["tls_comparison"]
    assert row["tcp_highest_healthy"] == row["tls_highest_healthy"] == 40
    assert row["clients"] == 40 and row["probe_ratio"] == round(row["tls_probe_ms"] / row["tcp_probe_ms"], 2)
    assert {r["transport"] for r in doc["records"]} == {"tcp", "tls"}
    assert "highest healthy clients" in screen


def test_compare_tls_needs_the_embedded_reference(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["latency", "--compare-tls", "--server", "127.0.0.1:1"])
    assert caught.value.code == 2
    assert "--compare-tls starts the embedded reference server twice" in capsys.readouterr().err
