"""A live classroom room for ``chat-client --demo``: a few headless bots that chat.

:class:`DemoRoom` connects a handful of :class:`~reference.client.ChatClient`
bots to a server and has them talk through :data:`SCRIPT`, a small
conversation about the chat program itself, at a human pace.  When someone
else (the teacher's window, a student's client) says something, a bot answers
them by name, so the room visibly reacts.

One director thread drives every bot: it waits in ``select()`` on the bots'
sockets, so it costs nothing between lines.  Everything is bounded: at most
``max_messages`` lines, at most ``max_seconds``, and :meth:`DemoRoom.stop` (the
window closed) ends it at once.  The server itself is started by the caller
through ``reference.target.open_target``, which always cleans it up.
"""

from __future__ import annotations

import random
import select
import threading
import time
from collections import deque
from dataclasses import dataclass
from types import TracebackType
from typing import Final

from reference.client import ChatClient
from reference.protocol import ProtocolError, Relay

__all__ = ["BOT_NAMES", "DemoPace", "DemoRoom", "SCRIPT"]

BOT_NAMES: Final = ("ana", "ben", "chloe", "dev", "emma")

#: (speaker index, line).  The speaker index is taken modulo the number of bots.
SCRIPT: Final[tuple[tuple[int, str], ...]] = (
    (0, "good morning everyone 👋"),
    (1, "morning! ☕ who else is here?"),
    (2, "me 🙋 did the server start for you?"),
    (0, "yes, it says 'listening on 127.0.0.1' and a port"),
    (1, "so every message is a 10-byte header and then the text?"),
    (2, "right: the header is the length in BYTES, padded with spaces"),
    (0, "bytes, not characters! 🎉 is four bytes in UTF-8"),
    (1, "and the server sends my name first, then my message 📨"),
    (2, "but never back to me: no echo, the client shows its own lines"),
    (0, "that's why your own lines look different in this window ✨"),
    (1, "what happens if one recv() gets half a header? 🤔"),
    (2, "you keep the bytes and wait for the rest. TCP is a stream"),
    (0, "the tutorial server breaks there, this one doesn't 💪"),
    (1, "try typing :tada: or :rocket: — they turn into emoji 🚀"),
    (2, "or use the 😀 button next to the message box"),
    (0, "and View → Dark theme for the projector 🌙"),
    (1, "quiz: what does an empty username do? ❓"),
    (2, "the server closes the connection (JOIN-2) ✅"),
    (0, "ok, back to work 💻 ping me if you need help"),
)

_REPLIES: Final = (
    "hi {name}! 👋",
    "good point, {name} 👍",
    "{name}, can you say that again in bytes? 😄",
    "thanks {name} 🙏",
    "interesting, {name} 🤔",
)


@dataclass(frozen=True)
class DemoPace:
    """How fast and how long the bots talk."""

    min_delay: float = 1.5
    max_delay: float = 4.0
    reply_delay: float = 1.0
    max_messages: int = 600
    max_seconds: float = 45 * 60.0  # one lesson

    def __post_init__(self) -> None:
        if not 0 <= self.min_delay <= self.max_delay:
            raise ValueError("need 0 <= min_delay <= max_delay")
        if self.max_messages < 0 or self.max_seconds < 0:
            raise ValueError("bounds must not be negative")


class DemoRoom:
    """Bots chatting on ``address`` until stopped or out of budget."""

    def __init__(self, address: tuple[str, int], bots: int = 3, *, pace: DemoPace | None = None,
                 seed: int | None = None, connect_timeout: float = 5.0) -> None:
        if not 1 <= bots <= len(BOT_NAMES):
            raise ValueError(f"bots must be 1..{len(BOT_NAMES)}, not {bots}")
        self.address = address
        self.names = BOT_NAMES[:bots]
        self.pace = pace or DemoPace()
        self.connect_timeout = connect_timeout
        self.sent = 0           # lines the bots have said
        self.heard: list[Relay] = []  # what the bots heard from people who are not bots
        self.ended_because = ""
        self._rng = random.Random(seed)
        self._clients: list[ChatClient] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._direct, daemon=True, name="chat-demo-room")

    # -- life cycle ---------------------------------------------------------------
    def start(self) -> None:
        """Connect every bot (raising if the server is unreachable), then start talking."""
        try:
            for name in self.names:
                self._clients.append(ChatClient.connect(*self.address, name=name,
                                                        timeout=self.connect_timeout))
        except BaseException:
            self._close_clients()
            raise
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._close_clients()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def __enter__(self) -> DemoRoom:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- the director thread ------------------------------------------------------------
    def _direct(self) -> None:
        pace = self.pace
        deadline = time.monotonic() + pace.max_seconds
        next_line_at = time.monotonic() + self._delay()
        replies: deque[tuple[float, int, str]] = deque()  # (when, bot index, text)
        script_pos = 0
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if self.sent >= pace.max_messages:
                    self.ended_because = f"said {self.sent} lines, the limit"
                    return
                if now >= deadline:
                    self.ended_because = f"ran for {pace.max_seconds:g} s, the limit"
                    return
                if replies and replies[0][0] <= now:
                    _, bot, text = replies.popleft()
                    self._say(bot, text)
                elif now >= next_line_at:
                    speaker, text = SCRIPT[script_pos % len(SCRIPT)]
                    script_pos += 1
                    self._say(speaker % len(self._clients), text)
                    next_line_at = now + self._delay()
                wake_at = min(next_line_at, deadline, replies[0][0] if replies else deadline)
                for relay in self._listen(max(0.0, min(wake_at - time.monotonic(), 0.5))):
                    self.heard.append(relay)
                    bot = len(self.heard) % len(self._clients)
                    reply = self._rng.choice(_REPLIES).format(name=relay.sender)
                    replies.append((time.monotonic() + pace.reply_delay, bot, reply))
            self.ended_because = "stopped"
        except (OSError, ProtocolError) as exc:
            self.ended_because = f"lost the server: {exc}"

    def _delay(self) -> float:
        return self._rng.uniform(self.pace.min_delay, self.pace.max_delay)

    def _say(self, bot: int, text: str) -> None:
        self._clients[bot].send(text)
        self.sent += 1

    def _listen(self, timeout: float) -> list[Relay]:
        """Wait up to ``timeout`` for traffic; return relays from non-bots (heard once)."""
        readable, _, _ = select.select([c.sock for c in self._clients], [], [], timeout)
        heard: list[Relay] = []
        for index, client in enumerate(self._clients):
            if client.sock not in readable:
                continue
            while True:  # drain what arrived; a short timeout bounds a half-received relay
                try:
                    relay = client.receive(timeout=0.05)
                except TimeoutError:
                    break
                # Every bot hears each human line; only the first bot counts it.
                if index == 0 and relay.sender not in self.names:
                    heard.append(relay)
        return heard

    def _close_clients(self) -> None:
        for client in self._clients:
            client.close()
