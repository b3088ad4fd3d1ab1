"""A server that dies on the first payload that is not UTF-8 (breaks FRAME-4 and ROBUST-5).

It decodes every payload with ``bytes.decode("utf-8")`` and lets the
``UnicodeDecodeError`` escape its event loop, as the tutorial server does when
it prints a message, so one bad byte from one client ends the process for
everyone.  Everything else is the reference server.

    python tests/servers/utf8_crash_server.py PORT
"""

from __future__ import annotations

import sys

from _variant import run

from reference import protocol


def decode_without_care(payload: bytes, what: str) -> str:
    return payload.decode("utf-8")  # the defect: UnicodeDecodeError is nobody's business


protocol._decode_text = decode_without_care  # type: ignore[assignment]

if __name__ == "__main__":
    sys.exit(run())
