"""A server that writes right-justified headers, ``b"         5"`` (breaks FRAME-2).

It formats lengths with ``f"{n:>10}"`` instead of ``f"{n:<10}"``.  Lenient
readers (``int(header.strip())``) cope, so it seems to work with the tutorial
client, but its frames are not canonical.  Everything else is the reference server.

    python tests/servers/right_justified_server.py PORT
"""

from __future__ import annotations

import sys

from _variant import replace_header_encoder, run


def right_justified_header(length: int) -> bytes:
    return f"{length:>10}".encode()  # the defect: > instead of <


replace_header_encoder(right_justified_header)

if __name__ == "__main__":
    sys.exit(run())
