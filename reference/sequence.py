"""The one sequence checker: is every relay whole, rightly labelled, and in order?

Every load message carries its sender's id and sequence number
(``reference.stamp``), so one receiver can judge what it gets alone, with no
side channel and no clock.  Used by ``chat-load`` (latency, soak), the locust
swarm and the conformance suite; it imports neither asyncio, gevent nor locust.

What can be wrong (:class:`SequenceFailure`):

* RELAY-3, the frames: the username frame must name the sender that the
  payload names (else *mislabelled*), and a username frame must be followed by
  that message's frame (a message frame in the username's place, or a
  username in the message's place, is *unpaired*: the server interleaved or
  dropped frames);
* RELAY-2: our own message sent back to us is *echoed*;
* RELAY-4, per sender: a number seen before is *duplicated*; one that arrives
  after a higher one is *reordered*; one never seen is *lost*.

:class:`SenderTrack` holds what arrived from one sender as disjoint runs of
numbers, so its memory grows with the gaps actually seen, never with the
numbers themselves: a relay stamped with sequence 10**9 costs one run.
:class:`SequenceChecker` adds the streaming view (a gap is *missing* for a
grace period, then *lost*); :class:`RelayChecker` checks label and pairing
first, then feeds the sequence checks.
"""

from __future__ import annotations

import enum
import re
from bisect import bisect_right
from collections import Counter, deque
from collections.abc import Hashable

from reference.stamp import _TEN_DIGITS, _TWENTY_DIGITS, Stamp, parse_payload

__all__ = [
    "MAX_RUNS",
    "MAX_TRACKED_GAP",
    "MessageFailure",
    "RelayChecker",
    "SenderTrack",
    "SequenceChecker",
    "SequenceFailure",
]

#: A gap larger than this is not a loss to track one by one but a garbled stream.
MAX_TRACKED_GAP = 10_000
#: Disjoint runs one track keeps; past this a sender's numbers are garbled, not tracked.
MAX_RUNS = 65_536


class MessageFailure(Exception):
    """A received (or never received) message broke a relay rule.

    The text is fixed per kind so that a report (locust's failures table)
    groups all occurrences into one row.
    """

    text = "message failure"

    def __init__(self) -> None:
        super().__init__(self.text)


class SequenceFailure(enum.Enum):
    """What can be wrong with one relay; ``.value`` is the key used in result summaries."""

    LOST = "lost"
    DUPLICATED = "duplicated"
    REORDERED = "reordered"
    ECHOED = "echoed"
    MISLABELLED = "mislabelled"
    UNPAIRED = "unpaired"
    SEQUENCE_JUMP = "sequence_jump"

    def error(self) -> MessageFailure:
        return _ERRORS[self]()

    @classmethod
    def from_error_text(cls, text: str) -> SequenceFailure | None:
        """Which failure an error string (``repr`` of the exception) is, if any."""
        for kind, error in _ERRORS.items():
            if text.startswith(error.__name__ + "("):
                return kind
        return None


#: Each failure's exception class, made from one table: its name is what locust's failures
#: table shows (``LostMessage()``, and :meth:`SequenceFailure.from_error_text` reads it back),
#: its fixed text makes that table group every occurrence into one row.
_ERRORS: dict[SequenceFailure, type[MessageFailure]] = {
    kind: type(name, (MessageFailure,), {"text": text, "__module__": __name__, "__doc__": text})
    for kind, name, text in (
        (SequenceFailure.LOST, "LostMessage", "a message from this sender never arrived (RELAY-4)"),
        (SequenceFailure.DUPLICATED, "DuplicatedMessage",
         "a message from this sender arrived twice (RELAY-4)"),
        (SequenceFailure.REORDERED, "ReorderedMessage",
         "a message arrived after a later one from the same sender (RELAY-4)"),
        (SequenceFailure.ECHOED, "EchoedMessage",
         "the server sent our own message back to us (RELAY-2)"),
        (SequenceFailure.MISLABELLED, "MislabelledMessage",
         "the username frame names another client than the one that sent the message (RELAY-3)"),
        (SequenceFailure.UNPAIRED, "UnpairedFrames",
         "a username frame was not followed by its message frame (RELAY-3)"),
        (SequenceFailure.SEQUENCE_JUMP, "SequenceJump",
         f"a sender's sequence numbers are garbled (a jump of more than {MAX_TRACKED_GAP})"),
    )
}
# Importable by name, as the classes written out one by one were.
globals().update({error.__name__: error for error in _ERRORS.values()})


class SenderTrack:
    """What one receiver got from one sender: sequence numbers as sorted disjoint runs.

    ``_starts[i] <= n < _ends[i]`` for every number n received; in-order
    arrival only moves the last run's end, so the common case is O(1) and
    one run long.
    """

    __slots__ = ("_ends", "_starts", "duplicated", "garbled", "reordered", "unique")

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []
        self.unique = 0
        self.duplicated = 0
        self.reordered = 0   # arrived after a higher sequence number from the same sender
        self.garbled = 0     # not tracked: negative, or the track already holds MAX_RUNS runs

    @property
    def first(self) -> int | None:
        """The lowest number received, None before any."""
        return self._starts[0] if self._starts else None

    @property
    def high(self) -> int:
        """The highest number received, -1 before any."""
        return self._ends[-1] - 1 if self._ends else -1

    @property
    def runs(self) -> int:
        return len(self._starts)

    def add(self, seq: int) -> SequenceFailure | None:
        """Account for one delivery: None (new, and above all others), REORDERED, DUPLICATED.

        SEQUENCE_JUMP when the number cannot be tracked (negative, or the track
        is full of runs): it is then not recorded at all.
        """
        starts, ends = self._starts, self._ends
        if ends and seq == ends[-1]:          # the next one: the common case
            ends[-1] = seq + 1
            self.unique += 1
            return None
        if seq < 0:
            self.garbled += 1
            return SequenceFailure.SEQUENCE_JUMP
        if not ends or seq > ends[-1]:        # a new run above everything
            if len(starts) >= MAX_RUNS:
                self.garbled += 1
                return SequenceFailure.SEQUENCE_JUMP
            starts.append(seq)
            ends.append(seq + 1)
            self.unique += 1
            return None
        i = bisect_right(starts, seq) - 1     # the run that starts at or below seq
        if i >= 0 and seq < ends[i]:
            self.duplicated += 1
            return SequenceFailure.DUPLICATED
        joins_left = i >= 0 and ends[i] == seq
        joins_right = starts[i + 1] == seq + 1  # seq < ends[-1] so run i+1 exists
        if joins_left and joins_right:
            ends[i] = ends[i + 1]
            del starts[i + 1], ends[i + 1]
        elif joins_left:
            ends[i] = seq + 1
        elif joins_right:
            starts[i + 1] = seq
        elif len(starts) >= MAX_RUNS:
            self.garbled += 1
            return SequenceFailure.SEQUENCE_JUMP
        else:
            starts.insert(i + 1, seq)
            ends.insert(i + 1, seq + 1)
        self.unique += 1
        self.reordered += 1
        return SequenceFailure.REORDERED

    def received_between(self, start: int, end: int) -> int:
        """How many of ``start .. end-1`` arrived."""
        if end <= start or not self._starts:
            return 0
        starts, ends = self._starts, self._ends
        got = 0
        i = max(0, bisect_right(starts, start) - 1)
        while i < len(starts) and starts[i] < end:
            got += max(0, min(ends[i], end) - max(starts[i], start))
            i += 1
        return got

    def missing_below(self, end: int, start: int = 0) -> int:
        """How many of ``start .. end-1`` never arrived."""
        return max(0, end - start) - self.received_between(start, end)


class SequenceChecker:
    """RELAY-4 for a receiver that does not know what was sent: gaps expire into losses.

    The first message seen from a sender sets where its sequence starts (a
    receiver that joins late never saw the earlier ones, and that is not
    loss); a gap makes the skipped numbers *missing*; one still missing
    ``loss_grace_ns`` after the gap was seen, or at :meth:`flush`, is *lost*
    (and if it turns up later after all, it is also *reordered*).  Messages
    in flight when a receiver closes are never seen as a gap, so a clean stop
    cannot produce false losses.
    """

    def __init__(self, loss_grace_ns: int = 2_000_000_000) -> None:
        self.loss_grace_ns = loss_grace_ns
        self.tracks: dict[Hashable, SenderTrack] = {}
        # (deadline, sender, lo, hi): gaps in deadline order, since the grace is constant.
        self._gaps: deque[tuple[int, Hashable, int, int]] = deque()

    def observe(self, sender: Hashable, seq: int, now_ns: int) -> SequenceFailure | None:
        """Record one arrival; the failure it shows, or None when it is in order."""
        track = self.tracks.get(sender)
        if track is None:
            track = self.tracks[sender] = SenderTrack()
        ends = track._ends
        high = ends[-1] - 1 if ends else -1
        failure = track.add(seq)
        if failure is None and high >= 0 and seq > high + 1:
            if seq - high - 1 > MAX_TRACKED_GAP:
                return SequenceFailure.SEQUENCE_JUMP  # garbled, not ten thousand losses
            self._gaps.append((now_ns + self.loss_grace_ns, sender, high + 1, seq))
        return failure

    def overdue(self, now_ns: int) -> int:
        """How many missing messages just passed their grace: they count as lost."""
        lost = 0
        gaps = self._gaps
        while gaps and gaps[0][0] <= now_ns:
            _, sender, lo, hi = gaps.popleft()
            lost += self.tracks[sender].missing_below(hi, lo)
        return lost

    def flush(self) -> int:
        """The connection ended: every message still missing is lost."""
        lost = self.missing
        self._gaps.clear()
        return lost

    @property
    def missing(self) -> int:
        """Messages currently missing (not yet lost, not yet arrived)."""
        return sum(self.tracks[s].missing_below(hi, lo) for _, s, lo, hi in self._gaps)


class RelayChecker:
    """Checks every relay one receiver gets: its label, its pairing, then its sequence.

    ``names`` is how the load clients are named, with one group capturing the
    sender id that their stamps carry (``r"c(\\d+)"``); ``own`` is this
    receiver's id.  :meth:`check` returns the relay's stamp (None when the
    relay is not a load message at all) and what is wrong with it.  A stamp
    found anywhere still counts as delivered, so a server that interleaves
    frames shows up as unpaired relays, not as loss.
    """

    def __init__(self, names: str, own: int | None = None, loss_grace_ns: int = 2_000_000_000) -> None:
        self._names = re.compile(names)
        self.own = own
        self.sequence = SequenceChecker(loss_grace_ns)
        self.counts: Counter[SequenceFailure] = Counter()
        self.unstamped = 0
        self.delivered = 0   # first copies of load messages, wherever in the relay their stamp was
        self._ids: dict[str, int | None] = {}  # label -> id, a cache bounded by _MAX_LABELS
        self._frame_ids: dict[bytes, int] = {}  # the same for labels of ours, as their bytes (in_order)

    def sender_id(self, label: str) -> int | None:
        """The id a username names, None if it is not one of our names."""
        try:
            return self._ids[label]
        except KeyError:
            pass
        match = self._names.fullmatch(label)
        found = int(match.group(1)) if match is not None and len(match.group(1)) <= 10 else None
        if len(self._ids) < _MAX_LABELS:
            self._ids[label] = found
            if found is not None:
                self._frame_ids[label.encode("utf-8")] = found
        return found

    def in_order(self, label: bytes, text: bytes) -> tuple[int, int, int] | None:
        """The commonest relay, judged and counted in one step, or None: then call :meth:`check`.

        Takes the relay's two payloads as they came (bytes, checked UTF-8:
        ``Connection.receive_relay_frames``).  The common case is a
        well-formed stamp under the label of the sender it names (a label
        :meth:`check` has seen before), next in that sender's sequence: it is
        counted exactly as ``check`` would count it and ``(sender, seq,
        sent_ns)`` returned, with no text decoded, no Stamp, no failure list
        and no tuple of results built.  Anything else returns None having
        recorded nothing, so the caller's ``check`` (given the decoded text)
        sees it as if this had not been asked.  For load generators, which
        judge every delivery.
        """
        parts = text.split(b":", 3)
        if len(parts) != 4 or not text.isascii():
            return None
        try:
            sender, seq, sent_ns = int(parts[0]), int(parts[1]), int(parts[2])
        except ValueError:
            return None
        if self._frame_ids.get(label) != sender or sender == self.own or not (
                0 <= seq < _TEN_DIGITS and 0 <= sent_ns < _TWENTY_DIGITS):
            return None  # an unknown label is cached by check(); a negative id is never cached
        track = self.sequence.tracks.get(sender)
        if track is None:
            return None
        ends = track._ends
        if not ends or seq != ends[-1]:
            return None
        ends[-1] = seq + 1       # SenderTrack.add's common case
        track.unique += 1
        self.delivered += 1
        return sender, seq, sent_ns

    def check(self, label: str, text: str, now_ns: int) -> tuple[Stamp | None, list[SequenceFailure]]:
        """Judge one relay (username frame ``label``, message frame ``text``)."""
        stamp = parse_payload(text)
        failures: list[SequenceFailure] = []
        if stamp is None:
            swapped = parse_payload(label) if ":" in label else None
            if swapped is None and self.sender_id(text) is None:
                self.unstamped += 1       # not a load message: someone else in the room
                return None, failures
            failures.append(SequenceFailure.UNPAIRED)
            if swapped is not None:
                self._sequence(swapped, now_ns, failures)
            stamp = swapped
        elif ":" in label and (swapped := parse_payload(label)) is not None:
            failures.append(SequenceFailure.UNPAIRED)   # a message frame in the username's place
            self._sequence(swapped, now_ns, failures)
            self._sequence(stamp, now_ns, failures)
        elif stamp.sender == self.own:
            failures.append(SequenceFailure.ECHOED)
        else:
            if self.sender_id(label) != stamp.sender:
                failures.append(SequenceFailure.MISLABELLED)
            self._sequence(stamp, now_ns, failures)
        if failures:
            self.counts.update(failures)
        return stamp, failures

    def _sequence(self, stamp: Stamp, now_ns: int, failures: list[SequenceFailure]) -> None:
        failure = self.sequence.observe(stamp.sender, stamp.seq, now_ns)
        if failure is None:
            self.delivered += 1
        else:
            failures.append(failure)
            if failure is SequenceFailure.REORDERED:
                self.delivered += 1

    def overdue(self, now_ns: int) -> int:
        """Gaps past their grace, counted as lost (and returned)."""
        lost = self.sequence.overdue(now_ns)
        self.counts[SequenceFailure.LOST] += lost
        return lost

    def flush(self) -> int:
        """The connection ended: what is still missing is lost (and returned)."""
        lost = self.sequence.flush()
        self.counts[SequenceFailure.LOST] += lost
        return lost

    def summary(self) -> dict[str, int]:
        """Every failure kind's count, by its summary key (zeros included)."""
        return {kind.value: self.counts[kind] for kind in SequenceFailure}


#: Distinct usernames a RelayChecker remembers; a server inventing names cannot grow it further.
_MAX_LABELS = 4096
