"""Same-run ratios (reports/benchratios.py): pairing, chosen figures, the gate's judgement."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bench.paired import PairedRounds
from reports.benchjson import BenchResult, BenchRun
from reports.benchratios import (
    PAIRED_FIGURE,
    Point,
    compare_ratios,
    point,
    ratio_key,
    ratios_of_run,
    same_run_ratios,
)


def result(name: str, params: dict[str, Any], median_s: float, **extra: Any) -> BenchResult:
    return BenchResult(name=name, fullname=f"bench/x.py::{name}", group=None, params=params,
                       median_s=median_s, mean_s=median_s, min_s=median_s, max_s=median_s,
                       stddev_s=0.0, rounds=5, ops=1 / median_s, extra_info=extra)


def fanout_run(reference_s: float, naive_s: float) -> BenchRun:
    return BenchRun(results=(
        result("test_fanout_latency[reference-1]", {"server": "reference", "receivers": 1}, reference_s),
        result("test_fanout_latency[naive-1]", {"server": "naive", "receivers": 1}, naive_s),
        result("test_fanout_latency[naive-10]", {"server": "naive", "receivers": 10}, 1.0),
        result("test_calibration", {}, 1.0),
    ))


def test_each_target_result_is_divided_by_the_same_benchmark_against_each_baseline() -> None:
    points = [
        Point("test_relay_1mib[reference]", {"server": "reference"}, "median_s", 3.0),
        Point("test_relay_1mib[naive]", {"server": "naive"}, "median_s", 2.0),
        Point("test_relay_1mib[asyncio]", {"server": "asyncio"}, "median_s", 4.0),
        Point("test_fanout_latency[target-10]", {"server": "target", "receivers": 10}, "median_s", 1.0),
        Point("test_fanout_latency[naive-1]", {"server": "naive", "receivers": 1}, "median_s", 9.0),
    ]
    ratios = {r.key: r.ratio for r in same_run_ratios(points)}
    # receivers=10 has no naive partner in this run: no ratio rather than a wrong pairing
    assert ratios == {"test_relay_1mib vs naive": 1.5, "test_relay_1mib vs asyncio": 0.75}


def test_a_benchmark_may_choose_its_figure() -> None:
    p = point("test_saturation[reference]", {"server": "reference"}, 0.5,
              {"figure": 2e-6, "figure_name": "server_cpu_s_per_delivery"})
    assert (p.figure_name, p.value) == ("server_cpu_s_per_delivery", 2e-6)
    q = point("test_saturation[naive]", {"server": "naive"}, 0.1,
              {"figure": 1e-6, "figure_name": "server_cpu_s_per_delivery"})
    [r] = same_run_ratios([p, q])
    assert r.ratio == pytest.approx(2.0) and r.benchmark == "test_saturation"
    assert ratio_key("test_codec_encode[32B]", {"size": "32B"}) is None


def test_gate_flags_a_ratio_that_got_worse_beyond_the_threshold_only() -> None:
    baseline = [fanout_run(1.0, 1.0)]
    worse = compare_ratios(baseline, [fanout_run(1.6, 0.8)], threshold=0.75)   # 2.0 vs 1.0
    assert [(c.key, c.slower) for c in worse] == [("test_fanout_latency[1] vs naive", True)]
    within = compare_ratios(baseline, [fanout_run(1.5, 1.0), fanout_run(3.0, 1.0)], threshold=0.75)
    assert not within[0].slower and within[0].current_ratio == 1.5  # best figures count
    # a run whose baseline server was slowed down does not make a lucky ratio of 0.5:
    # best target 1.0 over best baseline 1.0
    lucky = compare_ratios([fanout_run(1.0, 2.0), fanout_run(1.1, 1.0)], [fanout_run(1.0, 1.0)], 0.75)
    assert lucky[0].baseline_ratio == 1.0 and not lucky[0].slower
    # machine twice as slow for both servers: the ratio does not move
    assert not compare_ratios(baseline, [fanout_run(2.0, 2.0)], threshold=0.1)[0].slower
    assert ratios_of_run(fanout_run(1.0, 2.0))[0].ratio == 0.5


def test_gate_watches_memory_per_idle_client() -> None:
    def run(bytes_per_client: int) -> BenchRun:
        return BenchRun(results=(result("test_memory_per_idle_client", {}, 2.0,
                                        bytes_per_idle_client=bytes_per_client),))
    [grew] = compare_ratios([run(1800)], [run(4000)], threshold=0.75)
    assert grew.key == "test_memory_per_idle_client bytes_per_idle_client" and grew.slower
    assert not compare_ratios([run(1800)], [run(2000)], threshold=0.75)[0].slower


def test_paired_rounds_alternate_the_order_and_pair_round_by_round() -> None:
    """Baselines run before the target on even rounds, after it on odd ones; ratios pair by round."""
    order: list[str] = []
    figures = iter([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])

    def block(name: str) -> Callable[[], float]:
        return lambda: (order.append(name), next(figures))[1]

    paired = PairedRounds(block("t"), {"b": block("b")}, figure_name="s")
    for _ in range(3):  # what benchmark.pedantic does with setup and teardown
        paired.setup()
        paired.target()
        paired.teardown()
    assert order == ["b", "t", "t", "b", "b", "t"]
    assert paired.figures == {"target": [2.0, 3.0, 6.0], "b": [1.0, 4.0, 5.0]}
    info = paired.extra_info()
    assert info["paired"] == {"b": {"ratio": 1.2, "rounds": 3, "low": 0.75, "high": 2.0}}
    assert info["paired_medians"] == {"target": 3.0, "b": 4.0}


def test_a_paired_benchmark_gives_its_own_ratio_and_the_gate_watches_it() -> None:
    extra = {"paired": {"naive": {"ratio": 0.9}, "asyncio": {"ratio": 1.3}, "bad": {"ratio": "x"}}}
    p = point("test_fanout_latency[1]", {"receivers": 1}, 0.001, extra)
    assert [(r.key, r.ratio, r.figure_name) for r in same_run_ratios([p])] == [
        ("test_fanout_latency[1] vs naive", 0.9, PAIRED_FIGURE),
        ("test_fanout_latency[1] vs asyncio", 1.3, PAIRED_FIGURE)]
    base_run = BenchRun((result("test_fanout_latency[1]", {"receivers": 1}, 0.001, **extra),))
    worse_run = BenchRun((result("test_fanout_latency[1]", {"receivers": 1}, 0.001,
                                 paired={"naive": {"ratio": 2.0}}),))
    rows = {c.key: c for c in compare_ratios([base_run], [worse_run], 0.5)}
    assert rows["test_fanout_latency[1] vs naive"].slower
    assert not any(c.slower for c in compare_ratios([base_run], [base_run], 0.5))
