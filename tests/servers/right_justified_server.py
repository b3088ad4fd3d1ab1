"""A server that writes right-justified headers, ``b"         5"`` (breaks FRAME-2).

It formats lengths with ``f"{n:>10}"`` instead of ``f"{n:<10}"``.  Lenient
readers (``int(header.strip())``) cope, so it seems to work with the tutorial
client, but its frames are not canonical.  Everything else is the reference server.

    python tests/servers/right_justified_server.py PORT
"""

from __future__ import annotations

import sys

from _variant import run

from reference import server


def right_justified_frame(payload: bytes) -> bytes:
    return f"{len(payload):>10}".encode() + payload  # the defect: > instead of <


server.encode_frame = right_justified_frame

if __name__ == "__main__":
    sys.exit(run())
