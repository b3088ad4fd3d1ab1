"""The load tools' message payload: who sent it, which one, and when.

Every load message carries ``sender id``, ``sequence number`` and ``send time``
(``time.monotonic_ns()`` on the sender's machine) in ASCII, padded to the
requested size, so receivers can compute latency and check order, loss and
duplication without any side channel::

    "17:4031:9123456789012:xxxxxxxxxx..."

Shared by the native generators (loadtest.generators) and the locust users
(loadtest.swarm.client); it imports neither asyncio nor locust.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PAYLOAD_OVERHEAD_MAX", "Stamp", "make_payload", "parse_payload"]

#: Upper bound of the stamp's length: ids and sequences up to 10 digits, 20-digit ns.
PAYLOAD_OVERHEAD_MAX = 10 + 1 + 10 + 1 + 20 + 1
_PAD = "x"


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
    """The stamp of a load message, or None for text that is not one."""
    parts = text.split(":", 3)
    if len(parts) != 4:
        return None
    try:
        return Stamp(int(parts[0]), int(parts[1]), int(parts[2]))
    except ValueError:
        return None
