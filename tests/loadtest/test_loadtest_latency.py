"""``chat-load latency`` end to end: exact accounting against correct and broken servers.

Short bounded runs (about a second of traffic each).  Speed is never asserted,
only accounting: a correct server loses, duplicates and reorders nothing; the
lossy and reordering test servers are caught.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from loadtest.cli import main
from reference.target import TargetSpec, open_target
from reports.results import load_document

pytestmark = pytest.mark.slow  # subprocesses and real servers: not in the fast lane

SERVERS = Path(__file__).resolve().parents[1] / "servers"


def run_cli(args: list[str], tmp_path: Path) -> tuple[int, dict[str, Any], str]:
    __tracebackhide__ = True
    out = tmp_path / "result.json"
    screen = io.StringIO()
    status = main([*args, "--json", str(out)], console=Console(file=screen, width=140))
    return status, load_document(out), screen.getvalue()


def server_cmd(name: str) -> str:
    return f"{sys.executable} {SERVERS / name} --port {{port}}"


SHORT = ["--duration", "1", "--warmup", "0.3", "--rate", "200"]


def test_reference_server_delivers_everything_once_in_order(tmp_path: Path) -> None:
    status, doc, screen = run_cli(["latency", "--clients", "6", "--senders", "3", *SHORT], tmp_path)
    (record,) = doc["records"]
    assert status == 0 and doc["kind"] == "latency" and doc["summary"]["ok"]
    assert record["sent"] == 260  # 0.3 s + 1 s at 200/s
    assert record["expected_deliveries"] == record["sent"] * 5
    assert record["deliveries"] == record["expected_deliveries"]
    assert (record["lost"], record["duplicated"], record["reordered"]) == (0, 0, 0)
    assert record["latency_us"]["count"] == 200 * 5  # warm-up deliveries are not timed
    assert record["fanout_us"]["count"] == 200
    assert 0 < record["latency_us"]["p50"] <= record["latency_us"]["p99"] <= record["latency_us"]["max"]
    assert record["fanout_us"]["p50"] >= record["latency_us"]["p50"]
    # Measured over the time the deliveries really took, never more than the nominal rate.
    assert 0 < record["deliveries_per_s"] <= record["measured_deliveries"] / record["duration_s"]
    generator = record["generator"]
    assert len(generator["cpu_percent"]) == 1 and generator["cpu_s"] > 0
    # Each read brought at least one relay: what deliveries per CPU-second depend on.
    assert generator["relays_per_read"] >= 1
    assert "One-way delivery latency" in screen


def test_read_tick_batches_reads_and_says_what_it_costs(tmp_path: Path) -> None:
    """--read-tick: fewer, fuller reads; every relay still checked; the latencies own the wait."""
    status, doc, screen = run_cli(["latency", "--clients", "6", "--senders", "3", "--read-tick", "20",
                                   *SHORT], tmp_path)
    (record,) = doc["records"]
    assert status == 0 and record["deliveries"] == record["expected_deliveries"]
    assert (record["lost"], record["duplicated"], record["reordered"]) == (0, 0, 0)
    generator = record["generator"]
    # 200 messages/s: each receiver has about 3 relays waiting at every 20 ms tick; read on
    # arrival, it is about 1 (test_reference_server_... above asserts only >= 1 there).
    assert generator["read_tick_ms"] == 20 and generator["relays_per_read"] >= 2
    # A relay waits for its read uniformly over the tick: the median wait alone is ~10 ms.
    assert record["latency_us"]["p50"] >= 2_000
    assert any("--read-tick" in note for note in generator["notes"])
    assert "read once every 20 ms" in " ".join(screen.split())


def test_sweep_and_procs_merge_into_one_record_per_client_count(tmp_path: Path) -> None:
    status, doc, _ = run_cli(["latency", "--sweep", "2,5", "--procs", "2", *SHORT], tmp_path)
    assert status == 0
    assert [r["clients"] for r in doc["records"]] == [2, 5]
    for record in doc["records"]:
        assert record["procs"] == 2 and len(record["generator"]["cpu_percent"]) == 2
        expected = record["sent"] * (record["clients"] - 1)
        assert record["deliveries"] == record["expected_deliveries"] == expected
        assert record["latency_us"]["count"] == record["measured_deliveries"]


def test_running_server_given_by_address(tmp_path: Path) -> None:
    with open_target(TargetSpec()) as target:
        host, port = target.address
        status, doc, _ = run_cli(["latency", "--clients", "3", "--server", f"{host}:{port}",
                                  "--messages", "60", "--warmup", "0", "--rate", "100"], tmp_path)
    assert status == 0 and doc["target"]["address"] == f"{host}:{port}"
    assert doc["records"][0]["sent"] == 60 and doc["records"][0]["lost"] == 0


def test_lossy_server_is_caught(tmp_path: Path) -> None:
    status, doc, screen = run_cli(["latency", "--clients", "4", *SHORT,
                                   "--server-cmd", server_cmd("lossy_server.py")], tmp_path)
    record = doc["records"][0]
    assert status == 1 and not doc["summary"]["ok"]
    # The server drops every 20th relay it writes: about 1 in 20 of the deliveries.
    assert record["expected_deliveries"] // 25 <= record["lost"] <= record["expected_deliveries"] // 15
    assert doc["target"]["command"].endswith("lossy_server.py --port {port}")
    assert "NOT OK" in screen


def test_reordering_server_is_caught(tmp_path: Path) -> None:
    status, doc, _ = run_cli(["latency", "--clients", "3", "--senders", "1", *SHORT,
                              "--server-cmd", server_cmd("reordering_server.py")], tmp_path)
    record = doc["records"][0]
    assert status == 1 and record["reordered"] > 0
    assert record["lost"] == 0 and record["duplicated"] == 0


@pytest.mark.parametrize("args, message", [
    (["--clients", "1"], "at least 2"),
    (["--sweep", "2,x"], "comma-separated"),
    (["--rate", "0"], "greater than 0"),
    (["--senders", "9", "--clients", "3"], "more than the clients"),
    (["--server", "nowhere"], "HOST:PORT"),
    (["--duration", "1", "--messages", "5"], "not allowed with"),
    (["--read-tick", "-1"], "finite number 0 or more"),
    (["--read-tick", "5", "--tls"], "plain TCP target, not TLS"),
    (["--read-tick", "5", "--server", "tls://127.0.0.1:9"], "plain TCP target, not TLS"),
])
def test_bad_options_are_one_line_usage_errors(args: list[str], message: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["latency", *args])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_json_document_round_trips(tmp_path: Path) -> None:
    status, doc, _ = run_cli(["latency", "--clients", "2", "--messages", "20", "--warmup", "0",
                              "--rate", "100"], tmp_path)
    assert status == 0
    assert json.loads(json.dumps(doc)) == doc
    assert set(doc["records"][0]) >= {"clients", "senders", "rate", "size", "duration_s", "warmup_s",
                                      "procs", "sent", "expected_deliveries", "deliveries",
                                      "deliveries_per_s", "lost", "duplicated", "reordered",
                                      "latency_us", "fanout_us", "latency_hist", "generator"}


def test_generator_warning_is_printed_loudly(tmp_path: Path) -> None:
    from loadtest.live import print_document
    from reports.results import make_document

    status, doc, _ = run_cli(["latency", "--clients", "2", "--messages", "10", "--warmup", "0",
                              "--rate", "100"], tmp_path)
    doc["records"][0]["generator"].update(bottleneck=True, warning="THE LOAD GENERATOR ... test")
    screen = io.StringIO()
    print_document(Console(file=screen, width=100), make_document(
        "latency", tool="t", target=doc["target"], summary=doc["summary"], records=doc["records"]))
    assert "WARNING" in screen.getvalue() and "THE LOAD GENERATOR ... test" in screen.getvalue()
