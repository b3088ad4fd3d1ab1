"""The reference server with a deliberate delay before every relay: an injected slowdown.

Defect: sleeps ``--delay-ms`` (default 2 ms) each time it relays a message, as
if someone had added slow code to the hot path.  It still follows every rule
of PROTOCOL.md -- it is only slow -- so the benchmarks run against it unchanged
and the regression gate (bench/compare.py) must catch it.  Used by
tests/bench/test_bench_gate.py as ``--chat-server-cmd 'python tests/servers/slow_server.py {port}'``.

Run: ``python tests/servers/slow_server.py PORT [--delay-ms MS]`` (or ``--port``);
every other option is the reference server's (see ``chat-server --help``).
"""

from __future__ import annotations

import argparse
import sys
import time

from reference import server


def slow_down(delay_s: float) -> None:
    """Wrap the reference server's relay with a sleep (this process only)."""
    relay = server.ChatServer._broadcast

    def slowed_broadcast(self: server.ChatServer, sender: server.Client, text: bytes) -> None:
        time.sleep(delay_s)
        relay(self, sender, text)

    server.ChatServer._broadcast = slowed_broadcast  # type: ignore[method-assign]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="reference server, slowed down on purpose")
    parser.add_argument("port", nargs="?", default=None, help="port to listen on (or --port)")
    parser.add_argument("--delay-ms", type=float, default=2.0, help="sleep before each relay")
    args, rest = parser.parse_known_args(argv)
    if args.delay_ms < 0:
        parser.error(f"--delay-ms {args.delay_ms:g} must not be negative")
    slow_down(args.delay_ms / 1000)
    if args.port is not None:
        rest = ["--port", args.port, *rest]
    return server.main(rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
