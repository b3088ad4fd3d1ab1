"""``chat-report matrix``: conformance cases by servers, in the manner of Autobahn's report.

Given several ``conformance`` results (one per server), build one table with a
row per case, grouped by requirement, and a column per server, each cell the
case's verdict in its colour; a first row of totals says at a glance which
server passes most.  A case one server's run did not include shows as "–".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from reports.render_conformance import group_of, requirement_sort_key
from reports.results import ResultsError
from reports.style import MISSING, VERDICT_STYLES, add_plain_row, verdict_text

__all__ = ["column_labels", "matrix_renderables", "matrix_table"]

Document = Mapping[str, Any]


def column_labels(docs: Sequence[Document], paths: Sequence[str | Path] | None = None) -> list[str]:
    """A unique, short column name per document: the target label, made unique by file name."""
    labels = [str((doc.get("target") or {}).get("label") or f"server {i + 1}") for i, doc in enumerate(docs)]
    counts = Counter(labels)
    out = []
    for i, label in enumerate(labels):
        if counts[label] > 1:
            suffix = Path(paths[i]).stem if paths else str(i + 1)
            label = f"{label} ({suffix})"
        out.append(label)
    # Two files with the same label and the same stem: fall back to numbering.
    if len(set(out)) < len(out):
        out = [f"{label} #{i + 1}" for i, label in enumerate(out)]
    return out


def _score(doc: Document) -> Text:
    verdicts = Counter(str(r.get("verdict")) for r in doc.get("records") or [])
    passed, total = verdicts.get("pass", 0), sum(verdicts.values())
    bad = verdicts.get("fail", 0) + verdicts.get("error", 0)
    return Text(f"{passed}/{total} pass" + (f", {bad} fail" if bad else ""),
                style="bold red" if bad else "bold green")


def matrix_table(docs: Sequence[Document], labels: Sequence[str]) -> Table:
    """Rows: cases grouped by requirement; columns: servers; cells: coloured verdicts."""
    for doc in docs:
        if doc.get("kind") != "conformance":
            raise ResultsError(f"the matrix needs conformance results, got {doc.get('kind')!r} results")
    cases: dict[str, Mapping[str, Any]] = {}
    verdicts: list[dict[str, str]] = []
    for doc in docs:
        per_case = {}
        for record in doc.get("records") or []:
            case_id = str(record.get("id"))
            cases.setdefault(case_id, record)
            per_case[case_id] = str(record.get("verdict"))
        verdicts.append(per_case)
    table = Table(title="Conformance matrix: cases by servers", title_justify="left", expand=False)
    table.add_column("requirement", no_wrap=True)
    table.add_column("case", overflow="fold")
    for label in labels:
        table.add_column(Text(label), justify="center", overflow="fold")  # a label is data, not markup
    add_plain_row(table, Text("all", style="bold"), Text("score", style="bold"),
                  *(_score(doc) for doc in docs), end_section=True)
    ordered = sorted(cases.values(), key=lambda r: (requirement_sort_key(str(r.get("requirement"))),
                                                    str(r.get("id"))))
    previous_group = None
    for record in ordered:
        group = group_of(record)
        if previous_group is not None and group != previous_group:
            table.rows[-1].end_section = True
        previous_group = group
        case_id = str(record.get("id"))
        cells = [verdict_text(v[case_id]) if case_id in v else Text(MISSING, style="dim") for v in verdicts]
        requirement = f"{record.get('requirement') or ''} {record.get('level') or ''}".strip()
        add_plain_row(table, requirement, case_id, *cells)
    return table


def matrix_renderables(docs: Sequence[Document], paths: Sequence[str | Path] | None = None
                       ) -> list[RenderableType]:
    labels = column_labels(docs, paths)
    legend = Text("verdicts: ")
    for verdict, style in VERDICT_STYLES.items():
        legend.append(verdict, style=style)
        legend.append("  ")
    out: list[RenderableType] = [matrix_table(docs, labels), legend]
    for label, doc in zip(labels, docs, strict=True):
        dialects = (doc.get("summary") or {}).get("dialects") or []
        if dialects:
            out.append(Text(f"{label}: recognised dialect: {'; '.join(map(str, dialects))}", style="yellow"))
    return out
