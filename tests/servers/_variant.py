"""Run the reference server with one deliberate defect (shared by the one-defect test servers).

Each ``*_server.py`` next to this file that is a variant of the reference
server subclasses or patches one thing and calls :func:`run`, which accepts
the port as the first argument (``python tests/servers/echo_server.py 1234``)
as well as every ``chat-server`` option (``--port``, ``--max-payload``, ...).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from reference import protocol, server
from reference.server import ChatServer, main


def replace_header_encoder(encode: Callable[[int], bytes]) -> None:
    """Make the server write every header with ``encode`` (its one deliberate defect).

    Both names are patched: the codec's, which ``encode_frame`` uses, and the
    copy the server module imported for itself.
    """
    protocol.encode_header = encode
    if hasattr(server, "encode_header"):
        server.encode_header = encode  # type: ignore[attr-defined]


def run(server_class: type[ChatServer] = ChatServer, argv: list[str] | None = None,
        profiles: str | None = None) -> int:
    """``profiles``: the optional profiles (``"dm"``) a broken profile server always serves."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0].isdigit():
        args = ["--port", args[0], *args[1:]]
    if profiles and "--profile" not in args:
        args += ["--profile", profiles]
    return main(args, server_class=server_class)
