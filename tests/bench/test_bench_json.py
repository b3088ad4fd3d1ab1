"""reports/benchjson.py: loading pytest-benchmark JSON, normalising, and the gate's verdict.

Synthetic runs with known numbers, so every status and boundary is checked
exactly; tests/bench/test_bench_gate.py proves the same logic on real measurements.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from reports.benchjson import (
    CALIBRATION_GROUP,
    BenchJsonError,
    compare_runs,
    find_calibration,
    load_benchmark_json,
    load_benchmark_runs,
    normalised_medians,
    parse_benchmark_json,
    scaled_run,
    to_results_document,
    without_raw_timings,
)
from reports.results import load_document, write_document


def entry(name: str, median: float, *, group: str | None = "fanout",
          local_calibration: float | None = None, **extra: Any) -> dict[str, Any]:
    """One benchmark as pytest-benchmark writes it (only the fields we read, plus noise)."""
    if local_calibration is not None:
        extra["calibration_s"] = local_calibration
    return {
        "group": group, "name": name, "fullname": f"bench/test_x.py::{name}",
        "params": {"n": 1}, "param": "1", "extra_info": extra, "options": {},
        "stats": {"min": median * 0.9, "max": median * 1.5, "mean": median * 1.1,
                  "stddev": median * 0.1, "rounds": 50, "median": median, "iqr": 0.0,
                  "q1": median, "q3": median, "iqr_outliers": 0, "stddev_outliers": 0,
                  "outliers": "0;0", "ld15iqr": median, "hd15iqr": median,
                  "ops": 1 / (median * 1.1), "total": median * 55, "iterations": 1},
    }


def run_json(calibration: float | None, **medians: float) -> dict[str, Any]:
    benchmarks = [entry(name, median) for name, median in medians.items()]
    if calibration is not None:
        benchmarks.insert(0, entry("test_calibration", calibration, group=CALIBRATION_GROUP))
    return {"machine_info": {"node": "ci"}, "commit_info": {"id": "abc"},
            "datetime": "2026-11-25T09:00:00", "version": "5.2.3", "benchmarks": benchmarks}


def row(result, name: str):
    return next(r for r in result.rows if r.name == name)


BASE = run_json(10e-6, fast=2e-6, slow=100e-6)


def test_parse_reads_stats_and_finds_calibration_by_group() -> None:
    run = parse_benchmark_json(BASE, "base.json")
    assert [r.name for r in run.results] == ["test_calibration", "fast", "slow"]
    assert run.calibration is not None and run.calibration.median_s == 10e-6
    assert run.by_fullname()["bench/test_x.py::slow"].rounds == 50
    assert normalised_medians(run)["bench/test_x.py::slow"] == pytest.approx(10.0)


def test_calibration_can_also_be_marked_in_extra_info() -> None:
    marked = parse_benchmark_json({"benchmarks": [entry("ping", 5e-6, group=None, calibration=True)]})
    assert find_calibration(marked.results) is marked.results[0]


def test_local_calibration_beats_the_run_level_one() -> None:
    data = run_json(10e-6)
    data["benchmarks"].append(entry("drifted", 40e-6, local_calibration=20e-6))
    assert normalised_medians(parse_benchmark_json(data))["bench/test_x.py::drifted"] == pytest.approx(2.0)


@pytest.mark.parametrize("data, words", [
    ([], "no 'benchmarks' list"),
    ({"benchmarks": [{"name": "x"}]}, "no usable stats"),
    ({"benchmarks": [{"name": "x", "stats": {"median": "fast"}}]}, "no usable stats"),
])
def test_parse_refuses_what_is_not_benchmark_json(data: Any, words: str) -> None:
    with pytest.raises(BenchJsonError, match=words):
        parse_benchmark_json(data, "bad.json")


def test_load_says_what_is_wrong_with_a_file(tmp_path: Path) -> None:
    with pytest.raises(BenchJsonError, match="no such file"):
        load_benchmark_json(tmp_path / "absent.json")
    (tmp_path / "garbage.json").write_text("{not json")
    with pytest.raises(BenchJsonError, match="not readable JSON"):
        load_benchmark_json(tmp_path / "garbage.json")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BenchJsonError, match="no .json files"):
        load_benchmark_runs(tmp_path / "empty")


def test_a_folder_is_a_set_of_repeated_runs(tmp_path: Path) -> None:
    for i in (2, 1):
        (tmp_path / f"run{i}.json").write_text(json.dumps(run_json(10e-6, fast=i * 1e-6)))
    runs = load_benchmark_runs(tmp_path)
    assert [Path(r.source).name for r in runs] == ["run1.json", "run2.json"]


def test_unchanged_code_on_a_uniformly_slower_machine_passes() -> None:
    base = parse_benchmark_json(BASE)
    result = compare_runs(base, scaled_run(base, 3.0))
    assert result.verdict == "pass"
    assert result.machine_factor == pytest.approx(3.0)
    assert row(result, "slow").ratio == pytest.approx(1.0)
    assert row(result, "slow").raw_ratio == pytest.approx(3.0)
    # Without normalising, the same run fails: normalisation is what saves it.
    assert compare_runs(base, scaled_run(base, 3.0), normalise=False).verdict == "fail"


def test_a_real_2x_slowdown_fails_and_says_which_benchmark() -> None:
    base = parse_benchmark_json(BASE)
    slower_code = scaled_run(base, 2.0, include_calibration=False)
    result = compare_runs(base, slower_code)
    assert result.verdict == "fail"
    assert {r.name for r in result.regressions} == {"slow", "fast"}
    assert row(result, "fast").ratio == pytest.approx(2.0)
    assert row(result, "test_calibration").status == "calibration"


@pytest.mark.parametrize("factor, status", [(1.49, "ok"), (1.51, "slower"), (0.5, "faster"),
                                            (0.7, "ok")])
def test_threshold_boundaries(factor: float, status: str) -> None:
    current = run_json(10e-6, fast=2e-6 * factor, slow=100e-6)
    result = compare_runs(parse_benchmark_json(BASE), parse_benchmark_json(current), threshold=0.5)
    assert row(result, "fast").status == status
    assert row(result, "slow").status == "ok"


def test_default_threshold_lets_75_percent_pass_and_fails_a_2x_slowdown() -> None:
    base = parse_benchmark_json(BASE)
    assert compare_runs(base, scaled_run(base, 1.74, include_calibration=False)).verdict == "pass"
    assert compare_runs(base, scaled_run(base, 1.76, include_calibration=False)).verdict == "fail"


def test_missing_and_new_benchmarks_are_reported_but_do_not_fail() -> None:
    current = run_json(10e-6, fast=2e-6, brand_new=1e-6)
    result = compare_runs(parse_benchmark_json(BASE), parse_benchmark_json(current))
    assert row(result, "slow").status == "missing"
    assert row(result, "brand_new").status == "new"
    assert result.verdict == "pass"


def test_rows_list_regressions_first() -> None:
    current = run_json(10e-6, fast=2e-6, slow=300e-6)
    statuses = [r.status for r in compare_runs(parse_benchmark_json(BASE),
                                               parse_benchmark_json(current)).rows]
    assert statuses == ["slower", "ok", "calibration"]


def test_best_of_repeated_runs_ignores_a_burst_of_noise_but_not_a_real_slowdown() -> None:
    base = parse_benchmark_json(BASE)
    noisy = parse_benchmark_json(run_json(10e-6, fast=2e-6, slow=250e-6), "noisy")
    clean = parse_benchmark_json(run_json(10e-6, fast=2e-6, slow=110e-6), "clean")
    assert compare_runs(base, noisy).verdict == "fail"
    assert compare_runs(base, [noisy, clean]).verdict == "pass"
    really_slower = [scaled_run(r, 2.5, include_calibration=False) for r in (noisy, clean)]
    assert compare_runs(base, really_slower).verdict == "fail"


def test_normalising_needs_a_calibration_on_both_sides() -> None:
    without = parse_benchmark_json(run_json(None, fast=2e-6), "no-cal.json")
    with pytest.raises(BenchJsonError, match="no-cal.json: no calibration benchmark"):
        compare_runs(parse_benchmark_json(BASE), without)
    assert compare_runs(parse_benchmark_json(BASE), without, normalise=False).verdict == "pass"
    with pytest.raises(BenchJsonError, match="threshold"):
        compare_runs(parse_benchmark_json(BASE), parse_benchmark_json(BASE), threshold=0)


def test_results_document_follows_the_bench_format(tmp_path: Path) -> None:
    doc = to_results_document(parse_benchmark_json(BASE, "base.json"))
    loaded = load_document(write_document(tmp_path / "bench.json", doc), kind="bench")
    assert loaded["summary"] == {"calibration": {"name": "test_calibration", "median_s": 10e-6},
                                 "benchmarks": 3}
    slow = next(r for r in loaded["records"] if r["name"] == "slow")
    assert slow["normalised"] == pytest.approx(10.0)
    assert {"name", "group", "params", "mean_s", "median_s", "min_s", "stddev_s", "rounds",
            "ops", "normalised"} <= set(slow)


def test_without_raw_timings_drops_only_the_rounds() -> None:
    data = run_json(10e-6, fast=2e-6)
    data["benchmarks"][1]["stats"]["data"] = [2e-6] * 1000
    slim = without_raw_timings(data)
    assert "data" not in slim["benchmarks"][1]["stats"]
    assert "data" in data["benchmarks"][1]["stats"]  # the input is left alone
    assert parse_benchmark_json(slim) == parse_benchmark_json(data)
