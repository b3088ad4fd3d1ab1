"""The optional profiles of PROTOCOL.md (section 8): names, the dm command, the history mark.

One place for the conventions that the reference server, the classroom client and
the conformance suite must agree on byte for byte:

* ``dm``: a payload ``/dm NAME TEXT`` is a private message for the clients called
  NAME; an unknown NAME gets the sender a notice from :data:`SERVER_NAME`;
* ``history``: a newcomer is first sent the room's last public messages, each
  relayed from ``*history* SENDER`` (:data:`HISTORY_PREFIX`) instead of SENDER;
* both: usernames that start with :data:`RESERVED_PREFIX` are refused, so no client
  can pose as the server or as history (PROFILE-1).

Pure functions on ``bytes`` and ``str``: no sockets here.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["DM_COMMAND", "HISTORY_PREFIX", "PROFILES", "RESERVED_PREFIX", "SERVER_NAME",
           "DirectMessage", "History", "dm_payload", "history_sender", "is_reserved",
           "parse_dm", "parse_profiles", "unknown_recipient_notice", "unmark_history"]

#: Every profile this project specifies, in PROTOCOL.md's order (TLS is a transport, not here).
PROFILES: tuple[str, ...] = ("dm", "history")
#: A username starting with this is refused by a server that claims any profile (PROFILE-1).
RESERVED_PREFIX = "*"
#: The sender name of the server's own notices (DM-3).
SERVER_NAME = "*server*"
#: A replayed message's username frame is this followed by the original sender (HISTORY-2).
HISTORY_PREFIX = "*history* "
#: The private-message command (DM-1): ``/dm NAME TEXT``.
DM_COMMAND = "/dm"
_DM = DM_COMMAND.encode()
_DM_SPACE = _DM + b" "
#: The reference server's default bounds on the replay (HISTORY-3).
DEFAULT_HISTORY_MESSAGES = 20
DEFAULT_HISTORY_BYTES = 256 * 1024
#: The fewest and the most messages a server replays when that many were said (HISTORY-3).
MIN_HISTORY_MESSAGES = 10
MAX_HISTORY_MESSAGES = 100


def parse_profiles(text: str) -> frozenset[str]:
    """``"dm,history"`` -> {"dm", "history"}; ValueError in one line for an unknown or empty name."""
    names = [part.strip() for part in text.split(",")]
    if not text.strip() or any(not name for name in names):
        raise ValueError(f"--profile {text!r}: give profile names separated by commas "
                         f"({', '.join(PROFILES)})")
    unknown = [name for name in names if name not in PROFILES]
    if unknown:
        raise ValueError(f"--profile: unknown profile {unknown[0]!r}; "
                         f"known profiles: {', '.join(PROFILES)}")
    return frozenset(names)


def is_reserved(name: str | bytes) -> bool:
    """Whether a username is reserved for the server's own frames (PROFILE-1)."""
    prefix = RESERVED_PREFIX if isinstance(name, str) else RESERVED_PREFIX.encode()
    return name.startswith(prefix)  # type: ignore[arg-type]


@dataclass(frozen=True)
class DirectMessage:
    recipient: bytes   # empty when the command names nobody
    text: bytes


def parse_dm(payload: bytes) -> DirectMessage | None:
    """The private message in ``payload``, or None when it is a public message (DM-1, DM-4).

    Only ``/dm`` itself or ``/dm`` and a space start a command: ``/dmitri``,
    `` /dm x`` and ``/DM x`` are public.  The recipient runs to the next space.
    """
    if payload == _DM:
        return DirectMessage(b"", b"")
    if not payload.startswith(_DM_SPACE):
        return None
    name, _, text = payload[len(_DM_SPACE):].partition(b" ")
    return DirectMessage(name, text)


def dm_payload(recipient: str, text: str) -> str:
    """What a client sends to say ``text`` to ``recipient`` privately."""
    if not recipient or " " in recipient:
        raise ValueError(f"cannot address {recipient!r} privately: a dm recipient is one word")
    return f"{DM_COMMAND} {recipient} {text}"


def unknown_recipient_notice(recipient: bytes) -> bytes:
    """The notice a sender gets when nobody else is called ``recipient`` (DM-3)."""
    if not recipient:
        return b"usage: /dm NAME TEXT (your message was not delivered)"
    return b'no one named "' + recipient + b'" is here; your message was not delivered'


def history_sender(name: str) -> str:
    """The username frame of a replayed message from ``name`` (HISTORY-2)."""
    return HISTORY_PREFIX + name


def unmark_history(sender: str) -> str | None:
    """The original sender of a replayed message, or None for a live relay."""
    return sender[len(HISTORY_PREFIX):] if sender.startswith(HISTORY_PREFIX) else None


class History:
    """The last public messages, bounded by count and by bytes, as ready-made marked relays."""

    def __init__(self, max_messages: int = DEFAULT_HISTORY_MESSAGES,
                 max_bytes: int = DEFAULT_HISTORY_BYTES) -> None:
        if not 1 <= max_messages <= MAX_HISTORY_MESSAGES:
            raise ValueError(f"history size must be 1..{MAX_HISTORY_MESSAGES} messages, "
                             f"not {max_messages}")
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self.bytes = 0
        self._relays: deque[bytes] = deque()

    def add(self, relay: bytes) -> None:
        """Keep one marked relay (name frame and message frame), dropping the oldest past a bound.

        A relay larger than the byte bound on its own is not kept.
        """
        if len(relay) > self.max_bytes:
            return
        self._relays.append(relay)
        self.bytes += len(relay)
        while len(self._relays) > self.max_messages or self.bytes > self.max_bytes:
            self.bytes -= len(self._relays.popleft())

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._relays)

    def __len__(self) -> int:
        return len(self._relays)
