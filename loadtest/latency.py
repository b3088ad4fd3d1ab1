"""``chat-load latency``: the coordinator that runs workers and merges what they saw.

For each scenario (one per ``--sweep`` client count) it starts ``procs``
worker processes (loadtest.latency_worker), waits until every client is
registered, gives them a common time zero, collects their progress for the
live display and, at the end, merges their results exactly: HDR histograms
bucket by bucket, fan-out arrays message by message, counts by sum.  The
result is one ``latency`` record as reports/FORMAT.md describes.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from array import array
from collections.abc import Callable
from dataclasses import replace
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

from rich.console import Console

from loadtest.latency_worker import worker_main
from loadtest.live import LiveStatus
from loadtest.scenario import LAG_TOLERANCE_NS, Scenario
from loadtest.stats import LatencyHistogram, load_average, merge_encoded

if sys.platform == "win32":  # what a spawn context's Pipe() gives there
    from multiprocessing.connection import PipeConnection as Pipe
else:
    from multiprocessing.connection import Connection as Pipe

__all__ = ["LoadError", "ProcessCpu", "delayed_ack_signature", "latency_command", "latency_summary",
           "run_latency", "run_scenario"]

#: A generator process busier than this is too busy to time deliveries faithfully.
BUSY_CPU_PERCENT = 80.0
_START_DELAY_NS = 200_000_000
#: What a receiver can find wrong with relays, beyond loss (reference.sequence's keys).
RELAY_PROBLEMS = ("duplicated", "reordered", "mislabelled", "unpaired", "echoed", "sequence_jump")
ProgressCallback = Callable[[dict[str, Any]], None]


class LoadError(RuntimeError):
    """The load run could not be carried out (say why in plain words)."""


class ProcessCpu:
    """CPU time of another local process, from /proc (Linux), for the server's share."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self._start = self._read()
        self._wall = time.monotonic()

    def _read(self) -> float | None:
        if self.pid is None or sys.platform == "win32":  # no /proc, no sysconf: unknown
            return None
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return None

    def percent(self) -> float | None:
        """Percent of one core used since construction, or None if unknown."""
        now, wall = self._read(), time.monotonic() - self._wall
        if now is None or self._start is None or wall <= 0:
            return None
        return round(100.0 * (now - self._start) / wall, 1)


def _start_workers(scenario: Scenario) -> tuple[list[Any], list[Pipe]]:
    ctx = multiprocessing.get_context("spawn")  # no inherited threads or event loops
    procs, pipes = [], []
    for worker in range(scenario.procs):
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=worker_main, args=(scenario, worker, child), daemon=True,
                           name=f"chat-load-worker-{worker}")
        proc.start()
        child.close()
        procs.append(proc)
        pipes.append(parent)
    return procs, pipes


def _collect(pipes: list[Pipe], want: str, deadline: float, on_message: Callable[[int, tuple[Any, ...]],
             None]) -> dict[int, Any]:
    """Read messages until every worker has sent ``want``; raise LoadError on error or timeout."""
    got: dict[int, Any] = {}
    index = {id(p): i for i, p in enumerate(pipes)}
    while len(got) < len(pipes):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise LoadError(f"{len(pipes) - len(got)} worker process(es) sent no {want!r} in time")
        for ready in wait([p for i, p in enumerate(pipes) if i not in got], timeout=min(remaining, 0.25)):
            i = index[id(ready)]
            try:
                message: tuple[Any, ...] = pipes[i].recv()
            except EOFError:
                raise LoadError(f"worker {i} exited without a result") from None
            if message[0] == "error":
                raise LoadError(message[1])
            if message[0] == want:
                got[i] = message[1]
            on_message(i, message)
        on_message(-1, ("tick",))
    return got


def run_scenario(scenario: Scenario, server_pid: int | None = None,
                 on_progress: ProgressCallback | None = None) -> dict[str, Any]:
    """Run one scenario end to end and return its merged ``latency`` record."""
    progress: dict[str, Any] = {"phase": "connecting", "clients": scenario.clients, "registered": 0,
                                "sent": 0, "delivered": 0, "elapsed_s": 0.0,
                                "schedule_s": scenario.schedule_s, "warmup_s": scenario.warmup_s}
    per_worker: dict[int, dict[str, int]] = {}
    started = time.monotonic()

    def on_message(i: int, message: tuple[Any, ...]) -> None:
        if message[0] in ("connected", "ready"):
            per_worker[i] = {**per_worker.get(i, {}), "registered": message[1]}
        elif message[0] == "progress":
            per_worker[i] = {**per_worker.get(i, {}), **message[1]}
        for key in ("registered", "sent", "delivered"):
            progress[key] = sum(w.get(key, 0) for w in per_worker.values())
        if progress["phase"] == "running":
            progress["elapsed_s"] = time.monotonic() - started
        if on_progress is not None:
            on_progress(progress)

    procs, pipes = _start_workers(scenario)
    try:
        setup_deadline = time.monotonic() + 30.0 + 3 * scenario.connect_timeout
        _collect(pipes, "ready", setup_deadline, on_message)
        t0 = time.monotonic_ns() + _START_DELAY_NS
        for pipe in pipes:
            pipe.send(("start", t0))
        server_cpu = ProcessCpu(server_pid)
        progress["phase"], started = "running", time.monotonic() + _START_DELAY_NS / 1e9
        run_deadline = time.monotonic() + scenario.schedule_s + 2 * scenario.drain_s + 30.0
        results = _collect(pipes, "result", run_deadline, on_message)
        server_percent = server_cpu.percent()
    finally:
        for proc in procs:
            proc.join(timeout=5.0)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5.0)
        for pipe in pipes:
            pipe.close()
    return _merge(scenario, [results[i] for i in sorted(results)], server_percent, t0)


def _merge(scenario: Scenario, results: list[dict[str, Any]],
           server_percent: float | None, t0: int) -> dict[str, Any]:
    """One record from every worker's result; exact, not averaged."""
    sent_by: dict[int, int] = {}
    for r in results:
        for sender, n in r["sent_by"].items():
            sent_by[int(sender)] = sent_by.get(int(sender), 0) + n
    sent = sum(sent_by.values())
    expected = sum(n * (scenario.clients - 1) for n in sent_by.values())
    deliveries = sum(r["unique"] for r in results)
    latency = merge_encoded([r["latency_hist"] for r in results])
    lag = merge_encoded([r["lag_hist"] for r in results])
    fanout = LatencyHistogram()
    counts = array("i", bytes(4 * scenario.measured_count))
    slowest = array("q", bytes(8 * scenario.measured_count))
    for r in results:
        counts_w, slowest_w = array("i"), array("q")
        counts_w.frombytes(r["fan_count"])
        slowest_w.frombytes(r["fan_max"])
        for i in range(scenario.measured_count):
            counts[i] += counts_w[i]
            if slowest_w[i] > slowest[i]:
                slowest[i] = slowest_w[i]
    for i in range(scenario.measured_count):
        if counts[i] == scenario.clients - 1:  # only messages every recipient got
            fanout.record_ns(slowest[i])
    warmup_sent = sum(min(n, _warmup_share(scenario, s)) for s, n in sent_by.items())
    cpu = [r["cpu_percent"] for r in results]
    unsent = sum(r["unsent"] for r in results)
    lag_p99_us = lag.summary()["p99"] or 0
    generator = _judge_generator(cpu, lag_p99_us, unsent, server_percent, latency)
    generator["event_loop"] = results[0].get("event_loop") if results else None
    generator["read_tick_ms"] = round(scenario.read_tick_s * 1000, 3) if scenario.read_tick_s else None
    if scenario.read_tick_s:
        generator["notes"].append(
            f"receivers read once every {scenario.read_tick_s * 1000:g} ms (--read-tick), not as relays "
            f"arrive: each latency includes the up to {scenario.read_tick_s * 1000:g} ms its relay "
            "waited for its read, so these figures are the generator's resolution, not the server's")
    # The CPU seconds of the generator processes from the first send until the last
    # delivery came (or the drain gave up): deliveries / cpu_s is its efficiency.
    generator["cpu_s"] = round(sum(r.get("cpu_s", 0.0) for r in results), 3)
    reads = sum(r.get("reads", 0) for r in results)
    generator["relays_per_read"] = round(sum(r.get("relays_read", 0) for r in results) / reads, 2) \
        if reads else None
    disconnected = sorted({reason for r in results for reason in r["disconnected"]})
    record: dict[str, Any] = {
        "clients": scenario.clients, "senders": scenario.senders, "rate": scenario.rate,
        "rate_per_sender": round(scenario.rate / scenario.senders, 3),  # "rate" is the total
        "size": scenario.size, "duration_s": round(scenario.duration_s, 3),
        "warmup_s": round(scenario.warmup_s, 3), "procs": scenario.procs,
        "sent": sent, "warmup_sent": warmup_sent, "unsent": unsent,
        "expected_deliveries": expected, "deliveries": deliveries,
        "measured_deliveries": sum(r["measured_unique"] for r in results),
        "lost": expected - deliveries,
        **{key: sum(r.get(key, 0) for r in results) for key in RELAY_PROBLEMS},
        "unexpected": sum(r["unexpected"] for r in results),
        "disconnected": disconnected,
        "latency_us": latency.summary(), "fanout_us": fanout.summary(),
        "latency_hist": latency.encode(), "send_lag_us": lag.summary(),
        "server_cpu_percent": server_percent, "generator": generator,
    }
    # Over the time the measured deliveries really took: longer than --duration
    # when the server or the generator fell behind.
    window_start = scenario.due_ns(t0, scenario.warmup_count)
    last = max(r["last_measured_ns"] for r in results)
    span_s = max(scenario.duration_s, (last - window_start) / 1e9)
    record["deliveries_per_s"] = round(record["measured_deliveries"] / span_s, 1)
    return record


def _warmup_share(scenario: Scenario, sender: int) -> int:
    """How many of ``sender``'s messages fall in the warm-up."""
    return max(0, -(-(scenario.warmup_count - sender) // scenario.senders))


def _judge_generator(cpu: list[float], lag_p99_us: int, unsent: int, server_percent: float | None,
                     latency: LatencyHistogram | None = None) -> dict[str, Any]:
    """Who set these latencies: the generator (only when it was busy), the machine, or the server.

    A generator that is late with an idle CPU was not run in time by the
    machine: that is a note, not "the generator is the bottleneck", and a
    slow server behind an idle generator never triggers the warning.
    """
    busy = [f"generator process {i} used {c:.0f}% of a CPU core"
            for i, c in enumerate(cpu) if c >= BUSY_CPU_PERCENT]
    late = lag_p99_us * 1000 > LAG_TOLERANCE_NS
    late_text = f"its sends ran {lag_p99_us / 1000:.1f} ms behind schedule (p99)"
    server = f" (the server used {server_percent:.0f}% of a core)" if server_percent is not None else ""
    warning = None
    notes: list[str] = []
    if busy:
        reasons = busy + ([late_text] if late else []) \
            + ([f"{unsent} scheduled messages were never sent"] if unsent else [])
        warning = ("THE LOAD GENERATOR, NOT THE SERVER, IS THE BOTTLENECK: " + "; ".join(reasons)
                   + server + ". These latencies include the generator's own delays: "
                   "use more --procs, or a lower --rate or --clients.")
    elif late or unsent:
        load = load_average()
        cpus = os.cpu_count() or 1
        what = " and ".join(([late_text] if late else [])
                            + ([f"{unsent} scheduled messages were never sent"] if unsent else []))
        notes.append(f"the generator was idle (at most {max(cpu, default=0):.0f}% of a core) yet {what}: "
                     f"the machine (load average {load:.1f} on {cpus} CPUs) did not run it on time, so "
                     "latencies may include up to that wait; the generator is not the bottleneck.")
    diagnosis = delayed_ack_signature(latency, max(cpu, default=0.0), server_percent) \
        if latency is not None and not busy else None
    if diagnosis:
        notes.append(diagnosis)
    return {"cpu_percent": cpu, "bottleneck": bool(busy), "warning": warning, "notes": notes,
            "send_lag_p99_us": lag_p99_us}


#: Linux delays an ACK by at least 40 ms; a Nagle-held segment waits for it.
_DELAYED_ACK_BAND_US = (30_000, 60_000)
_DELAYED_ACK_SHARE = 0.10
_IDLE_PERCENT = 50.0


def delayed_ack_signature(latency: LatencyHistogram, generator_percent: float,
                          server_percent: float | None) -> str | None:
    """The plain-words diagnosis when deliveries cluster near 40 ms while nothing is busy.

    Idle generator and idle server, yet a tenth or more of the deliveries
    took 30-60 ms: the signature of a server writing one relay in several
    small sends on a socket with Nagle's algorithm on, each later piece
    waiting for the receiver's delayed ACK.
    """
    hist = latency.hist
    total = int(hist.get_total_count())
    if total < 20 or generator_percent >= _IDLE_PERCENT or (server_percent or 0.0) >= _IDLE_PERCENT:
        return None
    low, high = _DELAYED_ACK_BAND_US
    banded = sum(int(item.count_added_in_this_iter_step) for item in hist.get_recorded_iterator()
                 if low <= item.value_iterated_to <= high)
    if banded < _DELAYED_ACK_SHARE * total:
        return None
    server = f"{server_percent:.0f}%" if server_percent is not None else "an unknown share"
    return (f"DELAYED-ACK SIGNATURE: {100 * banded / total:.0f}% of deliveries took 30-60 ms while the "
            f"generator used {generator_percent:.0f}% and the server {server} of a core. The server "
            "most likely writes a relay in several small send() calls on sockets with Nagle's "
            "algorithm on, so each later piece waits for the receiver's delayed ACK (40 ms on "
            "Linux). help: set TCP_NODELAY on accepted sockets and write the username frame, "
            "header and payload with one send().")


def latency_summary(records: list[dict[str, Any]], error: str | None = None) -> dict[str, Any]:
    """The document's summary: totals over every scenario."""
    totals = {k: sum(r.get(k, 0) for r in records) for k in ("lost", *RELAY_PROBLEMS)}
    bottleneck = any(r["generator"]["bottleneck"] for r in records)
    ok = error is None and bool(records) and not any(totals.values()) \
        and not any(r["disconnected"] or r["unexpected"] for r in records)
    return {"scenarios": len(records), **totals, "ok": ok, "generator_bottleneck": bottleneck,
            "error": error}


def run_latency(scenarios: list[Scenario], server_pid: int | None,
                status: LiveStatus) -> tuple[list[dict[str, Any]], str | None]:
    """Run each scenario in turn (a sweep), showing progress; stop at the first error."""
    records: list[dict[str, Any]] = []
    for scenario in scenarios:
        status.update(done=0, total=scenario.schedule_s, clients=scenario.clients)

        def show(p: dict[str, Any]) -> None:
            status.update(done=p["elapsed_s"], phase=p["phase"],
                          registered=f"{p['registered']:,} / {p['clients']:,}",
                          sent=f"{p['sent']:,}", delivered=f"{p['delivered']:,}")

        try:
            records.append(run_scenario(scenario, server_pid, show))
        except LoadError as exc:
            return records, f"{scenario.clients} clients: {exc}"
        except KeyboardInterrupt:
            # Ctrl-C or SIGTERM (reference.signals): run_scenario stopped its workers; the
            # scenarios that finished are still results, and the CLI exits 130/143 after them.
            return records, (f"interrupted during the {scenario.clients}-client scenario: "
                             f"{len(records)} of {len(scenarios)} scenarios finished")
    return records, None


def latency_command(args: Any, target: Any, console: Console) -> tuple[str, dict[str, Any],
                                                                      list[dict[str, Any]]]:
    """``chat-load latency``: build the scenarios from the CLI options and run them."""
    host, port = target.address
    scenarios = [Scenario.build(host=host, port=port, clients=n,
                                senders=args.senders or n, rate=args.rate, size=args.size,
                                duration_s=args.duration if args.messages is None else None,
                                messages=args.messages, warmup_s=args.warmup, procs=args.procs,
                                drain_s=args.drain, tls=getattr(target, "tls", None),
                                read_tick_s=args.read_tick / 1000)
                 for n in (args.sweep or [args.clients])]
    if args.duration is None and args.messages is None:
        scenarios = [replace(s, measured_count=max(1, round(5.0 * s.rate))) for s in scenarios]
    with LiveStatus(console, f"chat-load latency against {target.label}") as status:
        records, error = run_latency(scenarios, getattr(target, "pid", None), status)
    if error and not target.is_alive():
        error += f" ({target.describe_exit() or 'the server is gone'})"
    return "latency", latency_summary(records, error), records
