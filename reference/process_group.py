"""Start and stop a process tree the platform's way, and write its command line.

Every process chat-harness launches (a target server, a locust swarm, a
scorecard step) is started as the leader of its own process group and stopped
as a group, so nothing it forked outlives it:

* POSIX: a new session (``start_new_session``); stopped with SIGTERM to the
  group, a bounded wait, SIGKILL, then SIGKILL again for children that
  outlived their leader;
* Windows: a new console process group (``CREATE_NEW_PROCESS_GROUP``); stopped
  with CTRL_BREAK_EVENT (Python programs see SIGBREAK), a bounded wait, then
  ``taskkill /T /F`` of the tree, then TerminateProcess of the leader.

The decisions are small pure functions of the platform name
(:func:`process_group_start`, :func:`stop_plan`, :func:`split_command`,
:func:`join_command`, :func:`describe_returncode`), so the Windows branches are
unit-tested on Linux too; only :func:`_send_stop` touches the OS.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = [
    "CREATE_NEW_PROCESS_GROUP",
    "DEFAULT_STOP_TIMEOUT",
    "GroupStart",
    "StopStep",
    "describe_returncode",
    "join_command",
    "process_group_start",
    "program_of",
    "run_stop_plan",
    "split_command",
    "stop_plan",
    "stop_process_group",
]

DEFAULT_STOP_TIMEOUT = 3.0


def join_command(args: Sequence[str], platform: str = sys.platform) -> str:
    """One command line from ``args``, quoted the way :func:`split_command` reads it back:
    POSIX shell rules, or on Windows the C runtime's (``"C:\\Program Files\\..."``)."""
    if platform == "win32":
        return subprocess.list2cmdline(args)
    return shlex.join(args)


def split_command(text: str, platform: str = sys.platform) -> list[str] | str:
    """What Popen gets for ``--server-cmd``: on POSIX the shell-split argv; on Windows
    the line itself, which CreateProcess splits -- shlex would eat the backslashes
    of ``python C:\\Users\\me\\server.py``.  Raises ValueError on bad quoting or an
    empty command."""
    if platform == "win32":
        if not text.strip():
            raise ValueError("the command is empty")
        return text.strip()
    argv = shlex.split(text)
    if not argv:
        raise ValueError("the command is empty")
    return argv


_STATUS_CONTROL_C_EXIT = 0xC000013A  # Windows' exit code of a process ended by a console Ctrl event


def program_of(argv: list[str] | str) -> str:
    """The program a :func:`split_command` result runs, for messages: on Windows the line's
    first word, or its first double-quoted part (``"C:\\Program Files\\x.exe" --port 1``)."""
    if isinstance(argv, list):
        return argv[0]
    if argv.startswith('"'):
        return argv[1:].partition('"')[0]
    return argv.split(maxsplit=1)[0]


def describe_returncode(code: int, platform: str = sys.platform) -> str:
    """How a process ended, in words, from Popen.returncode."""
    if platform == "win32":
        if code == _STATUS_CONTROL_C_EXIT:
            return "stopped by Ctrl-C/Ctrl-Break"
        return f"exited with status {code}"
    return f"killed by signal {-code}" if code < 0 else f"exited with status {code}"


@dataclass(frozen=True)
class GroupStart:
    """How to start a process as the leader of its own process group, as Popen arguments."""

    start_new_session: bool
    creationflags: int


#: subprocess.CREATE_NEW_PROCESS_GROUP (Windows only), spelled out so that the
#: Windows decisions below can be unit-tested on any platform.
CREATE_NEW_PROCESS_GROUP = 0x00000200
_TASKKILL_TIMEOUT = 10.0


def process_group_start(platform: str = sys.platform) -> GroupStart:
    """A new session (POSIX) or a new console process group (Windows), so that the
    whole tree can be signalled at once: killpg on POSIX, CTRL_BREAK_EVENT on Windows."""
    if platform == "win32":
        return GroupStart(start_new_session=False, creationflags=CREATE_NEW_PROCESS_GROUP)
    return GroupStart(start_new_session=True, creationflags=0)


@dataclass(frozen=True)
class StopStep:
    """One step of stopping a process group.

    ``action`` is ``term-group`` / ``kill-group`` (POSIX: SIGTERM / SIGKILL to the
    group), ``ctrl-break`` (Windows: CTRL_BREAK_EVENT to the group, which Python
    turns into SIGBREAK), ``kill-tree`` (Windows: ``taskkill /T /F``, which finds
    the children through their still-running leader) or ``kill`` (TerminateProcess
    on the leader alone).  ``always`` steps run even when the leader has already
    exited (to reach its children); ``wait`` waits for the leader afterwards."""

    action: str
    always: bool
    wait: bool


def stop_plan(platform: str = sys.platform) -> tuple[StopStep, ...]:
    """The steps that stop a group started with :func:`process_group_start`."""
    if platform == "win32":
        return (StopStep("ctrl-break", always=True, wait=True),
                StopStep("kill-tree", always=False, wait=True),
                StopStep("kill", always=False, wait=True))
    return (StopStep("term-group", always=True, wait=True),
            StopStep("kill-group", always=False, wait=True),
            StopStep("kill-group", always=True, wait=False))  # children that outlived their leader


def _send_stop(proc: subprocess.Popen[bytes], action: str) -> None:
    """Carry out one StopStep's action on this platform; a vanished process is fine."""
    try:
        if sys.platform == "win32":
            if action == "ctrl-break":
                os.kill(proc.pid, signal.CTRL_BREAK_EVENT)
            elif action == "kill-tree":
                subprocess.run(["taskkill", "/T", "/F", "/PID", str(proc.pid)], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               timeout=_TASKKILL_TIMEOUT, check=False)
            else:
                proc.kill()
        else:
            os.killpg(proc.pid, signal.SIGTERM if action == "term-group" else signal.SIGKILL)
    except (OSError, subprocess.SubprocessError):
        pass  # already gone, not ours, no console to send Ctrl-Break to, or no taskkill


def run_stop_plan(proc: subprocess.Popen[bytes], steps: Sequence[StopStep], timeout: float,
                  send: Callable[[subprocess.Popen[bytes], str], None] = _send_stop) -> None:
    """Walk ``steps``: skip the ones meant for a running leader once it has exited."""
    for step in steps:
        if not step.always and proc.poll() is not None:
            continue
        send(proc, step.action)
        if step.wait:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass


def stop_process_group(proc: subprocess.Popen[bytes], timeout: float = DEFAULT_STOP_TIMEOUT) -> None:
    """Stop the group led by ``proc``, which must have been started with
    :func:`process_group_start` (on Windows, Ctrl-Break to a pid that leads no group can
    reach every process on our console, ourselves included): on POSIX
    SIGTERM, wait up to ``timeout``, SIGKILL, then kill stragglers of the group; on Windows
    CTRL_BREAK_EVENT, wait, then kill the tree (taskkill), then the leader."""
    run_stop_plan(proc, stop_plan(sys.platform), timeout)
