"""The swarm's chat figures, kept beside locust's request table, and locust watching itself.

Locust's request table is in milliseconds and rounds everything below 100 ms
to whole ms, so the broadcast latency is measured here instead, exactly as
``chat-load`` does it: an HDR histogram in microseconds (``loadtest.stats``),
with deliveries/s and the relay checks' counts (lost, duplicated, reordered,
mislabelled, unpaired ...).  Workers ship what they saw since their last
report as an encoded histogram delta; the master adds them exactly.

:class:`SelfWatch` is locust's own health, judged as ``chat-load`` judges its
generator: CPU of the process that runs the users, and how late its event
loop wakes up.  A busy process is the bottleneck and the run says so in
plain words; an idle one that wakes up late was not run by the machine.

No locust or gevent import here: ``loadtest.swarm.users`` drives both.
"""

from __future__ import annotations

import os
import time
from collections import Counter, deque
from typing import Any

from loadtest.stats import LatencyHistogram, load_average
from reference.sequence import SequenceFailure
from reports.results import PERCENTILES

__all__ = ["BUSY_CPU_PERCENT", "LAG_LIMIT_US", "ChatStats", "SelfWatch", "judge_locust"]

#: A locust process busier than this cannot time deliveries faithfully (as chat-load's generator).
BUSY_CPU_PERCENT = 80.0
#: An event loop waking this much later than asked (p99) delays every delivery it times.
LAG_LIMIT_US = 5_000
_RATE_WINDOW_S = 5.0


class ChatStats:
    """Deliveries, their latency in µs and what the relay checks found, for one process or all."""

    def __init__(self) -> None:
        self.latency = LatencyHistogram()
        self.deliveries = 0
        self.reads = 0   # wake-ups of a reader that brought at least one relay
        self.failures: Counter[str] = Counter()
        self.watch: dict[str, dict[str, Any]] = {}   # process -> its SelfWatch.snapshot()
        self._samples: deque[tuple[float, int]] = deque()
        self._delta = LatencyHistogram()
        self._delta_deliveries = 0
        self._delta_reads = 0
        self._delta_failures: Counter[str] = Counter()

    # -- recording (the process that runs users) ---------------------------------------
    def delivered(self, latency_ns: int | None) -> None:
        """One message arrived; ``latency_ns`` when it could be timed (same clock, no failure)."""
        self.deliveries += 1
        self._delta_deliveries += 1
        if latency_ns is not None:
            self.latency.record_ns(latency_ns)
            self._delta.record_ns(latency_ns)

    def read(self) -> None:
        """A reader woke up and got one or more relays (deliveries / reads: the batching it got)."""
        self.reads += 1
        self._delta_reads += 1

    def failed(self, kind: SequenceFailure) -> None:
        self.failures[kind.value] += 1
        self._delta_failures[kind.value] += 1

    # -- worker -> master -------------------------------------------------------------------
    def take_delta(self) -> dict[str, Any]:
        """What this process saw since the last call, for a worker's report to the master."""
        delta = {"latency": self._delta.encode() if self._delta.count else "",
                 "deliveries": self._delta_deliveries, "reads": self._delta_reads,
                 "failures": dict(self._delta_failures)}
        self._delta, self._delta_deliveries, self._delta_failures = LatencyHistogram(), 0, Counter()
        self._delta_reads = 0
        return delta

    def add_delta(self, delta: dict[str, Any]) -> None:
        """A worker's delta, added exactly (histograms bucket by bucket)."""
        self.latency.add_encoded(str(delta.get("latency") or ""))
        self.deliveries += int(delta.get("deliveries", 0))
        self.reads += int(delta.get("reads", 0))
        self.failures.update({str(k): int(v) for k, v in dict(delta.get("failures") or {}).items()})

    # -- reading ------------------------------------------------------------------------------
    def rate(self, now: float | None = None) -> float:
        """Deliveries per second over the last few seconds (0 until two samples exist)."""
        now = time.monotonic() if now is None else now
        samples = self._samples
        samples.append((now, self.deliveries))
        while len(samples) > 2 and now - samples[1][0] >= _RATE_WINDOW_S:
            samples.popleft()
        (t0, n0), (t1, n1) = samples[0], samples[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0

    def row(self) -> dict[str, Any]:
        """One row for the web UI's chat tab: rate, latency in µs, and every check's count."""
        latency = self.latency.summary()
        row: dict[str, Any] = {"deliveries_per_s": round(self.rate(), 1), "deliveries": self.deliveries}
        for key in (*PERCENTILES, "max"):
            row[f"{key}_us"] = latency[key] if latency[key] is not None else "-"
        for kind in SequenceFailure:
            row[kind.value] = self.failures.get(kind.value, 0)
        verdict = judge_locust(list(self.watch.values()))
        row["locust"] = verdict["warning"] or " ".join(verdict["notes"]) or "not the bottleneck"
        return row


class SelfWatch:
    """One locust process's CPU and event-loop lag, sampled by a background greenlet."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.lag = LatencyHistogram()
        self._cpu0, self._wall0 = time.process_time(), time.monotonic()

    def woke_late(self, lag_ns: int) -> None:
        """The watcher asked to sleep and woke ``lag_ns`` later than asked."""
        self.lag.record_ns(max(0, lag_ns))

    def snapshot(self) -> dict[str, Any]:
        wall = time.monotonic() - self._wall0
        cpu = 100.0 * (time.process_time() - self._cpu0) / wall if wall > 0 else 0.0
        return {"name": self.name, "cpu_percent": round(cpu, 1),
                "lag_p99_us": self.lag.summary()["p99"] or 0}


def judge_locust(processes: list[dict[str, Any]]) -> dict[str, Any]:
    """Is locust itself the bottleneck?  Plain words, as ``chat-load``'s generator verdict.

    Busy (CPU at or above BUSY_CPU_PERCENT): the bottleneck, loudly.  Late but
    idle: the machine did not run locust in time; a note, not a verdict on
    the server or on locust.
    """
    busy = [p for p in processes if p["cpu_percent"] >= BUSY_CPU_PERCENT]
    late = [p for p in processes if p["lag_p99_us"] > LAG_LIMIT_US]
    warning = None
    notes: list[str] = []
    if busy:
        worst = max(busy, key=lambda p: p["cpu_percent"])
        lag = max(p["lag_p99_us"] for p in processes) / 1000
        warning = (f"THE LOCUST PROCESS, NOT THE SERVER, IS THE BOTTLENECK: {worst['name']} used "
                   f"{worst['cpu_percent']:.0f}% of a CPU core and its event loop woke up to {lag:.1f} ms "
                   "late (p99), so these latencies include locust's own delays. Run more locust "
                   "processes (--processes N, one per core), fewer users, or `chat-load latency` "
                   "for latency figures.")
    elif late:
        worst = max(late, key=lambda p: p["lag_p99_us"])
        load = load_average()
        cpus = os.cpu_count() or 1
        notes.append(f"locust was idle ({worst['cpu_percent']:.0f}% of a core) yet its event loop woke "
                     f"up to {worst['lag_p99_us'] / 1000:.1f} ms late (p99): the machine (load average "
                     f"{load:.1f} on {cpus} CPUs) did not run it on time, so latencies may include that "
                     "wait; locust is not the bottleneck.")
    return {"processes": processes, "bottleneck": bool(busy), "warning": warning, "notes": notes}
