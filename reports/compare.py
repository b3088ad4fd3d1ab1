"""``chat-report compare OLD NEW``: regression tables for benchmarks and latency runs.

Benchmarks are judged by :mod:`reports.benchjson` (the bench gate's own
definition of "slower": medians normalised by each run's calibration), so the
report and the gate can never disagree.  Latency documents are paired by
scenario (clients, senders, rate, size) and judged here: a percentile that
grew, or a delivery rate that fell, by more than the threshold is a
regression; so is any message lost, duplicated or reordered that the old run
did not lose, duplicate or reorder, whatever the threshold.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from reports import benchjson
from reports.results import ResultsError
from reports.style import MISSING, add_plain_row, fmt_count, fmt_percent, fmt_seconds, fmt_us

__all__ = [
    "DEFAULT_LATENCY_THRESHOLD",
    "LatencyComparison",
    "LatencyRow",
    "bench_comparison_table",
    "bench_run_from_document",
    "compare_documents",
    "compare_latency",
    "latency_comparison_table",
]

#: Latency percentiles on a shared machine move by tens of percent between runs (a p99 from
#: 300 samples moved 1.8 -> 6.2 ms between two runs of the same server here), so the default
#: matches the bench gate's 50 %; tighten it with --threshold on a quiet machine.
DEFAULT_LATENCY_THRESHOLD = 0.5
STATUS_STYLES = {"slower": "bold red", "regressed": "bold red", "missing": "yellow", "new": "yellow",
                 "faster": "green", "improved": "green", "ok": "", "calibration": "dim"}
#: (record path, label, higher_is_worse)
_LATENCY_METRICS = ((("latency_us", "p50"), "p50", True), (("latency_us", "p99"), "p99", True),
                    (("deliveries_per_s",), "deliveries/s", False))
_CORRECTNESS = ("lost", "duplicated", "reordered")

Document = Mapping[str, Any]


def bench_run_from_document(doc: Document) -> benchjson.BenchRun:
    """Rebuild a BenchRun from a ``bench`` results document so benchjson can judge it."""
    results = []
    for record in doc.get("records") or []:
        try:
            median = float(record["median_s"])
            results.append(benchjson.BenchResult(
                name=str(record["name"]), fullname=str(record.get("fullname") or record["name"]),
                group=record.get("group"), params=dict(record.get("params") or {}),
                median_s=median, mean_s=float(record.get("mean_s") or median),
                min_s=float(record.get("min_s") or median), max_s=float(record.get("max_s") or median),
                stddev_s=float(record.get("stddev_s") or 0.0), rounds=int(record.get("rounds") or 0),
                ops=float(record.get("ops") or 0.0), extra_info=dict(record.get("extra_info") or {})))
        except (KeyError, TypeError, ValueError) as exc:
            raise ResultsError(f"benchmark record {record.get('name')!r} is incomplete ({exc!r})") from None
    return benchjson.BenchRun(results=tuple(results), source=str(doc.get("source") or doc.get("tool") or ""))


def bench_comparison_table(comparison: benchjson.Comparison) -> Table:
    how = "normalised by each run's calibration" if comparison.normalised else "raw medians"
    table = Table(title=f"Benchmark comparison ({how}; slower than x{1 + comparison.threshold:.2f} fails)",
                  title_justify="left", expand=False)
    table.add_column("benchmark", overflow="fold")
    table.add_column("old median", justify="right")
    table.add_column("new median", justify="right")
    table.add_column("raw change", justify="right")
    table.add_column("change", justify="right", style="bold")
    table.add_column("status")
    for row in comparison.rows:
        add_plain_row(table, row.name, fmt_seconds(row.baseline_median_s), fmt_seconds(row.current_median_s),
                      fmt_percent(row.raw_ratio - 1 if row.raw_ratio is not None else None),
                      fmt_percent(row.ratio - 1 if row.ratio is not None else None),
                      Text(row.status, style=STATUS_STYLES.get(row.status, "")))
    return table


@dataclass(frozen=True)
class LatencyRow:
    """One metric of one scenario in both runs; ``change`` is new/old - 1."""

    scenario: str
    metric: str
    old: float | None
    new: float | None
    change: float | None
    status: str


@dataclass(frozen=True)
class LatencyComparison:
    rows: tuple[LatencyRow, ...]
    threshold: float

    @property
    def regressions(self) -> tuple[LatencyRow, ...]:
        return tuple(r for r in self.rows if r.status == "regressed")

    @property
    def verdict(self) -> str:
        return "fail" if self.regressions else "pass"


def _scenario_key(record: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(record.get(k) for k in ("clients", "senders", "rate", "size"))


def _scenario_name(record: Mapping[str, Any]) -> str:
    parts = [f"{record.get('clients')} clients"]
    if record.get("senders") is not None:
        parts.append(f"{record['senders']} senders")
    if isinstance(record.get("rate"), int | float):
        parts.append(f"{record['rate']:g}/s")
    if record.get("size") is not None:
        parts.append(f"{record['size']} B")
    return ", ".join(parts)


def _dig(record: Mapping[str, Any] | None, path: tuple[str, ...]) -> float | None:
    value: Any = record
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _judge(old: float | None, new: float | None, threshold: float, higher_is_worse: bool) -> str:
    if old is None and new is None:
        return "ok"
    if new is None:
        return "missing"
    if old is None:
        return "new"
    if old <= 0:
        return "ok" if new <= 0 or not higher_is_worse else "regressed"
    ratio = new / old
    worse, better = (ratio > 1 + threshold, ratio < 1 / (1 + threshold))
    if not higher_is_worse:
        worse, better = better, worse
    return "regressed" if worse else "improved" if better else "ok"


def compare_latency(old: Document, new: Document, threshold: float = DEFAULT_LATENCY_THRESHOLD
                    ) -> LatencyComparison:
    """Pair scenarios and judge each metric; correctness counts ignore the threshold."""
    if threshold <= 0:
        raise ValueError(f"threshold must be positive, got {threshold:g}")
    old_by = {_scenario_key(r): r for r in old.get("records") or []}
    new_by = {_scenario_key(r): r for r in new.get("records") or []}
    rows = []
    for key in list(old_by) + [k for k in new_by if k not in old_by]:
        before, after = old_by.get(key), new_by.get(key)
        name = _scenario_name(after or before or {})
        if before is None or after is None:
            rows.append(LatencyRow(name, "scenario", None, None, None, "missing" if after is None else "new"))
            continue
        for path, label, higher_is_worse in _LATENCY_METRICS:
            a, b = _dig(before, path), _dig(after, path)
            change = b / a - 1 if a and b is not None else None
            rows.append(LatencyRow(name, label, a, b, change, _judge(a, b, threshold, higher_is_worse)))
        for field_name in _CORRECTNESS:
            a, b = _dig(before, (field_name,)), _dig(after, (field_name,))
            status = "regressed" if (b or 0) > (a or 0) else "improved" if (b or 0) < (a or 0) else "ok"
            if a or b:
                rows.append(LatencyRow(name, field_name, a, b, None, status))
    return LatencyComparison(rows=tuple(rows), threshold=threshold)


def _metric_value(metric: str, value: float | None) -> str:
    if value is None:
        return MISSING
    return fmt_us(value) if metric.startswith("p") else fmt_count(value)


def latency_comparison_table(comparison: LatencyComparison) -> Table:
    table = Table(title=f"Latency comparison (a change past {comparison.threshold * 100:g}% is a regression;"
                        " any new loss always is)", title_justify="left", expand=False)
    table.add_column("scenario")
    table.add_column("metric")
    table.add_column("old", justify="right")
    table.add_column("new", justify="right")
    table.add_column("change", justify="right", style="bold")
    table.add_column("status")
    for row in comparison.rows:
        add_plain_row(table, row.scenario, row.metric, _metric_value(row.metric, row.old),
                      _metric_value(row.metric, row.new), fmt_percent(row.change),
                      Text(row.status, style=STATUS_STYLES.get(row.status, "")))
    return table


def _verdict_line(regressions: int, total: int) -> Text:
    if regressions:
        return Text(f"REGRESSION: {regressions} of {total} comparisons got worse past the threshold",
                    style="bold red")
    return Text(f"No regression: {total} comparisons within the threshold", style="bold green")


def compare_documents(old: Document, new: Document, threshold: float | None = None
                      ) -> tuple[list[RenderableType], bool]:
    """The comparison's renderables and whether it found a regression.

    ``threshold`` is a fraction (0.25 = 25 %); None picks the kind's default.
    Raises ResultsError when the two documents cannot be compared.
    """
    kinds = (old.get("kind"), new.get("kind"))
    if kinds[0] != kinds[1]:
        raise ResultsError(f"cannot compare {kinds[0]!r} results with {kinds[1]!r} results")
    if kinds[0] == "bench":
        try:
            limit = threshold if threshold is not None else benchjson.DEFAULT_THRESHOLD
            result = benchjson.compare_runs(bench_run_from_document(old), bench_run_from_document(new), limit)
        except benchjson.BenchJsonError as exc:
            raise ResultsError(str(exc)) from None
        factor = result.machine_factor
        notes: list[RenderableType] = []
        if factor is not None:
            notes.append(Text(f"The new run's machine was x{factor:.2f} the old one's calibration time; "
                              "normalising cancels that.", style="dim"))
        return ([bench_comparison_table(result), *notes,
                 _verdict_line(len(result.regressions), len(result.rows))], bool(result.regressions))
    if kinds[0] == "latency":
        try:
            latency = compare_latency(old, new, threshold if threshold is not None
                                      else DEFAULT_LATENCY_THRESHOLD)
        except ValueError as exc:
            raise ResultsError(str(exc)) from None
        return ([latency_comparison_table(latency), _verdict_line(len(latency.regressions),
                                                                  len(latency.rows))],
                bool(latency.regressions))
    raise ResultsError(f"compare works on bench and latency results, not {kinds[0]!r}")
