"""The exit statuses of every chat-harness tool: defined here once, documented in docs/conventions.md.

Every console script (``chat-server``, ``chat-client``, ``chat-conformance``,
``chat-load``, ``chat-swarm``, ``chat-report``) and the bench gate return one of
these, so a CI job or a shell script can tell the cases apart the same way
whichever tool it ran::

    0    nothing found        every case passed, no message lost, no regression
    1    findings             a failed case, lost or reordered messages, a regression
    2    usage error          a bad option or input file (argparse's own status)
    3    target unavailable   the server under test is unreachable or would not start
    130  interrupted          Ctrl-C (SIGINT); 143 for SIGTERM, 128 + the signal number

``tests/test_conventions.py`` holds each tool to each status.
"""

from __future__ import annotations

import signal

__all__ = ["FINDINGS", "INTERRUPTED", "OK", "TARGET_UNAVAILABLE", "TERMINATED", "USAGE", "signalled"]

OK = 0
FINDINGS = 1
USAGE = 2  # what argparse's parser.error() exits with
TARGET_UNAVAILABLE = 3
INTERRUPTED = 128 + signal.SIGINT  # 130
TERMINATED = 128 + signal.SIGTERM  # 143


def signalled(signum: int) -> int:
    """The shell's convention for a run ended by ``signum``: 128 + its number (130 SIGINT, 143 SIGTERM)."""
    return 128 + int(signum)
