"""A swarm's locust statistics as one chat-harness results document (kind ``locust``).

``loadtest.swarm.users`` reads locust's stats entries and error table at the
end of a run (on the master, or the only process), copies them into the plain
:class:`EntryStats` and ``{error text: occurrences}`` shapes below, and calls
:func:`make_locust_document`.  All times in the document are microseconds
(reports/FORMAT.md); an entry measured in milliseconds says so in ``unit`` and
keeps locust's resolution of 1 ms below 100 ms.  The broadcast latency in the
summary comes from the swarm's own HDR histogram in µs (``loadtest.swarm.chat``),
not from locust's table.  No locust import here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from loadtest.swarm.client import BROADCAST, OTHER_CLOCK
from reference.sequence import SequenceFailure
from reference.version import tool_name
from reports.results import PERCENTILES as FORMAT_PERCENTILES
from reports.results import Document, make_document, target_info

__all__ = [
    "PERCENTILES",
    "EntryStats",
    "entry_record",
    "make_locust_document",
    "summarize",
    "summary_line",
]

TOOL = tool_name("chat-harness locust swarm")
#: Swarms before the chat statistics logged µs latencies as a request entry named so.
_US_SUFFIX = " latency in µs"
#: Percentiles asked of every entry, by their key in the results format.
#: reports.results.PERCENTILES as locust takes them: fractions, not percents.
PERCENTILES: Mapping[str, float] = {key: percent / 100 for key, percent in FORMAT_PERCENTILES.items()}


@dataclass(frozen=True)
class EntryStats:
    """One locust stats row, in the entry's own unit (ms, or µs for latency entries)."""

    type: str
    name: str
    num_requests: int
    num_failures: int
    num_none_requests: int = 0
    mean: float = 0.0
    min: float | None = None
    max: float = 0.0
    percentiles: Mapping[str, float] = field(default_factory=dict)  # PERCENTILES keys
    requests_per_s: float = 0.0

    @property
    def in_microseconds(self) -> bool:
        return self.name.endswith(_US_SUFFIX)


def entry_record(entry: EntryStats) -> dict[str, Any]:
    """One ``records[]`` row: locust's numbers, converted to microseconds."""
    scale = 1.0 if entry.in_microseconds else 1000.0
    timed = entry.num_requests - entry.num_none_requests
    record: dict[str, Any] = {
        "type": entry.type,
        "name": entry.name,
        "unit": "µs" if entry.in_microseconds else "ms",
        "num_requests": entry.num_requests,
        "num_failures": entry.num_failures,
        "requests_per_s": round(entry.requests_per_s, 3),
        "timed": timed,
    }
    if timed > 0:
        for key in PERCENTILES:
            value = min(entry.percentiles.get(key, 0.0), entry.max)  # buckets can pass the max
            record["median_us" if key == "p50" else f"{key}_us"] = round(value * scale, 3)
        record["mean_us"] = round(entry.mean * scale, 3)
        record["min_us"] = round((entry.min or 0.0) * scale, 3)
        record["max_us"] = round(entry.max * scale, 3)
    return record


def _latency_block(entry: EntryStats | None) -> dict[str, Any] | None:
    """``{p50, p90, p99, p99_9, max, mean, count}`` of a µs entry, as in the latency kind."""
    if entry is None or entry.num_requests == 0:
        return None
    # locust's percentiles come from rounded buckets and can exceed the exact max.
    block: dict[str, Any] = {key: min(entry.percentiles.get(key, 0.0), entry.max)
                             for key in PERCENTILES}
    block.update(max=entry.max, mean=round(entry.mean, 1), count=entry.num_requests)
    return block


def summarize(entries: Iterable[EntryStats], errors: Mapping[str, int],
              duration_s: float) -> dict[str, Any]:
    """The flat ``summary``: totals, correctness counts and the broadcast latency."""
    rows = list(entries)
    by_name = {row.name: row for row in rows if row.type == "chat"}
    requests = [row for row in rows if not row.in_microseconds]
    counts = {kind.value: 0 for kind in SequenceFailure}
    for text, occurrences in errors.items():
        kind = SequenceFailure.from_error_text(text)
        if kind is not None:
            counts[kind.value] += occurrences
    send = by_name.get("send")
    received = sum(row.num_requests - row.num_failures for row in requests
                   if row.name.startswith(BROADCAST))
    summary: dict[str, Any] = {
        "requests": sum(row.num_requests for row in requests),
        "failures": sum(row.num_failures for row in requests),
        **counts,
        "disconnects": by_name["disconnect"].num_failures if "disconnect" in by_name else 0,
        "sent": (send.num_requests - send.num_failures) if send else 0,
        "received": received,
        "received_per_s": round(received / duration_s, 1) if duration_s > 0 else 0.0,
        "received_without_latency": by_name[OTHER_CLOCK].num_requests if OTHER_CLOCK in by_name else 0,
        "latency_us": _latency_block(by_name.get(BROADCAST + _US_SUFFIX)),
        "duration_s": round(duration_s, 3),
    }
    summary["ok"] = summary["failures"] == 0 and received > 0
    return summary


def summary_line(summary: Mapping[str, Any]) -> str:
    """One console line a person can act on."""
    latency = summary.get("latency_us")
    if latency:
        timing = (f"latency p50 {latency['p50']:g} µs, p99 {latency['p99']:g} µs, "
                  f"max {latency['max']:g} µs")
    else:
        timing = "no latency measured"
    problems = ", ".join(f"{summary.get(kind.value, 0)} {kind.value.replace('_', ' ')}"
                         for kind in SequenceFailure)
    if summary.get("ok"):
        verdict = "OK"
    elif summary.get("failures"):
        verdict = f"FAILED ({summary['failures']} failures)"
    else:
        verdict = "FAILED (no message was received)"
    line = (f"chat swarm: {summary.get('sent', 0)} sent, {summary.get('received', 0)} received "
            f"({summary.get('received_per_s', 0):g}/s); {timing}; {problems}; "
            f"{summary.get('disconnects', 0)} disconnects: {verdict}")
    if summary.get("received_per_cpu_s"):
        line += (f"; locust used {summary['load_cpu_s']:g} CPU s: "
                 f"{summary['received_per_cpu_s']:g} received per CPU second")
    if summary.get("received_without_latency"):
        line += (f"; {summary['received_without_latency']} messages came from another machine, "
                 "whose clock differs, so they have no latency")
    return line


def make_locust_document(entries: Iterable[EntryStats], errors: Mapping[str, int], *,
                         host: str, address: tuple[str, int] | None, duration_s: float,
                         users: int, cpu_warning: bool, options: Mapping[str, Any],
                         load_cpu_s: float | None = None, latency_us: Mapping[str, Any] | None = None,
                         locust_process: Mapping[str, Any] | None = None,
                         relays_per_read: float | None = None) -> Document:
    """The whole document.

    ``load_cpu_s`` is the CPU time of the processes that ran users;
    ``latency_us`` the broadcast latency block from the swarm's own HDR
    histogram (``loadtest.swarm.chat``); ``locust_process`` locust's verdict
    on itself (``judge_locust``); ``relays_per_read`` how many relays one
    wake-up of a reader brought on average (more when the swarm falls behind,
    which makes each delivery cheaper for it).
    """
    rows = sorted(entries, key=lambda row: (row.name, row.type))
    summary = summarize(rows, errors, duration_s)
    summary.update(users=users, cpu_warning=cpu_warning)
    if latency_us is not None and latency_us.get("count"):
        summary["latency_us"] = dict(latency_us)
    if locust_process is not None:
        summary["locust_bottleneck"] = bool(locust_process.get("bottleneck"))
        summary["locust_process"] = dict(locust_process)
    if relays_per_read is not None:
        summary["relays_per_read"] = relays_per_read
    if load_cpu_s:
        # Messages one fully busy locust core handles: the per-core rate.
        summary["load_cpu_s"] = round(load_cpu_s, 3)
        summary["received_per_cpu_s"] = round(summary["received"] / load_cpu_s, 1)
    return make_document(
        "locust", tool=TOOL, target=target_info(host, address), summary=summary,
        records=[entry_record(row) for row in rows],
        errors=[{"error": text, "occurrences": n} for text, n in sorted(errors.items())],
        options=dict(options))
