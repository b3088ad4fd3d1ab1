"""Reading every input ``chat-report`` accepts: our documents, pytest-benchmark, locust JSON/CSV."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_reports_samples import LOCUST_CSV, LOCUST_JSON, latency_doc, pytest_benchmark_json

from reports.cli import main
from reports.loaders import load_any, percentile_from_counts
from reports.results import ResultsError, write_document


def test_percentiles_from_a_value_count_map() -> None:
    counts = {1.0: 50, 2.0: 40, 10.0: 9, 40.0: 1}
    assert percentile_from_counts(counts, 0.5) == 1.0
    assert percentile_from_counts(counts, 0.9) == 2.0
    assert percentile_from_counts(counts, 0.99) == 10.0
    assert percentile_from_counts(counts, 1.0) == 40.0
    assert percentile_from_counts({}, 0.5) is None


def test_locust_json_becomes_a_locust_document_in_microseconds(tmp_path: Path) -> None:
    path = tmp_path / "stats.json"
    path.write_text(json.dumps(LOCUST_JSON), encoding="utf-8")
    doc = load_any(path)
    assert doc["kind"] == "locust" and doc["source"] == str(path)
    record = doc["records"][0]
    assert (record["type"], record["name"], record["num_requests"], record["num_failures"]) == \
        ("chat", "send", 2000, 3)
    assert record["median_us"] == 1000.0  # 1500 of 2000 samples in the 1 ms bucket
    assert record["p99_us"] == 10_000.0  # the 1980th sample falls in the 10 ms bucket
    assert record["max_us"] == 40_000.0
    assert record["requests_per_s"] == pytest.approx(200.0)  # 2000 requests over 10 s
    assert doc["summary"]["requests"] == 2000 and doc["summary"]["failures"] == 3


def test_locust_microsecond_entry_is_not_scaled_again(tmp_path: Path) -> None:
    """The users' "broadcast latency in µs" entry already holds microseconds."""
    entry = dict(LOCUST_JSON[0], name="broadcast latency in µs", method="chat")
    path = tmp_path / "stats.json"
    path.write_text(json.dumps([LOCUST_JSON[0], entry]), encoding="utf-8")
    ms_record, us_record = load_any(path)["records"]
    assert ms_record["median_us"] == 1000.0       # milliseconds entry: 1 ms -> 1000 µs
    assert us_record["median_us"] == 1.0          # µs entry: 1 stays 1
    assert us_record["max_us"] == 40.0
    csv_path = tmp_path / "run_stats.csv"
    csv_path.write_text(LOCUST_CSV.replace(",send,", ",broadcast latency in µs,"), encoding="utf-8")
    assert load_any(csv_path)["records"][0]["median_us"] == 1.0


def test_locust_csv_becomes_the_same_shape_without_the_aggregated_row(tmp_path: Path) -> None:
    path = tmp_path / "run_stats.csv"
    path.write_text(LOCUST_CSV, encoding="utf-8")
    doc = load_any(path)
    assert [r["name"] for r in doc["records"]] == ["send"]
    record = doc["records"][0]
    assert record["median_us"] == 1000.0 and record["p99_us"] == 40_000.0 and record["p90_us"] == 2000.0
    assert record["requests_per_s"] == 200.0


def test_pytest_benchmark_json_becomes_a_normalised_bench_document(tmp_path: Path) -> None:
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(pytest_benchmark_json()), encoding="utf-8")
    doc = load_any(path)
    assert doc["kind"] == "bench"
    normalised = {r["name"]: r["normalised"] for r in doc["records"]}
    assert normalised["test_fanout_latency[reference-10]"] == pytest.approx(5.0)
    assert doc["summary"]["calibration"]["name"] == "test_calibration_ping_pong"


@pytest.mark.parametrize("content, message", [
    ("{not json", "neither JSON nor a locust CSV"),
    ('{"hello": 1}', "not a chat-harness results document, pytest-benchmark JSON or locust"),
    ('{"format": "chat-harness-results", "version": 2, "kind": "latency"}', "results format version 2"),
    ('{"benchmarks": [{"name": "x"}]}', "has no usable stats"),
])
def test_unreadable_input_is_one_plain_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "input.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ResultsError, match="input.json") as error:
        load_any(path)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_show_prints_each_file_and_bad_files_exit_2(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    good = write_document(tmp_path / "latency.json", latency_doc())
    assert main(["show", str(good)]) == 0
    assert "One-way delivery latency" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main(["show", str(good), str(tmp_path / "missing.json")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "missing.json: no such file" in err and "Traceback" not in err
