"""Read any results file ``chat-report`` is given, into the one results format.

Three shapes come in:

* chat-harness results documents (reports/FORMAT.md), read by
  :func:`reports.results.load_document`;
* pytest-benchmark JSON (``--benchmark-json``), converted by
  :mod:`reports.benchjson` into a ``bench`` document;
* locust's statistics, either ``locust --json`` / ``--json-file`` (a list of
  stats entries, response times in milliseconds) or ``--csv PREFIX``'s
  ``PREFIX_stats.csv``, converted here into a ``locust`` document with
  latencies in microseconds like every other kind.

:func:`load_any` sniffs which one a file is and says in one line when it is none.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from reference.printable import printable_tree
from reports import benchjson
from reports.results import FORMAT_NAME, Document, ResultsError, load_document, make_document

__all__ = [
    "load_any",
    "locust_document_from_csv",
    "locust_document_from_json",
    "percentile_from_counts",
]

_UNKNOWN_TARGET = {"label": "locust run", "address": None, "command": None}
#: Columns of locust's _stats.csv that hold percentiles (ms), and our record keys.
_CSV_PERCENTILES = {"90%": "p90_us", "99%": "p99_us", "99.9%": "p99_9_us"}


def percentile_from_counts(counts: Mapping[float, int], fraction: float) -> float | None:
    """The value below which ``fraction`` of the samples fall, from a value -> count map."""
    total = sum(counts.values())
    if total <= 0:
        return None
    wanted = fraction * total
    seen = 0
    for value in sorted(counts):
        seen += counts[value]
        if seen >= wanted:
            return float(value)
    return float(max(counts))


#: The chat-harness locust users record a second entry per latency whose
#: "response times" are whole microseconds, so that sub-millisecond loopback
#: latency survives locust's rounding; its name ends with this suffix.
MICROSECOND_ENTRY_SUFFIX = " latency in µs"


def _unit_to_us(name: str) -> float:
    """Multiplier from an entry's "response time" unit to microseconds."""
    return 1.0 if name.endswith(MICROSECOND_ENTRY_SUFFIX) else 1000.0


def _ms_to_us(value: Any, scale: float = 1000.0) -> float | None:
    try:
        return float(value) * scale if value not in (None, "", "N/A") else None
    except (TypeError, ValueError):
        return None


def _locust_summary(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    # Locust knows requests and failures; whether messages were lost, duplicated
    # or reordered is only known to the chat-harness users, so those stay null.
    return {
        "requests": sum(int(r.get("num_requests") or 0) for r in records),
        "failures": sum(int(r.get("num_failures") or 0) for r in records),
        "lost": None, "duplicated": None, "reordered": None,
    }


def locust_document_from_json(entries: Iterable[Mapping[str, Any]], source: str = "") -> Document:
    """Convert ``locust --json`` output (a list of stats entries) into a ``locust`` document."""
    records = []
    for entry in entries:
        try:
            counts = {float(k): int(v) for k, v in (entry.get("response_times") or {}).items()}
            requests = int(entry["num_requests"])
            failures = int(entry.get("num_failures") or 0)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ResultsError(f"{source}: not a locust stats entry ({exc!r})") from None
        start, last = entry.get("start_time"), entry.get("last_request_timestamp")
        elapsed = (last - start) if isinstance(start, int | float) and isinstance(last, int | float) else 0
        total_ms = entry.get("total_response_time") or 0
        answered = sum(counts.values())
        scale = _unit_to_us(str(entry.get("name") or ""))
        records.append({
            "type": entry.get("method") or "",
            "name": entry.get("name") or "",
            "num_requests": requests,
            "num_failures": failures,
            "median_us": _ms_to_us(percentile_from_counts(counts, 0.5), scale),
            "mean_us": _ms_to_us(total_ms / answered, scale) if answered else None,
            "min_us": _ms_to_us(entry.get("min_response_time"), scale),
            "max_us": _ms_to_us(entry.get("max_response_time"), scale),
            "p90_us": _ms_to_us(percentile_from_counts(counts, 0.90), scale),
            "p99_us": _ms_to_us(percentile_from_counts(counts, 0.99), scale),
            "p99_9_us": _ms_to_us(percentile_from_counts(counts, 0.999), scale),
            "requests_per_s": requests / elapsed if elapsed > 0 else None,
        })
    return make_document("locust", tool="locust", target=_UNKNOWN_TARGET,
                         summary=_locust_summary(records), records=records, source=source)


def locust_document_from_csv(text: str, source: str = "") -> Document:
    """Convert locust's ``PREFIX_stats.csv`` into a ``locust`` document (the Aggregated row is dropped)."""
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "Request Count" not in reader.fieldnames:
        raise ResultsError(f"{source}: not a locust _stats.csv file (no 'Request Count' column)")
    records = []
    for row in reader:
        if row.get("Name") == "Aggregated" and not row.get("Type"):
            continue
        scale = _unit_to_us(row.get("Name") or "")
        try:
            record: dict[str, Any] = {
                "type": row.get("Type") or "",
                "name": row.get("Name") or "",
                "num_requests": int(row["Request Count"]),
                "num_failures": int(row.get("Failure Count") or 0),
                "median_us": _ms_to_us(row.get("Median Response Time"), scale),
                "mean_us": _ms_to_us(row.get("Average Response Time"), scale),
                "min_us": _ms_to_us(row.get("Min Response Time"), scale),
                "max_us": _ms_to_us(row.get("Max Response Time"), scale),
                "requests_per_s": float(row.get("Requests/s") or 0),
            }
        except (KeyError, ValueError) as exc:
            raise ResultsError(f"{source}: malformed locust CSV row ({exc!r})") from None
        for column, key in _CSV_PERCENTILES.items():
            record[key] = _ms_to_us(row.get(column), scale)
        records.append(record)
    return make_document("locust", tool="locust", target=_UNKNOWN_TARGET,
                         summary=_locust_summary(records), records=records, source=source)


def load_any(path: str | os.PathLike[str]) -> Document:
    """Load a results document, pytest-benchmark JSON or locust JSON/CSV; ResultsError otherwise.

    Every string in it is made printable: a file may hold what a hostile
    server sent (or be crafted), and the renderers show strings as they are.
    """
    return cast(Document, printable_tree(_load_any(Path(path))))


def _load_any(p: Path) -> Document:
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ResultsError(f"{p}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultsError(f"{p}: not readable ({exc})") from None
    if p.suffix.lower() == ".csv":
        return locust_document_from_csv(text, str(p))
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        if text.lstrip().startswith("Type,"):
            return locust_document_from_csv(text, str(p))
        raise ResultsError(f"{p}: neither JSON nor a locust CSV file") from None
    if isinstance(data, dict) and data.get("format") == FORMAT_NAME:
        return load_document(p)
    if isinstance(data, dict) and isinstance(data.get("benchmarks"), list):
        try:
            return benchjson.to_results_document(benchjson.parse_benchmark_json(data, str(p)))
        except benchjson.BenchJsonError as exc:
            raise ResultsError(str(exc)) from None
    if isinstance(data, list) and all(isinstance(e, dict) and "num_requests" in e for e in data):
        return locust_document_from_json(data, str(p))
    raise ResultsError(f"{p}: not a chat-harness results document, pytest-benchmark JSON "
                       "or locust JSON/CSV")
