"""A server that relays payloads without checking they are UTF-8 (breaks FRAME-4).

It never decodes what it relays, so a message that is not valid UTF-8 goes to
every other client as it came, and its sender stays connected.  The frames
themselves are well formed, and the server and the room carry on (ROBUST-5
holds): the suite must name this a FRAME-4 failure, once, and not call the
frames invalid.  Everything else is the reference server.

    python tests/servers/utf8_unchecked_server.py --port PORT
"""

from __future__ import annotations

import sys

from _variant import run

from reference import protocol


def decode_leniently(payload: bytes, what: str) -> str:
    return payload.decode("utf-8", "replace")  # the defect: invalid bytes let through


protocol._decode_text = decode_leniently  # type: ignore[assignment]

if __name__ == "__main__":
    sys.exit(run())
