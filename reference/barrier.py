"""Sans-I/O registration barriers: proving that the server has registered a client.

The protocol never acknowledges a username, and a server may read another
connection's frame before the newcomer's.  So every tool proves registration
the same way: a relay of a *sentinel* message reaches (or comes from) the
client, which the server can only do once it has registered it; per-sender
order (RELAY-4) then tells which sentinel is the last to arrive, so the room
can drain up to it and start clean.

This module is that logic and nothing else: no sockets, clocks or sleeping,
in the manner of :mod:`reference.protocol`.  A driver (the blocking client,
the conformance room, the asyncio load generators) sends what the barrier
gives it, waits as long as it says, and reports each relay it reads::

    barrier = JoinBarrier(hub="ana", sentinels="sync-")
    while not barrier.done:
        hub.send(barrier.next_sentinel())
        try:
            relay = newcomer.receive(timeout=barrier.next_wait())
        except TimeoutError:
            continue                       # the driver owns the deadline
        barrier.observe(relay)             # Observation.CONFIRMS / SENTINEL / FOREIGN
    while not barrier.drained(newcomer.receive()):
        pass                               # optional: read up to the last sentinel

The shapes in use:

* :class:`JoinBarrier` -- a registered *hub* repeats numbered sentinels
  (on a :class:`Backoff` schedule) until every waiting reader has one.
* :class:`AnnounceBarrier` -- a speaker sends one message, once; each reader
  waits for it (the newcomer's own sync, the room's ``ready:<i>`` and ``go``).
* :class:`PairBarrier` -- two unconfirmed clients: the newcomer's one
  sentinel, and the other way only if that is slow; either proves both.
* :class:`RoomJoin` -- a room of N in linear rounds: the hub confirms the
  second client, everyone else says ``ready:<i>``, the hub's ``go`` drains all.
"""

from __future__ import annotations

import enum
import itertools
import math
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass

from reference.protocol import LocalProtocolError, Relay

__all__ = [
    "DOUBLING",
    "LINEAR",
    "NEWCOMER",
    "AnnounceBarrier",
    "Backoff",
    "JoinBarrier",
    "Observation",
    "PairBarrier",
    "RoomJoin",
    "Sentinels",
]

#: The reader's key when a barrier waits for one client only.
NEWCOMER = "newcomer"


class Observation(enum.Enum):
    """What one relay meant to a barrier."""

    #: The awaited sentinel (or one of its kind still in flight): this reader's wait is over.
    CONFIRMS = "confirms"
    #: A sentinel, but not one this reader still waits for: skip it.
    SENTINEL = "sentinel"
    #: Not a sentinel of this barrier: the server's doing, or traffic the driver owns.
    FOREIGN = "foreign"


@dataclass(frozen=True)
class Backoff:
    """How long a driver waits after the n-th sentinel before sending the next one.

    ``wait(n) = min(cap, first * factor**n + step * n)``: doubling, linear or steady.
    """

    first: float
    factor: float = 1.0
    step: float = 0.0
    cap: float = math.inf

    def __post_init__(self) -> None:
        if self.first <= 0 or self.factor < 1 or self.step < 0 or self.cap <= 0:
            raise LocalProtocolError(f"a backoff must grow from a positive wait: {self}")

    def wait(self, attempt: int) -> float:
        """The wait after sentinel number ``attempt`` (0 for the first)."""
        if attempt < 0:
            raise LocalProtocolError("no sentinel has been sent yet")
        grown = self.first * self.factor ** min(attempt, 64) + self.step * attempt
        return min(self.cap, grown)


#: 0.05 s doubling to 0.4 s: quick on a fast server, few messages on a slow one.
DOUBLING = Backoff(0.05, factor=2.0, cap=0.4)
#: 0.2, 0.4, 0.6 ... s: the blocking client's patient schedule.
LINEAR = Backoff(0.2, step=0.2)


class Sentinels:
    """Numbered sentinel texts under one prefix (``"~sync:1"``, ``"~sync:2"`` ...).

    One numbering can serve many barriers (a room's successive joins), so a
    sentinel left in flight by an earlier join is never mistaken for a later one.
    """

    def __init__(self, prefix: str, first: int = 0) -> None:
        if not prefix:
            raise LocalProtocolError("a sentinel prefix must not be empty")
        self.prefix = prefix
        self._numbers = itertools.count(first)

    def next(self) -> str:
        return f"{self.prefix}{next(self._numbers)}"

    def matches(self, text: str) -> bool:
        """Whether ``text`` is a sentinel of this kind (of any barrier, any number)."""
        return text.startswith(self.prefix)


def _sentinels(given: Sentinels | str) -> Sentinels:
    return Sentinels(given) if isinstance(given, str) else given


class _Readers:
    """The readers a barrier still waits for; a reader the driver has lost is dropped."""

    def __init__(self, readers: Iterable[Hashable]) -> None:
        self.waiting: set[Hashable] = set(readers)

    @property
    def done(self) -> bool:
        return not self.waiting

    def drop(self, reader: Hashable) -> None:
        """Stop waiting for ``reader`` (say, the server closed it: the driver judges that)."""
        self.waiting.discard(reader)

    def _confirm(self, reader: Hashable) -> Observation:
        if reader in self.waiting:
            self.waiting.discard(reader)
            return Observation.CONFIRMS
        return Observation.SENTINEL


class JoinBarrier(_Readers):
    """A registered ``hub`` repeats sentinels until each reader has received one.

    Any of the hub's sentinels confirms a reader, also one an earlier barrier
    left in flight (the hub sent it before that join was confirmed, the server
    read it after this reader registered): on a loaded machine that is normal.
    Readers are keys the driver chooses (a client, an index); one by default,
    none for a process that only watches a hub in another process.  With
    ``hub=None`` the prefix alone identifies a sentinel and its label is left
    to the checks that judge labels (a load tool must still start against a
    server that mislabels relays, to count them).
    """

    def __init__(self, hub: str | None, sentinels: Sentinels | str,
                 readers: Iterable[Hashable] = (NEWCOMER,), backoff: Backoff = DOUBLING) -> None:
        super().__init__(readers)
        self.hub = hub
        self.sentinels = _sentinels(sentinels)
        self.backoff = backoff
        self.sent: list[str] = []

    def next_sentinel(self) -> str:
        """The text the hub sends next (each call is one more sentinel sent)."""
        # Allowed once done: readers in other processes may still wait for the hub.
        self.sent.append(self.sentinels.next())
        return self.sent[-1]

    @property
    def last_sentinel(self) -> str | None:
        return self.sent[-1] if self.sent else None

    def next_wait(self) -> float:
        """How long to wait for a relay before sending the next sentinel."""
        return self.backoff.wait(len(self.sent) - 1)

    def observe(self, relay: Relay, reader: Hashable = NEWCOMER) -> Observation:
        """What ``relay``, read by ``reader``, means; a CONFIRMS ends that reader's wait."""
        if self._from_hub(relay) and self.sentinels.matches(relay.text):
            return self._confirm(reader)
        return Observation.FOREIGN

    def drained(self, relay: Relay) -> bool:
        """True once a reader reads the last sentinel: nothing of this barrier follows it."""
        return relay.text == self.last_sentinel and self._from_hub(relay)

    def _from_hub(self, relay: Relay) -> bool:
        return self.hub is None or relay.sender == self.hub


class AnnounceBarrier(_Readers):
    """One message, sent once: each reader waits for exactly that relay.

    A fixed number of messages, never a retry, so the traffic is the same every
    run.  With ``speaker`` the relay must carry that label; without, the text
    alone (a unique sentinel) identifies it and the label is left to the
    checks that judge labels.  ``sentinels`` names other barriers' messages to skip.
    """

    def __init__(self, text: str, readers: Iterable[Hashable], speaker: str | None = None,
                 sentinels: Sentinels | str | None = None) -> None:
        super().__init__(readers)
        self.text = text
        self.speaker = speaker
        self.sentinels = None if sentinels is None else _sentinels(sentinels)

    def observe(self, relay: Relay, reader: Hashable) -> Observation:
        """What ``relay``, read by ``reader``, means; a CONFIRMS ends that reader's wait."""
        if self.drained(relay):
            return self._confirm(reader)
        if self.sentinels is not None and self.sentinels.matches(relay.text):
            return Observation.SENTINEL
        return Observation.FOREIGN

    def drained(self, relay: Relay) -> bool:
        """True for the announced relay itself: a reader has read up to it."""
        return relay.text == self.text and (self.speaker is None or relay.sender == self.speaker)


class PairBarrier:
    """Two unconfirmed clients confirm each other: one sentinel, or two at most.

    ``newcomer`` sends its sentinel S.  ``first`` sent its username before the
    newcomer connected, so a server reads it before S in practice, and S
    reaching ``first`` confirms both with one message: the same traffic every
    run.  Only if S has not come after ``patience`` does ``first`` send T.  The
    server cannot have dropped both: dropping S means it read S before first's
    username, so the newcomer's username before T, which then reaches it.
    """

    def __init__(self, first: Hashable, newcomer: Hashable, sentinels: Sentinels | str,
                 patience: float = 1.0) -> None:
        if first == newcomer:
            raise LocalProtocolError("a pair needs two different clients")
        self.first, self.newcomer = first, newcomer
        self.sentinels = _sentinels(sentinels)
        self.patience = patience
        #: sender -> the one sentinel it sent, in the order they were sent.
        self.sent: dict[Hashable, str] = {}
        self.done = False

    def next_sentinel(self) -> tuple[Hashable, str]:
        """Who sends what next: the newcomer's S, then (after ``patience``) first's T."""
        for sender in (self.newcomer, self.first):
            if sender not in self.sent:
                self.sent[sender] = self.sentinels.next()
                return sender, self.sent[sender]
        raise LocalProtocolError("a pair sends two sentinels at most")

    def next_wait(self) -> float:
        """How long to wait before the next sentinel; after the second, only the deadline."""
        if not self.sent:
            raise LocalProtocolError("no sentinel has been sent yet")
        return self.patience if len(self.sent) == 1 else math.inf

    @property
    def readers(self) -> list[Hashable]:
        """Who may read a confirming relay: the other side of each sentinel sent."""
        return [self.first if sender == self.newcomer else self.newcomer for sender in self.sent]

    def observe(self, relay: Relay, reader: Hashable) -> Observation:
        """``reader`` (one of the two) read ``relay``.

        The unique text identifies the sentinel; its label is for the label checks to judge
        (and two clients may share a name), so the pair keys are the driver's clients.
        """
        other = self.newcomer if reader == self.first else self.first
        if relay.text == self.sent.get(other):
            self.done = True
            return Observation.CONFIRMS
        if self.sentinels.matches(relay.text):
            return Observation.SENTINEL
        return Observation.FOREIGN


class RoomJoin:
    """A room of N registered in linear rounds, queues empty at the end.

    1. :attr:`first`: the hub (``names[0]``) confirms ``names[1]`` with sentinels.
    2. Every other client says :meth:`ready_text` right after its username; the
       hub hearing it proves that client registered (a server reads one
       connection's frames in order).  :meth:`observe_ready` at the hub.
    3. :attr:`go`: the hub says ``go`` once all are ready; each client reads up
       to it, so the first relay after the join is the room's next message.
    """

    GO = "go"

    def __init__(self, names: Sequence[str], sentinels: Sentinels | str = "sync-",
                 backoff: Backoff = LINEAR) -> None:
        if not names:
            raise LocalProtocolError("a room needs at least one name")
        self.names = list(names)
        self.hub = names[0]
        # The first round and the readies are known by their text (a server that mislabels
        # relays still gets its room); the go must come from the hub.
        self.first = JoinBarrier(None, sentinels, backoff=backoff) if len(names) > 1 else None
        self._ready = {self.ready_text(i): name for i, name in enumerate(names) if i >= 2}  # text -> who
        # Readers by index: names may repeat.
        self.go = AnnounceBarrier(self.GO, range(1, len(names)), speaker=self.hub) if len(names) > 2 else None

    @staticmethod
    def ready_text(index: int) -> str:
        return f"ready:{index}"

    @property
    def waiting_ready(self) -> set[str]:
        """The ``ready`` texts the hub has not heard yet."""
        return set(self._ready)

    @property
    def ready_done(self) -> bool:
        return not self._ready

    def observe_ready(self, relay: Relay) -> Observation:
        """The hub read ``relay``."""
        if self._ready.pop(relay.text, None) is not None:
            return Observation.CONFIRMS
        return Observation.FOREIGN
