"""``chat-report compare`` (bench and latency regressions) and ``chat-report matrix``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_reports_render import render
from test_reports_samples import bench_doc, conformance_doc, latency_doc, pytest_benchmark_json

from reports.cli import main
from reports.compare import compare_documents, compare_latency
from reports.matrix import column_labels, matrix_renderables
from reports.results import ResultsError, write_document


def write(tmp_path: Path, name: str, doc: dict) -> str:  # type: ignore[type-arg]
    return str(write_document(tmp_path / name, doc))


def test_a_uniformly_slower_machine_is_not_a_bench_regression(tmp_path: Path) -> None:
    old = write(tmp_path, "old.json", bench_doc())
    new = write(tmp_path, "new.json", bench_doc(scale=2.0))  # every time doubled, calibration too
    assert main(["compare", old, new]) == 0


def test_one_benchmark_three_times_slower_is_a_regression(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    old = write(tmp_path, "old.json", bench_doc())
    new = write(tmp_path, "new.json", bench_doc(fanout_scale=3.0))
    assert main(["compare", old, new]) == 1
    out = capsys.readouterr().out
    assert "REGRESSION: 1 of" in out
    assert "slower" in out and "+200.0%" in out


def test_raw_pytest_benchmark_json_files_compare_directly(tmp_path: Path) -> None:
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(json.dumps(pytest_benchmark_json()), encoding="utf-8")
    new.write_text(json.dumps(pytest_benchmark_json(fanout_scale=1.3)), encoding="utf-8")
    assert main(["compare", str(old), str(new)]) == 0  # +30% is inside the default 50%
    assert main(["compare", str(old), str(new), "--threshold", "20%"]) == 1


def test_latency_compare_pairs_scenarios_and_honours_the_threshold() -> None:
    old = latency_doc((100.0, 200.0, 400.0))
    new = latency_doc((100.0, 200.0, 600.0))  # 50 clients: p50 and p99 +50%
    result = compare_latency(old, new, threshold=0.25)
    regressed = {(r.scenario.split(",")[0], r.metric) for r in result.regressions}
    assert regressed == {("50 clients", "p50"), ("50 clients", "p99")}
    assert compare_latency(old, new, threshold=1.0).verdict == "pass"


def test_new_message_loss_is_a_regression_whatever_the_threshold() -> None:
    result = compare_latency(latency_doc(), latency_doc(lost=3), threshold=100.0)
    assert [(r.metric, r.old, r.new) for r in result.regressions] == [("lost", 0.0, 3.0)]


def test_fewer_deliveries_per_second_is_a_regression() -> None:
    old, new = latency_doc(), latency_doc()
    new["records"][0]["deliveries_per_s"] = old["records"][0]["deliveries_per_s"] / 2
    renderables, regressed = compare_documents(old, new)
    assert regressed
    assert "deliveries/s" in render(renderables) and "-50.0%" in render(renderables)


def test_a_missing_scenario_is_shown_but_does_not_fail() -> None:
    new = latency_doc()
    new["records"] = new["records"][:2]
    result = compare_latency(latency_doc(), new)
    assert [r.status for r in result.rows if r.metric == "scenario"] == ["missing"]
    assert result.verdict == "pass"


@pytest.mark.parametrize("argv_tail, message", [
    (["--threshold", "-5"], "'-5' must be above 0"),
    (["--threshold", "lots"], "'lots' is not a percentage"),
])
def test_compare_rejects_a_bad_threshold(tmp_path: Path, argv_tail: list[str], message: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "a.json", latency_doc())
    with pytest.raises(SystemExit) as exit_info:
        main(["compare", path, path, *argv_tail])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_compare_refuses_documents_of_different_kinds(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["compare", write(tmp_path, "a.json", latency_doc()), write(tmp_path, "b.json", bench_doc())])
    assert exit_info.value.code == 2
    assert "cannot compare 'latency' results with 'bench' results" in capsys.readouterr().err
    with pytest.raises(ResultsError, match="compare works on bench and latency"):
        compare_documents(conformance_doc(), conformance_doc())


def test_matrix_puts_cases_in_rows_and_servers_in_columns() -> None:
    good, bad = conformance_doc("reference"), conformance_doc("tutorial server.py", broken=True)
    bad["records"] = [r for r in bad["records"] if r["id"] != "join.empty-name"]
    text = render(matrix_renderables([good, bad]))
    assert "reference" in text and "tutorial server.py" in text
    relay = next(line for line in text.splitlines() if "relay.basic[one-byte-per-send]" in line)
    assert relay.index("pass") < relay.index("fail")
    join = next(line for line in text.splitlines() if "join.empty-name" in line)
    assert "pass" in join and "–" in join  # the second run did not have that case
    assert "8/10 pass" in text and "1 fail" in text


def test_matrix_columns_stay_distinct_for_the_same_label() -> None:
    docs = [conformance_doc("x"), conformance_doc("x")]
    assert column_labels(docs, ["runs/a.json", "runs/b.json"]) == ["x (a)", "x (b)"]
    assert column_labels(docs, ["a/r.json", "b/r.json"]) == ["x (r) #1", "x (r) #2"]


def test_matrix_cli_writes_html_and_refuses_other_kinds(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    a = write(tmp_path, "a.json", conformance_doc("one"))
    b = write(tmp_path, "b.json", conformance_doc("two", broken=True))
    assert main(["matrix", a, b, "-o", str(tmp_path / "m.html")]) == 0
    assert "Conformance matrix" in (tmp_path / "m.html").read_text(encoding="utf-8")
    with pytest.raises(SystemExit) as exit_info:
        main(["matrix", a, write(tmp_path, "c.json", latency_doc())])
    assert exit_info.value.code == 2 and "needs conformance results" in capsys.readouterr().err
