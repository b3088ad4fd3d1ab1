"""``chat-swarm``: a bounded headless locust swarm against a target, for CI and quick checks.

    chat-swarm -u 12 -t 5 --json out/swarm.json            # the embedded reference server
    chat-swarm --server 127.0.0.1:1234 -u 50 -t 30 --chat-rate 5
    chat-swarm --server-cmd 'python3 myserver.py {port}' -- --processes 2 Chatter Lurker

It starts (or checks) the target through ``reference.target``, so a spawned
server is always cleaned up, runs ``locust -f loadtest/locustfile.py
--headless`` on it as a child process, and exits non-zero when locust
recorded any failure (a lost, duplicated or reordered message, a refused
connect, a disconnect, ...) or did not finish in time.  Options it does not
know go to locust unchanged (``--chat-*``, ``--processes``, ``--html``, user
classes).  This process never imports locust: only the child does.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from loadtest.swarm.options import finite_number
from loadtest.swarm.results import summary_line
from reference.target import (
    TargetError,
    add_target_arguments,
    open_target,
    spec_from_args,
    stop_process_group,
)
from reference.version import add_version_argument
from reports.results import ResultsError, load_document, target_info, write_document

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
    swarm.add_argument("-t", "--run-time", type=finite_number(int), default=10, metavar="SECONDS",
                       help="how long the swarm runs, in seconds (default %(default)s)")
    swarm.add_argument("--json", metavar="FILE", default=None,
                       help="write the results document (kind 'locust') to FILE")
    return parser


def locust_command(host: str, users: int, spawn_rate: float, run_time_s: int, json_path: Path,
                   extra: list[str]) -> list[str]:
    """The child's argv: headless, bounded, reporting to ``json_path``."""
    return [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
            "--host", host, "-u", str(users), "-r", f"{spawn_rate:g}", "-t", f"{run_time_s}s",
            "--chat-json", str(json_path), *extra]


def _run_locust(argv: list[str], timeout: float) -> int:
    """Run locust in its own process group; -1 if it overran ``timeout``."""
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        print(f"chat-swarm: locust did not finish within {timeout:g} s; killed it", file=sys.stderr)
        return -1
    finally:
        # --processes forks workers into the same group: none may outlive us.
        stop_process_group(proc)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if "--" in extra:  # "chat-swarm [options] -- [locust options]": the separator is ours
        extra.remove("--")
    spec = spec_from_args(parser, args)
    if "--chat-json" in extra or any(a.startswith("--chat-json=") for a in extra):
        parser.error("use --json FILE, not --chat-json (chat-swarm sets it)")
    spawn_rate = args.spawn_rate or float(args.users)
    with tempfile.TemporaryDirectory(prefix="chat-swarm-") as tmp:
        raw_json = Path(tmp) / "locust.json"
        try:
            with open_target(spec) as target:
                host = f"{target.address[0]}:{target.address[1]}"
                argv_locust = locust_command(host, args.users, spawn_rate, args.run_time,
                                             raw_json, extra)
                print(f"chat-swarm: {target.label} at {host}: {shlex.join(argv_locust)}", flush=True)
                code = _run_locust(argv_locust, args.run_time + FINISH_MARGIN_S)
                died = target.describe_exit()
        except TargetError as exc:
            print(f"chat-swarm: {exc}", file=sys.stderr)
            return 1
        try:
            doc = load_document(raw_json, kind="locust")
        except ResultsError as exc:
            print(f"chat-swarm: locust wrote no results (exit status {code}): {exc}", file=sys.stderr)
            return 1
    doc["target"] = target_info(spec.label, target.address, spec.command)
    doc["summary"]["locust_exit_status"] = code
    if died:
        doc["summary"]["ok"] = False
        doc["summary"]["server_exit"] = died
    if args.json:
        print(f"chat-swarm: results written to {write_document(args.json, doc)}")
    print(summary_line(doc["summary"]) + (f"; {died}" if died else ""))
    return 0 if code == 0 and doc["summary"]["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
