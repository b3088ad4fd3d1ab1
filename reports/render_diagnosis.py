"""Terminal rendering of a conformance document's root causes, rustc-style, and the case lines.

Pure builders over the document's ``diagnosis`` list (reports/FORMAT.md):
each cause is a block that says what is broken, what the server does, the
smallest evidence (a failing case's expected/got and last wire events) and
``help:`` what to change, with its PROTOCOL.md link; then every case that did
not pass gets one line naming the cause it is counted under.  Everything the
server sent is data: it goes into ``Text`` (never parsed as markup) through
:func:`reference.printable.printable_text`, so it cannot drive the terminal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from reference.printable import printable_text
from reports.style import VERDICT_STYLES

__all__ = ["FULL_EVIDENCE_CAUSES", "cause_blocks", "problem_case_lines"]

#: Causes shown with their evidence; the rest get their explanation and fix only.
FULL_EVIDENCE_CAUSES = 5
#: Transcript lines of evidence printed per cause (the JSON keeps a few more).
EVIDENCE_LINES = 3
PROBLEMS = ("fail", "error", "xpass", "non-strict")

Document = Mapping[str, Any]


def _safe(text: object) -> str:
    """Server-originated text as data (the harness's one printable(), newlines kept)."""
    return printable_text(str(text), keep_newlines=True)


def _cause_block(number: int, cause: Mapping[str, Any], full: bool) -> RenderableType:
    cases = list(cause.get("cases") or [])
    head = Text.assemble((f"{number}. ", "bold"), (f"[{cause.get('requirement')}] ", "bold red"),
                         (str(cause.get("title") or ""), "bold"),
                         (f"  ({len(cases)} failed case{'s' if len(cases) != 1 else ''})" if cases
                          else "  (found before any case ran)", "dim"))
    parts: list[RenderableType] = [head, Text("   " + _safe(cause.get("explanation") or ""))]
    ev = cause.get("evidence") or {}
    if full and ev:
        parts.append(Text.assemble(("   evidence: ", "bold"), str(ev.get("case") or "")))
        for line in str(ev.get("detail") or "").splitlines()[:3]:
            parts.append(Text("     " + _safe(line.strip())))
        for line in list(ev.get("transcript") or [])[-EVIDENCE_LINES:]:
            parts.append(Text("       " + _safe(line), style="dim", no_wrap=True, overflow="ellipsis"))
    parts.append(Text.assemble(("   help: ", "bold green"), _safe(cause.get("fix") or ""), " ",
                               (f"({cause.get('link')})", "cyan")))
    return Group(*parts)


def cause_blocks(doc: Document) -> list[RenderableType]:
    """The ranked root causes (most likely first), or nothing when every case held."""
    diagnosis = list(doc.get("diagnosis") or [])
    summary = doc.get("summary") or {}
    if not diagnosis:
        return []
    explained = sum(len(c.get("cases") or []) for c in diagnosis)
    causes = f"{len(diagnosis)} cause{'s' if len(diagnosis) != 1 else ''}"
    cases = f"{explained} failed case{'s' if explained != 1 else ''}"
    out: list[RenderableType] = [Text(f"Root causes, most likely first ({causes} for {cases}):",
                                      style="bold underline")]
    if summary.get("recognised"):
        out.append(Text(_safe(summary["recognised"]), style="bold yellow"))
    for number, cause in enumerate(diagnosis, 1):
        out.append(_cause_block(number, cause, full=number <= FULL_EVIDENCE_CAUSES))
    return out


def _got(record: Mapping[str, Any]) -> str:
    detail = [d.strip() for d in str(record.get("detail") or "").strip().splitlines() if d.strip()]
    got = next((d for d in detail if d.startswith("got:")), detail[0] if detail else "")
    return got.removeprefix("got:").strip()


def problem_case_lines(doc: Document) -> list[RenderableType]:
    """One line per case that did not pass: verdict, ID, the cause it counts under, what came."""
    records: Sequence[Mapping[str, Any]] = doc.get("records") or []
    problems = [r for r in records if r.get("verdict") in PROBLEMS]
    if not problems:
        return []
    under = {case: number for number, cause in enumerate(doc.get("diagnosis") or [], 1)
             for case in cause.get("cases") or []}
    grid = Table.grid(padding=(0, 1), expand=True)
    grid.add_column(no_wrap=True)
    grid.add_column(no_wrap=True, justify="right")
    grid.add_column(no_wrap=True)
    grid.add_column(no_wrap=True, overflow="ellipsis", ratio=1)
    # A crash verdict (``crash[CASE]``) shares its case's line when that case failed too, so
    # a server that dies in many cases keeps the list one line per case.
    listed = {str(r.get("id")) for r in problems}
    crashed = {str(r.get("id"))[6:-1] for r in problems
               if str(r.get("id")).startswith("crash[") and str(r.get("id"))[6:-1] in listed}
    for record in problems:
        verdict = str(record.get("verdict"))
        case_id = str(record.get("id"))
        if case_id.startswith("crash[") and case_id[6:-1] in crashed:
            continue
        cause = under.get(case_id)
        label = case_id + (" (and the server died: crash verdict)" if case_id in crashed else "")
        grid.add_row(Text("  " + verdict, style=VERDICT_STYLES.get(verdict, "")),
                     f"#{cause}" if cause else "", Text(label), Text(_safe(_got(record))))
    out: list[RenderableType] = [Text("Cases that did not pass (verdict, root cause, case, what came):",
                                      style="bold"), grid]
    return out
