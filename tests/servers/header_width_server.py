"""A server whose headers are 8 bytes wide: the "other header width" dialect (breaks FRAME-2, FRAME-1).

Its ``HEADER_LENGTH`` is 8 on both reading and writing, so it talks to
clients built with the same constant and garbles everything with standard
10-byte clients.  Everything else is the reference server.

    python tests/servers/header_width_server.py PORT
"""

from __future__ import annotations

import sys

from _variant import replace_header_encoder, run

from reference import protocol

WIDTH = 8


def narrow_header(length: int) -> bytes:
    return f"{length:<{WIDTH}}".encode()


protocol.HEADER_LENGTH = WIDTH  # type: ignore[misc]  # the defect: read 8-byte headers ...
replace_header_encoder(narrow_header)  # ... and write them

if __name__ == "__main__":
    sys.exit(run())
