"""``chat-load limits``: ramp registered clients until the server stops coping, and say why.

Each step connects and registers ``--step`` more clients (all in one asyncio
loop), then checks the room still works: a probe client broadcasts a stamped
message that a second probe client must receive within ``--deadline``.  The
ramp stops at the first step that fails, and the summary names the cause in
plain words (reports/FORMAT.md ``limits``):

* ``server-died``: the server process exited, with its last stderr line;
* ``connection-refused``: connects refused, or accepted and closed at once;
* ``connect-timeout``: connects not answered in time (a full backlog);
* ``server-fd-limit``: the server process has (nearly) every file
  descriptor its open-file limit allows open, read from /proc when we
  started it: the ceiling of one process;
* ``own-fd-limit``: *we* ran out of file descriptors (we raise our soft
  limit as far as allowed first, and say so);
* ``ephemeral-ports``: no local port left for a new connection (we spread
  source addresses over 127.0.0.x when the target is on loopback);
* ``latency-deadline``: the probe broadcast came late (but within about ten
  seconds it still got through: the room is slow, not broken);
* ``stopped-relaying``: no probe got through at all, though nothing was
  refused or closed;
* ``reached-max``: nothing failed up to ``--max``.

Without ``--max`` the ramp goes on until something gives out.  To let that
be the *server's* file limit rather than ours, we first try to raise our own
hard limit a little above the server's (possible with CAP_SYS_RESOURCE, e.g.
as root); otherwise our own limit ends the ramp, and the summary says so.

``server-died`` and ``stopped-relaying`` are findings, defects rather than the
size of the room: the summary's ``ok`` is false and the command exits 1.
"""

from __future__ import annotations

import asyncio
import errno
import math
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from loadtest.live import LiveStatus
from reference import aclient
from reference.aclient import AsyncChatClient, connect_client
from reference.protocol import Relay
from reference.server import raise_fd_limit
from reference.stamp import make_payload, parse_payload, receive_limit
from reference.target import SpawnedServer

__all__ = ["LimitsPlan", "limits_command", "run_limits"]

#: File descriptors we keep for ourselves (probes, pipes, the event loop, logs).
_FD_RESERVE = 32
_PROBE_SENDER = 0  # the stamp's sender id for probe broadcasts
#: A server this close to its open-file limit is at it (its own listener, selector, pipes).
_SERVER_FD_SLACK = 16
#: Without --max on Windows (no open-file limit to stop at): the ramp's bound.
_WINDOWS_OPEN_ENDED_MAX = 100_000


@dataclass(frozen=True)
class LimitsPlan:
    host: str
    port: int
    max: int
    step: int
    deadline_s: float = 2.0
    connect_timeout: float = 5.0
    time_limit_s: float = 300.0
    concurrency: int = 200


def source_addresses(host: str, clients: int) -> list[str | None]:
    """Loopback source addresses enough for ``clients`` connections to one port."""
    if not host.startswith("127."):
        return [None]
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
        ports = high - low + 1
    except (OSError, ValueError):
        ports = 28_000
    needed = max(1, math.ceil(clients / (ports * 0.9)))
    return [f"127.0.0.{i}" for i in range(1, min(needed, 254) + 1)]


def _classify(exc: BaseException) -> tuple[str, str]:
    """A failed connect as (cause code, plain words)."""
    if isinstance(exc, TimeoutError):
        return "connect-timeout", "connects were not answered in time (the server's backlog is full?)"
    if isinstance(exc, ConnectionRefusedError):
        return "connection-refused", "the server refused new connections"
    if isinstance(exc, OSError) and exc.errno in (errno.EMFILE, errno.ENFILE):
        return "own-fd-limit", f"the generator ran out of file descriptors ({exc.strerror})"
    if isinstance(exc, OSError) and exc.errno in (errno.EADDRNOTAVAIL, errno.EADDRINUSE):
        return "ephemeral-ports", f"no local port left for a new connection ({exc.strerror})"
    if isinstance(exc, ConnectionError):
        return "connection-refused", f"the server dropped new connections ({exc})"
    return "connection-refused", f"connect failed: {exc}"


class _ProbeSilent(TimeoutError):
    """The probe pair connected but no broadcast got through."""


class _Room:
    """The clients we hold, and the probe pair that checks the room still works."""

    def __init__(self, plan: LimitsPlan) -> None:
        self.plan = plan
        self.clients: list[AsyncChatClient] = []
        self.sources = source_addresses(plan.host, plan.max)
        self.probe_id = 0
        self.probe_received: dict[int, int] = {}  # probe id -> monotonic ns at the probe receiver
        self.probe_last: dict[int, int] = {}  # probe id -> when the last ramp client to get it did
        self.probe_sent: dict[int, int] = {}  # probe id -> its send time, from its stamp
        self.tx: AsyncChatClient | None = None
        self.probe_sent_ns = 0
        self.rx: AsyncChatClient | None = None

    def _on_probe(self, relay: Relay, received_ns: int) -> None:
        stamp = parse_payload(relay.text)
        if stamp is not None and stamp.sender == _PROBE_SENDER:
            self.probe_received.setdefault(stamp.seq, received_ns)

    def _on_ramp_relay(self, relay: Relay, received_ns: int) -> None:
        stamp = parse_payload(relay.text)
        if stamp is not None and received_ns > self.probe_last.get(stamp.seq, 0):
            self.probe_last[stamp.seq] = received_ns
            self.probe_sent[stamp.seq] = stamp.sent_ns

    def fanout_ms(self, probe_id: int, sent_ns: int) -> float | None:
        """How long until the last held client had probe ``probe_id``.

        If the server read the step's new usernames only after that probe, no
        held client had it; then the first later probe (``unreached`` repeats
        them) that held clients did get stands in, timed from its own stamp.
        """
        for pid in range(probe_id, self.probe_id + 1):
            last = self.probe_last.get(pid)
            if last is not None:
                sent = sent_ns if pid == probe_id else self.probe_sent[pid]
                return round((last - sent) / 1e6, 2)
        return None

    async def open_probes(self) -> None:
        host, port, timeout = self.plan.host, self.plan.port, self.plan.connect_timeout
        self.tx = await connect_client(host, port, name="probe-tx", timeout=timeout,
                                       max_payload=receive_limit())
        self.rx = await connect_client(host, port, name="probe-rx", timeout=timeout,
                                       max_payload=receive_limit(),
                                       on_relay=self._on_probe)
        # Both registered once one probe gets through; repeat, as joins race the first send.
        for _ in range(int(timeout / 0.1)):
            if await self.probe(0.1) is not None:
                return
        raise _ProbeSilent(f"two fresh clients could not exchange a message within {timeout:g} s: "
                           "the server accepts connections but does not relay")

    async def probe(self, deadline_s: float) -> float | None:
        """Broadcast one probe; seconds until the probe receiver had it, or None."""
        assert self.tx is not None
        self.probe_id += 1
        probe_id, sent = self.probe_id, time.monotonic_ns()
        self.probe_sent_ns = sent
        self.tx.send(make_payload(_PROBE_SENDER, probe_id, sent))
        end = time.monotonic() + deadline_s
        while probe_id not in self.probe_received and time.monotonic() < end:
            await asyncio.sleep(0.002)
        got = self.probe_received.get(probe_id)
        return None if got is None else (got - sent) / 1e9

    async def relays_at_all(self, within_s: float) -> bool:
        """After a missed probe or unreached clients: does a new probe get through within ``within_s``?

        Tells a slow room (a limit) from one the server no longer relays to
        (a finding).  Probes already sent count too, so a late one proves it.
        """
        assert self.tx is not None
        # Only probes not yet through count: the last one missed, and the ones sent now.
        waiting = {self.probe_id} - self.probe_received.keys()
        end, repeat_at = time.monotonic() + within_s, 0.0
        while time.monotonic() < end:
            if not waiting.isdisjoint(self.probe_received):
                return True
            if time.monotonic() > repeat_at:
                self.probe_id += 1
                waiting.add(self.probe_id)
                self.tx.send(make_payload(_PROBE_SENDER, self.probe_id, time.monotonic_ns()))
                repeat_at = time.monotonic() + 1.0
            await asyncio.sleep(0.01)
        return False

    async def unreached(self, deadline_s: float) -> int:
        """Wait until every held client has had a broadcast; how many never had one.

        A client only counts as registered once the server relays to it, so
        this turns "we sent a username" into "the server has us".  A client
        whose name the server read just after the probe misses that probe, so
        the probe is repeated while some are waiting.
        """
        assert self.tx is not None
        end, repeat_at = time.monotonic() + deadline_s, 0.0
        while True:
            waiting = sum(1 for c in self.clients if c.relays_received == 0 and not c.closed.done())
            now = time.monotonic()
            if not waiting or now > end:
                return waiting
            if now > repeat_at:
                self.probe_id += 1
                self.tx.send(make_payload(_PROBE_SENDER, self.probe_id, time.monotonic_ns()))
                repeat_at = now + 0.25
            await asyncio.sleep(0.01)

    async def add(self, count: int) -> list[BaseException]:
        """Connect and register ``count`` more clients; return the failures."""
        gate = asyncio.Semaphore(self.plan.concurrency)
        first = len(self.clients)

        async def one(i: int) -> AsyncChatClient:
            async with gate:
                return await connect_client(self.plan.host, self.plan.port, name=f"load{i}",
                                            on_relay=self._on_ramp_relay,
                                            max_payload=receive_limit(),
                                            source_host=self.sources[i % len(self.sources)],
                                            timeout=self.plan.connect_timeout)

        results = await asyncio.gather(*(one(first + i) for i in range(count)), return_exceptions=True)
        self.clients.extend(r for r in results if isinstance(r, AsyncChatClient))
        return [r for r in results if isinstance(r, BaseException)]

    def closed_by_server(self) -> Counter[str]:
        reasons: Counter[str] = Counter()
        for c in [*self.clients, self.tx, self.rx]:
            if c is not None and c.closed.done():
                reasons[c.closed.result()] += 1
        return reasons

    @property
    def registered(self) -> int:
        probes = sum(1 for c in (self.tx, self.rx) if c is not None and not c.closed.done())
        return probes + sum(1 for c in self.clients if not c.closed.done())

    async def close(self) -> None:
        for c in [*self.clients, self.tx, self.rx]:
            if c is not None:
                c.abort()  # RST: 10,000 FIN handshakes would only slow the teardown
        await asyncio.sleep(0)


#: Causes that are defects of the server, not the size of its room: the run fails (exit 1).
FINDINGS = frozenset({"server-died", "stopped-relaying"})
#: How long a silent room gets to prove it is only slow before it counts as not relaying.
_SILENCE_CONFIRM_S = 10.0


def _failure(room: _Room, errors: list[BaseException], closed: Counter[str],
             probe_s: float | None, target: Any, unreached: int = 0,
             silent: bool = False) -> tuple[str, str] | None:
    """The step's failure as (cause, plain words), or None if the step was healthy."""
    if isinstance(target, SpawnedServer) and not target.is_alive():
        return "server-died", target.describe_exit() or "the server process exited"
    if silent:
        return "stopped-relaying", (f"the server stopped relaying: no probe broadcast arrived within "
                                    f"{_SILENCE_CONFIRM_S:g} s, though it refused and closed nothing")
    fds = server_fd_usage(target.pid) if isinstance(target, SpawnedServer) and target.pid else None
    if (errors or closed) and fds is not None and fds[0] >= fds[1] - _SERVER_FD_SLACK:
        return "server-fd-limit", (f"the server process has {fds[0]:,} of the {fds[1]:,} file "
                                   "descriptors its open-file limit (RLIMIT_NOFILE) allows open: "
                                   "one process holds no more clients")
    if errors:
        causes = Counter(_classify(e) for e in errors)
        (cause, words), n = causes.most_common(1)[0]
        return cause, f"{words}: {n} of this step's connects failed"
    if closed:
        detail = ", ".join(f"{n} {reason}" for reason, n in closed.most_common())
        return "connection-refused", f"the server closed connections it had accepted ({detail})"
    if probe_s is None:
        return "latency-deadline", f"the probe broadcast did not arrive within {room.plan.deadline_s:g} s"
    if probe_s > room.plan.deadline_s:
        return "latency-deadline", (f"the probe broadcast took {probe_s * 1000:.0f} ms, past the "
                                    f"{room.plan.deadline_s:g} s deadline")
    if unreached:
        return "latency-deadline", (f"{unreached} connected clients received no broadcast within "
                                    f"{room.plan.deadline_s:g} s (not registered by the server?)")
    return None


async def run_limits(plan: LimitsPlan, target: Any, status: LiveStatus,
                     fd_note: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    room = _Room(plan)
    records: list[dict[str, Any]] = []
    started = time.monotonic()
    cause, detail = "reached-max", f"{plan.max:,} clients registered and the room still worked"
    error = None  # set when there was no room to ramp at all
    try:
        await room.open_probes()
        while room.registered < plan.max:
            if time.monotonic() - started > plan.time_limit_s:
                cause, detail = "time-limit", f"the ramp ran out of its {plan.time_limit_s:g} s"
                break
            want = min(plan.max, (len(records) + 1) * plan.step)
            status.update(done=room.registered, phase=f"connecting up to {want:,}")
            errors = await room.add(max(0, want - room.registered))
            probe_s = None if errors else await room.probe(plan.deadline_s)
            probe_id, probe_sent = room.probe_id, room.probe_sent_ns
            dead = isinstance(target, SpawnedServer) and not target.is_alive()
            unreached = await room.unreached(plan.deadline_s) if probe_s is not None else 0
            # A missed probe, or held clients that never got one: slow, or not relaying at all?
            silent = (not errors and (probe_s is None or unreached > 0) and not dead
                      and not await room.relays_at_all(_SILENCE_CONFIRM_S))
            await asyncio.sleep(0.05)  # let refusals (accept-then-close) reach us
            failure = _failure(room, errors, room.closed_by_server(), probe_s, target, unreached,
                               silent)
            elapsed = round(time.monotonic() - started, 2)
            records.append({"clients": room.registered, "healthy": failure is None,
                            "probe_latency_ms": None if probe_s is None else round(probe_s * 1000, 2),
                            "probe_fanout_ms": room.fanout_ms(probe_id, probe_sent),
                            "elapsed_s": elapsed, "note": failure[1] if failure else ""})
            status.update(done=room.registered, healthy=f"{_highest(records):,}",
                          probe=f"{records[-1]['probe_latency_ms']} ms", elapsed=f"{elapsed:.1f} s")
            if failure:
                cause, detail = failure
                break
    except (OSError, TimeoutError) as exc:
        cause, detail = ("stopped-relaying", str(exc)) if isinstance(exc, _ProbeSilent) else _classify(exc)
        if isinstance(target, SpawnedServer) and not target.is_alive():
            cause, detail = "server-died", target.describe_exit()
        detail = f"before the ramp started: {detail}"
        error = detail
    finally:
        server_fds = server_fd_usage(target.pid) if isinstance(target, SpawnedServer) and target.pid \
            else None
        await room.close()
    summary = {"highest_healthy": _highest(records), "cause": cause, "cause_detail": detail,
               "ok": cause not in FINDINGS, "finding": cause in FINDINGS,
               "max": plan.max, "step": plan.step, "elapsed_s": round(time.monotonic() - started, 2),
               "fd_limit": _soft_fd_limit(), "fd_note": fd_note,
               "source_addresses": [s or "default" for s in room.sources], "error": error,
               "server_fds": list(server_fds) if server_fds else None}
    return records, summary


def server_fd_usage(pid: int) -> tuple[int, int] | None:
    """(open file descriptors, soft open-file limit) of process ``pid``, from /proc; None if unknown."""
    try:
        opened = len(os.listdir(f"/proc/{pid}/fd"))
        for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
            if line.startswith("Max open files"):
                return opened, int(line.split()[3])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _raise_own_limit_above(pid: int | None) -> None:
    """Try to give us a few more descriptors than the server has, so its limit is met first."""
    usage = server_fd_usage(pid) if pid else None
    if usage is None or sys.platform == "win32":
        return
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = usage[1] + 2 * _FD_RESERVE
    if soft >= want:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(hard, want)))
    except (OSError, ValueError):
        pass  # not allowed: our own limit ends the ramp, and the summary says so


def _highest(records: list[dict[str, Any]]) -> int:
    return max((r["clients"] for r in records if r["healthy"]), default=0)


def _soft_fd_limit() -> int | None:
    if sys.platform == "win32":  # no per-process open-file limit (and no ``resource``)
        return None
    import resource
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def limits_command(args: Any, target: Any, console: Console) -> tuple[str, dict[str, Any],
                                                                     list[dict[str, Any]]]:
    old, new = raise_fd_limit()
    until = args.max
    if sys.platform == "win32":
        fd_note = "Windows has no open-file limit to raise; sockets are bounded by memory and ports"
        if until is None:
            until = _WINDOWS_OPEN_ENDED_MAX
            fd_note += f"; no --max: ramping until something gives out (at most {until:,} clients)"
    else:
        fd_note = (f"raised the generator's open-file limit from {old:,} to {new:,}"
                   if new != old
                   else f"the generator's open-file limit is {new:,} (already at the hard limit)")
        if until is None:  # no --max: ramp until something gives out
            _raise_own_limit_above(getattr(target, "pid", None))
            raised = _soft_fd_limit() or new
            if raised > new:
                new = raised
                fd_note += f", then to {new:,}, above the server's, so that its limit is met first"
            until = new - _FD_RESERVE
            fd_note += f"; no --max: ramping until something gives out (at most {until:,} clients)"
        elif new < until + _FD_RESERVE:
            fd_note += f"; that stops the ramp near {new - _FD_RESERVE:,} clients"
    console.print(fd_note)
    plan = LimitsPlan(host=target.address[0], port=target.address[1], max=until, step=args.step,
                      deadline_s=args.deadline, connect_timeout=args.connect_timeout,
                      time_limit_s=args.time_limit)
    with LiveStatus(console, f"chat-load limits against {target.label}") as status:
        status.update(done=0, total=plan.max, phase="opening the probe pair")
        records, summary = aclient.run(run_limits(plan, target, status, fd_note))
    if args.max is None and summary["cause"] == "reached-max":
        summary["cause"] = "own-fd-limit"
        detail = (f"{summary['highest_healthy']:,} clients held and the room still worked; the "
                  f"generator's own open-file limit ({new:,}) leaves no room for more")
        if summary["server_fds"]:
            opened, limit = summary["server_fds"]
            detail += (f"; the server then had {opened:,} of the {limit:,} descriptors its open-file "
                       f"limit allows open: the per-process file limit is the ceiling on this machine")
        summary["cause_detail"] = detail
    return "limits", summary, records
