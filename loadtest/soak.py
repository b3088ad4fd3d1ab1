"""``chat-load soak``: a room that chats for a while as clients join and leave, exactly accounted.

``--clients`` members chat at a total ``--rate``; ``--churn`` times a second a
random member leaves (a clean close, or with probability ``--abrupt`` a TCP
reset) and a new one joins.  At the end every (recipient, sender) pair is
checked against the window in which the recipient was certainly in the room:

* it starts at the first message the sender sent after it had received
  anything from the recipient (proof, by causality, that the server had
  registered the recipient), or earlier if the recipient got an earlier one;
* it ends at the sender's next sequence number when the recipient began to
  leave.  A leaving member stops sending, waits until it holds every message
  of its window and until someone has received its own last message, and only
  then closes or resets, so a correct server loses nothing in the window.

Inside the window every message must arrive once and in order; outside it a
delivery is allowed (it raced a join or leave) but is still checked for
duplicates and order.  The server's memory (RSS) is sampled when it is a
local process.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console

from loadtest.live import LiveStatus
from reference import aclient
from reference.aclient import AsyncChatClient, connect_client
from reference.protocol import Relay
from reference.sequence import RelayChecker, SenderTrack, SequenceFailure
from reference.stamp import make_payload, receive_limit

__all__ = ["SoakPlan", "run_soak", "soak_command"]

#: How soak members are named: the group is the id their stamps carry.
_NAMES = r"soak(\d+)"


def _name(member_id: int) -> str:
    return f"soak{member_id}"


@dataclass(frozen=True)
class SoakPlan:
    host: str
    port: int
    clients: int
    rate: float
    duration_s: float
    churn: float
    abrupt: float
    size: int = 64
    seed: int = 1
    drain_s: float = 5.0          # at most this long for the last deliveries at the end...
    idle_s: float = 2.0           # ...or until nothing has arrived for this long
    leave_drain_s: float = 5.0    # a leaving member waits at most this long for its window
    connect_timeout: float = 5.0


@dataclass(eq=False)
class Member:
    id: int
    client: AsyncChatClient | None = None
    state: str = "joining"        # joining -> active -> leaving -> gone (or dropped)
    next_seq: int = 0
    # As a recipient: label, pairing and per-sender order; its tracks are keyed by sender id.
    checker: RelayChecker = field(default_factory=lambda: RelayChecker(_NAMES))
    confirmed: dict[int, int] = field(default_factory=dict)  # recipient -> our first seq it must get
    leave_seq: dict[int, int] = field(default_factory=dict)  # sender -> its next seq when we left
    heard_up_to: int = -1         # highest of our seqs that anyone has received

    @property
    def tracks(self) -> dict[Hashable, SenderTrack]:
        return self.checker.sequence.tracks

    def window(self, sender: Member) -> tuple[int, int]:
        """[start, end) of ``sender``'s seqs that must reach us."""
        track = self.tracks.get(sender.id)
        first = track.first if track is not None else None
        start = min(first if first is not None else sender.next_seq,
                    sender.confirmed.get(self.id, sender.next_seq))
        end = self.leave_seq.get(sender.id, 0) if self.state != "active" else sender.next_seq
        return start, max(start, end)


class Soak:
    def __init__(self, plan: SoakPlan, target: Any) -> None:
        self.plan = plan
        self.target = target
        self.members: dict[int, Member] = {}
        self.rng = random.Random(plan.seed)
        self.counts = {"joins": 0, "leaves_clean": 0, "leaves_abrupt": 0, "dropped": 0,
                       "join_failures": 0, "sent": 0, "received": 0}
        self.timeline: list[dict[str, Any]] = []
        self._cursor = 0
        self.last_receipt = time.monotonic()

    # -- membership ---------------------------------------------------------------
    def active(self) -> list[Member]:
        return [m for m in self.members.values() if m.state == "active"]

    def _on_relay(self, member: Member) -> Any:
        def on_relay(relay: Relay, received_ns: int) -> None:
            stamp, _ = member.checker.check(relay.sender, relay.text, received_ns)
            sender = self.members.get(stamp.sender) if stamp is not None else None
            if stamp is None or sender is None:
                return
            self.counts["received"] += 1
            self.last_receipt = received_ns / 1e9  # monotonic_ns and monotonic share a clock
            if stamp.seq > sender.heard_up_to:
                sender.heard_up_to = stamp.seq
            # The server registered the sender before relaying this, so from our
            # next message on, the sender must get everything we send.
            member.confirmed.setdefault(sender.id, member.next_seq)
        return on_relay

    async def join(self) -> None:
        member = Member(len(self.members))
        self.members[member.id] = member
        try:
            member.client = await connect_client(self.plan.host, self.plan.port, name=_name(member.id),
                                                 on_relay=self._on_relay(member),
                                                 max_payload=receive_limit(self.plan.size),
                                                 timeout=self.plan.connect_timeout)
        except (OSError, TimeoutError):
            member.state = "gone"
            self.counts["join_failures"] += 1
            return
        member.state = "active"
        self.send(member)  # says "I am here" to everyone, who then owe us their messages

    def send(self, member: Member) -> None:
        assert member.client is not None
        member.client.send(make_payload(member.id, member.next_seq, time.monotonic_ns(), self.plan.size))
        member.next_seq += 1
        self.counts["sent"] += 1

    def _holds_window(self, member: Member) -> bool:
        for sender in self.members.values():
            if sender is member:
                continue
            start, end = member.window(sender)
            track = member.tracks.get(sender.id)
            if end > start and (track is None or track.missing_below(end, start)):
                return False
        return True

    def begin_leave(self, member: Member) -> None:
        """Stop ``member`` sending and fix its window's end, before anything else can run."""
        member.state = "leaving"
        member.leave_seq = {s.id: s.next_seq for s in self.members.values() if s is not member}

    async def leave(self, member: Member, abrupt: bool) -> None:
        """Wait until ``member`` holds its window and was heard, then close or reset."""
        deadline = time.monotonic() + self.plan.leave_drain_s
        others = any(m.state in ("active", "leaving") for m in self.members.values() if m is not member)
        while time.monotonic() < deadline:
            heard = member.heard_up_to >= member.next_seq - 1 or not others
            if heard and self._holds_window(member):
                break
            await asyncio.sleep(0.01)
        assert member.client is not None
        member.client.abort() if abrupt else member.client.close()
        member.state = "gone"
        self.counts["leaves_abrupt" if abrupt else "leaves_clean"] += 1

    # -- the run ----------------------------------------------------------------------
    async def chatter(self, until: float) -> None:
        interval, due = 1.0 / self.plan.rate, time.monotonic()
        while due < until:
            due += interval
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            active = self.active()
            if active:
                self._cursor = (self._cursor + 1) % len(active)
                self.send(active[self._cursor])

    async def churn(self, until: float) -> None:
        if self.plan.churn <= 0:
            return
        leaving: set[asyncio.Task[None]] = set()
        while time.monotonic() + 1.0 / self.plan.churn < until:
            await asyncio.sleep(1.0 / self.plan.churn)
            active = self.active()
            if len(active) > 1:
                member = self.rng.choice(active)
                self.begin_leave(member)  # now, not when the task first runs
                task = asyncio.create_task(self.leave(member, self.rng.random() < self.plan.abrupt))
                leaving.add(task)
                task.add_done_callback(leaving.discard)
            self.counts["joins"] += 1
            await self.join()
        if leaving:
            await asyncio.gather(*leaving)

    async def watch(self, until: float, started: float, status: LiveStatus) -> None:
        while True:
            for m in self.active():
                if m.client is not None and m.client.closed.done():  # the server dropped it
                    m.state = "dropped"
                    m.leave_seq = {s.id: s.next_seq for s in self.members.values() if s is not m}
                    self.counts["dropped"] += 1
            self.sample(started)
            status.update(done=time.monotonic() - started, clients=len(self.active()), **self.counts)
            if time.monotonic() >= until:
                return
            await asyncio.sleep(min(1.0, max(0.0, until - time.monotonic())))

    def sample(self, started: float) -> None:
        self.timeline.append({"t_s": round(time.monotonic() - started, 2), "clients": len(self.active()),
                              "sent": self.counts["sent"], "delivered": self.counts["received"],
                              "rss_bytes": self.target.rss_bytes()})

    async def final_drain(self) -> None:
        deadline = time.monotonic() + self.plan.drain_s
        while time.monotonic() < deadline and not all(self._holds_window(m) for m in self.active()):
            if time.monotonic() - self.last_receipt > self.plan.idle_s:
                return  # nothing is arriving any more: what is missing is lost
            await asyncio.sleep(0.02)

    def accounting(self) -> dict[str, int]:
        expected = missing = duplicated = reordered = mislabelled = unpaired = 0
        for member in self.members.values():
            mislabelled += member.checker.counts[SequenceFailure.MISLABELLED]
            unpaired += member.checker.counts[SequenceFailure.UNPAIRED]
            for sender in self.members.values():
                if sender is member:
                    continue
                start, end = member.window(sender)
                track = member.tracks.get(sender.id) or SenderTrack()
                expected += end - start
                missing += track.missing_below(end, start)
                duplicated += track.duplicated
                reordered += track.reordered
        return {"expected_deliveries": expected, "delivered": expected - missing, "lost": missing,
                "duplicated": duplicated, "reordered": reordered, "mislabelled": mislabelled,
                "unpaired": unpaired}


async def run_soak(plan: SoakPlan, target: Any, status: LiveStatus) -> dict[str, Any]:
    soak = Soak(plan, target)
    await asyncio.gather(*(soak.join() for _ in range(plan.clients)))
    await asyncio.sleep(0.2)  # everyone's hello is in; memory from here on is growth
    rss_start = target.rss_bytes()
    started = time.monotonic()
    until = started + plan.duration_s
    try:
        await asyncio.gather(soak.chatter(until), soak.churn(until), soak.watch(until, started, status))
        await soak.final_drain()
        soak.sample(started)
        rss_end = target.rss_bytes()
    finally:
        for m in soak.members.values():
            if m.client is not None:
                m.client.close()
        await asyncio.sleep(0)
    result = soak.accounting()
    ok = not (result["lost"] or result["duplicated"] or result["reordered"]
              or result["mislabelled"] or result["unpaired"]
              or soak.counts["dropped"] or soak.counts["join_failures"])
    summary = {"duration_s": round(time.monotonic() - started, 2), "clients": plan.clients,
               "rate": plan.rate, "churn": plan.churn, **soak.counts, **result, "ok": ok,
               "rss_start_bytes": rss_start, "rss_end_bytes": rss_end,
               "rss_growth_bytes": None if rss_start is None or rss_end is None else rss_end - rss_start}
    return {"summary": summary, "records": soak.timeline}


def soak_command(args: Any, target: Any, console: Console) -> tuple[str, dict[str, Any],
                                                                   list[dict[str, Any]]]:
    plan = SoakPlan(host=target.address[0], port=target.address[1], clients=args.clients,
                    rate=args.rate, duration_s=args.duration, churn=args.churn, abrupt=args.abrupt,
                    size=args.size, seed=args.seed)
    with LiveStatus(console, f"chat-load soak against {target.label}") as status:
        status.update(done=0, total=plan.duration_s)
        out = aclient.run(run_soak(plan, target, status))
    return "soak", out["summary"], out["records"]
