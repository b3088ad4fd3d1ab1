"""Unit tests of the load generators' bookkeeping: histograms, sequence tracks, the schedule."""

from __future__ import annotations

import random

from loadtest.scenario import Scenario
from loadtest.stats import LatencyHistogram, SenderTrack, merge_encoded


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


def test_sender_track_counts_duplicates_reorders_and_gaps() -> None:
    track = SenderTrack(expected=6)
    for seq in (0, 1, 3, 2, 2, 5):
        track.add(seq)
    assert (track.unique, track.duplicated, track.reordered) == (5, 1, 1)
    assert track.missing_below(6) == 1          # 4 never came
    assert track.missing_below(6, start=5) == 0
    assert track.missing_below(10, start=8) == 2  # past what was ever seen


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
