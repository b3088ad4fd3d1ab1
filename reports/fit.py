"""Tables that never drop a column: as a table where it fits, stacked where it does not.

Rich squeezes a table that is wider than the terminal by cutting its cells to ``…``,
so at 80 columns (a laptop terminal, a pipe, a CI log) a latency table loses the very
columns a reader came for.  :func:`fit_width` wraps a table: at render time it measures
the table against the width it is given and, when even the table's narrowest layout
does not fit, prints the same cells stacked instead, one block per row with every
column named::

    One-way delivery latency
    clients 6
      p50       265 µs
      p90       5.46 ms
      ...

Nothing is lost either way, and the choice is made per console, so the same report
prints as a table on a wide terminal and stacked in a narrow one.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

__all__ = ["FitWidth", "fit_width", "fit_widths"]

def _plain(renderable: object) -> str:
    return renderable.plain if isinstance(renderable, Text) else str(renderable) \
        if isinstance(renderable, str) else ""


def _words_of(table: Table) -> set[str]:
    """Every word of the table's headers and text cells."""
    texts = []
    for column in table.columns:
        texts.append(_plain(column.header))
        texts.extend(_plain(cell) for cell in column.cells)
    return {word for text in texts for word in text.split()}


class FitWidth:
    """A table, or its stacked form when its narrowest layout is wider than the console."""

    def __init__(self, table: Table) -> None:
        self.table = table

    def fits(self, console: Console, options: ConsoleOptions) -> bool:
        """Whether rich lays the table out at this width with every word of it intact.

        Rich's own measurement cannot say this: past the table's natural width it wraps
        some columns, cuts others to ``…`` and squeezes some to nothing.  Wrapping breaks
        lines only between words, so the table fits when every word of its headers and
        cells is still there, whole, once it is laid out.
        """
        lines = console.render_lines(self.table, options.update(height=None), pad=False)
        drawn = {word for line in lines for word in "".join(s.text for s in line).split()}
        return _words_of(self.table) <= drawn

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if self.fits(console, options):
            yield self.table
        else:
            yield from stacked(self.table)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement.get(console, options, self.table).clamp(max_width=options.max_width)


def stacked(table: Table) -> Iterable[RenderableType]:
    """The table's title, then per row its first cell and the other cells under their headers."""
    if table.title:
        yield table.title if isinstance(table.title, Text) else Text(str(table.title), style="bold")
    columns = table.columns
    headers = [column.header if isinstance(column.header, Text) else Text(str(column.header))
               for column in columns]
    rows = list(zip(*(list(column.cells) for column in columns), strict=True))
    for row in rows:
        block = Table.grid(padding=(0, 1))
        block.add_column(style="dim", no_wrap=True)
        block.add_column(overflow="fold")
        if table.show_header and headers[0].plain:
            block.add_row(headers[0], row[0])
        else:
            block.add_row(row[0], "")
        for header, cell in zip(headers[1:], row[1:], strict=True):
            block.add_row(Text("  ") + header, cell)
        yield block
    if table.caption:
        yield table.caption if isinstance(table.caption, Text) else Text(str(table.caption), style="dim")


def fit_width(renderable: RenderableType) -> RenderableType:
    """Wrap a :class:`~rich.table.Table` (not a grid) in :class:`FitWidth`; anything else as it is."""
    if isinstance(renderable, Table) and renderable.box is not None:  # grids have no box
        return FitWidth(renderable)
    return renderable


def fit_widths(renderables: Iterable[RenderableType]) -> list[RenderableType]:
    return [fit_width(r) for r in renderables]
