"""``chat-load latency`` says who is at fault: label and pairing checks, and the warning's cases.

* every relay's username frame is checked against the stamp's sender
  (wrong_sender_server.py is caught as *mislabelled*) and username/message
  frames must come in pairs (interleaving_server.py is *unpaired*, not lost);
* "THE LOAD GENERATOR IS THE BOTTLENECK" fires only when the generator was
  busy, never for an idle generator in front of a slow server; a late but
  idle generator is a note about the machine;
* the delayed-ACK signature (deliveries clustered near 40 ms, nothing busy)
  is named, with the fix, against delayed_ack_server.py.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from loadtest.cli import main
from loadtest.latency import _judge_generator, delayed_ack_signature
from loadtest.stats import LatencyHistogram
from reports.results import load_document

SERVERS = Path(__file__).resolve().parents[1] / "servers"
SHORT = ["--duration", "1", "--warmup", "0.3", "--rate", "100"]


def run_cli(args: list[str], tmp_path: Path) -> tuple[int, dict[str, Any], str]:
    __tracebackhide__ = True
    out = tmp_path / "result.json"
    screen = io.StringIO()
    status = main([*args, "--json", str(out)], console=Console(file=screen, width=200))
    return status, load_document(out), screen.getvalue()


def server_cmd(name: str) -> str:
    return f"{sys.executable} {SERVERS / name} --port {{port}}"


# -- label and pairing, against servers that break them ------------------------------------
@pytest.mark.slow  # a real chat-load latency run against a spawned server: 2-5 s
def test_a_server_naming_the_wrong_sender_is_caught_as_mislabelled(tmp_path: Path) -> None:
    status, doc, screen = run_cli(["latency", "--clients", "4", *SHORT,
                                   "--server-cmd", server_cmd("wrong_sender_server.py")], tmp_path)
    record = doc["records"][0]
    assert status == 1 and not doc["summary"]["ok"]
    # every message arrived, once and in order: only its label is wrong
    assert record["lost"] == 0 and record["duplicated"] == 0 and record["reordered"] == 0
    assert record["mislabelled"] == record["deliveries"] == record["expected_deliveries"]
    assert doc["summary"]["mislabelled"] == record["mislabelled"]
    assert "mislabelled" in screen


@pytest.mark.slow  # a real chat-load latency run against a spawned server: 2-5 s
def test_a_server_interleaving_frames_is_caught_as_unpaired_not_as_loss(tmp_path: Path) -> None:
    status, doc, _ = run_cli(["latency", "--clients", "3", *SHORT,
                              "--server-cmd", server_cmd("interleaving_server.py")], tmp_path)
    record = doc["records"][0]
    assert status == 1 and not doc["summary"]["ok"]
    assert record["unpaired"] > 0 and record["mislabelled"] == 0
    assert record["lost"] == 0 and record["deliveries"] == record["expected_deliveries"]


@pytest.mark.slow  # a real chat-load latency run against a spawned server: 2-5 s
def test_the_reference_server_has_no_mislabelled_or_unpaired_relays(tmp_path: Path) -> None:
    status, doc, _ = run_cli(["latency", "--clients", "4", *SHORT], tmp_path)
    assert status == 0
    assert doc["records"][0]["mislabelled"] == doc["records"][0]["unpaired"] == 0


# -- the bottleneck warning's two cases ----------------------------------------------------------
@pytest.mark.slow  # a real chat-load latency run against a spawned server: 2-5 s
def test_an_idle_generator_in_front_of_a_slow_server_is_not_called_the_bottleneck(tmp_path: Path) -> None:
    """slow_server.py sleeps 20 ms per relay: it cannot keep up with 100/s; the generator idles."""
    status, doc, _ = run_cli(["latency", "--clients", "3", "--senders", "1", "--duration", "1",
                              "--warmup", "0", "--rate", "100", "--drain", "5", "--server-cmd",
                              f"{sys.executable} {SERVERS / 'slow_server.py'} {{port}} --delay-ms 20"],
                             tmp_path)
    record = doc["records"][0]
    assert record["latency_us"]["p50"] > 100_000   # the server's queue, not the generator's
    assert max(record["generator"]["cpu_percent"]) < 80
    assert not record["generator"]["bottleneck"] and record["generator"]["warning"] is None
    assert not doc["summary"]["generator_bottleneck"]


def test_a_busy_generator_is_the_bottleneck_and_a_late_idle_one_is_only_a_note() -> None:
    busy = _judge_generator([97.0], lag_p99_us=9_000, unsent=0, server_percent=10.0)
    assert busy["bottleneck"] and busy["warning"].startswith("THE LOAD GENERATOR, NOT THE SERVER")
    assert "97% of a CPU core" in busy["warning"] and "9.0 ms behind" in busy["warning"]
    idle = _judge_generator([3.0], lag_p99_us=9_000, unsent=0, server_percent=90.0)
    assert not idle["bottleneck"] and idle["warning"] is None
    assert "did not run it on time" in idle["notes"][0] and "not the bottleneck" in idle["notes"][0]


# -- the delayed-ACK signature ---------------------------------------------------------------------
def _histogram(ms_values: list[float]) -> LatencyHistogram:
    hist = LatencyHistogram()
    for ms in ms_values:
        hist.record_ns(int(ms * 1e6))
    return hist


def test_the_delayed_ack_signature_needs_a_cluster_near_40_ms_and_nothing_busy() -> None:
    clustered = _histogram([0.3] * 60 + [41.0] * 30 + [15.0] * 10)
    text = delayed_ack_signature(clustered, 2.0, 1.0)
    assert text is not None and text.startswith("DELAYED-ACK SIGNATURE: 30%")
    assert "TCP_NODELAY" in text and "one send()" in text
    assert delayed_ack_signature(clustered, 95.0, 1.0) is None          # a busy generator explains it
    assert delayed_ack_signature(clustered, 2.0, 99.0) is None          # so does a busy server
    assert delayed_ack_signature(_histogram([0.3] * 95 + [41.0] * 5), 2.0, 1.0) is None
    assert delayed_ack_signature(_histogram([2.0] * 100), 2.0, 1.0) is None


@pytest.mark.slow
def test_a_server_writing_small_pieces_without_nodelay_shows_the_delayed_ack_signature(
        tmp_path: Path) -> None:
    """A few chatty clients at 40 msg/s: receivers answer within the ACK delay, so Linux delays ACKs."""
    if not sys.platform.startswith("linux"):
        pytest.skip("the 40 ms delayed ACK is Linux's")
    status, doc, screen = run_cli(["latency", "--clients", "4", "--rate", "40", "--duration", "3",
                                   "--warmup", "0.5", "--server-cmd",
                                   server_cmd("delayed_ack_server.py")], tmp_path)
    generator = doc["records"][0]["generator"]
    assert status == 0 and not generator["bottleneck"]
    assert any(note.startswith("DELAYED-ACK SIGNATURE") for note in generator["notes"])
    assert "DELAYED-ACK SIGNATURE" in screen
    # and the reference server, same load, does not show it
    _, doc, _ = run_cli(["latency", "--clients", "4", "--rate", "40", "--duration", "3",
                         "--warmup", "0.5"], tmp_path)
    assert not any("DELAYED-ACK" in note for note in doc["records"][0]["generator"]["notes"])
