"""Terminal rendering of a ``bench`` results document, and the one dispatcher for all kinds.

``renderables_for(doc)`` is what ``chat-report show``, ``chat-report html``
and the scorecard call: it picks the builder for the document's kind.  The
bench builder itself lists each benchmark with its median and its figure
normalised by the same run's calibration benchmark (see reports/benchjson.py),
the number that can be compared between machines.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from reports.fit import fit_widths
from reports.render_conformance import conformance_renderables
from reports.render_load import (
    latency_renderables,
    limits_renderables,
    locust_renderables,
    soak_renderables,
)
from reports.style import MISSING, add_plain_row, document_header, fmt_count, fmt_seconds

__all__ = ["bench_renderables", "bench_table", "renderables_for"]

Document = Mapping[str, Any]


def _params_text(params: Any) -> str:
    if not isinstance(params, Mapping) or not params:
        return ""
    return ", ".join(f"{key}={value}" for key, value in params.items())


def bench_table(doc: Document) -> Table:
    """One row per benchmark, grouped as pytest-benchmark grouped them."""
    table = Table(title="Benchmarks", title_justify="left", expand=False)
    table.add_column("group")
    table.add_column("benchmark", no_wrap=True, overflow="ellipsis")
    table.add_column("median", justify="right", style="bold", no_wrap=True)
    table.add_column("stddev", justify="right", no_wrap=True)
    table.add_column("ops/s", justify="right")
    table.add_column("x calibration", justify="right", style="cyan")
    records = sorted(doc.get("records") or [], key=lambda r: (str(r.get("group") or ""), str(r.get("name"))))
    for record in records:
        normalised = record.get("normalised")
        name = str(record.get("name") or "")
        params = _params_text(record.get("params"))
        if params and "[" not in name:
            name += f" ({params})"
        add_plain_row(table, str(record.get("group") or ""), name, fmt_seconds(record.get("median_s")),
                      fmt_seconds(record.get("stddev_s")), fmt_count(round(record.get("ops") or 0)),
                      f"{normalised:.3g}" if isinstance(normalised, int | float) else MISSING)
    return table


def bench_renderables(doc: Document) -> list[RenderableType]:
    summary = doc.get("summary") or {}
    calibration = summary.get("calibration")
    if isinstance(calibration, Mapping) and calibration.get("median_s"):
        line = Text.assemble(("Calibration: ", "bold"), str(calibration.get("name")),
                             f" median {fmt_seconds(calibration.get('median_s'))}; "
                             "'x calibration' = median / calibration median")
    else:
        line = Text("No calibration benchmark in this run: medians cannot be compared across machines.",
                    style="yellow")
    return [document_header(doc, "Benchmarks"), line, bench_table(doc)]


_BUILDERS: dict[str, Callable[[Document], list[RenderableType]]] = {
    "conformance": conformance_renderables,
    "latency": latency_renderables,
    "limits": limits_renderables,
    "soak": soak_renderables,
    "bench": bench_renderables,
    "locust": locust_renderables,
}


def renderables_for(doc: Document, *, transcripts: bool = False) -> list[RenderableType]:
    """The report for any results document; ``transcripts``: every failed case's full evidence too."""
    if doc.get("kind") == "conformance":
        return conformance_renderables(doc, show_cases=transcripts, transcripts=transcripts)
    builder = _BUILDERS.get(str(doc.get("kind")))
    if builder is None:
        return [document_header(doc), Text(f"(no renderer for results of kind {doc.get('kind')!r})",
                                           style="yellow")]
    return fit_widths(builder(doc))
