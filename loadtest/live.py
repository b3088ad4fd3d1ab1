"""Rich live progress and the end-of-run summary for every ``chat-load`` subcommand.

While a run goes on, :class:`LiveStatus` shows a progress bar and a few
counters (refreshed four times a second from whatever the run last reported).
At the end, :func:`print_document` renders the results document with the
shared renderers in reports.render_load, so the terminal summary and
``chat-report`` show the same numbers the same way, and adds the generator's
bottleneck warning as a loud red panel.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from reports.fit import fit_width
from reports.render_bench import renderables_for
from reports.style import document_header

__all__ = ["LiveStatus", "calibration_table", "calibration_verdict", "print_document", "print_error"]



class LiveStatus:
    """A live panel: title, progress bar (done/total) and key-value counters."""

    def __init__(self, console: Console, title: str) -> None:
        self.console = console
        self.title = title
        self.done = 0.0
        self.total = 1.0
        self.fields: dict[str, Any] = {}
        self._live = Live(self._render(), console=console, refresh_per_second=4, transient=True,
                          redirect_stdout=False, redirect_stderr=False)

    def update(self, done: float | None = None, total: float | None = None,
               **fields: Any) -> None:
        if done is not None:
            self.done = done
        if total is not None:
            self.total = max(total, 1e-9)
        self.fields.update(fields)
        self._live.update(self._render())

    def _render(self) -> RenderableType:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold")
        table.add_column()
        for key, value in self.fields.items():
            table.add_row(key, value if isinstance(value, Text) else Text(str(value)))
        bar = ProgressBar(total=self.total, completed=min(self.done, self.total), width=50)
        # The title names the target (a --server-cmd may hold "[/]"): text, never markup.
        return Panel(Group(bar, table), title=Text(self.title), title_align="left", expand=False)

    def __enter__(self) -> LiveStatus:
        self._live.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._live.stop()


def print_document(console: Console, doc: Mapping[str, Any]) -> None:
    """The end-of-run summary of a results document, with loud generator warnings."""
    calibrating = any(r.get("group") == "calibrate" for r in doc.get("records", []))
    # chat-load calibrate's records are bench-shaped for chat-report; here they get their own table.
    renderables = [document_header(doc, "Calibration")] if calibrating else renderables_for(doc)
    for renderable in renderables:
        console.print(renderable)
    warnings = [r["generator"]["warning"] for r in doc.get("records", [])
                if isinstance(r.get("generator"), dict) and r["generator"].get("warning")]
    for warning in dict.fromkeys(warnings):
        console.print(Panel(Text(warning, style="bold"), title="WARNING", border_style="bold red",
                            style="red"))
    summary = doc.get("summary", {})
    if "within_30_percent" in summary:  # chat-load calibrate's verdicts
        console.print(fit_width(calibration_table(doc)))
        console.print(calibration_verdict(summary))
    error = summary.get("error")
    if error:
        print_error(console, error)


def calibration_table(doc: Mapping[str, Any]) -> Table:
    """The calibrate rounds side by side: bare loop and generator p50 per round, and absorption."""
    bare, generated, absorbed = doc["records"][:3]
    table = Table(title="Measuring the instrument", title_justify="left")
    table.add_column("measurement")
    table.add_column("per round", overflow="fold")
    table.add_column("median", justify="right")
    table.add_row("bare send-then-receive loop, p50", ", ".join(f"{v} µs" for v in bare["p50_us"]),
                  f"{bare['median_s'] * 1e6:.0f} µs")
    table.add_row("chat-load latency, 1 receiver, p50", ", ".join(f"{v} µs" for v in generated["p50_us"]),
                  f"{generated['median_s'] * 1e6:.0f} µs")
    table.add_row(f"absorb: {absorbed['deliveries']:,} relays on {absorbed['params']['connections']} "
                  "connections", f"{absorbed['wall_s']} s at {absorbed['cpu_percent']}% CPU",
                  f"{absorbed['frames_per_s']:,} frames/s")
    room = doc["summary"].get("versus_locust_latency")
    if room:
        for side, name in (("locust", "locust swarm"), ("native", "chat-load")):
            table.add_row(f"latency, {name}: {room['users']} users x {room['rate_each']:g}/s",
                          f"{room[f'{side}_received']:,} deliveries", f"p50 {room[f'{side}_p50_us']} µs")
        table.add_row("  swarm p50 / chat-load p50", "the issue's bar: at most 2", f"{room['p50_ratio']}")
    versus = doc["summary"].get("versus_locust")
    if versus:
        rounds = versus.get("rounds") or [versus]
        for side, name in (("locust", "locust swarm"), ("native", "chat-load")):
            pers = [r[f"{side}_per_cpu_s"] for r in rounds]
            each = ", ".join(f"{r[f'{side}_received']:,} in {r[f'{side}_cpu_s']} CPU s (p50 "
                             f"{r[f'{side}_p50_us']} µs, {r.get(f'{side}_relays_per_read') or '-'} a read)"
                             for r in rounds)
            middle = statistics.median(pers) if None not in pers else None
            tick = versus.get("native_read_tick_ms") if side == "native" else None
            name += f", reads every {tick:g} ms" if tick else ""
            table.add_row(f"efficiency, {name}: {versus['users']} users x {versus['rate_each']:g}/s",
                          each, f"{middle:,.0f} per CPU s" if middle else "-")
        table.add_row("  chat-load / swarm deliveries per CPU s, median of rounds",
                      "the issue's bar: at least 3; rounds: "
                      + ", ".join(str(r["efficiency_ratio"]) for r in rounds),
                      f"{versus['efficiency_ratio']}")
    return table


def calibration_verdict(summary: Mapping[str, Any]) -> Text:
    good = summary["within_30_percent"]
    return Text.assemble(
        ("Instrument: ", "bold"),
        (f"generator p50 {summary['generator_p50_us']} µs vs bare loop {summary['bare_p50_us']} µs "
         f"(ratio {summary['ratio']:.2f}, ", ""),
        ("within 30%" if good else "NOT within 30%", "bold green" if good else "bold red"),
        (f"); one process absorbs {summary['absorb_frames_per_s']:,} frames/s "
         f"at {summary['absorb_cpu_percent']}% CPU", ""))


def print_error(console: Console, message: str) -> None:
    console.print(Panel(Text(message), title="the run could not finish", border_style="red"))
