"""The one way to reach or start a target server.

Every tool in chat-harness (conformance, load generators, benchmarks, the
scorecard) talks to a *target* through this module, in one of three forms:

* the embedded reference server: spawned from this checkout with ``--port 0``;
* ``--server HOST:PORT``: an already running server, never started or stopped;
* ``--server-cmd 'python3 myserver.py {port}'``: a command we launch, with a
  free port put in ``{port}`` and the host in ``{host}``.  A command without
  ``{port}`` must print ``... listening on HOST:PORT`` as its first line, as
  ``chat-server --port 0`` does.

A spawned server runs in its own process group and is always torn down with
SIGTERM, a bounded wait, then SIGKILL (on Windows: CTRL_BREAK_EVENT, a bounded
wait, then ``taskkill /T /F`` of the tree) -- also on Ctrl-C and at interpreter
exit.  Its stdout and stderr go to files so a chatty server never blocks on a
full pipe, and so we can quote its last stderr line when it dies.  Those logs
are read boundedly (the first ``LOG_HEAD_BYTES`` of stdout for the address,
the last ``LOG_TAIL_BYTES`` of stderr), so a server that writes gigabytes
costs us no memory, and their folder is removed when the server is closed or
the interpreter exits -- unless the server died on its own, when
:meth:`SpawnedServer.describe_exit` keeps the folder and names it.  Whatever
the server wrote is shown through :func:`reference.printable.printable_text`.

    with open_target(TargetSpec.parse(server="127.0.0.1:1234")) as target:
        host, port = target.address
"""

from __future__ import annotations

import argparse
import atexit
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from reference.printable import printable_text
from reference.process_group import (
    DEFAULT_STOP_TIMEOUT,
    describe_returncode,
    join_command,
    process_group_start,
    program_of,
    split_command,
    stop_process_group,
)
from reference.protocol import DEFAULT_HOST

__all__ = [
    "ExternalServer",
    "ServerHandle",
    "SpawnedServer",
    "TargetError",
    "TargetSpec",
    "TARGET_OPTIONS",
    "add_target_arguments",
    "find_free_port",
    "open_target",
    "parse_address",
    "read_head",
    "read_tail",
    "reference_command",
    "spec_from_args",
    "stop_process_group",
    "tail_lines",
    "wait_until_accepting",
]

_LISTENING = re.compile(rb"listening on \[?([0-9A-Za-z.:_-]+?)\]?:(\d+)\b")
DEFAULT_START_TIMEOUT = 10.0
#: How much of a spawned server's stdout is searched for its "listening on" line.
LOG_HEAD_BYTES = 64 * 1024
#: How much of the end of its stderr is read for the last line.
LOG_TAIL_BYTES = 4096



def tail_lines(path: Path, lines: int, max_bytes: int = LOG_TAIL_BYTES) -> list[str]:
    """The last ``lines`` non-empty lines of a log file, reading only its last ``max_bytes``."""
    data = read_tail(path, max_bytes)
    text = data.decode("utf-8", "replace").split("\n")
    if len(data) == max_bytes:
        text = text[1:]  # the first line read is probably cut
    return [line.rstrip() for line in text if line.strip()][-lines:]


class TargetError(RuntimeError):
    """The target server could not be reached, started, or kept alive."""


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (or ``tcp://HOST:PORT``, ``[::1]:PORT``) -> (host, port)."""
    raw = text.strip()
    if raw.startswith("tcp://"):
        raw = raw[len("tcp://"):]
    raw = raw.rstrip("/")
    host, sep, port_text = raw.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ValueError(f"{text!r} is not HOST:PORT (for example 127.0.0.1:1234)")
    port = int(port_text)
    if not 0 < port <= 65535:
        raise ValueError(f"port {port} in {text!r} is not in 1..65535")
    return host.strip("[]"), port


def find_free_port(host: str = DEFAULT_HOST) -> int:
    """A port that was free a moment ago (for commands that need ``{port}``)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_until_accepting(host: str, port: int, timeout: float,
                         alive: Callable[[], bool] | None = None) -> None:
    """Poll until a TCP connect succeeds; raise TargetError after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: OSError | None = None
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            raise TargetError("server process exited before accepting connections")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError as exc:
            last = exc
            time.sleep(0.05)
    raise TargetError(f"nothing accepted connections on {host}:{port} within {timeout:g} s"
                      f" (last error: {last})")


def reference_command(*extra: str) -> str:
    """The command line that starts the embedded reference server on a free port."""
    args = [sys.executable, "-m", "reference.server", "--port", "0", *extra]
    return join_command(args)


@dataclass(frozen=True)
class TargetSpec:
    """Which server to use: an address, a command, or (neither) the reference."""

    server: tuple[str, int] | None = None
    command: str | None = None
    host: str = DEFAULT_HOST
    start_timeout: float = DEFAULT_START_TIMEOUT
    reference_args: tuple[str, ...] = field(default=())

    @classmethod
    def parse(cls, server: str | None = None, command: str | None = None,
              **kwargs: object) -> TargetSpec:
        """Build from CLI strings; raise ValueError with a one-line reason."""
        if server and command:
            raise ValueError("give --server or --server-cmd, not both")
        if command is not None and not command.strip():
            raise ValueError("--server-cmd is empty")
        address = parse_address(server) if server else None
        return cls(server=address, command=command, **kwargs)  # type: ignore[arg-type]

    @property
    def label(self) -> str:
        if self.server:
            return f"{self.server[0]}:{self.server[1]}"
        if self.command:
            return self.command
        return "reference server (embedded)"

    @property
    def is_reference(self) -> bool:
        return self.server is None and self.command is None


class ServerHandle(Protocol):
    """What every tool may ask of a target."""

    address: tuple[str, int]
    label: str

    def is_alive(self) -> bool: ...
    def restart(self) -> None: ...
    def stop(self) -> None: ...
    def describe_exit(self) -> str: ...
    def rss_bytes(self) -> int | None: ...


class ExternalServer:
    """A server someone else runs: we connect, never start or stop it."""

    can_restart = False

    def __init__(self, address: tuple[str, int]) -> None:
        self.address = address
        self.label = f"{address[0]}:{address[1]}"
        self.pid: int | None = None

    def is_alive(self) -> bool:
        try:
            with socket.create_connection(self.address, timeout=1.0):
                return True
        except OSError:
            return False

    def check(self, timeout: float = DEFAULT_START_TIMEOUT) -> None:
        """Fail fast, with a clear message, when nothing listens there."""
        wait_until_accepting(*self.address, timeout=min(timeout, 3.0))

    def restart(self) -> None:
        raise TargetError(f"the server at {self.label} is not accepting connections and was "
                          "not started by us, so it cannot be restarted")

    def stop(self) -> None:
        pass

    def describe_exit(self) -> str:
        return "" if self.is_alive() else f"nothing accepts connections on {self.label}"

    def rss_bytes(self) -> int | None:
        return None


_LIVE_SERVERS: weakref.WeakSet[SpawnedServer] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for server in list(_LIVE_SERVERS):
        server.stop()


class _LogDir:
    """The folder of one spawned server's logs: removed at close or exit unless kept."""

    def __init__(self) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="chat-target-"))
        self.keep = False

    def cleanup(self) -> None:
        if not self.keep:
            shutil.rmtree(self.path, ignore_errors=True)


def read_head(path: Path, size: int) -> bytes:
    """The first ``size`` bytes of a file (b"" if unreadable)."""
    try:
        with path.open("rb") as f:
            return f.read(size)
    except OSError:
        return b""


def read_tail(path: Path, size: int) -> bytes:
    """The last ``size`` bytes of a file (b"" if unreadable), however large it is."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - size))
            return f.read(size)
    except OSError:
        return b""


class SpawnedServer:
    """A server process we start, watch, restart and always clean up."""

    can_restart = True

    def __init__(self, command: str, host: str = DEFAULT_HOST,
                 start_timeout: float = DEFAULT_START_TIMEOUT, label: str | None = None,
                 cwd: str | None = None) -> None:
        self.command = command
        self.host = host
        self.start_timeout = start_timeout
        self.label = label or command
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self.address: tuple[str, int] = (host, 0)
        self._logs = _LogDir()
        # Runs at close(), when the handle is collected, or at interpreter exit.
        self._cleanup = weakref.finalize(self, self._logs.cleanup)
        self._stopped_by_us = False
        self.starts = 0

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def log_dir(self) -> Path:
        """The folder of this server's stdout.N and stderr.N files."""
        return self._logs.path

    @property
    def stdout_path(self) -> Path:
        return self._logs.path / f"stdout.{self.starts}"

    @property
    def stderr_path(self) -> Path:
        return self._logs.path / f"stderr.{self.starts}"

    def start(self) -> None:
        self.starts += 1
        port = find_free_port(self.host) if "{port}" in self.command else None
        argv_text = self.command.replace("{host}", self.host)
        if port is not None:
            argv_text = argv_text.replace("{port}", str(port))
        try:
            argv = split_command(argv_text)
        except ValueError as exc:
            raise TargetError(f"cannot parse --server-cmd {self.command!r}: {exc}") from None
        program = program_of(argv)
        group = process_group_start()
        self._stopped_by_us = False
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            try:
                self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                             start_new_session=group.start_new_session,
                                             creationflags=group.creationflags, cwd=self.cwd)
            except OSError as exc:
                raise TargetError(f"cannot run {program!r}: {exc.strerror or exc}") from None
        _LIVE_SERVERS.add(self)
        try:
            if port is None:
                self.address = self._read_listening_line()
            else:
                self.address = (self.host, port)
            wait_until_accepting(*self.address, timeout=self.start_timeout,
                                 alive=self._process_running)
        except TargetError as exc:
            detail = self.describe_exit()
            self.stop()
            raise TargetError(f"{exc}{': ' + detail if detail else ''}") from None

    def _process_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _read_listening_line(self) -> tuple[str, int]:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            match = _LISTENING.search(read_head(self.stdout_path, LOG_HEAD_BYTES))
            if match:
                return match.group(1).decode(), int(match.group(2))
            if not self._process_running():
                raise TargetError("server process exited before printing its address")
            time.sleep(0.02)
        raise TargetError(f"the command has no {{port}} placeholder and printed no "
                          f"'listening on HOST:PORT' line within {self.start_timeout:g} s")

    def is_alive(self) -> bool:
        return self._process_running()

    def restart(self) -> None:
        self.stop()
        self.start()

    def stop(self, timeout: float = DEFAULT_STOP_TIMEOUT) -> None:
        """Stop the process group: SIGTERM, wait, SIGKILL (Windows: Ctrl-Break, wait, kill the tree)."""
        proc = self.proc
        if proc is None:
            return
        _LIVE_SERVERS.discard(self)
        if proc.poll() is None:
            self._stopped_by_us = True
        stop_process_group(proc, timeout)

    def stderr_tail(self, lines: int = 5) -> list[str]:
        """The last ``lines`` lines of the server's stderr, read from the file's end only."""
        return tail_lines(self.stderr_path, lines)

    def close(self) -> None:
        """Stop the server and remove its log folder (kept if describe_exit named it)."""
        self.stop()
        self._cleanup()

    def last_stderr_line(self) -> str:
        """The last non-empty line of stderr, made printable (only its tail is read)."""
        tail = read_tail(self.stderr_path, LOG_TAIL_BYTES).decode("utf-8", "surrogateescape")
        lines = tail.split("\n")  # not splitlines(): a \r or \x1c inside a line is shown, not cut
        for line in reversed(lines):
            if line.strip():
                return printable_text(line.strip(), 300)
        return ""

    def describe_exit(self) -> str:
        """Plain words on how the process ended ('' while it runs).

        A server that ended on its own is a finding: its log folder is kept
        past close() and named here, so the report points at the full output.
        """
        if self.proc is None or self.proc.poll() is None:
            return ""
        how = describe_returncode(self.proc.returncode)
        last = self.last_stderr_line()
        text = f"server process {how}" + (f"; last stderr line: {last}" if last else "")
        if not self._stopped_by_us:
            self._logs.keep = True
            text += f" (its output is kept in {self._logs.path})"
        return text

    def rss_bytes(self) -> int | None:
        """Resident memory of the server process (Linux), or None."""
        if not self._process_running() or self.proc is None:
            return None
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            return None
        return None


@contextmanager
def open_target(spec: TargetSpec) -> Iterator[SpawnedServer | ExternalServer]:
    """Start (or check) the target; always stop what we started."""
    handle: SpawnedServer | ExternalServer
    if spec.server is not None:
        handle = ExternalServer(spec.server)
        handle.check(spec.start_timeout)
        yield handle
        return
    command = spec.command or reference_command(*spec.reference_args)
    label = spec.label if spec.command else "reference server (embedded)"
    handle = SpawnedServer(command, host=spec.host, start_timeout=spec.start_timeout, label=label)
    try:
        handle.start()
        yield handle
    finally:
        handle.close()


#: The target options, declared once: the console scripts add them as ``--server`` etc.
#: (:func:`add_target_arguments`), the pytest plugin as ``--chat-server`` etc.
#: (``reference.pytest_plugin``), because locust's pytest plugin owns ``--host``.
TARGET_OPTIONS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("server", {"metavar": "HOST:PORT", "default": None,
                "help": "use a running server at HOST:PORT (tcp://HOST:PORT also works)"}),
    ("server-cmd", {"metavar": "CMD", "default": None,
                    "help": "launch the server with CMD; {port} and {host} are filled in, "
                            "e.g. 'python3 myserver.py {port}'"}),
    ("start-timeout", {"metavar": "SECONDS", "type": float, "default": DEFAULT_START_TIMEOUT,
                       "help": "how long to wait for the server to accept connections "
                               "(default %(default)s)"}),
)


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    """The console scripts' target options (the pytest plugin's are ``--chat-*``)."""
    group = parser.add_argument_group("target server (default: the embedded reference server)")
    for name, options in TARGET_OPTIONS:
        group.add_argument(f"--{name}", **options)


def spec_from_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> TargetSpec:
    """Build the TargetSpec, turning a bad value into a one-line usage error."""
    try:
        return TargetSpec.parse(server=args.server, command=args.server_cmd,
                                start_timeout=args.start_timeout)
    except ValueError as exc:
        parser.error(str(exc))
