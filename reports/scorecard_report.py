"""The scorecard's report: a headline per step, the steps table, then each step's full section.

Pure builders over a :class:`reports.scorecard.ScorecardRun` (data in,
renderables out), plus :func:`write_scorecard_report`, which prints them through
one recording console and saves ``report.txt`` and ``report.html`` beside the
JSON files, so the terminal, the text file and the HTML say the same thing.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from typing import Any

from rich.console import Console, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from reports.html import RecordedReport
from reports.plots import Plot, plots_for
from reports.render_bench import renderables_for
from reports.render_conformance import conformance_group_tables, conformance_renderables
from reports.scorecard import ScorecardRun, StepOutcome
from reports.style import add_plain_row, fmt_count, fmt_seconds, fmt_us

__all__ = ["STEP_STYLES", "headline", "scorecard_sections", "steps_table", "write_scorecard_report"]

STEP_STYLES = {
    "ok": "bold green",
    "failures": "bold red",
    "target-unavailable": "bold red",
    "error": "bold white on red",
    "timeout": "bold red",
    "no-results": "bold red",
    "not-installed": "bold yellow",
}

Document = Mapping[str, Any]


def _conformance_headline(doc: Document) -> Text:
    summary = doc.get("summary") or {}
    records = doc.get("records") or []
    total = summary.get("total", len(records))
    fails = int(summary.get("fail") or 0) + int(summary.get("error") or 0)
    should = int(summary.get("non-strict") or 0)
    passed = int(summary.get("pass") or 0)
    if fails:
        text = Text("FAIL", style="bold red")
    elif summary.get("incomplete"):  # an interrupted run is never a PASS
        text = Text("INCOMPLETE", style="bold yellow")
    else:
        text = Text("PASS", style="bold green")
    text.append(f"  {passed}/{total} cases pass")
    for verdict in ("informational", "skipped", "xfail"):
        if summary.get(verdict):
            text.append(f", {summary[verdict]} {verdict}", style="dim")
    if fails:
        text.append(f", {fails} MUST failures or errors", style="red")
    if should:
        text.append(f", {should} SHOULD not met", style="yellow")
    for dialect in summary.get("dialects") or []:
        text.append(f"; dialect: {dialect}", style="yellow")
    return text


def _latency_headline(doc: Document) -> Text:
    records = [r for r in doc.get("records") or [] if isinstance(r.get("clients"), int)]
    if not records:
        return Text("no scenarios recorded", style="yellow")
    top = max(records, key=lambda r: r["clients"])
    latency = top.get("latency_us") or {}
    summary = doc.get("summary") or {}
    ok = summary.get("ok")
    text = Text(f"p99 {fmt_us(latency.get('p99'))} at {top['clients']} clients", style="bold")
    text.append(f" (p50 {fmt_us(latency.get('p50'))}, {fmt_count(top.get('deliveries_per_s'))} deliveries/s)")
    if ok is False:
        counts = ", ".join(f"{name} {fmt_count(summary.get(name))}"
                           for name in ("lost", "duplicated", "reordered"))
        text.append(f"; NOT CORRECT: {counts}", style="bold red")
    elif ok:
        text.append("; nothing lost, duplicated or reordered", style="green")
    return text


def _limits_headline(doc: Document) -> Text:
    summary = doc.get("summary") or {}
    cause = summary.get("cause") or "?"
    text = Text(f"held {fmt_count(summary.get('highest_healthy'))} clients", style="bold")
    if summary.get("finding"):
        text.append(f"; FINDING: {cause}", style="bold red")
    else:
        text.append(f"; stopped by {cause}", style="green" if cause == "reached-max" else "yellow")
    if summary.get("cause_detail"):
        text.append(f" ({summary['cause_detail']})", style="dim")
    return text


def headline(outcome: StepOutcome) -> Text:
    """One line: what this step found, or why it found nothing."""
    doc = outcome.document
    if doc is None:
        return Text(outcome.detail or outcome.status, style=STEP_STYLES.get(outcome.status, ""))
    kind = doc.get("kind")
    if kind == "conformance":
        return _conformance_headline(doc)
    if kind == "latency":
        return _latency_headline(doc)
    if kind == "limits":
        return _limits_headline(doc)
    return Text(f"{kind} results", style="bold")


def steps_table(run: ScorecardRun) -> Table:
    table = Table(title="Steps", title_justify="left", expand=True)
    table.add_column("step", style="bold", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("took", justify="right", no_wrap=True)
    table.add_column("result", ratio=1, overflow="fold")
    for outcome in run.outcomes:
        result = headline(outcome)
        if outcome.target_note:
            result = result + Text(f"\ntarget died during this step: {outcome.target_note}", style="bold red")
        status = Text(outcome.status, style=STEP_STYLES.get(outcome.status, ""))
        add_plain_row(table, outcome.step.title, status, fmt_seconds(outcome.duration_s), result)
    return table


def _front_page(run: ScorecardRun) -> list[RenderableType]:
    when = _dt.datetime.fromtimestamp(run.started, _dt.UTC).isoformat(timespec="seconds")
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    add_plain_row(grid, Text("chat-harness scorecard", style="bold underline"), "")
    add_plain_row(grid, "target", run.target_label)
    add_plain_row(grid, "started", when)
    add_plain_row(grid, "took", fmt_seconds(run.duration_s))
    add_plain_row(grid, "output", str(run.config.out_dir))
    if run.interrupted:
        verdict = Text(f"INCOMPLETE: {run.interrupted}; only the steps before it are reported",
                       style="bold yellow")
    elif run.exit_status == 0:
        verdict = Text("every step ran and passed", style="bold green")
    else:
        verdict = Text("some steps failed or found problems: see below", style="bold red")
    add_plain_row(grid, "verdict", verdict)
    return [grid, steps_table(run)]


def _failed_step_panel(outcome: StepOutcome) -> Panel:
    body = Text()
    body.append(f"{outcome.detail}\n", style="bold")
    body.append(f"$ {' '.join(outcome.argv)}\n", style="dim")
    tail = outcome.log_tail()
    if tail:
        body.append(f"last lines of {outcome.log_path.name}:\n", style="bold")
        body.append(tail, style="dim")
    return Panel(body, title=Text.assemble((outcome.step.title, "bold"), ": ",
                                           (outcome.status, STEP_STYLES.get(outcome.status, ""))),
                 title_align="left", border_style=STEP_STYLES.get(outcome.status, "red"))


def scorecard_sections(run: ScorecardRun) -> list[tuple[list[RenderableType], list[Plot]]]:
    """(renderables, plots) per section: the front page, one section per step, then the case list.

    The conformance section shows the verdicts, findings and failures; the full
    list of passing cases goes last, so the measurements and their plots are not
    buried under fifty rows of "pass".
    """
    sections: list[tuple[list[RenderableType], list[Plot]]] = [(_front_page(run), [])]
    appendix: list[RenderableType] = []
    for outcome in run.outcomes:
        renderables: list[RenderableType] = []
        if outcome.status not in ("ok", "failures"):
            renderables.append(_failed_step_panel(outcome))
        plots: list[Plot] = []
        doc = outcome.document
        if doc is not None and doc.get("kind") == "conformance":
            renderables.extend(conformance_renderables(doc, show_cases=False, transcripts=True))
            appendix.append(Text("Conformance cases by requirement group", style="bold underline"))
            appendix.extend(conformance_group_tables(doc.get("records") or []))
        elif doc is not None:
            renderables.extend(renderables_for(doc))
            plots = plots_for(doc)
        sections.append((renderables, plots))
    if appendix:
        sections.append((appendix, []))
    return sections


def write_scorecard_report(run: ScorecardRun, console: Console) -> RecordedReport:
    """Print the report through ``console`` (record=True) and save report.txt and report.html."""
    report = RecordedReport(console, title=f"chat-harness scorecard: {run.target_label}")
    for renderables, plots in scorecard_sections(run):
        report.add(renderables, plots)
    report.save_text(run.config.out_dir / "report.txt")
    report.save_html(run.config.out_dir / "report.html")
    return report
