"""One recorded console that prints the terminal report and becomes the HTML and text files.

Like rich's ``examples/export.py``: everything is printed once, through one
``Console(record=True)``; the text file and the HTML file are exports of that
same recording, so the three never diverge.  The HTML adds what a terminal
cannot show: the plots (PNG from :mod:`reports.plots`, embedded as base64 so
the report is one standalone file with no network access needed).

The report is built in sections: after each section's renderables are printed,
its recording is exported (with inline styles, so sections never clash) and
the section's plots are placed right after it in the HTML.
"""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console, RenderableType
from rich.terminal_theme import MONOKAI
from rich.text import Text

from reports.plots import Plot
from reports.results import write_text_atomic
from reports.style import Folded

__all__ = ["RecordedReport", "plot_html"]

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="chat-report">
<title>{title}</title>
<style>
body {{ margin: 0; padding: 1.5em; background: #f4f4f2; color: #222;
       font-family: system-ui, -apple-system, "Segoe UI", sans-serif; }}
h1 {{ font-size: 1.4em; margin: 0 0 0.8em 0; }}
pre.terminal code {{ font-family: inherit; }}
pre.terminal {{ background: {background}; color: {foreground}; padding: 1em 1.2em; margin: 0 0 1.2em 0;
       border-radius: 6px; overflow-x: auto; line-height: normal;
       font-family: "DejaVu Sans Mono", Menlo, Consolas, "Liberation Mono", monospace; font-size: 13px; }}
figure.plot {{ background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: 0.8em;
       margin: 0 0 1.2em 0; max-width: 820px; }}
figure.plot img {{ display: block; max-width: 100%; height: auto; }}
figure.plot figcaption {{ font-size: 0.9em; color: #555; margin-top: 0.5em; }}
details.folded {{ margin: -0.8em 0 0.6em 0; }}
details.folded summary {{ cursor: pointer; font-family: "DejaVu Sans Mono", Menlo, monospace;
       font-size: 13px; padding: 0.2em 0; }}
</style>
</head>
<body>
<h1>{title}</h1>
{body}
</body>
</html>
"""


def plot_html(plot: Plot) -> str:
    """A ``<figure>`` holding the PNG inline as a data URI."""
    data = base64.b64encode(plot.png).decode("ascii")
    caption = f"<figcaption><b>{html.escape(plot.title)}.</b> {html.escape(plot.caption)}</figcaption>"
    return (f'<figure class="plot"><img alt="{html.escape(plot.title, quote=True)}" '
            f'src="data:image/png;base64,{data}">{caption}</figure>')


@dataclass
class RecordedReport:
    """Print sections to one recording console; export the same recording as text and HTML."""

    console: Console
    title: str = "chat-harness report"
    _text_parts: list[str] = field(default_factory=list)
    _html_parts: list[str] = field(default_factory=list)
    plot_count: int = 0

    def __post_init__(self) -> None:
        if not self.console.record:
            raise ValueError("RecordedReport needs a Console(record=True)")

    def add(self, renderables: Iterable[RenderableType], plots: Sequence[Plot] = ()) -> None:
        """Print one section, then file its recording (and its plots) away.

        A :class:`~reports.style.Folded` renderable becomes an HTML ``<details>``
        of its own, closed until clicked; the text export holds it in full.
        """
        for renderable in renderables:
            if isinstance(renderable, Folded):
                self._flush()
                for part in renderable.renderables:
                    self.console.print(part)
                self._flush(folded=renderable.title)
            else:
                self.console.print(renderable)
        if plots:
            names = ", ".join(plot.title for plot in plots)
            self.console.print(Text(f"Plots in the HTML report: {names}", style="dim italic"))
        self.console.print()
        self._flush()
        self._html_parts.extend(plot_html(plot) for plot in plots)
        self.plot_count += len(plots)

    def _flush(self, folded: str | None = None) -> None:
        """File what was printed since the last flush as text and as one HTML block."""
        text = self.console.export_text(clear=False)
        if not text.strip():
            self.console.export_html(clear=True)
            return
        self._text_parts.append(f"{folded}\n{text}" if folded else text)
        fragment = self.console.export_html(theme=MONOKAI, clear=True, inline_styles=True,
                                            code_format="{code}")
        block = f'<pre class="terminal"><code>{fragment}</code></pre>'
        if folded:
            block = (f'<details class="folded"><summary>{html.escape(folded)}</summary>'
                     f"{block}</details>")
        self._html_parts.append(block)

    def text(self) -> str:
        return "".join(self._text_parts)

    def html(self) -> str:
        return _PAGE.format(title=html.escape(self.title), body="\n".join(self._html_parts),
                            background=MONOKAI.background_color.hex,
                            foreground=MONOKAI.foreground_color.hex)

    def save_text(self, path: str | os.PathLike[str]) -> Path:
        return write_text_atomic(path, self.text())

    def save_html(self, path: str | os.PathLike[str]) -> Path:
        return write_text_atomic(path, self.html())
