"""SIGTERM handled as SIGINT by every console script: the one way tools end on a signal.

A CI job being cancelled, a scorecard's deadline or ``kill`` send SIGTERM; a
person presses Ctrl-C (SIGINT).  Either way a tool must stop the servers and
processes it started (their process groups, through the normal ``finally`` and
``with`` blocks, not only at ``atexit``), write what it has, print one line and
exit 128 + the signal number: 130 for SIGINT, 143 for SIGTERM.

Python turns SIGINT into KeyboardInterrupt; :func:`terminate_as_interrupt`
makes SIGTERM do the same and remembers which signal came::

    with terminate_as_interrupt() as caught:
        try:
            run()
        except KeyboardInterrupt:
            print(f"tool: {caught.words}", file=sys.stderr)
            return caught.exit_status
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

from reference.exit_codes import signalled

__all__ = ["CaughtSignal", "terminate_as_interrupt"]


@dataclass
class CaughtSignal:
    """Which signal ended the run (SIGINT when a KeyboardInterrupt came any other way)."""

    signum: int = signal.SIGINT
    #: True once SIGINT or SIGTERM came inside the block (a callee may have handled it).
    happened: bool = False

    @property
    def exit_status(self) -> int:
        """The shell's convention: 128 + the signal number (130 SIGINT, 143 SIGTERM)."""
        return signalled(self.signum)

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def words(self) -> str:
        return f"interrupted by {self.name}: stopped what it started"


@contextmanager
def terminate_as_interrupt() -> Iterator[CaughtSignal]:
    """Within the block SIGTERM and SIGINT (and SIGBREAK on Windows) raise KeyboardInterrupt; the
    previous handlers come back after.

    A second signal while the first is being handled is ignored, so the
    clean-up that the first started (stopping a server group, writing a
    report) is not itself interrupted half way.
    """
    caught = CaughtSignal()
    fired = False

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal fired
        if fired:
            return
        fired = True
        caught.signum = signum
        caught.happened = True
        raise KeyboardInterrupt

    signals = [signal.SIGINT, signal.SIGTERM]
    if sys.platform == "win32":  # reference.process_group stops a tool's group with CTRL_BREAK_EVENT there
        signals.append(signal.SIGBREAK)
    previous = {sig: signal.signal(sig, handler) for sig in signals}
    try:
        yield caught
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
