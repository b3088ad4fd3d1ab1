"""Terminal rendering of a ``conformance`` results document.

Pure builders, data in and renderables out: a verdict summary (with any
recognised dialect named in plain words), the ranked root causes and one
line per case that did not pass (:mod:`reports.render_diagnosis`), a table
per requirement group with coloured verdicts, and a panel per problem case
with its detail and its wire transcript.  ``chat-conformance``'s end-of-run
report, ``chat-report show``/``html`` and the scorecard all print what
:func:`conformance_renderables` returns: one builder per document.
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

from reports.render_diagnosis import cause_blocks, problem_case_lines
from reports.style import (
    VERDICT_ORDER,
    VERDICT_STYLES,
    Folded,
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
    "run_notes",
    "requirement_sort_key",
]

#: PROTOCOL.md's section order; groups not listed here follow alphabetically.
GROUP_ORDER = ("FRAME", "JOIN", "RELAY", "ROBUST", "LIMIT", "ADDR", "PROFILE", "DM", "HISTORY")
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
    # A death's own record (crash[CASE]) is no case: counted apart, so this line says what
    # pytest's does, case for case.
    deaths = Counter(str(r.get("verdict")) for r in records if str(r.get("id")).startswith("crash["))
    line = Text()
    for verdict in (*VERDICT_ORDER, *sorted(set(counts) - set(VERDICT_ORDER))):
        number = (summary.get(verdict, counts.get(verdict, 0)) or 0) - deaths.get(verdict, 0)
        if number:
            if line:
                line.append("  ")
            line.append(f"{number} {verdict}", style=VERDICT_STYLES.get(verdict, ""))
    total = summary.get("total", len(records)) - sum(deaths.values())
    outcome = _outcome(summary, counts)
    parts: list[RenderableType] = [outcome, Text(f"{total} cases: ", style="bold") + (line or Text("none"))]
    if deaths:
        parts.append(Text(f"and {sum(deaths.values())} crash verdict(s) (ROBUST-7): the server died "
                          "during or right after a case", style="bold red"))
    extras = []
    if summary.get("strict"):
        extras.append("strict mode (SHOULD counts as MUST)")
    if summary.get("duration_s") is not None:
        extras.append(f"took {fmt_seconds(summary.get('duration_s'))}")
    if summary.get("exit_status") is not None:
        extras.append(f"exit status {summary.get('exit_status')}")
    if extras:
        parts.append(Text(", ".join(extras), style="dim"))
    stopped = (summary.get("preflight") or {}).get("stopped")
    for dialect in [] if stopped else summary.get("dialects") or []:
        parts.append(Text(f"Recognised dialect: {dialect}", style="bold yellow"))
    return Group(*parts)


def _outcome(summary: Mapping[str, Any], counts: Mapping[str, int]) -> Text:
    """PASS, FAIL or INCOMPLETE, agreeing with the exit status (--strict never shows PASS beside 1)."""
    def count(verdict: str) -> int:
        return int(summary.get(verdict) or counts.get(verdict, 0) or 0)
    status = summary.get("exit_status")
    should = count("non-strict")
    incomplete = summary.get("incomplete")
    preflight = summary.get("preflight") or {}
    if preflight.get("stopped"):
        return Text(f"FAIL: the target does not speak the protocol (preflight: "
                    f"{preflight.get('class')}); no case was run", style="bold red")
    if count("fail"):
        outcome = Text("FAIL: a MUST requirement is broken", style="bold red")
    elif count("error"):
        outcome = Text("FAIL: the harness itself erred (a bug to report)", style="bold red")
    elif should and summary.get("strict"):
        outcome = Text("FAIL: a SHOULD requirement is broken (--strict counts it as a failure)",
                       style="bold red")
    elif incomplete:  # an interrupted run is never a PASS
        return Text(f"INCOMPLETE: {incomplete}; no verdict on the server", style="bold yellow")
    elif status not in (None, 0):
        reason = summary.get("target_error") or summary.get("stopped") or "see above"
        return Text(f"FAIL: exit status {status} ({reason})", style="bold red")
    else:
        outcome = Text("PASS: no MUST requirement broken", style="bold green")
        if should:
            outcome.append(" (some SHOULD requirements are not met)", style="yellow")
        return outcome
    if incomplete:
        outcome.append(f" (INCOMPLETE: {incomplete})", style="yellow")
    return outcome


def run_notes(doc: Mapping[str, Any]) -> list[RenderableType]:
    """What happened to the run itself: target trouble, early stop, restarts, unused expectations."""
    summary = doc.get("summary") or {}
    out: list[RenderableType] = []
    preflight = summary.get("preflight") or {}
    if preflight.get("stopped"):
        out.append(Text(f"Preflight: {preflight.get('headline')}", style="bold red"))
        out.append(Text(f"  evidence: {preflight.get('evidence')}"))
        out.append(Text("  the cases were not run: each would fail at its first join; "
                        "--no-preflight runs them all"))
    if summary.get("target_error"):
        out.append(Text(f"Target unavailable: {summary['target_error']}", style="bold red"))
    if summary.get("stopped"):
        out.append(Text(f"Stopped early: {summary['stopped']}", style="bold red"))
    restarts = summary.get("restarts") or []
    if restarts:
        out.append(Text(f"The server was started afresh {len(restarts)} time(s), after a case that "
                        f"failed or killed it (the JSON results list each).", style="yellow"))
    for pattern in summary.get("unmatched_expectations") or []:
        out.append(Text(f"Expectations entry {pattern!r} matches no case", style="yellow"))
    out.extend(profile_notes(summary.get("profiles") or {}))
    for record in doc.get("records") or []:  # a base rule a claimed profile replaces (JOIN-5)
        if record.get("verdict") == "skipped" and "does not apply" in str(record.get("detail")):
            out.append(Text(f"  {record.get('id')} skipped: {record.get('detail')}", style="dim"))
    return out


def profile_notes(profiles: Mapping[str, Any]) -> list[RenderableType]:
    """Which optional profiles (PROTOCOL.md section 8) were judged, and which were not claimed."""
    out: list[RenderableType] = []
    claimed = list(profiles.get("claimed") or [])
    if claimed:
        out.append(Text(f"Profiles claimed and judged: {', '.join(claimed)}", style="bold"))
    not_claimed = profiles.get("not_claimed") or {}
    if not_claimed:
        counts = ", ".join(f"{name} ({n} cases)" for name, n in not_claimed.items())
        out.append(Text(f"Profiles not claimed, not judged: {counts}; --profile "
                        f"{','.join(not_claimed)} judges them", style="dim"))
    return out


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


def conformance_failures(records: Iterable[Record], *, capped: bool = True) -> list[Panel]:
    """A panel per failing, erroring, unexpectedly passing or non-strict case (``capped`` transcripts)."""
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
            transcript = str(case["transcript"]).rstrip()
            body.append(Text(_capped_transcript(transcript) if capped else transcript, style="dim"))
        title = Text.assemble(verdict_text(verdict), " ", (str(case.get("id")), "bold"))
        panels.append(Panel(Group(*body), title=title, title_align="left",
                            border_style=VERDICT_STYLES.get(verdict, "")))
    return panels


def conformance_renderables(doc: Mapping[str, Any], *, show_cases: bool = False,
                            transcripts: bool = False) -> list[RenderableType]:
    """The whole conformance section, top to bottom: outcome, root causes, then the cases.

    Short by default: the causes, one line per case that did not pass, the
    findings and a table of verdicts per requirement group.
    ``show_cases`` adds the tables of every case; ``transcripts`` adds a panel
    per problem case with its whole wire transcript, each
    :class:`~reports.style.Folded` (an HTML ``<details>``).
    """
    records = doc.get("records") or []
    out: list[RenderableType] = [document_header(doc, "Conformance"), conformance_summary(doc)]
    out.extend(run_notes(doc))
    out.extend(cause_blocks(doc))
    out.extend(problem_case_lines(doc))
    if records:
        findings = conformance_findings(records)
        if findings is not None:
            out.append(findings)
        out.append(conformance_group_overview(records))
        if show_cases:
            out.extend(conformance_group_tables(records))
        if transcripts:
            out.extend(Folded(f"{_panel_title(panel)}: detail and wire transcript", panel)
                       for panel in conformance_failures(records, capped=False))
    return out


def _panel_title(panel: Panel) -> str:
    title = panel.title
    return title.plain if isinstance(title, Text) else str(title or "")
