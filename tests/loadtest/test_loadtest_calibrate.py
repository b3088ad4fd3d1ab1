"""``chat-load calibrate``: the instrument check runs and reports comparable numbers.

Whether the generator is within 30% of the bare loop is a speed claim, checked
in the documented run (README), never asserted here.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from loadtest.cli import main
from reports.results import load_document


@pytest.mark.slow  # three timed runs (bare loop, generator, absorption): 3-4 s
def test_calibrate_compares_against_a_bare_loop_and_measures_absorption(tmp_path: Path) -> None:
    out = tmp_path / "calibrate.json"
    screen = io.StringIO()
    main(["calibrate", "--rounds", "1", "--seconds", "0.5", "--rate", "40", "--absorb-clients", "2",
          "--absorb-count", "3000", "--json", str(out)], console=Console(file=screen, width=140))
    doc = load_document(out, kind="bench")
    summary = doc["summary"]
    assert "versus_locust" not in summary  # only with --vs-locust
    bare, generated, absorbed = doc["records"]
    assert bare["name"].startswith("bare") and generated["name"].startswith("chat-load latency")
    assert summary["bare_p50_us"] > 0 and summary["generator_p50_us"] > 0
    # The ratio comes from the unrounded medians the records keep (the summary's µs are rounded).
    assert summary["ratio"] == pytest.approx(generated["median_s"] / bare["median_s"], abs=0.0006)
    assert absorbed["deliveries"] == absorbed["expected"] == 6000
    assert absorbed["reordered"] == absorbed["duplicated"] == 0
    assert summary["absorb_frames_per_s"] == absorbed["frames_per_s"] > 0
    assert "Instrument:" in screen.getvalue()


def test_the_efficiency_verdict_is_the_median_of_rounds_that_alternate_who_goes_first(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from loadtest import calibrate

    ratios = iter([2.5, 3.4, 3.1])
    orders: list[bool] = []
    ticks: list[float] = []

    def one_round(address: object, users: int, rate: float, seconds: float, server_pid: object,
                  native_first: bool = False, read_tick_s: float = 0.0) -> dict[str, object]:
        orders.append(native_first)
        ticks.append(read_tick_s)
        ratio = next(ratios)
        return {"efficiency_ratio": ratio, "locust_per_cpu_s": 10_000.0, "native_per_cpu_s": ratio * 1e4,
                **{k: 1 for k in calibrate._ROUND_KEYS if k not in (
                    "efficiency_ratio", "locust_per_cpu_s", "native_per_cpu_s")}}

    monkeypatch.setattr(calibrate, "versus_locust", one_round)
    seen: list[int] = []
    result = calibrate.efficiency_rounds(("127.0.0.1", 1), 50, 12.0, 6.0, 3, None,
                                         lambda i, r: seen.append(i), read_tick_s=0.01)
    assert orders == [False, True, False] and seen == [0, 1, 2]
    assert ticks == [0.01, 0.01, 0.01]  # calibrate --read-tick reaches every round
    assert result["efficiency_ratio"] == 3.1                     # not the mean (3.0), not the last
    assert result["native_per_cpu_s"] == 31_000.0                # the median round's own figures
    assert [r["efficiency_ratio"] for r in result["rounds"]] == [2.5, 3.4, 3.1]


def test_the_calibration_table_shows_every_efficiency_round_and_their_median() -> None:
    from loadtest.live import calibration_table

    def side(received: int, cpu: float, per: float, p50: int) -> dict[str, object]:
        return {"received": received, "cpu_s": cpu, "per_cpu_s": per, "p50_us": p50}

    rounds = []
    for ratio, native, locust in ((2.5, 75_000.0, 30_000.0), (3.4, 102_000.0, 30_000.0),
                                  (3.1, 93_000.0, 30_000.0)):
        row: dict[str, object] = {"efficiency_ratio": ratio}
        for name, per in (("native", native), ("locust", locust)):
            row.update({f"{name}_{k}": v for k, v in side(150_000, 150_000 / per, per, 900).items()})
        rounds.append(row)
    bench = {"p50_us": [400], "median_s": 0.0004}
    doc = {"records": [bench, bench, {"deliveries": 8, "params": {"connections": 2}, "wall_s": 0.1,
                                      "cpu_percent": 50.0, "frames_per_s": 160}],
           "summary": {"versus_locust": {**rounds[2], "efficiency_ratio": 3.1, "rounds": rounds,
                                         "users": 50, "rate_each": 12.0}}}
    screen = io.StringIO()
    Console(file=screen, width=200).print(calibration_table(doc))
    text = screen.getvalue()
    assert "rounds: 2.5, 3.4, 3.1" in text and "median of rounds" in text
    assert "93,000 per CPU s" in text and "30,000 per CPU s" in text   # each side's median
    assert "reads every" not in text
    # Rounds run with calibrate --read-tick say so on chat-load's row.
    doc["summary"]["versus_locust"]["native_read_tick_ms"] = 10.0
    screen = io.StringIO()
    Console(file=screen, width=200).print(calibration_table(doc))
    assert "efficiency, chat-load, reads every 10 ms: 50 users" in screen.getvalue()
