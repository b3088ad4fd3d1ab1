"""One generator process of ``chat-load latency``: its clients, its sends, its receipts.

The coordinator (loadtest.latency) starts ``--procs`` of these and talks to
each over a pipe:

    worker -> ("connected", n)      its clients are connected and registered
    worker -> ("ready", n)          ...and each has received the barrier message
    coord  -> ("start", t0_ns)      the schedule's time zero (monotonic, system-wide)
    worker -> ("progress", {...})   twice a second
    worker -> ("result", {...})     once, at the end (or ("error", text))

Receivers time each delivery in ``data_received`` against the stamp in the
payload; the histograms travel back HDR-encoded so the coordinator merges
them exactly.  The per-message fan-out (how many of this worker's receivers
got message g and the slowest of them) travels back as arrays.
"""

from __future__ import annotations

import asyncio
import sys
import time
from array import array
from collections import Counter
from multiprocessing.connection import Connection as Pipe
from typing import Any

from loadtest.scenario import BARRIER_PREFIX, CLIENT_NAMES, LAG_TOLERANCE_NS, Scenario, client_name
from loadtest.stats import LatencyHistogram
from reference import aclient
from reference.aclient import AsyncChatClient, FramesCallback, ReadTick, connect_client
from reference.barrier import Backoff, JoinBarrier
from reference.protocol import Relay
from reference.sequence import RelayChecker, SequenceFailure
from reference.stamp import make_payload, receive_limit

__all__ = ["Receipts", "worker_main"]

_CONNECT_CONCURRENCY = 100
_PROGRESS_EVERY_S = 0.5
_YIELD_EVERY = 32  # sends between yields when behind schedule, so receivers still run
#: Client 0 repeats its sentinel this often until the coordinator says start.
_BARRIER_REPEAT = Backoff(0.1)
_START_POLL_S = 0.001  # Windows: how often a worker looks at its pipe while waiting for the start


class Receipts:
    """Everything this worker's receivers observed.

    Each receiver judges its relays with the shared ``RelayChecker`` (label,
    pairing, then per-sender order); only well-formed, first-copy deliveries
    of this run's schedule are timed.
    """

    def __init__(self, scenario: Scenario, receivers: list[int]) -> None:
        self.scenario = scenario
        self.latency = LatencyHistogram()
        self.fan_count = array("i", bytes(4 * scenario.measured_count))
        self.fan_max = array("q", bytes(8 * scenario.measured_count))
        self.checkers = {r: RelayChecker(CLIENT_NAMES, own=r) for r in receivers}
        # Known by text, not label: a server that mislabels relays still gets its run, to be
        # counted as mislabelling.  The hub may be in another worker: then this one only watches.
        self.barrier = JoinBarrier(None, BARRIER_PREFIX, readers=[r for r in receivers if r != 0],
                                   backoff=_BARRIER_REPEAT)
        self.measured_unique = 0
        self.unexpected = 0
        self.last_delivery_ns = time.monotonic_ns()
        self.last_measured_ns = 0  # when the last timed delivery arrived

    @property
    def unique(self) -> int:
        """First copies received, over every receiver."""
        return sum(c.delivered for c in self.checkers.values())

    def counts(self) -> dict[str, int]:
        """Each failure kind's total over this worker's receivers; loss is expected - unique."""
        totals: Counter[SequenceFailure] = Counter()
        for checker in self.checkers.values():
            totals.update(checker.counts)
        return {kind.value: totals[kind] for kind in SequenceFailure if kind is not SequenceFailure.LOST}

    def callback(self, receiver: int) -> FramesCallback:
        """Receiver ``receiver``'s ``on_frames``: judge every relay of a read, time the good ones.

        The common delivery (the next message of a sender, under its label)
        is judged from the bytes by ``RelayChecker.in_order``; anything else
        is decoded and goes through :meth:`_judge`.
        """
        scenario = self.scenario
        senders, warmup, total = scenario.senders, scenario.warmup_count, scenario.total
        in_order = self.checkers[receiver].in_order
        judge = self._judge
        record = self.latency.record_ns
        fan_count, fan_max = self.fan_count, self.fan_max

        def on_frames(frames: list[bytes], now: int) -> None:
            delivered = measured = 0
            for i in range(0, len(frames), 2):
                hit = in_order(frames[i], frames[i + 1])
                if hit is None:
                    hit = judge(receiver, frames[i].decode("utf-8"), frames[i + 1].decode("utf-8"), now)
                    if hit is None:
                        continue
                sender, seq, sent_ns = hit
                delivered += 1
                g = seq * senders + sender
                if sender >= senders or g >= total:
                    self.unexpected += 1   # not a message of this run's schedule
                    continue
                if g >= warmup:
                    latency = now - sent_ns
                    record(latency)
                    g -= warmup
                    fan_count[g] += 1
                    if latency > fan_max[g]:
                        fan_max[g] = latency
                    measured += 1
            if delivered:
                self.last_delivery_ns = now
            if measured:
                self.measured_unique += measured
                self.last_measured_ns = now

        return on_frames

    def _judge(self, receiver: int, label: str, text: str, now: int) -> tuple[int, int, int] | None:
        """A relay ``in_order`` did not take: ``(sender, seq, sent_ns)`` if it is a good delivery
        to time, else None (a barrier message, or counted here or by the checker)."""
        if text.startswith(BARRIER_PREFIX):
            self.barrier.observe(Relay(label, text), receiver)  # a repeat after this receiver's is skipped
            return None
        stamp, failures = self.checkers[receiver].check(label, text, now)
        if stamp is None:
            self.unexpected += 1
            return None
        if failures and (len(failures) > 1 or failures[0] is not SequenceFailure.REORDERED):
            self.last_delivery_ns = now
            if stamp.sender >= self.scenario.senders \
                    or stamp.seq * self.scenario.senders + stamp.sender >= self.scenario.total:
                self.unexpected += 1   # not a message of this run's schedule
            return None  # counted by the checker, not timed: it is not a good delivery
        return stamp.sender, stamp.seq, stamp.sent_ns


def _start_time(message: tuple[Any, ...]) -> int | None:
    """The start time in a ("start", t0) message; None for any other; raise on ("stop",)."""
    if message[0] == "stop":
        raise RuntimeError("stopped by the coordinator")
    return int(message[1]) if message[0] == "start" else None


async def _wait_for_start(ctl: Pipe) -> int:
    if sys.platform == "win32":
        # The pipe is a named-pipe handle there, which no asyncio loop can watch: poll it,
        # far more often than the coordinator's start delay (200 ms) needs.
        while True:
            while not ctl.poll():
                await asyncio.sleep(_START_POLL_S)
            t0 = _start_time(ctl.recv())
            if t0 is not None:
                return t0
    loop = asyncio.get_running_loop()
    started: asyncio.Future[int] = loop.create_future()

    def readable() -> None:
        message = ctl.recv()
        if started.done():
            return
        try:
            t0 = _start_time(message)
        except RuntimeError as exc:
            started.set_exception(exc)
            return
        if t0 is not None:
            started.set_result(t0)

    loop.add_reader(ctl.fileno(), readable)
    try:
        return await started
    finally:
        loop.remove_reader(ctl.fileno())


async def _connect_all(scenario: Scenario, ids: list[int],
                       receipts: Receipts) -> dict[int, AsyncChatClient]:
    gate = asyncio.Semaphore(_CONNECT_CONCURRENCY)

    async def one(i: int) -> tuple[int, AsyncChatClient]:
        async with gate:
            client = await connect_client(scenario.host, scenario.port, name=client_name(i),
                                          on_frames=receipts.callback(i),
                                          max_payload=receive_limit(scenario.size),
                                          timeout=scenario.connect_timeout, tls=scenario.tls)
            return i, client

    return dict(await asyncio.gather(*(one(i) for i in ids)))


async def _barrier(scenario: Scenario, worker: int, clients: dict[int, AsyncChatClient],
                   receipts: Receipts, ctl: Pipe) -> int:
    """Client 0 repeats the barrier's sentinel until the coordinator says start.

    It goes on after this worker's own clients have one: other workers' may still wait.
    """
    ctl.send(("connected", len(clients)))
    barrier = receipts.barrier

    async def repeat_barrier() -> None:
        while True:
            clients[0].send(barrier.next_sentinel())
            await asyncio.sleep(barrier.next_wait())

    repeater = asyncio.create_task(repeat_barrier()) if 0 in clients else None
    try:
        deadline = time.monotonic() + scenario.connect_timeout
        while not barrier.done:
            closed = [c.closed.result() for c in clients.values() if c.closed.done()]
            if closed:  # no point waiting out the timeout: the room is already broken
                raise ConnectionError(f"{len(closed)} of worker {worker}'s clients were disconnected "
                                      f"before the run started ({closed[0]})")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(barrier.waiting)} of worker {worker}'s clients never received "
                                   f"the barrier message within {scenario.connect_timeout:g} s "
                                   "(not registered by the server?)")
            await asyncio.sleep(0.02)
        ctl.send(("ready", len(clients)))
        return await asyncio.wait_for(_wait_for_start(ctl), scenario.connect_timeout * 3)
    finally:
        if repeater is not None:
            repeater.cancel()


async def _send_schedule(scenario: Scenario, worker: int, t0: int,
                         clients: dict[int, AsyncChatClient], lag: LatencyHistogram,
                         sent_by: dict[int, int]) -> int:
    """Send this worker's share of the schedule; return how many went unsent."""
    senders, size = scenario.senders, scenario.size
    messages = scenario.own_messages(worker)
    hard_stop = scenario.due_ns(t0, scenario.total) + int(scenario.drain_s * 1e9)
    since_yield = 0
    for done, g in enumerate(messages):
        due = scenario.due_ns(t0, g)
        sender = g % senders
        client = clients[sender]
        now = time.monotonic_ns()
        if due > now:
            await asyncio.sleep((due - now) / 1e9)
            since_yield = 0
        elif since_yield >= _YIELD_EVERY:
            await asyncio.sleep(0)
            since_yield = 0
        if not client.is_open:
            continue
        # Stamp the real send time while on schedule (the loop's timer is only
        # millisecond-precise); once we fall behind, stamp the scheduled time so
        # our own lateness is charged, never hidden (coordinated omission).
        now = time.monotonic_ns()
        if now > hard_stop:
            return len(messages) - done
        late = now - due
        client.send(make_payload(sender, g // senders, now if late <= LAG_TOLERANCE_NS else due, size))
        lag.record_ns(max(late, 0))  # after the send, so it is not inside the timed span
        sent_by[sender] = sent_by.get(sender, 0) + 1
        since_yield += 1
    return 0


async def run_worker(scenario: Scenario, worker: int, ctl: Pipe) -> dict[str, Any]:
    ids = scenario.clients_of(worker)
    receipts = Receipts(scenario, ids)
    clients = await _connect_all(scenario, ids, receipts)
    try:
        t0 = await _barrier(scenario, worker, clients, receipts, ctl)
        lag = LatencyHistogram()
        sent_by: dict[int, int] = {}
        expected = scenario.expected_deliveries(ids)

        async def report_progress() -> None:
            while True:
                await asyncio.sleep(_PROGRESS_EVERY_S)
                ctl.send(("progress", {"sent": sum(sent_by.values()), "delivered": receipts.unique}))

        reporter = asyncio.create_task(report_progress())
        # Reading in ticks starts with the schedule: the joins and the barrier read on arrival.
        tick = ReadTick(scenario.read_tick_s) if scenario.read_tick_s > 0 else None
        await asyncio.sleep(max(0.0, (t0 - time.monotonic_ns()) / 1e9))
        if tick is not None:
            tick.start(clients.values())
        cpu0, wall0 = time.process_time(), time.monotonic()
        unsent = await _send_schedule(scenario, worker, t0, clients, lag, sent_by)
        cpu_s, wall_s = time.process_time() - cpu0, time.monotonic() - wall0
        drain_until = time.monotonic() + scenario.drain_s
        while receipts.unique < expected and time.monotonic() < drain_until:
            idle_s = (time.monotonic_ns() - receipts.last_delivery_ns) / 1e9
            if idle_s > scenario.idle_s:
                break
            await asyncio.sleep(0.01)
        # Every delivery counted (late ones too) against the CPU that received it.
        receive_cpu_s = time.process_time() - cpu0
        if tick is not None:
            tick.stop()
        reporter.cancel()
        disconnected = sorted({c.closed.result() for c in clients.values()
                               if c.closed.done() and c.closed.result() != "closed"})
    finally:
        for client in clients.values():
            client.close()
    return {
        "worker": worker,
        "clients": len(ids),
        "sent_by": sent_by,
        "unsent": unsent,
        "unique": receipts.unique,
        "measured_unique": receipts.measured_unique,
        "last_measured_ns": receipts.last_measured_ns,
        **receipts.counts(),
        "unexpected": receipts.unexpected,
        "disconnected": disconnected,
        "latency_hist": receipts.latency.encode(),
        "lag_hist": lag.encode(),
        "fan_count": receipts.fan_count.tobytes(),
        "fan_max": receipts.fan_max.tobytes(),
        "cpu_percent": round(100.0 * cpu_s / wall_s, 1) if wall_s > 0 else 0.0,
        "cpu_s": receive_cpu_s,
        "event_loop": aclient.event_loop_name(),
        "reads": sum(c.reads for c in clients.values()),
        "relays_read": sum(c.relays_received for c in clients.values()),
    }


def worker_main(scenario: Scenario, worker: int, ctl: Pipe) -> None:
    """Process entry point: run, then send ("result", ...) or ("error", text)."""
    try:
        result = aclient.run(run_worker(scenario, worker, ctl))
    except KeyboardInterrupt:
        return  # Ctrl-C reaches the whole process group; the coordinator reports it
    except Exception as exc:  # report any failure in words rather than a silent exit
        reason = str(exc) or type(exc).__name__
        if isinstance(exc, ConnectionRefusedError):
            reason = f"connection refused by {scenario.host}:{scenario.port}"
        ctl.send(("error", f"worker {worker}: {reason}"))
        return
    ctl.send(("result", result))
