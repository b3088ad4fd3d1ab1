"""What the suite prints: the case list (--list) and the report around pytest's own output.

The report is built from the results document itself (the same one
``--json`` writes), so the terminal and the JSON never disagree.  Its head
(target, recognised dialects, restarts) is printed before pytest's failure
sections, so a student reads "your server echoes" before thirty failures;
its tail is a short table grouped by requirement, the cases that did not
pass in one line each, and the overall outcome from
:func:`reports.render_conformance.conformance_summary`.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from conformance.requirements import REQUIREMENTS
from conformance.verdicts import CaseInfo
from reference.console import EncodedBuffer, stream_encoding

__all__ = ["finding_lines", "problem_lines", "render_report", "requirement_table", "write_list"]

#: Worst first, as in reports.style.VERDICT_ORDER.
_PROBLEMS = ("fail", "error", "xpass", "non-strict")


def write_list(infos: Sequence[CaseInfo], write: Callable[[str], Any]) -> None:
    """The cases grouped by requirement: the requirement's level and text, then its cases."""
    by_req: dict[str, list[CaseInfo]] = defaultdict(list)
    for info in infos:
        by_req[info.requirement.id].append(info)
    width = max((len(i.id) for i in infos), default=10)
    for req_id in [r for r in REQUIREMENTS if r in by_req]:
        cases = by_req[req_id]
        requirement = cases[0].requirement
        write(f"{req_id} ({requirement.level.value}) {requirement.text}")
        for info in cases:
            level = f" [{info.level.value}]" if info.level is not requirement.level else ""
            expected = "  [expected to fail]" if info.expected_failure else ""
            write(f"  {info.id:<{width}}  {info.title}{level}{expected}")
    write(f"{len(infos)} cases")


def _worst(verdicts: Iterable[str]) -> str:
    from reports.style import VERDICT_ORDER
    seen = set(verdicts)
    return next((v for v in VERDICT_ORDER if v in seen), "skipped")


def requirement_table(records: Sequence[Mapping[str, Any]], width: int = 100) -> Any:
    """One row per judged requirement, in PROTOCOL.md order: its level, verdict and case counts.

    MAY cases are left out (they are findings, see :func:`finding_lines`); the
    requirement's words are added when ``width`` leaves room for them.
    """
    from rich.table import Table

    from reports.style import VERDICT_ORDER, verdict_text
    by_req: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for record in records:
        if record.get("level") != "MAY":
            by_req[str(record.get("requirement"))].append(record)
    order = [r for r in REQUIREMENTS if r in by_req] + sorted(set(by_req) - set(REQUIREMENTS))
    rows = []
    for req in order:
        cases = by_req[req]
        counts = Counter(str(c.get("verdict")) for c in cases)
        spread = ", ".join(f"{counts[v]} {v}" for v in VERDICT_ORDER if counts.get(v))
        rows.append((req, str(cases[0].get("level")), _worst(counts), spread,
                     str(cases[0].get("requirement_text") or "")))
    names = ("requirement", "level", "verdict", "cases")
    widths = [max([len(name)] + [len(str(row[i])) for row in rows]) for i, name in enumerate(names)]
    words = width - sum(widths) - 3 * len(widths) - 4  # what the borders and padding leave
    table = Table(title="Verdicts by requirement", title_justify="left")
    for name, column_width in zip(names, widths, strict=True):
        table.add_column(name, no_wrap=True, min_width=column_width)
    if words >= 24:
        table.add_column("what it says", no_wrap=True, overflow="ellipsis", max_width=words)
    for req, levels, worst, spread, text in rows:
        cells: list[Any] = [req, levels, verdict_text(worst), spread]
        table.add_row(*cells, *([text] if words >= 24 else []))
    return table


def finding_lines(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """A line per informational (MAY) case: what the server was found to do."""
    return [f"{r.get('id')}: {str(r.get('detail') or '').strip()}" for r in records
            if r.get("verdict") == "informational"]


def problem_lines(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """A line per case that did not pass: verdict, ID, and what came instead."""
    lines = []
    for record in records:
        verdict = str(record.get("verdict"))
        if verdict not in _PROBLEMS:
            continue
        detail = str(record.get("detail") or "").strip().splitlines()
        got = next((d.strip() for d in detail if d.strip().startswith("got:")), detail[0] if detail else "")
        lines.append(f"{verdict:<10} {record.get('id')}  {got[:120]}")
    return lines


def _head_lines(doc: Mapping[str, Any]) -> list[tuple[str, str]]:
    summary = doc.get("summary") or {}
    target = doc.get("target") or {}
    address = target.get("address")
    where = f" at {address}" if address and address != target.get("label") else ""
    lines = [(f"chat-conformance judged {target.get('label')}{where}: "
              f"{summary.get('total', 0)} cases", "bold")]
    preflight = summary.get("preflight") or {}
    if preflight.get("stopped"):
        lines.append((f"Preflight: {preflight.get('headline')}", "bold red"))
        lines.append((f"  evidence: {preflight.get('evidence')}", ""))
        lines.append(("  the cases were not run: each would fail at its first join; "
                      "--no-preflight runs them all", ""))
    for dialect in [] if preflight.get("stopped") else summary.get("dialects") or []:
        lines.append((f"Dialect recognised -- {dialect}", "bold yellow"))
    if summary.get("target_error"):
        lines.append((f"Target unavailable: {summary['target_error']}", "bold red"))
    if summary.get("stopped"):
        lines.append((f"Stopped early: {summary['stopped']}", "bold red"))
    restarts = summary.get("restarts") or []
    if restarts:
        lines.append((f"The server was started afresh {len(restarts)} time(s) "
                      "(after a case that failed or killed it):", "yellow"))
        lines += [(f"  {note}", "") for note in restarts[:10]]
        if len(restarts) > 10:
            lines.append((f"  ... and {len(restarts) - 10} more (see the JSON results)", ""))
    for pattern in summary.get("unmatched_expectations") or []:
        lines.append((f"Expectations entry {pattern!r} matches no case", "yellow"))
    return lines


def render_report(reporter: Any, doc: Mapping[str, Any], part: str) -> None:
    """Print the report's ``head`` or ``tail`` through pytest's terminal reporter."""
    from rich.console import Console
    from rich.text import Text

    from reports.render_conformance import conformance_summary
    writer = reporter._tw
    # Rendered for the terminal's encoding: pytest's writer would otherwise turn the whole
    # report into one line of escapes at the first character a cp1252 stdout lacks.
    out = EncodedBuffer(stream_encoding(getattr(writer, "_file", None)))
    console = Console(file=out, width=max(80, writer.fullwidth), force_terminal=writer.hasmarkup,
                      color_system="standard" if writer.hasmarkup else None, highlight=False,
                      soft_wrap=False)
    records = doc.get("records") or []
    if part == "head":
        reporter.write_sep("=", "chat-conformance")
        for text, style in _head_lines(doc):
            console.print(Text(text, style=style), soft_wrap=True)  # no hard breaks: easy to grep
    else:
        reporter.write_sep("=", "chat-conformance summary")
        if records:
            console.print(requirement_table(records, console.width))
            findings = finding_lines(records)
            if findings:
                console.print(Text("Found (MAY: reported, not judged):", style="bold"))
                for line in findings:
                    console.print(Text("  " + line), soft_wrap=True)
            problems = problem_lines(records)
            if problems:
                console.print(Text("Cases that did not pass:", style="bold"))
                for line in problems:
                    console.print(Text("  " + line), soft_wrap=True)
        console.print(conformance_summary(doc))
    reporter.write(out.getvalue())
