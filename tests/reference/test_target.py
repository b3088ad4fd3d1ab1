"""reference.target: the one way to reach or start a target server."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
import time
from pathlib import Path

import pytest

from reference.client import ChatClient
from reference.process_group import join_command
from reference.protocol import Relay
from reference.target import (
    ExternalServer,
    SpawnedServer,
    TargetError,
    TargetSpec,
    find_free_port,
    open_target,
    parse_address,
    reference_command,
)

PY = join_command([sys.executable])


@pytest.mark.parametrize(("text", "expected"), [
    ("127.0.0.1:1234", ("127.0.0.1", 1234)),
    ("tcp://localhost:99", ("localhost", 99)),
    ("[::1]:8080", ("::1", 8080)),
])
def test_parse_address(text: str, expected: tuple[str, int]) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize("text", ["127.0.0.1", "host:", ":80", "h:abc", "h:70000", "h:0"])
def test_parse_address_rejects_with_one_line(text: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_address(text)
    assert "\n" not in str(info.value)


def test_spec_rejects_both_forms() -> None:
    with pytest.raises(ValueError, match="not both"):
        TargetSpec.parse(server="127.0.0.1:1", command="x {port}")
    assert TargetSpec.parse().is_reference


def test_reference_target_round_trip() -> None:
    with open_target(TargetSpec()) as target:
        assert isinstance(target, SpawnedServer)
        with ChatClient.connect(*target.address, name="a") as a, \
                ChatClient.connect(*target.address, name="b") as b:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:  # wait until b is registered
                a.send("ping")
                if b.expect_silence(0.2) == Relay("a", "ping"):
                    break
            else:
                pytest.fail("b never received a's ping")
        pid = target.pid
    assert pid is not None and not target.is_alive()
    if sys.platform != "win32":  # os.kill(pid, 0) terminates a process on Windows; no probe there
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_command_with_port_placeholder() -> None:
    cmd = f"{PY} -m reference.server --host {{host}} --port {{port}}"
    with open_target(TargetSpec.parse(command=cmd)) as target:
        assert target.address[1] != 0
        assert target.is_alive()


def test_external_server_is_checked_and_never_stopped() -> None:
    with open_target(TargetSpec()) as spawned:
        with open_target(TargetSpec(server=spawned.address)) as external:
            assert isinstance(external, ExternalServer)
            external.stop()
            assert spawned.is_alive()
            with pytest.raises(TargetError, match="cannot be restarted"):
                external.restart()


@pytest.mark.slow
def test_dead_address_is_reported_quickly() -> None:
    """Given a minute to start, a dead address still fails within seconds (the check gives up
    after 3 s): the bound is half the minute, far from the 3 s a loaded machine may stretch."""
    port = find_free_port()
    started = time.monotonic()
    with pytest.raises(TargetError, match="nothing accepted connections"):
        with open_target(TargetSpec(server=("127.0.0.1", port), start_timeout=60.0)):
            pass
    assert time.monotonic() - started < 30


def test_crashing_command_reports_its_last_stderr_line(tmp_path: Path) -> None:
    script = tmp_path / "crash.py"
    script.write_text("import sys\nprint('about to fail', file=sys.stderr)\n"
                      "raise SystemExit('ValueError: filedescriptor out of range in select()')\n")
    with pytest.raises(TargetError) as info:
        with open_target(TargetSpec.parse(command=join_command([sys.executable, str(script)]) + " {port}")):
            pass
    assert "exited with status 1" in str(info.value)
    assert "filedescriptor out of range" in str(info.value)


def test_missing_program_is_one_clear_error() -> None:
    with pytest.raises(TargetError, match="cannot run 'no-such-chat-server'"):
        with open_target(TargetSpec.parse(command="no-such-chat-server {port}")):
            pass


def test_hanging_command_times_out(tmp_path: Path) -> None:
    script = tmp_path / "hang.py"
    script.write_text("import time\ntime.sleep(60)\n")
    command = join_command([sys.executable, str(script)]) + " {port}"
    started = time.monotonic()
    with pytest.raises(TargetError, match="within 0.3 s"):
        with open_target(TargetSpec.parse(command=command, start_timeout=0.3)):
            pass
    assert time.monotonic() - started < 30  # not the script's 60 s sleep


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and process groups; the Windows "
                    "plan (Ctrl-Break, then taskkill the tree) is unit-tested in test_process_group.py")
@pytest.mark.slow
def test_stop_kills_the_whole_group_even_if_sigterm_is_ignored(tmp_path: Path) -> None:
    """SIGTERM, a wait, then SIGKILL -- children of the server die too."""
    script = tmp_path / "stubborn.py"
    script.write_text(textwrap.dedent(f"""
        import signal, socket, subprocess, sys, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        child = subprocess.Popen([{sys.executable!r}, "-c", "import time; time.sleep(60)"])
        print(child.pid, flush=True)
        s = socket.create_server(("127.0.0.1", int(sys.argv[1])))
        time.sleep(60)
    """))
    server = SpawnedServer(join_command([sys.executable, str(script)]) + " {port}")
    server.start()
    child_pid = int(server.stdout_path.read_text().split()[0])
    started = time.monotonic()
    server.stop(timeout=1.0)
    assert time.monotonic() - started < 30  # SIGKILL after 1 s, not the script's 60 s sleep
    assert server.proc is not None and server.proc.returncode == -signal.SIGKILL
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(child_pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the server's child process survived stop()")


@pytest.mark.skipif(sys.platform != "linux", reason="a kill shows as 'signal 9' on POSIX only, and "
                    "rss_bytes() reads /proc (Linux only)")
def test_restart_gives_a_fresh_process() -> None:
    server = SpawnedServer(reference_command())
    server.start()
    try:
        first = server.pid
        assert server.proc is not None
        server.proc.kill()
        server.proc.wait(5)
        assert not server.is_alive() and "killed by signal 9" in server.describe_exit()
        server.restart()
        assert server.is_alive() and server.pid != first
        rss = server.rss_bytes()
        assert rss is not None and rss > 1_000_000
    finally:
        server.stop()
