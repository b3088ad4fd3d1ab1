"""Console output that survives a terminal which is not UTF-8.

A Windows console window is UTF-8 for Python, but stdout redirected to a file
or a pipe there uses the ANSI code page (cp1252, cp437 ...), and so may a
terminal on any system with a legacy locale.  Python's streams then raise
UnicodeEncodeError on the first character the code page lacks -- an emoji in
a relayed message, a box-drawing character in a report table.  The console
scripts call :func:`tolerate_unencodable` first, so such characters degrade to
``?`` instead; rich sees the stream's encoding and draws ASCII tables on its
own.  :func:`degrade` and :class:`EncodedBuffer` do the same for text that is
rendered into a string first and written elsewhere (the conformance report
goes through pytest's terminal writer).
"""

from __future__ import annotations

import io
import sys
from typing import TextIO

__all__ = ["EncodedBuffer", "degrade", "stream_encoding", "tolerate_unencodable"]


def tolerate_unencodable(*streams: TextIO) -> None:
    """Make ``streams`` (default: stdout and stderr) write '?' for what their encoding
    cannot represent, instead of raising UnicodeEncodeError."""
    for stream in streams or (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper) and stream.errors == "strict":
            stream.reconfigure(errors="replace")


def stream_encoding(stream: object) -> str:
    """The encoding ``stream`` writes in (UTF-8 when it does not say, like a StringIO)."""
    encoding = getattr(stream, "encoding", None)
    return encoding if isinstance(encoding, str) and encoding else "utf-8"


def degrade(text: str, encoding: str) -> str:
    """``text`` with every character ``encoding`` lacks replaced by '?'."""
    return text.encode(encoding, "replace").decode(encoding)


class EncodedBuffer(io.StringIO):
    """A StringIO that claims ``encoding``, so a rich Console rendering into it chooses
    what a stream in that encoding can show (ASCII table borders for cp1252)."""

    def __init__(self, encoding: str) -> None:
        super().__init__()
        self._claimed_encoding = encoding

    @property  # StringIO's encoding is a read-only None; typeshed calls it writeable
    def encoding(self) -> str:  # type: ignore[override]
        return self._claimed_encoding

    def getvalue(self) -> str:
        """The text, degraded to what the claimed encoding can represent."""
        return degrade(super().getvalue(), self._claimed_encoding)
