"""``chat-load calibrate``: measure the instrument before trusting its numbers.

Two questions, answered against the same server in the same run:

1. Does the generator add latency of its own?  Rounds alternate between a
   bare, hand-written send-then-receive timing loop (two blocking
   ChatClients, ``perf_counter_ns`` around ``send`` + ``receive``) and
   ``chat-load latency`` with one sender and one receiver at the same low
   rate.  The medians of the per-round p50s must agree within 30%.
2. How many frames per second can one generator process absorb?  A firehose
   (loadtest.feeder, started like any server) streams stamped relays to a
   few connections; one process receives them through the generator's own
   receive path (timing, order and loss bookkeeping included).

Results are written as a ``bench`` document (reports/FORMAT.md).
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console

from loadtest.latency import LoadError, run_scenario
from loadtest.latency_worker import Receipts
from loadtest.live import LiveStatus
from loadtest.scenario import Scenario
from reference import aclient
from reference.aclient import connect_client
from reference.client import join_room
from reference.process_group import join_command
from reference.stamp import make_payload, receive_limit
from reference.target import SpawnedServer
from reports.results import load_document

__all__ = ["absorb", "bare_round", "calibrate_command", "efficiency_rounds", "versus_locust"]

#: The issue's bar: the generator's p50 within 30% of the bare loop's.
TOLERANCE = 0.30
#: The room in which the swarm's and chat-load's median latencies are compared.
ROOM_USERS, ROOM_RATE = 20, 0.8


def bare_round(address: tuple[str, int], count: int, rate: float, size: int) -> float:
    """p50 in microseconds of ``count`` timed send-then-receive exchanges, paced at ``rate``."""
    tx, rx = join_room(*address, ["bare-tx", "bare-rx"])  # returns once both are registered
    with tx, rx:
        samples = []
        due = time.monotonic()
        for seq in range(count):
            text = make_payload(0, seq, 0, size)
            start = time.perf_counter_ns()
            tx.send(text)
            rx.receive(timeout=5.0)
            samples.append(time.perf_counter_ns() - start)
            due += 1.0 / rate
            time.sleep(max(0.0, due - time.monotonic()))
    return statistics.median(samples) / 1000


def generator_round(address: tuple[str, int], count: int, rate: float, size: int,
                    server_pid: int | None) -> float:
    """p50 in microseconds of ``chat-load latency`` with one sender and one receiver."""
    scenario = Scenario.build(host=address[0], port=address[1], clients=2, senders=1, rate=rate,
                              size=size, duration_s=None, messages=count, warmup_s=0.5)
    record = run_scenario(scenario, server_pid)
    if record["lost"] or record["latency_us"]["p50"] is None:
        raise LoadError(f"the generator round lost {record['lost']} of {record['expected_deliveries']}")
    return float(record["latency_us"]["p50"])


async def absorb(address: tuple[str, int], receivers: int, count: int, size: int) -> dict[str, Any]:
    """Receive ``count`` relays on each of ``receivers`` connections as fast as they come."""
    scenario = Scenario(host=address[0], port=address[1], clients=receivers + 1, senders=1,
                        rate=1.0, size=size, measured_count=count, warmup_count=0)
    ids = list(range(1, receivers + 1))
    receipts = Receipts(scenario, ids)
    cpu0, start = time.process_time(), time.monotonic_ns()
    clients = [await connect_client(*address, name=f"absorb{i}", on_frames=receipts.callback(i),
                                    max_payload=receive_limit(size))
               for i in ids]
    deadline = time.monotonic() + 120.0
    while receipts.unique < count * receivers and time.monotonic() < deadline:
        if all(c.closed.done() for c in clients) and receipts.unique < count * receivers:
            break  # the feeder is done with us
        await asyncio.sleep(0.05)
    cpu_s = time.process_time() - cpu0
    wall_s = (receipts.last_delivery_ns - start) / 1e9
    for c in clients:
        c.close()
    per_s = receipts.unique / wall_s if wall_s > 0 else 0.0
    return {"deliveries": receipts.unique, "expected": count * receivers, "wall_s": round(wall_s, 3),
            "deliveries_per_s": round(per_s), "frames_per_s": round(2 * per_s),
            "cpu_percent": round(100 * cpu_s / wall_s, 1) if wall_s > 0 else None,
            **receipts.counts()}


def _swarm(address: tuple[str, int], users: int, rate: float, seconds: float) -> dict[str, Any]:
    """The summary of a locust swarm of ``users`` Chatters, run as a subprocess.

    A subprocess because importing locust would monkey-patch this process; its
    CPU is counted by the swarm itself (``load_cpu_s``: the process that runs the
    users, from the test's start to its end, reading included).
    """
    locustfile = Path(__file__).with_name("locustfile.py")
    with tempfile.TemporaryDirectory(prefix="chat-calibrate-") as tmp:
        out = Path(tmp) / "locust.json"
        argv = [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "--only-summary",
                "-u", str(users), "-r", str(users), "-t", f"{seconds:g}s", "--host",
                f"{address[0]}:{address[1]}", "--chat-rate", f"{rate:g}", "--chat-json", str(out),
                "Chatter"]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 120)
        if not out.exists():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            raise LoadError(f"the locust swarm wrote no results (exit {proc.returncode}): {tail[0]}")
        summary: dict[str, Any] = load_document(out)["summary"]
        return summary


def versus_locust(address: tuple[str, int], users: int, rate: float, seconds: float,
                  server_pid: int | None, native_first: bool = False,
                  read_tick_s: float = 0.0) -> dict[str, Any]:
    """The same chat load from a locust swarm and from chat-load: deliveries per CPU-second.

    Locust runs ``users`` Chatter users sending ``rate`` messages/s each;
    chat-load runs ``users`` clients at ``users * rate`` messages/s in total,
    one after the other against the same server (``native_first`` swaps the
    order, so that a drift in the machine's load does not always favour one).
    Each side counts the CPU of its one load-generating process while its
    users chat and read, and the deliveries its receivers got in that time.
    ``read_tick_s`` > 0 makes chat-load's receivers read in ticks (``--read-tick``).
    """
    scenario = Scenario.build(host=address[0], port=address[1], clients=users, senders=users,
                              rate=users * rate, size=64, duration_s=seconds, messages=None,
                              warmup_s=0.5, read_tick_s=read_tick_s)
    if native_first:
        record = run_scenario(scenario, server_pid)
        swarm = _swarm(address, users, rate, seconds)
    else:
        swarm = _swarm(address, users, rate, seconds)
        record = run_scenario(scenario, server_pid)
    generator = record["generator"]
    native_cpu_s = generator["cpu_s"]
    locust_p50 = (swarm.get("latency_us") or {}).get("p50")
    native_p50 = record["latency_us"]["p50"]
    native_per = record["deliveries"] / native_cpu_s if native_cpu_s else None
    locust_per = swarm.get("received_per_cpu_s")
    return {
        "p50_ratio": round(locust_p50 / native_p50, 2) if locust_p50 and native_p50 else None,
        "efficiency_ratio": round(native_per / locust_per, 2) if native_per and locust_per else None,
        "locust_bottleneck": swarm.get("locust_bottleneck"),
        "native_bottleneck": generator["bottleneck"],
        "locust_received": swarm["received"], "locust_cpu_s": swarm.get("load_cpu_s"),
        "locust_per_cpu_s": swarm.get("received_per_cpu_s"),
        "locust_p50_us": locust_p50, "locust_ok": swarm.get("ok"),
        "native_received": record["deliveries"], "native_cpu_s": native_cpu_s,
        "native_per_cpu_s": round(native_per, 1) if native_per else None,
        "native_p50_us": native_p50, "native_ok": record["lost"] == 0,
        "native_relays_per_read": generator.get("relays_per_read"),
        "locust_relays_per_read": swarm.get("relays_per_read"),
        "users": users, "rate_each": rate, "seconds": seconds,
        "native_read_tick_ms": generator.get("read_tick_ms"),
    }


def efficiency_rounds(address: tuple[str, int], users: int, rate: float, seconds: float,
                      rounds: int, server_pid: int | None,
                      on_round: Callable[[int, dict[str, Any]], None] | None = None,
                      read_tick_s: float = 0.0) -> dict[str, Any]:
    """:func:`versus_locust` ``rounds`` times, alternating which tool goes first.

    One round's ratio moves with the machine (how far behind the server and
    each tool fall, and so how many relays one read brings), so the verdict
    is the median of the per-round ratios; every round is kept.
    """
    each = []
    for i in range(rounds):
        each.append(versus_locust(address, users, rate, seconds, server_pid, native_first=i % 2 == 1,
                                  read_tick_s=read_tick_s))
        if on_round is not None:
            on_round(i, each[-1])
    ratios = [r["efficiency_ratio"] for r in each if r["efficiency_ratio"] is not None]
    middle = statistics.median(ratios) if ratios else None
    # The round whose ratio is the median (the lower one of an even count) stands for the rest.
    shown = min(each, key=lambda r: abs((r["efficiency_ratio"] or 0.0) - (middle or 0.0)))
    return {**shown, "efficiency_ratio": round(middle, 2) if middle is not None else None,
            "rounds": [{k: r[k] for k in _ROUND_KEYS} for r in each]}


#: What :func:`efficiency_rounds` keeps of every round.
_ROUND_KEYS = ("efficiency_ratio", "locust_per_cpu_s", "native_per_cpu_s", "locust_received",
               "native_received", "locust_cpu_s", "native_cpu_s", "locust_p50_us", "native_p50_us",
               "native_relays_per_read", "locust_relays_per_read")


def _bench_record(name: str, median_s: float, values: list[float], **extra: Any) -> dict[str, Any]:
    return {"name": name, "group": "calibrate", "median_s": median_s, "mean_s": statistics.fmean(values),
            "min_s": min(values), "stddev_s": statistics.pstdev(values), "rounds": len(values),
            "ops": 1.0 / median_s if median_s else None, "normalised": None, **extra}


def calibrate_command(args: Any, target: Any, console: Console) -> tuple[str, dict[str, Any],
                                                                        list[dict[str, Any]]]:
    count, size = max(10, round(args.seconds * args.rate)), 16
    bare: list[float] = []
    generated: list[float] = []
    with LiveStatus(console, f"chat-load calibrate against {target.label}") as status:
        status.update(done=0, total=2 * args.rounds + 1)
        for i in range(args.rounds):  # alternate, so drift in the machine's load hits both
            status.update(phase=f"round {i + 1}: bare send-then-receive loop")
            bare.append(bare_round(target.address, count, args.rate, size))
            status.update(done=2 * i + 1, phase=f"round {i + 1}: chat-load latency, 1 receiver",
                          bare_p50=f"{bare[-1]:.0f} µs")
            generated.append(generator_round(target.address, count, args.rate, size,
                                             getattr(target, "pid", None)))
            status.update(done=2 * i + 2, generator_p50=f"{generated[-1]:.0f} µs")
        status.update(phase=f"absorb: {args.absorb_clients} connections from a relay firehose")
        feeder = SpawnedServer(f"{join_command([sys.executable])} -m loadtest.feeder --port {{port}} "
                               f"--count {args.absorb_count} --size 64", label="relay firehose")
        try:
            feeder.start()
            soaked = aclient.run(absorb(feeder.address, args.absorb_clients, args.absorb_count, 64))
        finally:
            feeder.close()
        versus = room = None
        if args.vs_locust:
            # Latency: the room (20 users, 16 messages/s in all), where neither side is busy.
            status.update(phase=f"locust swarm vs chat-load, latency: {ROOM_USERS} users x {ROOM_RATE:g}/s")
            room = versus_locust(target.address, ROOM_USERS, ROOM_RATE, max(10.0, args.seconds * 3),
                                 getattr(target, "pid", None))
            # Efficiency: deliveries per CPU-second with every user chatting hard.
            status.update(phase=f"locust swarm vs chat-load, efficiency: {args.vs_locust} users, "
                                f"{args.rounds} round(s)")
            versus = efficiency_rounds(
                target.address, args.vs_locust, args.locust_rate, args.seconds * 2, args.rounds,
                getattr(target, "pid", None),
                lambda i, r: status.update(phase=f"efficiency round {i + 1} of {args.rounds}",
                                           efficiency=f"{r['efficiency_ratio']}"),
                read_tick_s=args.read_tick / 1000)
    bare_p50, gen_p50 = statistics.median(bare), statistics.median(generated)
    ratio = gen_p50 / bare_p50
    params = {"rate": args.rate, "size": size, "messages_per_round": count}
    records = [
        _bench_record("bare send-then-receive loop p50", bare_p50 / 1e6, [b / 1e6 for b in bare],
                      params=params, p50_us=[round(b) for b in bare]),
        _bench_record("chat-load latency p50, 1 receiver", gen_p50 / 1e6,
                      [g / 1e6 for g in generated], params=params, p50_us=[round(g) for g in generated]),
        _bench_record("absorb: relays received by one process", 1.0 / max(soaked["deliveries_per_s"], 1),
                      [1.0 / max(soaked["deliveries_per_s"], 1)],
                      params={"connections": args.absorb_clients, "size": 64}, **soaked),
    ]
    if versus is not None:
        for side in ("locust", "native"):
            pers = [r[f"{side}_per_cpu_s"] for r in versus["rounds"]]
            seconds = [1.0 / per if per else 0.0 for per in pers]  # CPU seconds per delivery
            records.append(_bench_record(f"{'locust swarm' if side == 'locust' else 'chat-load'}: "
                                         "deliveries per CPU-second", statistics.median(seconds), seconds,
                                         params={"users": versus["users"], "rate_each": versus["rate_each"]},
                                         deliveries_per_cpu_s=pers,
                                         p50_us=[r[f"{side}_p50_us"] for r in versus["rounds"]]))
    summary = {"calibration": None, "benchmarks": len(records), "bare_p50_us": round(bare_p50),
               "generator_p50_us": round(gen_p50), "ratio": round(ratio, 3),
               "within_30_percent": abs(ratio - 1) <= TOLERANCE,
               "absorb_frames_per_s": soaked["frames_per_s"],
               "absorb_cpu_percent": soaked["cpu_percent"],
               "ok": abs(ratio - 1) <= TOLERANCE and soaked["deliveries"] == soaked["expected"]}
    if versus is not None:
        summary["versus_locust"] = versus
        summary["versus_locust_latency"] = room
    return "bench", summary, records
