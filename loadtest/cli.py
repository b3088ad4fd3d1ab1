"""``chat-load``: the native load generators' command line.

    chat-load latency   [--clients N] [--senders S] [--rate R] [--size B] [--duration T | --messages M]
                        [--warmup T] [--sweep 2,10,50] [--procs K] [--read-tick MS] [--json FILE] [target]
    chat-load limits    [--max N] [--step N] [--deadline T] [--json FILE] [target]  (no --max: ceiling)
    chat-load soak      [--clients M] [--rate R] [--duration T] [--churn J] [--json FILE] [target]
    chat-load calibrate [--rounds N] [--rate R] [--absorb-seconds T] [--vs-locust USERS [--read-tick MS]]
                        [--json FILE] [target]

target: nothing (the embedded reference server), ``--server HOST:PORT`` or
``--server-cmd 'python3 myserver.py {port}'`` (reference.target).  The CLI
turns argv into scenario objects; nothing below it reads sys.argv.
Exit status: 0 when the run finished and found nothing wrong, 1 when it
found lost, duplicated or reordered messages or could not finish, 2 for bad
usage, 130 on Ctrl-C and 143 on SIGTERM (the server it started and its worker
processes are stopped first; ``latency`` reports and writes the scenarios that
finished, the other subcommands write nothing).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any, cast

from rich.console import Console
from rich.text import Text

from reference import exit_codes
from reference.cli_args import client_counts, finite_number, positive_float, positive_int
from reference.console import tolerate_unencodable
from reference.printable import printable_tree
from reference.signals import terminate_as_interrupt
from reference.target import (
    ExternalServer,
    SpawnedServer,
    TargetError,
    TargetSpec,
    add_target_arguments,
    open_target,
    spec_from_args,
)
from reference.version import add_version_argument, tool_name
from reports.results import json_option, make_document, target_info, write_document

__all__ = ["build_parser", "main"]

Handle = SpawnedServer | ExternalServer


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chat-load", description="Load generators for "
                                     "10-byte-header chat servers: latency, limits, soak.")
    add_version_argument(parser)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    pos_int, pos_float = positive_int, positive_float

    lat = sub.add_parser("latency", help="open-loop broadcast latency and delivery correctness")
    lat.add_argument("--clients", type=pos_int, default=10, help="registered clients (default 10)")
    lat.add_argument("--senders", type=pos_int, default=None,
                     help="how many of the clients send (default: all of them)")
    lat.add_argument("--rate", type=pos_float, default=100.0,
                     help="messages per second, all senders together (default 100)")
    lat.add_argument("--size", type=pos_int, default=64, help="payload bytes (default 64)")
    length = lat.add_mutually_exclusive_group()
    length.add_argument("--duration", type=pos_float, default=None,
                        help="measured seconds after the warm-up (default 5)")
    length.add_argument("--messages", type=pos_int, default=None,
                        help="measured messages, instead of --duration")
    lat.add_argument("--warmup", type=float, default=1.0,
                     help="seconds of traffic before measuring, not counted in latency (default 1)")
    lat.add_argument("--sweep", type=client_counts, default=None, metavar="N,N,...",
                     help="run the scenario once per client count, e.g. 2,10,100,1000")
    lat.add_argument("--procs", type=pos_int, default=1,
                     help="generator processes; histograms are merged exactly (default 1)")
    lat.add_argument("--drain", type=pos_float, default=10.0,
                     help="at most this many seconds to wait for late deliveries (default 10)")
    lat.add_argument("--read-tick", type=finite_number(float, zero_ok=True), default=0.0, metavar="MS",
                     help="receivers read once every MS milliseconds instead of as relays arrive: "
                          "less generator CPU per delivery, but each latency includes up to MS ms "
                          "of waiting for its read (default 0: read on arrival)")

    lim = sub.add_parser("limits", help="ramp registered clients until the server stops coping")
    lim.add_argument("--max", type=pos_int, default=None,
                     help="stop at this many clients (default: go on until something gives out, "
                          "at most the open-file limit)")
    lim.add_argument("--step", type=pos_int, default=250, help="clients added per step (default 250)")
    lim.add_argument("--deadline", type=pos_float, default=2.0,
                     help="a probe broadcast slower than this many seconds fails the step (default 2)")
    lim.add_argument("--connect-timeout", type=pos_float, default=5.0,
                     help="a connect slower than this counts as a timeout (default 5)")
    lim.add_argument("--time-limit", type=pos_float, default=300.0,
                     help="give up the whole ramp after this many seconds (default 300)")

    soak = sub.add_parser("soak", help="chat for a while with clients joining and leaving")
    soak.add_argument("--clients", type=pos_int, default=20, help="clients in the room (default 20)")
    soak.add_argument("--rate", type=pos_float, default=50.0,
                      help="messages per second, all clients together (default 50)")
    soak.add_argument("--duration", type=pos_float, default=10.0, help="seconds (default 10)")
    soak.add_argument("--churn", type=float, default=2.0,
                      help="leaves per second, each followed by a join (default 2; 0 = none)")
    soak.add_argument("--abrupt", type=float, default=0.5,
                      help="fraction of leaves done with a TCP reset instead of a close (default 0.5)")
    soak.add_argument("--size", type=pos_int, default=64, help="payload bytes (default 64)")
    soak.add_argument("--seed", type=int, default=1, help="random seed for who leaves (default 1)")

    cal = sub.add_parser("calibrate", help="measure the instrument: its latency against a bare "
                         "send-then-receive loop, and how many frames/s it can absorb")
    cal.add_argument("--rounds", type=pos_int, default=3,
                     help="alternating bare/generator rounds; medians are compared (default 3)")
    cal.add_argument("--rate", type=pos_float, default=50.0,
                     help="messages per second in the latency comparison (default 50)")
    cal.add_argument("--seconds", type=pos_float, default=3.0,
                     help="length of each round and of the absorb test (default 3)")
    cal.add_argument("--absorb-clients", type=pos_int, default=4,
                     help="receiving connections in the absorb test (default 4)")
    cal.add_argument("--absorb-count", type=pos_int, default=50_000,
                     help="relays streamed to each of them (default 50000)")
    cal.add_argument("--vs-locust", type=pos_int, default=None, metavar="USERS",
                     help="also run the same load from a locust swarm of USERS chatters and from "
                          "chat-load, and compare deliveries per CPU-second")
    cal.add_argument("--locust-rate", type=pos_float, default=12.0,
                     help="messages per second each chatter sends with --vs-locust (default 12)")
    cal.add_argument("--read-tick", type=finite_number(float, zero_ok=True), default=0.0, metavar="MS",
                     help="in --vs-locust's efficiency rounds, chat-load's receivers read once every "
                          "MS milliseconds, as chat-load latency --read-tick (default 0: on arrival)")

    for command in (lat, lim):
        command.add_argument("--compare-tls", action="store_true",
                             help="run on the embedded reference twice, plain TCP then TLS "
                                  "(a throwaway certificate), and report both side by side")
    for command in (lat, lim, soak, cal):
        command.set_defaults(subparser=command)  # so target errors name the right usage
        add_target_arguments(command)
        command.add_argument("--json", **json_option())
    return parser


def _check(parser: argparse.ArgumentParser, args: argparse.Namespace, spec: TargetSpec) -> None:
    """Cross-option checks argparse cannot express; one line, exit 2."""
    if getattr(args, "compare_tls", False) and (args.server or args.server_cmd or args.tls):
        parser.error("--compare-tls starts the embedded reference server twice, plain and TLS: "
                     "give no --server, --server-cmd or --tls")
    if getattr(args, "read_tick", 0):  # latency, calibrate
        if sys.platform == "win32":
            parser.error("--read-tick does not work on Windows (its event loop keeps a read "
                         "outstanding on every socket)")
        if getattr(args, "compare_tls", False) or spec.tls is not None:
            parser.error("--read-tick reads the sockets itself, so it needs a plain TCP target, not TLS")
    if args.command == "latency":
        if args.clients < 2 and not args.sweep:
            parser.error("--clients must be at least 2: a broadcast needs a sender and a receiver")
        if args.senders is not None and args.senders > max(args.sweep or [args.clients]):
            parser.error(f"--senders {args.senders} is more than the clients there are")
        if args.warmup < 0:
            parser.error("--warmup must not be negative")
    elif args.command == "limits" and args.max is not None and args.step > args.max:
        parser.error(f"--step {args.step} is larger than --max {args.max}")
    elif args.command == "soak":
        if args.clients < 2:
            parser.error("--clients must be at least 2 for a soak")
        if args.churn < 0:
            parser.error("--churn must not be negative")
        if not 0 <= args.abrupt <= 1:
            parser.error("--abrupt is a fraction between 0 and 1")


def _run(args: argparse.Namespace, target: Handle, console: Console) -> dict[str, Any]:
    """Dispatch to the subcommand; return its results document."""
    # Imported here so `chat-load --help` stays fast and a subcommand loads only what it uses.
    if args.command == "latency":
        from loadtest.latency import latency_command
        kind, summary, records = latency_command(args, target, console)
    elif args.command == "limits":
        from loadtest.limits import limits_command
        kind, summary, records = limits_command(args, target, console)
    elif args.command == "soak":
        from loadtest.soak import soak_command
        kind, summary, records = soak_command(args, target, console)
    else:
        from loadtest.calibrate import calibrate_command
        kind, summary, records = calibrate_command(args, target, console)
    return make_document(kind, tool=tool_name("chat-load"), summary=summary, records=records,
                         target=target_info(target.label, target.address, args.server_cmd))


def main(argv: Sequence[str] | None = None, console: Console | None = None) -> int:
    tolerate_unencodable()  # a non-UTF-8 console shows '?' for what it lacks, not a traceback
    parser = build_parser()
    args = parser.parse_args(argv)
    spec = spec_from_args(args.subparser, args)
    _check(args.subparser, args, spec)
    # What we print quotes the server: data, not markup.  Errors and the interruption line go
    # to stderr, so that `chat-load ... > results.txt` still shows them (a console given by a
    # caller gets everything).
    errors = console or Console(stderr=True, markup=False)
    console = console or Console(markup=False)
    # SIGTERM ends the run like Ctrl-C: leaving open_target stops the server group we
    # started, and the subcommands' finally blocks stop their worker processes.
    with terminate_as_interrupt() as caught:
        try:
            with open_target(spec) as target:
                doc = _run(args, target, console)
            if getattr(args, "compare_tls", False):
                from loadtest.compare_tls import compare, tls_spec
                with open_target(tls_spec(spec)) as target:
                    doc = compare(args.command, doc, _run(args, target, console))
        except TargetError as exc:
            # One line, however long, and the error text is not rich markup ("[Errno 111]").
            errors.print(Text.assemble(("chat-load:", "bold red"), f" target server unavailable: {exc}"),
                         soft_wrap=True)
            return exit_codes.TARGET_UNAVAILABLE
        except KeyboardInterrupt:
            errors.print(Text.assemble(("chat-load:", "bold red"), f" {caught.words}; no results written"))
            return caught.exit_status
    doc = cast(dict[str, Any], printable_tree(doc))  # shown as it is written: nothing raw from the server
    if args.json:
        write_document(args.json, doc)
    from loadtest.live import print_document
    print_document(console, doc)
    if "tls_comparison" in doc["summary"]:
        from loadtest.compare_tls import comparison_table
        console.print(comparison_table(args.command, doc["summary"]["tls_comparison"]))
    if args.json:
        console.print(Text(f"results written to {args.json}"))
    if caught.happened:  # latency keeps the scenarios that finished before the signal
        errors.print(Text.assemble(("chat-load:", "bold red"),
                                   f" {caught.words}; the finished part is reported above"))
        return caught.exit_status
    ok = doc["summary"].get("ok", True) and not doc["summary"].get("error")
    return exit_codes.OK if ok else exit_codes.FINDINGS


if __name__ == "__main__":
    sys.exit(main())
