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

    Only plain decimal digits count (no sign, no spaces, no '_'), at most as
    many as ``make_payload`` writes, so a hostile relay cannot hand the
    checks a negative or astronomically large number.
    """
    parts = text.split(":", 3)
    if len(parts) != 4:
        return None
    sender, seq, sent = parts[0], parts[1], parts[2]
    if not (sender.isascii() and sender.isdigit() and seq.isascii() and seq.isdigit()
            and sent.isascii() and sent.isdigit()):
        return None
    if len(sender) > 10 or len(seq) > 10 or len(sent) > 20:
        return None
    return Stamp(int(sender), int(seq), int(sent))
