"""Per-sender loss, duplication and order checks for one receiving swarm client.

RELAY-4: for each recipient that keeps reading, the messages of each sender
arrive in the order sent, each exactly once.  Every load message carries its
sender's sequence number (``loadtest.payload``), so one receiver can check it
alone, with no side channel and no clock:

* the first message seen from a sender sets where its sequence starts (a
  receiver that joins late never saw the earlier ones, and that is not loss);
* a gap makes the skipped numbers *missing*; a missing message that turns up
  later is *reordered*; one still missing ``loss_grace`` seconds after the gap
  was seen, or when the connection ends, is *lost*;
* a number seen before is *duplicated*.

Messages still in flight when a receiver closes are never seen as a gap, so a
clean stop cannot produce false losses.  This module imports neither locust
nor gevent (tests use it directly).
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field

__all__ = [
    "DuplicatedMessage",
    "EchoedMessage",
    "LostMessage",
    "MessageFailure",
    "MisattributedMessage",
    "ReorderedMessage",
    "SequenceChecker",
    "SequenceFailure",
    "SequenceJump",
]

#: A gap larger than this is not a loss to track one by one but a garbled stream.
MAX_TRACKED_GAP = 10_000


class MessageFailure(Exception):
    """A received (or never received) message broke a relay rule.

    The message is fixed per class so that locust groups all occurrences
    into one row of its failures table.
    """

    text = "message failure"

    def __init__(self) -> None:
        super().__init__(self.text)


class LostMessage(MessageFailure):
    text = "a message from this sender never arrived (RELAY-4)"


class DuplicatedMessage(MessageFailure):
    text = "a message from this sender arrived twice (RELAY-4)"


class ReorderedMessage(MessageFailure):
    text = "a message arrived after a later one from the same sender (RELAY-4)"


class EchoedMessage(MessageFailure):
    text = "the server sent our own message back to us (RELAY-2)"


class MisattributedMessage(MessageFailure):
    text = "the username frame names another client than the one that sent the message (RELAY-3)"


class SequenceJump(MessageFailure):
    text = f"a sender's sequence number jumped by more than {MAX_TRACKED_GAP} (garbled stream)"


class SequenceFailure(enum.Enum):
    """What can be wrong with one message; ``.value`` is the key used in result summaries."""

    LOST = "lost"
    DUPLICATED = "duplicated"
    REORDERED = "reordered"
    ECHOED = "echoed"
    MISATTRIBUTED = "misattributed"
    SEQUENCE_JUMP = "sequence_jump"

    def error(self) -> MessageFailure:
        return _ERRORS[self]()

    @classmethod
    def from_error_text(cls, text: str) -> SequenceFailure | None:
        """Which failure a locust error string (``repr`` of the exception) is, if any."""
        for kind, error in _ERRORS.items():
            if text.startswith(error.__name__ + "("):
                return kind
        return None


_ERRORS: dict[SequenceFailure, type[MessageFailure]] = {
    SequenceFailure.LOST: LostMessage,
    SequenceFailure.DUPLICATED: DuplicatedMessage,
    SequenceFailure.REORDERED: ReorderedMessage,
    SequenceFailure.ECHOED: EchoedMessage,
    SequenceFailure.MISATTRIBUTED: MisattributedMessage,
    SequenceFailure.SEQUENCE_JUMP: SequenceJump,
}


@dataclass(slots=True)
class _Sender:
    first: int
    next: int
    missing: set[int] = field(default_factory=set)
    given_up: set[int] = field(default_factory=set)  # reported lost; late arrivals are reordered


class SequenceChecker:
    """RELAY-4 bookkeeping of one receiver, keyed by sender name."""

    def __init__(self, loss_grace_ns: int = 2_000_000_000) -> None:
        self.loss_grace_ns = loss_grace_ns
        self._senders: dict[str, _Sender] = {}
        # (deadline, sender, seq) in deadline order, since the grace is constant.
        self._deadlines: deque[tuple[int, str, int]] = deque()

    def observe(self, sender: str, seq: int, now_ns: int) -> SequenceFailure | None:
        """Record one arrival; the failure it shows, or None when it is in order."""
        state = self._senders.get(sender)
        if state is None:
            self._senders[sender] = _Sender(first=seq, next=seq + 1)
            return None
        if seq == state.next:
            state.next += 1
            return None
        if seq > state.next:
            if seq - state.next > MAX_TRACKED_GAP:
                state.next = seq + 1
                return SequenceFailure.SEQUENCE_JUMP
            deadline = now_ns + self.loss_grace_ns
            for skipped in range(state.next, seq):
                state.missing.add(skipped)
                self._deadlines.append((deadline, sender, skipped))
            state.next = seq + 1
            return None
        if seq in state.missing:
            state.missing.discard(seq)
            return SequenceFailure.REORDERED
        if seq in state.given_up:
            state.given_up.discard(seq)
            return SequenceFailure.REORDERED
        if seq < state.first:
            # Sent before the first one we saw, yet arrived after it.
            state.first = seq
            return SequenceFailure.REORDERED
        return SequenceFailure.DUPLICATED

    def overdue(self, now_ns: int) -> int:
        """How many missing messages just passed their grace: they count as lost."""
        lost = 0
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= now_ns:
            _, sender, seq = deadlines.popleft()
            state = self._senders[sender]
            if seq in state.missing:
                state.missing.discard(seq)
                state.given_up.add(seq)
                lost += 1
        return lost

    def flush(self) -> int:
        """The connection ended: every message still missing is lost."""
        lost = 0
        for state in self._senders.values():
            lost += len(state.missing)
            state.given_up |= state.missing
            state.missing.clear()
        self._deadlines.clear()
        return lost

    @property
    def missing(self) -> int:
        """Messages currently missing (not yet lost, not yet arrived)."""
        return sum(len(state.missing) for state in self._senders.values())
