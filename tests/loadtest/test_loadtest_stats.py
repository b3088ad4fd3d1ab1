"""Unit tests of the load generators' bookkeeping: histograms and the schedule."""

from __future__ import annotations

import random

from loadtest.scenario import Scenario
from loadtest.stats import LatencyHistogram, merge_encoded


def test_merging_encoded_histograms_is_exact() -> None:
    rng = random.Random(7)
    values = [rng.randrange(1_000, 50_000_000) for _ in range(3000)]
    whole, parts = LatencyHistogram(), [LatencyHistogram() for _ in range(3)]
    for i, ns in enumerate(values):
        whole.record_ns(ns)
        parts[i % 3].record_ns(ns)
    merged = merge_encoded([p.encode() for p in parts])
    assert merged.summary() == whole.summary()
    assert merged.count == len(values)


def test_histogram_summary_percentiles_in_microseconds() -> None:
    hist = LatencyHistogram()
    for us in range(1, 1001):
        hist.record_ns(us * 1000)
    summary = hist.summary()
    assert summary["p50"] == 500 and summary["p99"] == 990 and summary["max"] == 1000
    assert summary["count"] == 1000
    assert LatencyHistogram().summary()["p50"] is None


def test_schedule_splits_messages_exactly_between_senders_and_workers() -> None:
    scenario = Scenario.build(host="127.0.0.1", port=1, clients=7, senders=3, rate=100, size=64,
                              duration_s=1.0, messages=None, warmup_s=0.25, procs=2)
    assert scenario.total == 125
    assert sum(scenario.sent_count(s) for s in range(3)) == scenario.total
    own = [scenario.own_messages(w) for w in range(2)]
    assert sorted(own[0] + own[1]) == list(range(scenario.total))
    assert sorted(scenario.clients_of(0) + scenario.clients_of(1)) == list(range(7))
    receivers = list(range(7))
    assert scenario.expected_deliveries(receivers) == scenario.total * 6


def test_only_a_busy_generator_is_flagged_as_the_bottleneck() -> None:
    from loadtest.latency import _judge_generator

    calm = _judge_generator([35.0, 20.0], lag_p99_us=1_500, unsent=0, server_percent=60.0)
    assert calm["bottleneck"] is False and calm["warning"] is None
    busy = _judge_generator([35.0, 97.0], lag_p99_us=1_500, unsent=0, server_percent=60.0)
    assert busy["bottleneck"] and "generator process 1 used 97% of a CPU core" in busy["warning"]
    assert "server used 60%" in busy["warning"]
    # Late with an idle CPU: the machine did not run it, so it is a note, not the bottleneck.
    late = _judge_generator([10.0], lag_p99_us=40_000, unsent=3, server_percent=None)
    assert not late["bottleneck"] and late["warning"] is None
    assert "40.0 ms behind schedule" in late["notes"][0]
    assert "3 scheduled messages were never sent" in late["notes"][0]


def test_failed_connects_are_named_in_plain_words() -> None:
    import errno

    from loadtest.limits import _classify

    assert _classify(TimeoutError())[0] == "connect-timeout"
    assert _classify(ConnectionRefusedError())[0] == "connection-refused"
    assert _classify(OSError(errno.EMFILE, "Too many open files"))[0] == "own-fd-limit"
    assert _classify(OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address"))[0] == "ephemeral-ports"


def test_loopback_targets_spread_source_addresses_past_one_address_worth_of_ports() -> None:
    from loadtest.limits import source_addresses

    assert source_addresses("127.0.0.1", 1_000) == ["127.0.0.1"]
    many = source_addresses("127.0.0.1", 100_000)
    assert len(many) >= 4 and many[1] == "127.0.0.2"
    assert source_addresses("192.0.2.7", 100_000) == [None]


def test_fast_recording_fills_exactly_the_cells_hdr_itself_would() -> None:
    from hdrh.histogram import HdrHistogram

    rng = random.Random(3)
    direct, fast = HdrHistogram(1, 100_000_000, 3), LatencyHistogram()
    for _ in range(20_000):
        us = min(int(rng.lognormvariate(7, 2)) + 1, 100_000_000)
        direct.record_value(us)
        fast.record_ns(us * 1000 + rng.randrange(1000))  # sub-microsecond parts are dropped
    assert fast.encode() == direct.encode().decode("ascii")
