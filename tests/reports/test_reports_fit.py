"""Tables never drop a column: stacked at 80 columns, a table where they fit (reports.fit)."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from rich.table import Table
from test_reports_samples import bench_doc, conformance_doc, latency_doc, limits_doc

from reports.fit import FitWidth, fit_width
from reports.render_bench import renderables_for


def render(renderable: object, width: int) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None, legacy_windows=False)
    console.print(renderable)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert all(len(line) <= width for line in out.splitlines())
    return out


def wide_table() -> Table:
    table = Table(title="One-way delivery latency")
    for header in ("clients", "p50", "p90", "p99", "p99.9", "max", "mean", "samples", "fan-out p99"):
        table.add_column(header, justify="right", no_wrap=True)
    table.add_row("6", "239 µs", "6.04 ms", "14.8 ms", "21.2 ms", "21.2 ms", "1.71 ms", "500", "14.8 ms")
    table.add_row("50", "1.2 ms", "9.9 ms", "31.0 ms", "40.1 ms", "44.0 ms", "3.30 ms", "9,000", "35 ms")
    return table


def words(out: str) -> set[str]:
    return set(out.split())


def test_a_table_that_fits_is_printed_as_a_table() -> None:
    out = render(fit_width(wide_table()), 160)
    assert "┃" in out and "…" not in out


@pytest.mark.parametrize("width", [80, 60, 40])
def test_a_table_that_does_not_fit_is_stacked_with_every_cell(width: int) -> None:
    plain = render(wide_table(), width)
    assert "…" in plain or not {"fan-out", "9,000"} <= words(plain)  # rich alone loses cells here
    out = render(fit_width(wide_table()), width)
    assert "…" not in out and "┃" not in out
    for word in ("clients", "p99.9", "fan-out", "239", "9,000", "44.0", "35"):
        assert word in words(out), word
    assert out.index("239 µs") < out.index("9,000"), "rows keep their order"


def test_grids_and_text_are_left_alone() -> None:
    grid = Table.grid()
    assert fit_width(grid) is grid
    assert not isinstance(fit_width("text"), FitWidth)


BOX = set("┃│┏┓┗┛┡┩└┘━─╇╋┳┻┣┫├┤┬┴┼╭╮╰╯")


@pytest.mark.parametrize("make", [conformance_doc, latency_doc, limits_doc, bench_doc])
def test_every_report_keeps_every_word_at_80_columns(make: object) -> None:
    doc = make()  # type: ignore[operator]
    narrow = "".join(render(r, 80) for r in renderables_for(doc))
    wide = "".join(render(r, 250) for r in renderables_for(doc))
    missing = {w for w in words(wide) - words(narrow) if not set(w) <= BOX}
    assert not missing, sorted(missing)[:20]
