"""``chat-swarm``: a bounded locust swarm against a target, for CI and quick checks.

    chat-swarm -u 12 -t 5 --json out/swarm.json            # the embedded reference server
    chat-swarm --server 127.0.0.1:1234 -u 50 -t 1m30s --chat-rate 5
    chat-swarm --server-cmd 'python3 myserver.py {port}' -- --processes 2 Chatter Lurker
    chat-swarm --web -t 5m                                 # watch it: http://127.0.0.1:8089/?tab=chat

It starts (or checks) the target through ``reference.target``, so a spawned
server is always cleaned up, runs ``locust -f loadtest/locustfile.py`` on it
as a child process (``--headless``, or with ``--web`` the web UI with
``--autostart``), and exits non-zero when locust recorded any failure (a
lost, duplicated, reordered, mislabelled or unpaired message, a refused
connect, a disconnect, ...) or did not finish in time.  ``-t`` takes locust's
forms (``90``, ``10s``, ``1m30s``, ``1h``).

Options it does not know go to locust unchanged (``--chat-*``,
``--processes``, ``--html``, user classes); locust checks them before any
server is started, and locust's informational flags (``--list``,
``--version``, ``--help``...) run locust alone.  The web UI and a
``--processes`` master bind 127.0.0.1 unless ``--web-host`` /
``--master-bind-host`` say otherwise.  Ctrl-C (SIGINT) or SIGTERM stops
locust gracefully, so it prints its final statistics, then the server; the
exit status is 130 or 143, after one line.  This process never imports
locust: only the child does.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from types import FrameType

from loadtest.swarm.results import summary_line
from reference import exit_codes
from reference.cli_args import finite_number, run_time
from reference.process_group import process_group_start
from reference.target import (
    TargetError,
    add_target_arguments,
    open_target,
    spec_from_args,
    stop_process_group,
)
from reference.version import add_version_argument
from reports.results import ResultsError, json_option, load_document, target_info, write_document

__all__ = ["LOCUSTFILE", "locust_command", "main"]

LOCUSTFILE = Path(__file__).resolve().parent.parent / "locustfile.py"
#: Time locust may need beyond --run-time: start-up, spawning, stopping users, reports.
FINISH_MARGIN_S = 60.0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chat-swarm", allow_abbrev=False,
        description="Run a short headless locust swarm (loadtest/locustfile.py) against a chat "
                    "server and fail if locust records any failure. Unknown options go to locust.")
    add_version_argument(parser)
    add_target_arguments(parser)
    swarm = parser.add_argument_group("swarm")
    swarm.add_argument("-u", "--users", type=finite_number(int), default=10,
                       help="peak number of users (default %(default)s)")
    swarm.add_argument("-r", "--spawn-rate", type=finite_number(float), default=None,
                       help="users started per second (default: all in the first second)")
    swarm.add_argument("-t", "--run-time", type=run_time, default=10, metavar="TIME",
                       help="how long the swarm runs: seconds, or locust's 10s, 1m30s, 1h "
                            "(default %(default)s s)")
    swarm.add_argument("--web", action="store_true",
                       help="run with locust's web UI (started at once; the Chat tab shows the chat "
                            "figures) on 127.0.0.1:8089, or where --web-host/--web-port say")
    swarm.add_argument("--json", **json_option("locust"))
    return parser


#: locust flags that only print something: run locust alone, without a server.
INFO_FLAGS = frozenset({"--help", "--version", "-V", "--list", "-l", "--list-commands",
                        "--show-task-ratio", "--show-task-ratio-json", "--config-users"})


def _has(extra: list[str], flag: str) -> bool:
    return any(a == flag or a.startswith(flag + "=") for a in extra)


def locust_command(host: str, users: int, spawn_rate: float, run_time_s: int, json_path: Path,
                   extra: list[str], web: bool = False) -> list[str]:
    """The child's argv: bounded, reporting to ``json_path``, listening on loopback only."""
    mode = ["--autostart", "--autoquit", "0"] if web else ["--headless"]
    if web and not _has(extra, "--web-host"):
        mode += ["--web-host", "127.0.0.1"]
    if _has(extra, "--processes") and not _has(extra, "--master-bind-host"):
        mode += ["--master-bind-host", "127.0.0.1"]
    return [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), *mode,
            "--host", host, "-u", str(users), "-r", f"{spawn_rate:g}", "-t", f"{run_time_s}s",
            "--chat-json", str(json_path), *extra]


def _locust_refuses(extra: list[str]) -> str | None:
    """locust's own verdict on the options we pass through, before any server starts.

    ``--list`` makes locust parse everything (its options, the locustfile's
    ``--chat-*``) and exit without running; a refusal is its last line.
    """
    argv = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
            "--host", "127.0.0.1:1", *extra, "--list"]
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    if done.returncode == 0:
        return None
    lines = (done.stderr or done.stdout).strip().splitlines()
    return lines[-1] if lines else f"exit status {done.returncode}"


class _Signalled(Exception):
    """SIGINT or SIGTERM arrived before locust was running."""


class _Stopper:
    """Turns SIGINT/SIGTERM into a graceful stop of locust (which then prints its statistics)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self._old: dict[int, object] = {}

    def __enter__(self) -> _Stopper:
        signums = [signal.SIGINT, signal.SIGTERM]
        if sys.platform == "win32":  # reference.process_group stops a tool's group with Ctrl-Break there
            signums.append(signal.SIGBREAK)
        for signum in signums:
            self._old[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *_: object) -> None:
        for signum, handler in self._old.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        first = self.signum is None
        self.signum = self.signum or signum
        if self.proc is None:
            raise _Signalled()
        if first:
            try:  # locust's graceful stop: users stopped, final statistics printed, no
                # "KeyboardInterrupt" from gevent's hub as a SIGINT would print
                self.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass

    @property
    def exit_status(self) -> int:
        """130 after SIGINT, 143 after SIGTERM (and Ctrl-Break, which stands for it on Windows)."""
        if self.signum in (None, signal.SIGINT):
            return exit_codes.INTERRUPTED
        return exit_codes.TERMINATED


def _run_locust(argv: list[str], timeout: float, stopper: _Stopper) -> int:
    """Run locust in its own process group; -1 if it overran ``timeout``."""
    group = process_group_start()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, start_new_session=group.start_new_session,
                            creationflags=group.creationflags)
    stopper.proc = proc
    try:
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            if stopper.signum is not None:  # stopping after a signal: give it its final report
                try:
                    return proc.wait(FINISH_MARGIN_S)
                except subprocess.TimeoutExpired:
                    pass
            print(f"chat-swarm: locust did not finish within {timeout:g} s; killed it", file=sys.stderr)
            return -1
    finally:
        stopper.proc = None
        # --processes forks workers into the same group: none may outlive us.
        stop_process_group(proc)


def _signal_name(signum: int | None) -> str:
    if signum == signal.SIGINT or signum is None:
        return "Ctrl-C (SIGINT)"
    return "SIGTERM" if signum == signal.SIGTERM else signal.Signals(signum).name


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if "--" in extra:  # "chat-swarm [options] -- [locust options]": the separator is ours
        extra.remove("--")
    if any(a in INFO_FLAGS for a in extra):  # locust only prints something: no server needed
        return subprocess.run([sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), *extra],
                              stdin=subprocess.DEVNULL, check=False).returncode
    spec = spec_from_args(parser, args)
    if "--chat-json" in extra or any(a.startswith("--chat-json=") for a in extra):
        parser.error("use --json FILE, not --chat-json (chat-swarm sets it)")
    if extra and (refusal := _locust_refuses(extra)):
        print(f"chat-swarm: locust refused the options {shlex.join(extra)}: {refusal}", file=sys.stderr)
        return exit_codes.USAGE
    spawn_rate = args.spawn_rate or float(args.users)
    with tempfile.TemporaryDirectory(prefix="chat-swarm-") as tmp, _Stopper() as stopper:
        raw_json = Path(tmp) / "locust.json"
        try:
            with open_target(spec) as target:
                host = f"{target.address[0]}:{target.address[1]}"
                argv_locust = locust_command(host, args.users, spawn_rate, args.run_time,
                                             raw_json, extra, web=args.web)
                print(f"chat-swarm: {target.label} at {host}: {shlex.join(argv_locust)}", flush=True)
                if args.web:
                    web_host = next((extra[i + 1] for i, a in enumerate(extra[:-1]) if a == "--web-host"),
                                    "127.0.0.1")
                    web_port = next((extra[i + 1] for i, a in enumerate(extra[:-1]) if a == "--web-port"),
                                    "8089")
                    print(f"chat-swarm: web UI at http://{web_host}:{web_port}/?tab=chat", flush=True)
                code = _run_locust(argv_locust, args.run_time + FINISH_MARGIN_S, stopper)
                died = target.describe_exit()
        except _Signalled:
            print(f"chat-swarm: stopped by {_signal_name(stopper.signum)} before locust started; "
                  "the server it started is stopped", file=sys.stderr)
            return stopper.exit_status
        except TargetError as exc:
            print(f"chat-swarm: {exc}", file=sys.stderr)
            return exit_codes.TARGET_UNAVAILABLE
        if stopper.signum is not None:
            print(f"chat-swarm: stopped by {_signal_name(stopper.signum)}: locust's final statistics "
                  "are above; the server it started is stopped", file=sys.stderr)
            return stopper.exit_status
        try:
            doc = load_document(raw_json, kind="locust")
        except ResultsError as exc:
            print(f"chat-swarm: locust wrote no results (exit status {code}): {exc}", file=sys.stderr)
            return exit_codes.FINDINGS
    doc["target"] = target_info(spec.label, target.address, spec.command)
    doc["summary"]["locust_exit_status"] = code
    if died:
        doc["summary"]["ok"] = False
        doc["summary"]["server_exit"] = died
    if args.json:
        print(f"chat-swarm: results written to {write_document(args.json, doc)}")
    print(summary_line(doc["summary"]) + (f"; {died}" if died else ""))
    return exit_codes.OK if code == 0 and doc["summary"]["ok"] else exit_codes.FINDINGS


if __name__ == "__main__":
    sys.exit(main())
