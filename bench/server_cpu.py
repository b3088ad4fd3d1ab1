"""Server CPU per message, the reference against other servers, in paired rounds (a profiling aid).

The fan-out and saturation benchmarks time whole rounds, client work
included; a change to the server's hot path moves their ratios by a few
percent, inside their noise.  This measures only the server process's CPU
time (/proc/PID/schedstat) per small message (fan-out) or per delivery
(saturation), for the target and each other server round by round
(bench/paired.py), every process on one CPU as in ``pytest bench``::

    python -m bench.server_cpu fanout --receivers 1                      # reference vs naive
    python -m bench.server_cpu saturation --against naive,asyncio
    # A/B two trees: this one against ../main (and the naive server)
    python -m bench.server_cpu fanout --against naive \\
        --before 'python -m reference.server --port 0 --log-level WARNING' --before-path ../main

Prints each server's median figure and the median of the per-round ratios
(target / other, below 1.0 the target used less CPU).  Linux only (/proc).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path

from bench.conftest import ASYNCIO_SERVER, NAIVE_SERVER, pin_cpu
from bench.crowd import open_crowd
from bench.paired import PairedRounds, cpu_per_unit
from bench.rooms import fanout_round, open_room
from bench.test_server import FANOUT_TEXT
from reference.process_group import join_command
from reference.target import SpawnedServer, reference_command

OTHERS = {"naive": NAIVE_SERVER, "asyncio": ASYNCIO_SERVER}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.server_cpu", description=__doc__.split("\n")[0])
    p.add_argument("workload", choices=["fanout", "saturation"])
    p.add_argument("--receivers", type=int, default=1, help="fan-out receivers (default 1)")
    p.add_argument("--clients", type=int, default=100, help="saturation clients (default 100)")
    p.add_argument("--against", default="naive", help="comma-separated: naive, asyncio (default naive)")
    p.add_argument("--before", metavar="CMD", default=None,
                   help="also measure this server command, run in --before-path (python -m finds "
                        "that tree's reference package first)")
    p.add_argument("--before-path", metavar="DIR", default=None)
    p.add_argument("--rounds", type=int, default=21)
    p.add_argument("--block", type=int, default=300, help="fan-out messages per block (default 300)")
    p.add_argument("--cpu", default="auto", help="pin this process and the servers to this CPU, as "
                                                 "pytest bench's --bench-cpu (default auto; none)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    unknown = set(args.against.split(",")) - set(OTHERS)
    if unknown:
        print(f"server_cpu: unknown server(s) {', '.join(sorted(unknown))}; known: naive, asyncio",
              file=sys.stderr)
        return 2
    try:
        pin_cpu(args.cpu)
    except Exception as exc:  # pytest.UsageError: a bad --cpu
        print(f"server_cpu: {exc}", file=sys.stderr)
        return 2
    commands = {"target": reference_command("--port", "0", "--log-level", "WARNING")}
    commands.update({k: join_command([sys.executable, str(OTHERS[k]), "--port", "0"])
                     for k in args.against.split(",")})
    if args.before:
        commands["before"] = args.before
    with ExitStack() as stack:
        servers = {}
        for kind, command in commands.items():
            cwd = str(Path(args.before_path).resolve()) if kind == "before" and args.before_path else None
            server = SpawnedServer(command, cwd=cwd)
            server.start()
            stack.callback(server.stop)
            servers[kind] = server
        blocks: dict[str, Callable[[], float]] = {}
        for kind, server in servers.items():
            assert server.pid is not None
            if args.workload == "fanout":
                room = stack.enter_context(open_room(server.address, args.receivers))

                def work(room=room) -> int:
                    for _ in range(args.block):
                        fanout_round(room, FANOUT_TEXT)
                    return args.block
            else:
                crowd = stack.enter_context(open_crowd(server.address, args.clients))
                work = crowd.round
            blocks[kind] = (lambda pid=server.pid, work=work: cpu_per_unit(pid, work))
        for block in blocks.values():
            block()  # warm-up
        paired = PairedRounds(blocks["target"], {k: v for k, v in blocks.items() if k != "target"},
                              figure_name="server CPU seconds per unit")
        for _ in range(args.rounds):
            paired.setup()
            paired.target()
            paired.teardown()
    info = paired.extra_info()
    unit = "message" if args.workload == "fanout" else "delivery"
    for kind, median in info["paired_medians"].items():  # type: ignore[union-attr]
        print(f"{kind:8} {median * 1e6:8.2f} us of server CPU per {unit}")
    for ratio in paired.ratios():
        print(f"target / {ratio.baseline}: {ratio.median:.3f} (median of {len(ratio.ratios)} rounds, "
              f"{min(ratio.ratios):.3f}-{max(ratio.ratios):.3f})")
    print(f"({shlex.join(['python', '-m', 'bench.server_cpu', *(argv or sys.argv[1:])])})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
