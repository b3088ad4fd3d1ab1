"""Terminal rendering of a ``conformance`` results document.

Pure builders, data in and renderables out: a verdict summary (with any
recognised dialect named in plain words), a table per requirement group with
coloured verdicts, and a panel per problem case with its detail and the
capped wire transcript.  The CLI, the HTML export and the scorecard all print
what these return.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from reports.style import (
    VERDICT_ORDER,
    VERDICT_STYLES,
    add_plain_row,
    document_header,
    fmt_seconds,
    verdict_text,
)

__all__ = [
    "GROUP_ORDER",
    "conformance_failures",
    "conformance_findings",
    "conformance_group_overview",
    "conformance_group_tables",
    "conformance_renderables",
    "conformance_summary",
    "group_of",
    "requirement_sort_key",
]

#: PROTOCOL.md's section order; groups not listed here follow alphabetically.
GROUP_ORDER = ("FRAME", "JOIN", "RELAY", "ROBUST", "LIMIT", "ADDR")
#: Verdicts that get a panel of their own below the tables.
PROBLEM_VERDICTS = ("fail", "error", "xpass", "non-strict")
TRANSCRIPT_LINES = 40

Record = Mapping[str, Any]


def group_of(record: Record) -> str:
    """The requirement group: the record's ``group`` or the requirement ID's prefix."""
    group = record.get("group")
    if group:
        return str(group)
    requirement = str(record.get("requirement") or "")
    return requirement.split("-", 1)[0] or "OTHER"


def requirement_sort_key(requirement: str) -> tuple[int, str, int, str]:
    """Sort FRAME-2 before FRAME-10 and groups in PROTOCOL.md's order."""
    match = re.fullmatch(r"([A-Z]+)-(\d+)", requirement or "")
    group, number = (match.group(1), int(match.group(2))) if match else (requirement, 0)
    rank = GROUP_ORDER.index(group) if group in GROUP_ORDER else len(GROUP_ORDER)
    return rank, group, number, requirement


def _group_rank(group: str) -> tuple[int, str]:
    return (GROUP_ORDER.index(group) if group in GROUP_ORDER else len(GROUP_ORDER), group)


def _worst(verdicts: Iterable[str]) -> str:
    """A group's verdict: its worst problem, else pass; MAY findings and skips are not problems."""
    seen = set(verdicts)
    problem = next((v for v in VERDICT_ORDER if v in seen and v in PROBLEM_VERDICTS), None)
    if problem:
        return problem
    return next((v for v in ("pass", "xfail", "informational", "skipped") if v in seen), "skipped")


def conformance_summary(doc: Mapping[str, Any]) -> RenderableType:
    """Counts per verdict, the overall outcome and any recognised dialect."""
    summary = doc.get("summary") or {}
    records = doc.get("records") or []
    counts = Counter(str(r.get("verdict")) for r in records)
    line = Text()
    for verdict in (*VERDICT_ORDER, *sorted(set(counts) - set(VERDICT_ORDER))):
        number = summary.get(verdict, counts.get(verdict, 0)) or 0
        if number:
            if line:
                line.append("  ")
            line.append(f"{number} {verdict}", style=VERDICT_STYLES.get(verdict, ""))
    total = summary.get("total", len(records))
    failed = (summary.get("fail") or counts.get("fail", 0)) + (summary.get("error") or counts.get("error", 0))
    preflight = summary.get("preflight") or {}
    incomplete = summary.get("incomplete")
    if preflight.get("stopped"):
        outcome = Text(f"FAIL: the target does not speak the protocol (preflight: "
                       f"{preflight.get('class')}); no case was run", style="bold red")
    elif incomplete and not failed:  # an interrupted run is never a PASS
        outcome = Text(f"INCOMPLETE: {incomplete}; no verdict on the server", style="bold yellow")
    else:
        outcome = Text("FAIL: a MUST requirement is broken" if failed else "PASS: no MUST requirement broken",
                       style="bold red" if failed else "bold green")
    if incomplete and failed:
        outcome.append(f" (INCOMPLETE: {incomplete})", style="yellow")
    if not failed and (summary.get("non-strict") or counts.get("non-strict")):
        outcome.append(" (some SHOULD requirements are not met)", style="yellow")
    parts: list[RenderableType] = [outcome, Text(f"{total} cases: ", style="bold") + (line or Text("none"))]
    extras = []
    if summary.get("strict"):
        extras.append("strict mode (SHOULD counts as MUST)")
    if summary.get("duration_s") is not None:
        extras.append(f"took {fmt_seconds(summary.get('duration_s'))}")
    if summary.get("exit_status") is not None:
        extras.append(f"exit status {summary.get('exit_status')}")
    if extras:
        parts.append(Text(", ".join(extras), style="dim"))
    for dialect in [] if preflight.get("stopped") else summary.get("dialects") or []:
        parts.append(Text(f"Recognised dialect: {dialect}", style="bold yellow"))
    return Group(*parts)


def conformance_group_overview(records: Iterable[Record]) -> Table:
    """One row per requirement group: how many cases got which verdict."""
    by_group: dict[str, Counter[str]] = defaultdict(Counter)
    for record in records:
        by_group[group_of(record)][str(record.get("verdict"))] += 1
    table = Table(title="Requirement groups", title_justify="left", expand=False)
    table.add_column("group", style="bold")
    table.add_column("verdict")
    columns = [v for v in VERDICT_ORDER if any(c.get(v) for c in by_group.values())]
    for verdict in columns:
        table.add_column(verdict, justify="right", style=VERDICT_STYLES.get(verdict, ""))
    for group in sorted(by_group, key=_group_rank):
        counts = by_group[group]
        add_plain_row(table, group, verdict_text(_worst(counts)),
                      *(str(counts.get(v, 0) or "") for v in columns))
    return table


def conformance_group_tables(records: Iterable[Record]) -> list[Table]:
    """A table per requirement group, cases sorted by requirement then case ID."""
    by_group: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        by_group[group_of(record)].append(record)
    tables = []
    for group in sorted(by_group, key=_group_rank):
        cases = sorted(by_group[group], key=lambda r: (requirement_sort_key(str(r.get("requirement"))),
                                                       str(r.get("id"))))
        worst = _worst(str(r.get("verdict")) for r in cases)
        table = Table(title=Text(f"{group}  ", style="bold") + verdict_text(worst), title_justify="left",
                      expand=True)
        table.add_column("requirement", no_wrap=True)
        table.add_column("level", no_wrap=True)
        table.add_column("case", ratio=1, overflow="fold")
        table.add_column("verdict", no_wrap=True)
        table.add_column("time", justify="right", no_wrap=True)
        for case in cases:
            add_plain_row(table, str(case.get("requirement") or ""), str(case.get("level") or ""),
                          str(case.get("id") or ""), verdict_text(str(case.get("verdict"))),
                          fmt_seconds(case.get("duration_s")))
        tables.append(table)
    return tables


def conformance_findings(records: Iterable[Record]) -> Table | None:
    """What the server chose where PROTOCOL.md leaves room (MAY rules): reported, not judged."""
    findings = sorted((r for r in records if r.get("verdict") == "informational"),
                      key=lambda r: (requirement_sort_key(str(r.get("requirement"))), str(r.get("id"))))
    if not findings:
        return None
    table = Table(title="Findings where the protocol leaves room (informational, not judged)",
                  title_justify="left", expand=True)
    table.add_column("requirement", no_wrap=True)
    table.add_column("case", ratio=2, overflow="fold")
    table.add_column("what the server does", ratio=3, overflow="fold")
    for case in findings:
        add_plain_row(table, str(case.get("requirement") or ""), str(case.get("id") or ""),
                      str(case.get("detail") or ""))
    return table


def _capped_transcript(transcript: str) -> str:
    lines = transcript.rstrip().splitlines()
    if len(lines) <= TRANSCRIPT_LINES:
        return "\n".join(lines)
    hidden = len(lines) - TRANSCRIPT_LINES
    return "\n".join(lines[:TRANSCRIPT_LINES] + [f"… {hidden} more lines in the JSON results"])


def conformance_failures(records: Iterable[Record]) -> list[Panel]:
    """A panel per failing, erroring, unexpectedly passing or non-strict case."""
    panels = []
    problems = [r for r in records if r.get("verdict") in PROBLEM_VERDICTS]
    problems.sort(key=lambda r: (PROBLEM_VERDICTS.index(str(r.get("verdict"))),
                                 requirement_sort_key(str(r.get("requirement")))))
    for case in problems:
        verdict = str(case.get("verdict"))
        body: list[RenderableType] = []
        if case.get("requirement_text"):
            body.append(Text(f"{case.get('requirement')} ({case.get('level')}): {case['requirement_text']}",
                             style="italic"))
        body.append(Text(str(case.get("detail") or "(no detail recorded)")))
        if case.get("transcript"):
            body.append(Text("wire transcript:", style="bold"))
            body.append(Text(_capped_transcript(str(case["transcript"])), style="dim"))
        title = Text.assemble(verdict_text(verdict), " ", (str(case.get("id")), "bold"))
        panels.append(Panel(Group(*body), title=title, title_align="left",
                            border_style=VERDICT_STYLES.get(verdict, "")))
    return panels


def conformance_renderables(doc: Mapping[str, Any], *, show_cases: bool = True) -> list[RenderableType]:
    """The whole conformance section, top to bottom."""
    records = doc.get("records") or []
    out: list[RenderableType] = [document_header(doc, "Conformance"), conformance_summary(doc)]
    if records:
        out.append(conformance_group_overview(records))
        if show_cases:
            out.extend(conformance_group_tables(records))
        findings = conformance_findings(records)
        if findings is not None:
            out.append(findings)
        out.extend(conformance_failures(records))
    return out
