"""One latency scenario and its open-loop send schedule.

The schedule is a pure function of the scenario, so every worker process
knows, without talking to the others, what every sender will send and when:

* messages are numbered globally ``g = 0, 1, 2, ...``; message ``g`` is due at
  ``t0 + g / rate`` seconds, sent by sender ``g % senders`` as that sender's
  sequence number ``g // senders`` (senders are clients ``0 .. senders-1``);
* the first ``warmup_count`` messages are the warm-up: delivered and checked
  for loss like the rest, but their latencies are not recorded;
* clients are dealt to worker processes round-robin (client ``i`` lives in
  worker ``i % procs``), which spreads senders and receivers evenly.

Sends follow this schedule and never wait for a reply (open loop), so a server
that stalls cannot slow the generator down and hide the stall.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from reference.tls import ClientTLS

__all__ = ["BARRIER_PREFIX", "CLIENT_NAMES", "LAG_TOLERANCE_NS", "Scenario", "client_name"]

#: Client 0 sends numbered sentinels under this prefix until everyone has one:
#: that proves every client is registered (see reference.barrier.JoinBarrier).
BARRIER_PREFIX = "chat-load barrier "
#: How generator clients are named: the group is the sender id their stamps carry.
CLIENT_NAMES = r"c(\d+)"


def client_name(index: int) -> str:
    return f"c{index}"

#: A sender this late is behind its schedule, not just waiting for the event
#: loop's millisecond timer: from then on the scheduled time is the send time.
LAG_TOLERANCE_NS = 5_000_000


@dataclass(frozen=True)
class Scenario:
    """Everything a worker needs to run its share of one latency scenario."""

    host: str
    port: int
    clients: int
    senders: int
    rate: float                 # messages per second, all senders together
    size: int                   # payload bytes
    measured_count: int         # messages whose latency is recorded
    warmup_count: int           # messages sent first and not recorded
    procs: int = 1
    drain_s: float = 10.0       # at most this long after the last send for stragglers
    idle_s: float = 2.0         # ...and stop earlier once nothing arrived for this long
    connect_timeout: float = 10.0
    tls: ClientTLS | None = None  # a TLS target: workers are other processes, so it travels here
    read_tick_s: float = 0.0    # > 0: receivers read once a tick (aclient.ReadTick), not on arrival

    @classmethod
    def build(cls, *, host: str, port: int, clients: int, senders: int, rate: float, size: int,
              duration_s: float | None, messages: int | None, warmup_s: float,
              procs: int = 1, drain_s: float = 10.0, tls: ClientTLS | None = None,
              read_tick_s: float = 0.0) -> Scenario:
        measured = messages if messages is not None else max(1, round((duration_s or 0) * rate))
        return cls(host=host, port=port, clients=clients, senders=min(senders, clients),
                   rate=rate, size=size, measured_count=measured,
                   warmup_count=round(warmup_s * rate), procs=min(procs, clients), drain_s=drain_s,
                   tls=tls, read_tick_s=read_tick_s)

    # -- the schedule ---------------------------------------------------------
    @property
    def total(self) -> int:
        return self.warmup_count + self.measured_count

    @property
    def duration_s(self) -> float:
        """How long the measured part of the schedule lasts."""
        return self.measured_count / self.rate

    @property
    def warmup_s(self) -> float:
        return self.warmup_count / self.rate

    @property
    def schedule_s(self) -> float:
        return self.total / self.rate

    def due_ns(self, t0_ns: int, g: int) -> int:
        return t0_ns + int(g * 1e9 / self.rate)

    def sent_count(self, sender: int) -> int:
        """How many messages ``sender`` is scheduled to send."""
        if not 0 <= sender < self.senders:
            return 0
        return max(0, math.ceil((self.total - sender) / self.senders))

    def message_index(self, sender: int, seq: int) -> int:
        return seq * self.senders + sender

    def worker_of(self, client: int) -> int:
        return client % self.procs

    def clients_of(self, worker: int) -> list[int]:
        return list(range(worker, self.clients, self.procs))

    def own_messages(self, worker: int) -> list[int]:
        """The global indexes of the messages this worker's senders send, in order."""
        own = [s for s in range(self.senders) if self.worker_of(s) == worker]
        out: list[int] = []
        for k in range(math.ceil(self.total / self.senders)):
            base = k * self.senders
            out.extend(base + s for s in own if base + s < self.total)
        return out

    def expected_deliveries(self, receivers: list[int]) -> int:
        """Deliveries these receivers should get: every message but their own."""
        return sum(self.total - self.sent_count(r) for r in receivers)
