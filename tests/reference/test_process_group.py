"""reference.process_group: the platform's way to start and stop a process tree.

The decisions are pure functions of the platform name, so the Windows plan is
checked here on any machine; the tests that run a real process tree need the
POSIX calls and are skipped on Windows (the Windows CI job runs the suite's
--server-cmd path through chat-conformance instead).
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field

import pytest

from reference.process_group import (
    CREATE_NEW_PROCESS_GROUP,
    StopStep,
    describe_returncode,
    join_command,
    process_group_start,
    program_of,
    run_stop_plan,
    split_command,
    stop_plan,
    stop_process_group,
)


def test_posix_starts_a_new_session_and_windows_a_new_console_group() -> None:
    posix = process_group_start("linux")
    assert posix.start_new_session and posix.creationflags == 0
    assert process_group_start("darwin") == posix
    windows = process_group_start("win32")
    assert not windows.start_new_session and windows.creationflags == CREATE_NEW_PROCESS_GROUP


def test_spelled_out_flag_is_the_real_one() -> None:
    if sys.platform != "win32":
        pytest.skip("subprocess.CREATE_NEW_PROCESS_GROUP exists on Windows only")
    assert subprocess.CREATE_NEW_PROCESS_GROUP == CREATE_NEW_PROCESS_GROUP


def test_stop_plans() -> None:
    assert [s.action for s in stop_plan("linux")] == ["term-group", "kill-group", "kill-group"]
    assert stop_plan("darwin") == stop_plan("linux")
    assert [s.action for s in stop_plan("win32")] == ["ctrl-break", "kill-tree", "kill"]
    for plan in (stop_plan("linux"), stop_plan("win32")):
        assert plan[0].always and plan[0].wait  # the polite request always goes out, then we wait


@dataclass
class FakeProc:
    """A leader that exits after the action named in ``dies_on`` (None: never)."""

    dies_on: str | None
    returncode: int | None = None
    sent: list[str] = field(default_factory=list)
    waits: int = 0
    pid: int = 4242

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float) -> int:
        self.waits += 1
        if self.returncode is None:
            raise subprocess.TimeoutExpired("fake", timeout)
        return self.returncode

    def send(self, proc: object, action: str) -> None:
        assert proc is self
        self.sent.append(action)
        if action == self.dies_on:
            self.returncode = 1


def _walk(platform: str, dies_on: str | None) -> FakeProc:
    proc = FakeProc(dies_on)
    run_stop_plan(proc, stop_plan(platform), timeout=0.01, send=proc.send)  # type: ignore[arg-type]
    return proc


@pytest.mark.parametrize(("platform", "dies_on", "expected"), [
    # POSIX: a polite server stops on SIGTERM; its group still gets the straggler SIGKILL
    ("linux", "term-group", ["term-group", "kill-group"]),
    # one that ignores SIGTERM gets SIGKILL, then the stragglers' SIGKILL
    ("linux", "kill-group", ["term-group", "kill-group", "kill-group"]),
    # Windows: a server that stops on Ctrl-Break is not killed at all
    ("win32", "ctrl-break", ["ctrl-break"]),
    # one that ignores Ctrl-Break has its whole tree killed while the leader still runs
    ("win32", "kill-tree", ["ctrl-break", "kill-tree"]),
    # no taskkill (or it failed): the leader is terminated
    ("win32", "kill", ["ctrl-break", "kill-tree", "kill"]),
    ("win32", None, ["ctrl-break", "kill-tree", "kill"]),
])
def test_stop_plan_walk(platform: str, dies_on: str | None, expected: list[str]) -> None:
    assert _walk(platform, dies_on).sent == expected


def test_already_exited_leader_still_gets_the_always_steps() -> None:
    proc = FakeProc(None, returncode=0)
    run_stop_plan(proc, stop_plan("linux"), timeout=0.01, send=proc.send)  # type: ignore[arg-type]
    assert proc.sent == ["term-group", "kill-group"]
    proc = FakeProc(None, returncode=0)
    run_stop_plan(proc, stop_plan("win32"), timeout=0.01, send=proc.send)  # type: ignore[arg-type]
    assert proc.sent == ["ctrl-break"]


def test_no_wait_step_does_not_wait() -> None:
    proc = FakeProc(None)
    run_stop_plan(proc, (StopStep("kill-group", always=True, wait=False),), timeout=0.01,  # type: ignore[arg-type]
                  send=proc.send)
    assert proc.waits == 0


WINDOWS_PATH = r"C:\Users\Zoë Smith\server.py"


def test_windows_command_keeps_its_backslashes() -> None:
    assert split_command(rf"python {WINDOWS_PATH} {{port}}", "win32") == rf"python {WINDOWS_PATH} {{port}}"
    # shlex (POSIX rules) would have eaten them: the reason Windows gets the line itself
    assert split_command(r"python C:\Users\x.py 1", "linux") == ["python", "C:Usersx.py", "1"]


@pytest.mark.parametrize("platform", ["linux", "win32"])
def test_empty_command_is_refused(platform: str) -> None:
    with pytest.raises(ValueError, match="empty"):
        split_command("   ", platform)


@pytest.mark.parametrize(("platform", "line", "program"), [
    ("win32", "no-such-server {port}", "no-such-server"),
    ("win32", r'"C:\Program Files\srv.exe" --port 1', r"C:\Program Files\srv.exe"),
    ("linux", "'/opt/my srv' --port 1", "/opt/my srv"),
])
def test_program_of_names_what_would_run(platform: str, line: str, program: str) -> None:
    assert program_of(split_command(line, platform)) == program


def test_join_command_quotes_for_the_platform() -> None:
    args = [r"C:\Program Files\Python311\python.exe", "-m", "reference.server"]
    assert join_command(args, "win32") == r'"C:\Program Files\Python311\python.exe" -m reference.server'
    assert split_command(join_command(args, "linux"), "linux") == args


def test_returncodes_in_words() -> None:
    assert describe_returncode(-9, "linux") == "killed by signal 9"
    assert describe_returncode(3, "darwin") == "exited with status 3"
    assert describe_returncode(0xC000013A, "win32") == "stopped by Ctrl-C/Ctrl-Break"
    assert describe_returncode(1, "win32") == "exited with status 1"


def test_stop_process_group_stops_a_real_leader() -> None:
    """This platform's plan against a real process (POSIX: the group; Windows: the tree)."""
    group = process_group_start()
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                            stdin=subprocess.DEVNULL, start_new_session=group.start_new_session,
                            creationflags=group.creationflags)
    stop_process_group(proc, timeout=2.0)
    assert proc.poll() is not None
