"""Realistic results documents for the reports tests, and checks that they are valid.

The other ``test_reports*`` files import the builders below (pytest puts
``tests/`` on ``sys.path``).  The shapes follow reports/FORMAT.md; the tests
here prove each sample survives ``write_document`` -> ``load_any`` unchanged,
so a renderer test never passes on a document the real readers would refuse.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hdrh.histogram import HdrHistogram

from reports import benchjson
from reports.loaders import load_any
from reports.results import make_document, target_info, write_document

TARGET = target_info("reference server (embedded)", ("127.0.0.1", 40123))


def conformance_case(case_id: str, requirement: str, verdict: str, *, level: str = "MUST",
                     detail: str = "", transcript: str | None = None) -> dict[str, Any]:
    return {"id": case_id, "requirement": requirement, "requirement_text": f"text of {requirement}",
            "group": requirement.split("-")[0], "level": level, "verdict": verdict, "duration_s": 0.012,
            "detail": detail, "transcript": transcript}


def conformance_doc(label: str = "reference server (embedded)", *, broken: bool = False,
                    dialects: tuple[str, ...] = ()) -> dict[str, Any]:
    """A run with several groups; ``broken`` makes a RELAY case fail and a SHOULD unmet."""
    records = [
        conformance_case("frame.canonical-header", "FRAME-2", "pass"),
        conformance_case("frame.bad-header[minus]", "FRAME-3", "pass"),
        conformance_case("frame.zero-length", "FRAME-8", "non-strict" if broken else "pass", level="SHOULD",
                         detail="expected the empty message relayed, got the connection closed"),
        conformance_case("frame.right-justified", "FRAME-7", "informational", level="MAY",
                         detail="accepts right-justified headers"),
        conformance_case("frame.huge-length", "FRAME-10", "pass"),
        conformance_case("join.empty-name", "JOIN-2", "pass"),
        conformance_case("relay.basic[one-byte-per-send]", "RELAY-1", "fail" if broken else "pass",
                         detail="expected b'5         hello' from bob, got nothing within 5 s",
                         transcript="\n".join(f"+0.{i:03d}s c1 > 6         'line {i}'" for i in range(60))),
        conformance_case("relay.no-echo", "RELAY-2", "pass"),
        conformance_case("robust.slowloris", "ROBUST-2", "pass"),
        conformance_case("limit.refuse-over-fdsetsize", "LIMIT-1", "skipped", detail="needs --slow"),
    ]
    counts = {v: sum(r["verdict"] == v for r in records) for v in
              ("pass", "fail", "non-strict", "informational", "xfail", "xpass", "error", "skipped")}
    summary = {**counts, "total": len(records), "strict": False, "exit_status": 1 if broken else 0,
               "duration_s": 12.5, "dialects": list(dialects)}
    return make_document("conformance", tool="chat-conformance 0.1.0", target=target_info(label),
                         summary=summary, records=records)


def latency_block(p50: float, scale: float = 1.0) -> dict[str, Any]:
    return {"p50": p50, "p90": p50 * 1.8 * scale, "p99": p50 * 4 * scale, "p99_9": p50 * 9 * scale,
            "max": p50 * 20 * scale, "mean": p50 * 1.3, "count": 5000}


def latency_record(clients: int, p50: float, *, with_hist: bool = False, lost: int = 0,
                   deliveries_per_s: float | None = None) -> dict[str, Any]:
    expected = clients * (clients - 1) * 60
    record: dict[str, Any] = {
        "clients": clients, "senders": clients, "rate": 20 * clients, "rate_per_sender": 20.0,
        "size": 64, "duration_s": 3.0,
        "warmup_s": 0.5, "procs": 1, "sent": clients * 60, "expected_deliveries": expected,
        "deliveries": expected - lost,
        "deliveries_per_s": deliveries_per_s if deliveries_per_s is not None else expected / 3.0,
        "lost": lost, "duplicated": 0, "reordered": 0,
        "latency_us": latency_block(p50), "fanout_us": latency_block(p50 * 1.5),
        "generator": {"cpu_percent": [35.0], "bottleneck": False, "warning": None},
    }
    if with_hist:
        hist = HdrHistogram(1, 60_000_000, 3)
        for i in range(1, 4001):
            hist.record_value(int(p50 * (0.5 + (i / 4000) ** 8 * 30)))
        record["latency_hist"] = hist.encode().decode("ascii")
    return record


def latency_doc(p50s: tuple[float, ...] = (180.0, 420.0, 2500.0), *, with_hist: bool = True,
                lost: int = 0) -> dict[str, Any]:
    records = [latency_record(n, p50, with_hist=with_hist and i == 0, lost=lost if i == 2 else 0)
               for i, (n, p50) in enumerate(zip((2, 10, 50), p50s, strict=True))]
    summary = {"scenarios": len(records), "lost": lost, "duplicated": 0, "reordered": 0, "ok": lost == 0}
    return make_document("latency", tool="chat-load 0.1.0", target=TARGET, summary=summary, records=records)


def limits_doc() -> dict[str, Any]:
    records = [{"clients": n, "healthy": n < 1000, "probe_latency_ms": 0.4 + n / 500 if n < 1000 else None,
                "elapsed_s": 1.5 * i, "note": "" if n < 1000 else "server stopped accepting"}
               for i, n in enumerate((250, 500, 750, 1000))]
    summary = {"highest_healthy": 750, "cause": "server-died",
               "cause_detail": "ValueError: filedescriptor out of range in select()",
               "max": 2000, "step": 250, "elapsed_s": 6.1, "fd_limit": 65536}
    return make_document("limits", tool="chat-load 0.1.0", target=TARGET, summary=summary, records=records)


def soak_doc() -> dict[str, Any]:
    summary = {"duration_s": 60.0, "clients": 40, "joins": 400, "leaves_clean": 180, "leaves_abrupt": 180,
               "sent": 24000, "expected_deliveries": 936000, "delivered": 936000, "lost": 0, "duplicated": 0,
               "reordered": 0, "ok": True, "rss_start_bytes": 20_000_000, "rss_end_bytes": 21_000_000,
               "rss_growth_bytes": 1_000_000}
    return make_document("soak", tool="chat-load 0.1.0", target=TARGET, summary=summary, records=[])


def pytest_benchmark_json(scale: float = 1.0, fanout_scale: float = 1.0) -> dict[str, Any]:
    """What ``pytest --benchmark-json`` writes, trimmed to the fields readers use."""
    def bench(name: str, group: str, median: float) -> dict[str, Any]:
        return {"name": name, "fullname": f"bench/test_server.py::{name}", "group": group, "params": None,
                "extra_info": {}, "stats": {"min": median * 0.9, "max": median * 1.5, "mean": median * 1.05,
                                            "stddev": median * 0.1, "rounds": 50, "median": median,
                                            "ops": 1 / median}}
    return {"machine_info": {"node": "ci"}, "commit_info": {}, "datetime": "2026-11-25T09:00:00",
            "version": "5.2.3", "benchmarks": [
                bench("test_calibration_ping_pong", "calibration", 40e-6 * scale),
                bench("test_fanout_latency[reference-10]", "fanout", 200e-6 * scale * fanout_scale),
                bench("test_encode[1KiB]", "codec", 2e-6 * scale)]}


def bench_doc(scale: float = 1.0, fanout_scale: float = 1.0) -> dict[str, Any]:
    run = benchjson.parse_benchmark_json(pytest_benchmark_json(scale, fanout_scale), "bench.json")
    return benchjson.to_results_document(run)


LOCUST_JSON = [
    {"name": "send", "method": "chat", "last_request_timestamp": 1010.0, "start_time": 1000.0,
     "num_requests": 2000, "num_none_requests": 0, "num_failures": 3, "total_response_time": 3000.0,
     "max_response_time": 40.0, "min_response_time": 0.2, "total_content_length": 0,
     "response_times": {"1": 1500, "2": 400, "10": 80, "40": 20},
     "num_reqs_per_sec": {}, "num_fail_per_sec": {}},
]
LOCUST_CSV = (
    "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,"
    "Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,"
    "99.99%,100%\n"
    "chat,send,2000,3,1,1.5,0.2,40,0,200.0,0.3,1,1,1,1,2,10,10,40,40,40,40\n"
    ",Aggregated,2000,3,1,1.5,0.2,40,0,200.0,0.3,1,1,1,1,2,10,10,40,40,40,40\n"
)

SAMPLES = {"conformance": conformance_doc, "latency": latency_doc, "limits": limits_doc, "soak": soak_doc,
           "bench": bench_doc}


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_sample_documents_round_trip_through_the_reader(tmp_path: Path, kind: str) -> None:
    doc = SAMPLES[kind]()
    path = write_document(tmp_path / f"{kind}.json", doc)
    loaded = load_any(path)
    assert loaded["kind"] == kind
    assert loaded["records"] == json.loads(json.dumps(doc["records"]))
    assert loaded["summary"] == json.loads(json.dumps(doc["summary"]))
