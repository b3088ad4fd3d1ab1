"""Shared look of every report: verdict colours, number formats, the document header.

The renderers for each results kind (``render_conformance``, ``render_load``,
``render_bench``) and the comparison and matrix tables all format numbers and
colour verdicts through this module, so a p99 or a ``fail`` looks the same
wherever it appears.  Everything here is pure: values in, text or renderables out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.table import Table
from rich.text import Text

__all__ = [
    "Folded",
    "VERDICT_ORDER",
    "VERDICT_STYLES",
    "add_plain_row",
    "document_header",
    "fmt_bytes",
    "fmt_count",
    "fmt_percent",
    "fmt_seconds",
    "fmt_us",
    "verdict_text",
]

#: Worst first: the order in which verdicts are listed in summaries.
VERDICT_ORDER = ("fail", "error", "xpass", "non-strict", "xfail", "informational", "skipped", "pass")

VERDICT_STYLES: dict[str, str] = {
    "pass": "bold green",
    "fail": "bold red",
    "error": "bold white on red",
    "non-strict": "bold yellow",
    "xpass": "bold magenta",
    "xfail": "magenta",
    "informational": "cyan",
    "skipped": "dim",
}

MISSING = "–"


class Folded:
    """Content a reader opens on demand: printed in full on a terminal, an HTML ``<details>``.

    :class:`reports.html.RecordedReport` exports it as a ``<details>`` element
    whose ``<summary>`` is ``title``; everywhere else it prints its title and
    then its content.
    """

    def __init__(self, title: str, *renderables: RenderableType) -> None:
        self.title = title
        self.renderables = renderables

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield Text(self.title, style="bold")
        yield from self.renderables


def add_plain_row(table: Table, *cells: Any, **row_options: Any) -> None:
    """``table.add_row`` with every ``str`` cell taken literally.

    Rich parses markup in plain strings, so a case ID like
    ``relay.basic[one-byte-per-send]`` or a server label would lose its
    ``[...]`` part; results text is data, never markup.
    """
    table.add_row(*(Text(cell) if isinstance(cell, str) else cell for cell in cells), **row_options)


def verdict_text(verdict: str | None) -> Text:
    """A verdict word in its colour (unknown verdicts are shown, unstyled)."""
    word = verdict or "?"
    return Text(word, style=VERDICT_STYLES.get(word, ""))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def fmt_us(value: Any) -> str:
    """A latency given in microseconds, in the unit that keeps 3 significant digits."""
    if not _is_number(value):
        return MISSING
    if value < 1_000:
        return f"{value:.0f} µs"
    if value < 1_000_000:
        return f"{value / 1_000:.3g} ms" if value < 100_000 else f"{value / 1_000:.0f} ms"
    return f"{value / 1_000_000:.3g} s"


def fmt_seconds(value: Any) -> str:
    """A duration in seconds: '850 ms', '3.2 s', '2 min 5 s'."""
    if not _is_number(value):
        return MISSING
    if value == 0:
        return "0 s"
    if value < 1:
        return fmt_us(value * 1_000_000)
    if value < 120:
        return f"{value:.3g} s" if value < 10 else f"{value:.0f} s"
    minutes, seconds = divmod(round(value), 60)
    return f"{minutes} min {seconds} s"


def fmt_bytes(value: Any) -> str:
    """A size in bytes with a binary unit."""
    if not _is_number(value):
        return MISSING
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(size) < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def fmt_count(value: Any) -> str:
    """An integer count with thousands separators; floats get one decimal."""
    if not _is_number(value):
        return MISSING
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.1f}"


def fmt_percent(change: Any) -> str:
    """A relative change (0.12 -> '+12.0%')."""
    if not _is_number(change):
        return MISSING
    return f"{change * 100:+.1f}%"


def document_header(doc: Mapping[str, Any], title: str | None = None) -> Table:
    """Who measured what, where and when: the first lines of every report section."""
    target = doc.get("target") or {}
    env = doc.get("environment") or {}
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    heading = title or f"{doc.get('kind', '?')} results"
    add_plain_row(grid, Text(heading, style="bold underline"), "")
    where = target.get("label") or MISSING
    if target.get("address") and target.get("address") != where:
        where = f"{where} ({target['address']})"
    add_plain_row(grid, "target", where)
    if target.get("command") and target.get("command") != target.get("label"):
        add_plain_row(grid, "command", str(target["command"]))
    add_plain_row(grid, "tool", str(doc.get("tool") or MISSING))
    add_plain_row(grid, "created", str(doc.get("created") or MISSING))
    if env:
        machine = ", ".join(str(part) for part in (
            f"{env.get('implementation', 'Python')} {env.get('python', '')}".strip(),
            env.get("platform"),
            f"{env.get('cpus')} CPUs" if env.get("cpus") else None,
            env.get("hostname"),
        ) if part)
        add_plain_row(grid, "machine", machine)
    if doc.get("source"):
        add_plain_row(grid, "converted from", str(doc["source"]))
    return grid
