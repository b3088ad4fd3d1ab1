"""A crash is a verdict of its own: notice the target's death and charge it to the right case.

Whenever the server process dies or stops accepting connections -- during a
case, at its end when its clients close, or between two cases -- the suite
records a failure of ROBUST-7 (MUST) named ``crash[CASE]``, whatever the level
of the case it happened in, so a crash inside a SHOULD or MAY case still fails
the run.  The record names the last thing a client did (from the case's wire
transcript) and quotes the server's last stderr lines, read from the end of
its log only.  The case itself keeps its own verdict.

A death takes a moment to show (a traceback to print, sockets to close), so it
may be noticed only when the next case starts.  It is charged to the case
before when the next case had done nothing yet, or when the last case saw the
server cut its connections and the server no longer accepts new ones.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

from conformance.requirements import REQUIREMENTS, Level
from conformance.verdicts import CaseInfo, CaseResult
from conformance.wire import NOTE, Wire
from reference.printable import printable
from reference.process_group import describe_returncode
from reference.target import ExternalServer, SpawnedServer

__all__ = ["CrashWatch", "STDERR_LINES", "settle"]

#: How many of the server's last stderr lines a crash record quotes.
STDERR_LINES = 5
#: How long a server that stopped accepting may take to finish dying.
DYING_GRACE = 1.0
#: At most this long for a server to handle a case's closing clients.
SETTLE_TIMEOUT = 0.2


def settle(pid: int | None, timeout: float = SETTLE_TIMEOUT) -> None:
    """Wait until the process ``pid`` has no runnable thread (Linux), at most ``timeout``.

    Called right after a case closed its clients: loopback delivers the FINs
    before ``close()`` returns, so the server is runnable until it has handled
    them -- or has died of them.  Observing this, rather than sleeping, charges
    a crash on close to the case whose clients closed, run after run.
    """
    if pid is None:
        return
    deadline = time.monotonic() + timeout
    tasks = Path(f"/proc/{pid}/task")
    while time.monotonic() < deadline:
        try:
            states = [(t / "stat").read_text().rsplit(")", 1)[1].split()[0] for t in tasks.iterdir()]
        except (OSError, IndexError):
            return  # gone, or not Linux
        if "R" not in states:
            return
        time.sleep(0.002)


def _accepts(address: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(address, timeout=1.0):
            return True
    except OSError:
        return False


def _server_cut(wire: Wire) -> bool:
    """Whether the server closed or reset one of the case's connections."""
    return any(e.direction == NOTE and e.note.startswith(("the server closed", "the server reset"))
               for e in [*wire.head, *wire.tail])


def _did_nothing(wire: Wire) -> bool:
    """Whether the case's first step, a connection, already failed (so it caused nothing)."""
    events = [*wire.head, *wire.tail]
    return bool(events) and events[0].direction == NOTE and events[0].note.startswith("connect failed")


class CrashWatch:
    """What the suite knows of the target's deaths, and the records that charge them."""

    def __init__(self) -> None:
        #: The case that ran last and its wire, to blame a death noticed afterwards.
        self.last_case: tuple[CaseInfo, Wire] | None = None
        self._charged: int | None = None  # the server start whose death is charged

    def dying(self, handle: SpawnedServer) -> bool:
        """Between cases: whether the server died or is dying after the last case.

        A connect is tried only after a case whose connections the server cut,
        so a healthy server is not disturbed after the ordinary cases.
        """
        if not handle.is_alive():
            return True
        if self.last_case is None or not _server_cut(self.last_case[1]):
            return False
        if _accepts(handle.address):
            return False
        deadline = time.monotonic() + DYING_GRACE
        while handle.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        return True

    def dead_after_close(self, handle: SpawnedServer | ExternalServer) -> bool:
        """Right after a case closed its clients: whether that killed the server.

        A spawned server is watched until it has handled the closes (:func:`settle`);
        an external one is asked whether it still accepts a connection.
        """
        if isinstance(handle, SpawnedServer):
            settle(handle.pid)
        return not handle.is_alive()

    def blame(self, info: CaseInfo, wire: Wire | None,
              when: str = "during") -> tuple[CaseInfo, Wire | None, str]:
        """The case to charge a death seen ``when`` ``info`` ran: itself, or the one before."""
        if wire is not None and _did_nothing(wire) and self.last_case is not None:
            return (*self.last_case, "after")
        return info, wire, when

    def charge(self, handle: SpawnedServer | ExternalServer, info: CaseInfo, wire: Wire | None,
               when: str, action: str = "") -> CaseResult | None:
        """The ``crash[...]`` record for the target's death, or None if it is already charged."""
        starts = handle.starts if isinstance(handle, SpawnedServer) else 0
        if self._charged == starts:
            return None
        self._charged = starts
        tail: list[str] = []
        if isinstance(handle, SpawnedServer) and handle.proc is not None:
            code = handle.proc.poll()
            if code is None:
                how = "the server process stopped accepting connections (it still runs)"
            else:
                how = f"the server process {describe_returncode(code)}"
            tail = handle.stderr_tail(STDERR_LINES)
        else:
            how = f"the server at {handle.label} stopped accepting connections"
        action = action or (wire.last_action() if wire is not None else "")
        lines = [f"{how} {when} {info.id}", f"last action before it: {action or 'none recorded'}"]
        if tail:
            lines.append("the server's last stderr lines:")
            lines += [f"  {printable(line.encode(), 200)}" for line in tail]
        # A case listed as a known failure (--expectations) covers the death it causes.
        crash = CaseInfo(f"crash[{info.id}]", REQUIREMENTS["ROBUST-7"], Level.MUST,
                         f"the server keeps running through {info.id}", info.expected_failure)
        transcript = wire.render() if wire is not None else ""
        verdict = "xfail" if info.expected_failure is not None else "fail"
        return CaseResult(crash, verdict, 0.0, "\n".join(lines), transcript or None)
