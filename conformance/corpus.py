"""Untidy test data: the payloads and names real servers mangle, kept in one place.

Every case that checks a relay byte for byte (RELAY-1) draws from here, so a
server that cleans, trims, re-encodes or re-frames what it relays meets the
same awkward bytes everywhere.  Each entry is valid UTF-8 (FRAME-4 makes
anything else a protocol error) and must come out exactly as it went in.

The names are parameter IDs as well (``relay.corpus[trailing-spaces]``), so
they are lower-case, short and stable: reports and expectation files use them.
"""

from __future__ import annotations

from reference.protocol import MIN_MAX_PAYLOAD

__all__ = ["MiB", "NAMES", "PAYLOADS", "exactly", "sizes_to_probe"]

MiB = 1024 * 1024


def exactly(size: int, unit: str = "0123456789abcdefghijklmnopqrstuvwxyzé") -> str:
    """Text of exactly ``size`` bytes of UTF-8 (a two-byte é now and then: bytes, not characters)."""
    text = unit * (size // len(unit.encode()))
    return text + "." * (size - len(text.encode()))


#: Messages a tidy test never sends.  Each is relayed as it is, byte for byte.
PAYLOADS: dict[str, str] = {
    "leading-spaces": "   three spaces first",
    "trailing-spaces": "three spaces last   ",
    "only-spaces": "     ",
    "tabs": "\tcol1\tcol2\t",
    "crlf": "line one\r\nline two\r\n",
    "lf": "line one\nline two\n",
    "nul-byte": "before\x00after",
    "control-bytes": "bell\x07 backspace\x08 form feed\x0c del\x7f",
    "esc-sequence": "\x1b[31mred\x1b[0m and \x1b]0;title\x07",
    "two-byte-utf8": "café naïve ÿ",
    "three-byte-utf8": "日本語 €",
    "four-byte-utf8": "emoji 🎉🚀 𝄞",
    "combining-marks": "e\u0301 a\u0308 n\u0303 (combining)",
    "right-to-left": "שלום עולם مرحبا",
    "looks-like-a-header": "5         ",
    "header-and-payload": "5         hello",
    "other-dialect": "bob> hi",
    "one-byte": "x",
    "exactly-1-mib": exactly(MIN_MAX_PAYLOAD),
}

#: Usernames a tidy test never picks; each is relayed byte for byte as the username frame.
NAMES: dict[str, str] = {
    "name-with-spaces": "ana maría",
    "name-padded": " bea ",
    "name-emoji": "🐍 cy",
    "name-rtl": "דוד",
    "name-combining": "zoe\u0308",
    "name-digits": "12345",
}


def sizes_to_probe(floor: int = MIN_MAX_PAYLOAD, ceiling: int = 16 * MiB) -> list[int]:
    """Message sizes to try when looking for the largest a server accepts: 1, 2, 4 ... MiB."""
    sizes, size = [], floor
    while size <= ceiling:
        sizes.append(size)
        size *= 2
    return sizes
