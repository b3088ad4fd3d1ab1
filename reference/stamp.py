"""The load tools' message payload: who sent it, which one, and when.

Every load message carries ``sender id``, ``sequence number`` and ``send time``
(``time.monotonic_ns()`` on the sender's machine) in ASCII, padded to the
requested size, so receivers can compute latency and check order, loss and
duplication without any side channel::

    "17:4031:9123456789012:xxxxxxxxxx..."

Shared by the load generators (``chat-load``, the locust users in ``loadtest.swarm``) and the
sequence checks of ``reference.sequence``; it imports neither asyncio nor locust.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PAYLOAD_OVERHEAD_MAX", "Stamp", "make_payload", "parse_payload", "receive_limit"]

#: Upper bound of the stamp's length: ids and sequences up to 10 digits, 20-digit ns.
PAYLOAD_OVERHEAD_MAX = 10 + 1 + 10 + 1 + 20 + 1
_PAD = "x"
#: Room for our usernames and the suite's own barrier texts above a stamped payload.
_RECEIVE_SLACK = 1024


def receive_limit(size: int = 0) -> int:
    """The largest frame a load generator accepts when its messages are ``size`` bytes.

    A generator only ever receives relays of what it sent, so a larger frame is
    the server's garbage: refusing it at its header (FRAME-6) keeps each
    connection's receive buffer near ``2 * receive_limit + 64 KiB`` (sender
    frame, text frame, one read), whatever the server sends, and so keeps
    thousands of connections within the harness's memory bound (README).
    """
    return max(size, 0) + PAYLOAD_OVERHEAD_MAX + _RECEIVE_SLACK


@dataclass(frozen=True, slots=True)
class Stamp:
    sender: int
    seq: int
    sent_ns: int


def make_payload(sender: int, seq: int, sent_ns: int, size: int = 0) -> str:
    """The stamped text, padded with 'x' up to ``size`` characters (bytes: it is ASCII)."""
    head = f"{sender}:{seq}:{sent_ns}:"
    if len(head) < size:
        return head + _PAD * (size - len(head))
    return head


def parse_payload(text: str) -> Stamp | None:
    """The stamp of a load message, or None for text that is not one.

    Only ASCII, non-negative numbers no longer than ``make_payload`` writes
    count, so a hostile relay cannot hand the checks a negative or
    astronomically large number.  (``int`` also takes "_" and spaces; such a
    stamp still names a sane number, and checking is on every receiver's hot
    path, so that is let be.)
    """
    if not text.isascii():
        return None
    parts = text.split(":", 3)
    if len(parts) != 4:
        return None
    try:
        sender, seq, sent = int(parts[0]), int(parts[1]), int(parts[2])
    except ValueError:
        return None
    if not (0 <= sender < _TEN_DIGITS and 0 <= seq < _TEN_DIGITS and 0 <= sent < _TWENTY_DIGITS):
        return None
    return Stamp(sender, seq, sent)


_TEN_DIGITS = 10**10
_TWENTY_DIGITS = 10**20
