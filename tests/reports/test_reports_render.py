"""The terminal renderers, read back as text from a fixed-width console (100 columns)."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console, RenderableType
from test_reports_samples import (
    LOCUST_JSON,
    bench_doc,
    conformance_doc,
    latency_doc,
    limits_doc,
    soak_doc,
)

from reports.loaders import locust_document_from_json
from reports.render_bench import renderables_for
from reports.render_conformance import requirement_sort_key
from reports.results import make_document, target_info
from reports.style import fmt_bytes, fmt_count, fmt_percent, fmt_seconds, fmt_us, verdict_text

WIDTH = 100
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def render(renderables: list[RenderableType], *, color: bool = False) -> str:
    console = Console(file=io.StringIO(), width=WIDTH, force_terminal=color,
                      color_system="standard" if color else None, legacy_windows=False)
    for renderable in renderables:
        console.print(renderable)
    output = console.file.getvalue()  # type: ignore[attr-defined]
    assert all(len(ANSI.sub("", line)) <= WIDTH for line in output.splitlines()), "line wider than console"
    return output


def test_number_formats_pick_a_readable_unit() -> None:
    assert fmt_us(850) == "850 µs"
    assert fmt_us(1_500) == "1.5 ms"
    assert fmt_us(250_000) == "250 ms"
    assert fmt_us(2_500_000) == "2.5 s"
    assert fmt_us(None) == fmt_us(float("nan")) == "–"
    assert fmt_seconds(0) == "0 s"
    assert fmt_seconds(0.012) == "12 ms"
    assert fmt_seconds(185) == "3 min 5 s"
    assert fmt_bytes(64) == "64 B" and fmt_bytes(1_048_576) == "1.0 MiB"
    assert fmt_count(12345) == "12,345" and fmt_count(True) == "–"
    assert fmt_percent(0.123) == "+12.3%" and fmt_percent(-0.5) == "-50.0%"


def test_requirements_sort_numerically_in_protocol_order() -> None:
    ids = ["RELAY-1", "FRAME-10", "LIMIT-1", "FRAME-2", "JOIN-3", "ROBUST-6", "XTRA-1"]
    assert sorted(ids, key=requirement_sort_key) == ["FRAME-2", "FRAME-10", "JOIN-3", "RELAY-1", "ROBUST-6",
                                                     "LIMIT-1", "XTRA-1"]


def test_conformance_is_grouped_by_requirement_in_protocol_order() -> None:
    text = render(renderables_for(conformance_doc(), transcripts=True))
    positions = [text.index(f"\n{group}  ") for group in ("FRAME", "JOIN", "RELAY", "ROBUST", "LIMIT")]
    assert positions == sorted(positions)
    assert "PASS: no MUST requirement broken" in text
    assert "8 pass" in text and "1 informational" in text and "1 skipped" in text


def test_may_findings_are_listed_in_full_and_do_not_colour_a_group() -> None:
    text = render(renderables_for(conformance_doc(), transcripts=True))
    assert "\nFRAME  pass" in text  # passes plus one informational finding: the group passes
    assert "\nLIMIT  skipped" in text
    findings = text.split("Findings where the protocol leaves room")[1]
    assert re.search(r"FRAME-7\s*│ frame.right-justified\s*│ accepts right-justified headers", findings)
    broken = render(renderables_for(conformance_doc(broken=True), transcripts=True))
    assert "\nRELAY  fail" in broken and "\nFRAME  non-strict" in broken


def test_case_ids_with_brackets_are_shown_literally_not_as_markup() -> None:
    text = render(renderables_for(conformance_doc(broken=True), transcripts=True))
    assert "frame.bad-header[minus]" in text
    assert "relay.basic[one-byte-per-send]" in text  # the failure panel's title keeps the whole ID


def test_a_failing_case_shows_detail_transcript_on_demand_and_fail_headline() -> None:
    doc = conformance_doc(broken=True, dialects=("echo: messages come back",))
    short = render(renderables_for(doc))
    assert "FAIL: a MUST requirement is broken" in short
    assert "line 0'" not in short  # by default: one line per failed case, no transcript
    text = render(renderables_for(doc, transcripts=True))
    assert "expected b'5         hello' from bob, got nothing within 5 s" in text
    assert "line 0'" in text and "line 59'" in text  # every line the results hold
    assert "Recognised dialect: echo: messages come back" in text
    assert "1 non-strict" in text  # the SHOULD that was not met is counted, and gets its own panel
    assert "non-strict frame.zero-length" in text
    assert "expected the empty message relayed, got the connection closed" in text


def test_verdicts_have_their_colours() -> None:
    assert verdict_text("fail").style == "bold red"
    assert verdict_text("pass").style == "bold green"
    assert verdict_text("non-strict").style == "bold yellow"
    coloured = render(renderables_for(conformance_doc(broken=True), transcripts=True), color=True)
    assert "\x1b[1;31mfail" in coloured and "\x1b[1;32mpass" in coloured


def test_latency_table_shows_percentiles_per_client_count() -> None:
    text = render(renderables_for(latency_doc()))
    load, latency = text.split("One-way delivery latency")
    # p50 180 µs -> p90 324 µs, p99 720 µs, p99.9 1.62 ms, max 3.6 ms (see latency_block)
    assert re.search(r"│\s*2 │\s*180 µs │\s*324 µs │\s*720 µs │\s*1.62 ms │\s*3.6 ms │", latency)
    assert re.search(r"│\s*50 │\s*2.5 ms │\s*4.5 ms │\s*10 ms │\s*22.5 ms │\s*50 ms │", latency)
    assert re.search(r"│\s*50 │\s*50 x 20/s, 64 B │.*│\s*49,000 │\s*0 │\s*0 │\s*0 │", load)
    assert "Correctness: OK" in text


def test_latency_loss_and_generator_warning_are_called_out() -> None:
    doc = latency_doc(lost=7)
    doc["records"][1]["generator"] = {"cpu_percent": [99.0], "bottleneck": True,
                                      "warning": "generator CPU at 99%: numbers understate the server"}
    text = render(renderables_for(doc))
    assert "NOT OK" in text and "lost 7" in text
    assert re.search(r"│\s*50 │.*│\s*7 │\s*0 │\s*0 │", text)
    assert "10 clients: generator CPU at 99%" in text


def test_limits_show_the_highest_healthy_count_and_why_it_stopped() -> None:
    text = render(renderables_for(limits_doc()))
    assert "Highest healthy client count: 750" in text and "server-died" in text
    assert "ValueError: filedescriptor out of range in select()" in text
    assert "server stopped accepting" in text and "up to 2,000 clients in steps of 250" in text


def test_soak_bench_and_locust_sections_render() -> None:
    soak = render(renderables_for(soak_doc()))
    assert "936,000 / 936,000" in soak and "growth 976.6 KiB" in soak
    bench = render(renderables_for(bench_doc()))
    assert "test_calibration_ping_pong median 40 µs" in bench
    assert re.search(r"│ test_fanout_latency\[reference-10\] │\s*200 µs │\s*20 µs │\s*5,000 │\s*5 │", bench)
    locust = render(renderables_for(locust_document_from_json(LOCUST_JSON, "stats.json")))
    assert re.search(r"chat\s*│\s*send\s*│\s*2,000\s*│\s*3\b", locust)


def test_unknown_kind_is_reported_not_crashed_on() -> None:
    doc = make_document("soak", tool="x", target=target_info("t"), summary={}, records=[])
    doc["kind"] = "future-kind"
    assert "no renderer for results of kind 'future-kind'" in render(renderables_for(doc))


@pytest.mark.parametrize("builder", [conformance_doc, latency_doc, limits_doc, soak_doc, bench_doc])
def test_an_empty_document_of_each_kind_renders(builder) -> None:  # type: ignore[no-untyped-def]
    doc = builder()
    doc["records"], doc["summary"] = [], {}
    assert render(renderables_for(doc)).strip()


def test_load_column_shows_per_sender_rate_from_the_total() -> None:
    """A latency record's ``rate`` is the total offered rate; the column shows it per sender."""
    from reports.render_load import _load_text

    assert _load_text({"senders": 4, "rate": 100, "size": 64}) == "4 x 25/s, 64 B"
    assert _load_text({"senders": 4, "rate": 100, "rate_per_sender": 25.0, "size": 64}) == "4 x 25/s, 64 B"
