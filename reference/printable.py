"""Make server-originated bytes and text safe to show: the one ``printable()`` of the harness.

Everything a server under test sends -- relays, usernames, its stderr lines,
how it exited -- is data, and data must never act on the reader's terminal.
An ``ESC [ 2 J`` clears the screen, ``ESC ] 8 ;;`` (OSC 8) forges a link,
``U+009B`` is a one-character CSI on some terminals, a ``\\r`` overwrites the
line before it and a bidi override (``U+202E``) reorders what a reader sees.
So every such string goes through :func:`printable_text` (text) or
:func:`printable` (bytes) before it reaches a terminal, a text or HTML report,
rich markup or a results file; both show those characters escaped
(``\\x1b``, ``\\x9b``, ``\\u202e``), so the evidence stays visible.

Both floors use this module: it is on the ground floor next to the codec,
knows no terminal library, and is cheap enough to call on every string.
"""

from __future__ import annotations

__all__ = ["BIDI_CONTROLS", "printable", "printable_text", "printable_tree"]

#: Characters that reorder text on screen (Unicode bidi embedding, override, isolate, marks).
BIDI_CONTROLS = frozenset([0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)])


def _escape_for(code: int) -> str:
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}"


_UNSAFE = [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0), *BIDI_CONTROLS]
#: Text: C0, DEL, C1 and bidi controls escaped; a backslash doubled so escapes stay unambiguous;
#: lone surrogates (undecodable bytes under surrogateescape) shown as the byte they stand for.
_TEXT_ESCAPES: dict[int, str] = ({code: _escape_for(code) for code in _UNSAFE}
                                 | {0xDC00 + i: f"\\x{i:02x}" for i in range(0x80, 0x100)}
                                 | {0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t", ord("\\"): "\\\\"})
#: Multi-line text (a report's detail block): newlines and tabs kept, everything else as above.
_BLOCK_ESCAPES: dict[int, str] = {k: v for k, v in _TEXT_ESCAPES.items()
                                  if k not in (0x0A, 0x09, ord("\\"))}


def printable_text(text: str, limit: int | None = None, *, keep_newlines: bool = False) -> str:
    """``text`` with every control, C1 and bidi character escaped; cut at ``limit`` characters.

    ``keep_newlines`` keeps ``\\n`` and ``\\t`` (and does not double backslashes)
    for multi-line blocks such as a failure's detail.  Surrogates that are not
    the escape of an undecodable byte are escaped too, so the result always
    encodes as UTF-8.
    """
    cut = limit is not None and len(text) > limit
    if cut:
        text = text[:limit]
    out = text.translate(_BLOCK_ESCAPES if keep_newlines else _TEXT_ESCAPES)
    if not out.isascii() and any(0xD800 <= ord(c) <= 0xDFFF for c in out):
        out = "".join(f"\\u{ord(c):04x}" if 0xD800 <= ord(c) <= 0xDFFF else c for c in out)
    return out + ("..." if cut else "")


def printable(data: bytes, limit: int = 32) -> str:
    """Bytes as readable text: UTF-8 where valid, escapes for control and invalid bytes."""
    text = data[:limit].decode("utf-8", "surrogateescape")
    return printable_text(text) + ("..." if len(data) > limit else "")


def printable_tree(value: object) -> object:
    """A JSON-like tree with every string made printable (newlines and tabs kept).

    For whole documents: a results file written by us, or read from disk before
    it is rendered, holds nothing that can act on a terminal, whoever wrote it.
    """
    if isinstance(value, str):
        return printable_text(value, keep_newlines=True)
    if isinstance(value, dict):
        return {printable_tree(k): printable_tree(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [printable_tree(v) for v in value]
    return value
