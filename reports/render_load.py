"""Terminal rendering of the load results: ``latency``, ``limits``, ``soak`` and ``locust``.

Pure builders: a results document in, rich renderables out.  Correctness
counts (lost, duplicated, reordered) are shown next to the speed numbers and
turn red when they are not zero, because a fast server that loses messages
has not passed anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from reports.results import PERCENTILES, percentile_label
from reports.style import MISSING, add_plain_row, document_header, fmt_bytes, fmt_count, fmt_seconds, fmt_us

__all__ = [
    "PERCENTILE_KEYS",
    "latency_load_table",
    "latency_renderables",
    "latency_table",
    "limits_renderables",
    "locust_renderables",
    "soak_renderables",
]

#: The percentile keys of a latency block, with their column labels.
PERCENTILE_KEYS = (*((key, percentile_label(key)) for key in PERCENTILES), ("max", "max"))

Document = Mapping[str, Any]


def _correctness(value: Any) -> Text:
    """Zero is fine; anything else is a bug in the server and shown in red."""
    if value is None:
        return Text(MISSING, style="dim")
    return Text(fmt_count(value), style="green" if value == 0 else "bold red")


def _ok_text(ok: Any) -> Text:
    if ok is None:
        return Text("unknown", style="dim")
    return Text("OK", style="bold green") if ok else Text("NOT OK", style="bold red")


def _key_values(title: str, rows: list[tuple[str, RenderableType | str]]) -> Table:
    table = Table(title=title, title_justify="left", show_header=False, expand=False)
    table.add_column(style="bold")
    table.add_column()
    for key, value in rows:
        add_plain_row(table, key, value)
    return table


def _load_text(record: Mapping[str, Any]) -> str:
    """'10 x 20/s, 64 B': senders x messages per second each, payload size.

    ``rate`` in a latency record is the *total* offered rate (FORMAT.md), so
    the per-sender figure is ``rate_per_sender`` or, in older files, rate / senders.
    """
    senders, rate, size = record.get("senders"), record.get("rate"), record.get("size")
    per_sender = record.get("rate_per_sender")
    if per_sender is None and isinstance(rate, int | float) and isinstance(senders, int) and senders:
        per_sender = rate / senders
    parts = []
    if senders is not None or rate is not None:
        parts.append(f"{fmt_count(senders)} x {fmt_count(per_sender)}/s")
    if size is not None:
        parts.append(fmt_bytes(size))
    return ", ".join(parts) or MISSING


def latency_load_table(doc: Document) -> Table:
    """One row per scenario: the load offered, what was delivered, and whether it was correct."""
    table = Table(title="Load and correctness", title_justify="left", expand=False,
                  caption="load: senders x messages per second each, payload size", caption_justify="left")
    table.add_column("clients", justify="right")
    table.add_column("load", justify="right", no_wrap=True)
    table.add_column("sent", justify="right")
    table.add_column("delivered / expected", justify="right", no_wrap=True)
    table.add_column("deliveries/s", justify="right", no_wrap=True)
    for name in ("lost", "dup", "reord"):
        table.add_column(name, justify="right")
    for record in doc.get("records") or []:
        add_plain_row(table, fmt_count(record.get("clients")), _load_text(record),
                      fmt_count(record.get("sent")),
                      f"{fmt_count(record.get('deliveries'))} / "
                      f"{fmt_count(record.get('expected_deliveries'))}",
                      fmt_count(record.get("deliveries_per_s")),
                      *(_correctness(record.get(key)) for key in ("lost", "duplicated", "reordered")))
    return table


def latency_table(doc: Document) -> Table:
    """One row per scenario: one-way latency percentiles, and the fan-out's p99."""
    table = Table(title="One-way delivery latency", title_justify="left", expand=False)
    table.add_column("clients", justify="right")
    for _, label in PERCENTILE_KEYS:
        table.add_column(label, justify="right", no_wrap=True, style="bold" if label == "p99" else "")
    table.add_column("mean", justify="right", no_wrap=True)
    table.add_column("samples", justify="right")
    table.add_column("fan-out p99", justify="right", no_wrap=True)
    for record in doc.get("records") or []:
        latency = record.get("latency_us") or {}
        fanout = record.get("fanout_us") or {}
        add_plain_row(table, fmt_count(record.get("clients")),
                      *(fmt_us(latency.get(key)) for key, _ in PERCENTILE_KEYS),
                      fmt_us(latency.get("mean")), fmt_count(latency.get("count")), fmt_us(fanout.get("p99")))
    return table


def _generator_warnings(doc: Document) -> list[Text]:
    """Warn when the load generator, not the server, was the bottleneck."""
    warnings = []
    for record in doc.get("records") or []:
        generator = record.get("generator") or {}
        if generator.get("warning") or generator.get("bottleneck"):
            message = generator.get("warning") or "the load generator was CPU-bound"
            warnings.append(Text(f"{fmt_count(record.get('clients'))} clients: {message}", style="yellow"))
        for note in generator.get("notes") or []:
            warnings.append(Text(f"{fmt_count(record.get('clients'))} clients: {note}", style="yellow"))
    return warnings


#: The relay checks' counts (reference.sequence), in the order a reader wants them.
_RELAY_COUNTS = ("lost", "duplicated", "reordered", "mislabelled", "unpaired", "echoed", "sequence_jump")


def latency_renderables(doc: Document) -> list[RenderableType]:
    summary = doc.get("summary") or {}
    counts = ", ".join(f"{key} {fmt_count(summary.get(key))}" for key in _RELAY_COUNTS
                       if key in summary or key in ("lost", "duplicated", "reordered"))
    line = Text.assemble(("Correctness: ", "bold"), _ok_text(summary.get("ok")), f"  ({counts})")
    out: list[RenderableType] = [document_header(doc, "Latency"), line]
    if summary.get("error"):
        out.append(Text(f"The run did not finish: {summary['error']}", style="bold red"))
    out.extend([latency_load_table(doc), latency_table(doc)])
    out.extend(_generator_warnings(doc))
    return out


def limits_renderables(doc: Document) -> list[RenderableType]:
    """The probe's verdict (how many clients, and why it stopped) and the ramp steps."""
    summary = doc.get("summary") or {}
    headline = Text.assemble(("Highest healthy client count: ", "bold"),
                             (fmt_count(summary.get("highest_healthy")), "bold cyan"),
                             ("  FINDING: " if summary.get("finding") else "  stopped by: ", "bold"),
                             (str(summary.get("cause") or MISSING),
                              "bold red" if summary.get("finding")
                              else "green" if summary.get("cause") == "reached-max" else "yellow"))
    facts = _key_values("Limits probe", [
        ("cause", str(summary.get("cause_detail") or summary.get("cause") or MISSING)),
        ("ramp", f"up to {fmt_count(summary.get('max'))} clients "
                 f"in steps of {fmt_count(summary.get('step'))}"),
        ("took", fmt_seconds(summary.get("elapsed_s"))),
        ("generator fd limit", str(summary.get("fd_note") or fmt_count(summary.get("fd_limit")))),
    ])
    steps = Table(title="Ramp steps", title_justify="left", expand=False)
    steps.add_column("clients", justify="right")
    steps.add_column("healthy")
    steps.add_column("probe latency", justify="right")
    steps.add_column("at", justify="right")
    steps.add_column("note", overflow="fold")
    for record in doc.get("records") or []:
        healthy = record.get("healthy")
        probe_ms = record.get("probe_latency_ms")
        add_plain_row(steps, fmt_count(record.get("clients")),
                      Text("yes", style="green") if healthy else Text("no", style="bold red"),
                      fmt_us(probe_ms * 1000) if isinstance(probe_ms, int | float) else MISSING,
                      fmt_seconds(record.get("elapsed_s")), str(record.get("note") or ""))
    return [document_header(doc, "Limits"), headline, facts, steps]


def soak_renderables(doc: Document) -> list[RenderableType]:
    summary = doc.get("summary") or {}
    rows: list[tuple[str, RenderableType | str]] = [
        ("correctness", _ok_text(summary.get("ok"))),
        ("duration", fmt_seconds(summary.get("duration_s"))),
        ("clients", fmt_count(summary.get("clients"))),
        ("joins / clean leaves / abrupt leaves", " / ".join(fmt_count(summary.get(k)) for k in
                                                            ("joins", "leaves_clean", "leaves_abrupt"))),
        ("sent", fmt_count(summary.get("sent"))),
        ("delivered / expected", f"{fmt_count(summary.get('delivered'))} / "
                                 f"{fmt_count(summary.get('expected_deliveries'))}"),
        ("lost", _correctness(summary.get("lost"))),
        ("duplicated", _correctness(summary.get("duplicated"))),
        ("reordered", _correctness(summary.get("reordered"))),
        *((key, _correctness(summary.get(key))) for key in ("mislabelled", "unpaired") if key in summary),
        ("server memory", f"{fmt_bytes(summary.get('rss_start_bytes'))} -> "
                          f"{fmt_bytes(summary.get('rss_end_bytes'))} "
                          f"(growth {fmt_bytes(summary.get('rss_growth_bytes'))})"),
    ]
    return [document_header(doc, "Soak"), _key_values("Soak run", rows)]


#: Correctness counts a locust swarm may report, beyond lost/duplicated/reordered.
_LOCUST_PROBLEMS = ("lost", "duplicated", "reordered", "echoed", "mislabelled", "unpaired",
                    "sequence_jump")


def locust_renderables(doc: Document) -> list[RenderableType]:
    """Locust's request table, the swarm's correctness counts and its error table."""
    summary = doc.get("summary") or {}
    table = Table(title="Locust requests", title_justify="left", expand=False)
    table.add_column("type")
    table.add_column("name", overflow="fold")
    for name in ("requests", "failures", "req/s", "median", "p90", "p99", "max"):
        table.add_column(name, justify="right")
    for record in doc.get("records") or []:
        failures = record.get("num_failures") or 0
        add_plain_row(table, str(record.get("type") or ""), str(record.get("name") or ""),
                      fmt_count(record.get("num_requests")),
                      Text(fmt_count(failures), style="bold red" if failures else "green"),
                      fmt_count(record.get("requests_per_s")), fmt_us(record.get("median_us")),
                      *(fmt_us(record.get(key)) for key in ("p90_us", "p99_us", "max_us")))
    line = Text.assemble(("Requests: ", "bold"), fmt_count(summary.get("requests")),
                         ("  failures: ", "bold"), _correctness(summary.get("failures")))
    if "ok" in summary:
        line.append("  ")
        line.append_text(_ok_text(summary.get("ok")))
    problems = Text()
    for name in _LOCUST_PROBLEMS:
        if name in summary or name in ("lost", "duplicated", "reordered"):
            problems.append(f"{name.replace('_', ' ')} ")
            problems.append_text(_correctness(summary.get(name)))
            problems.append("  ")
    out: list[RenderableType] = [document_header(doc, "Locust"), Group(line, problems)]
    if summary.get("sent") is not None or summary.get("latency_us"):
        latency = summary.get("latency_us") or {}
        out.append(Text(f"sent {fmt_count(summary.get('sent'))}, "
                        f"received {fmt_count(summary.get('received'))} "
                        f"({fmt_count(summary.get('received_per_s'))}/s); broadcast latency "
                        f"p50 {fmt_us(latency.get('p50'))}, p99 {fmt_us(latency.get('p99'))}, "
                        f"max {fmt_us(latency.get('max'))}"))
    out.append(table)
    errors = doc.get("errors") or []
    if errors:
        error_table = Table(title="Errors", title_justify="left", expand=False)
        error_table.add_column("occurrences", justify="right", style="bold red")
        error_table.add_column("error", overflow="fold")
        for error in errors:
            add_plain_row(error_table, fmt_count(error.get("occurrences")), str(error.get("error")))
        out.append(error_table)
    return out
