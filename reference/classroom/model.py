"""The classroom client's logic, with no Tk in it: state, history, formatting, the event queue.

The Tk view (``reference/classroom/view.py``) is a thin skin over :class:`ChatModel`:
it calls :meth:`ChatModel.connect`, :meth:`~ChatModel.send` and friends when the
user acts, and every few milliseconds calls :meth:`~ChatModel.poll`, which
drains the session's queue (filled by network threads that never touch a
widget) and returns the history lines to draw.  Everything a test wants to
check -- what a line looks like, what the status bar says, which events of a
dead connection are ignored -- lives here and runs without a display.
"""

from __future__ import annotations

import enum
import queue
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Protocol

from reference.classroom.emoji import expand_shortcodes
from reference.classroom.session import (
    ChatSession,
    Connected,
    ConnectParams,
    Disconnected,
    Received,
    SessionEvent,
)
from reference.profiles import SERVER_NAME, dm_payload, is_reserved, parse_dm, unmark_history
from reference.protocol import MIN_MAX_PAYLOAD

__all__ = [
    "ChatLine",
    "ChatModel",
    "ConnectionState",
    "LineKind",
    "Segment",
    "THEMES",
    "Theme",
    "line_segments",
    "parse_connect_form",
]

DEFAULT_MAX_HISTORY: Final = 2000
#: Events handled per poll: enough for a busy room, few enough that one tick of the
#: Tk loop stays short and the window keeps answering while a flood arrives.
POLL_BATCH: Final = 500


class ConnectionState(enum.Enum):
    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"


class LineKind(enum.Enum):
    OWN = "own"        # typed here; the server does not echo it, so we show it ourselves
    OTHER = "other"    # relayed from someone else in the room
    SYSTEM = "system"  # connected / disconnected notices, and the server's (profile dm)
    PRIVATE = "private"  # a private message to us (profile dm): "ana -> you"
    HISTORY = "history"  # said before we joined, replayed by the server (profile history)


@dataclass(frozen=True)
class ChatLine:
    at: datetime
    kind: LineKind
    text: str
    sender: str = ""
    recipient: str = ""  # an OWN line sent privately (profile dm): to whom


#: (text, tag): the view inserts ``text`` with the Tk text tag ``tag``, styled by the theme.
Segment = tuple[str, str]


def line_segments(line: ChatLine) -> list[Segment]:
    """One history line as tagged pieces: time, sender, text, newline.

    Own lines are set apart by their own tags (colour, background) and by the
    sender shown as "you" next to one's name, so they stand out in a projector's
    glare too, not only by colour.
    """
    stamp = (line.at.strftime("%H:%M:%S") + "  ", "time")
    if line.kind is LineKind.SYSTEM:
        return [stamp, (f"-- {line.text}", "system"), ("\n", "system")]
    if line.kind is LineKind.OWN and line.recipient:
        return [stamp, (f"{line.sender} (you) → {line.recipient}, privately", "private_sender"),
                ("  ", "private_text"), (line.text, "private_text"), ("\n", "private_text")]
    if line.kind is LineKind.OWN:
        return [stamp, (f"{line.sender} (you)", "own_sender"), ("  ", "own_text"),
                (line.text, "own_text"), ("\n", "own_text")]
    if line.kind is LineKind.PRIVATE:
        return [stamp, (f"{line.sender} → you, privately", "private_sender"), ("  ", "private_text"),
                (line.text, "private_text"), ("\n", "private_text")]
    if line.kind is LineKind.HISTORY:
        # Set apart by words as well as style: "earlier" is readable in any theme or glare.
        return [stamp, (f"{line.sender} (earlier)", "history_sender"), ("  ", "history"),
                (line.text, "history"), ("\n", "history")]
    return [stamp, (line.sender, "other_sender"), ("  ", "text"), (line.text, "text"), ("\n", "text")]


def parse_connect_form(host: str, port_text: str, name: str) -> ConnectParams:
    """Check the connect dialog's fields; ValueError names the first bad one."""
    host = host.strip()
    if not host:
        raise ValueError("host is empty")
    port_text = port_text.strip()
    if not port_text.isdigit() or not 0 < int(port_text) <= 65535:
        raise ValueError(f"port must be a number from 1 to 65535, not {port_text!r}")
    name = name.strip()
    if not name:
        raise ValueError("username is empty (the server refuses empty names)")
    if len(name.encode()) > MIN_MAX_PAYLOAD:
        raise ValueError("username is too long")
    return ConnectParams(host, int(port_text), name)


@dataclass(frozen=True)
class Theme:
    """Colours for one look of the window; keys match the tags of :func:`line_segments`."""

    name: str
    background: str
    foreground: str
    time: str
    other_sender: str
    own_sender: str
    own_background: str
    system: str
    entry_background: str
    status_background: str
    status_foreground: str
    history: str             # replayed lines (profile history): muted, in italics
    private_background: str  # private messages (profile dm)


THEMES: Final[dict[str, Theme]] = {
    "light": Theme("light", background="#ffffff", foreground="#1f2328", time="#57606a",
                   other_sender="#0550ae", own_sender="#116329", own_background="#eaf5ea",
                   system="#6e5000", entry_background="#f6f8fa",
                   status_background="#e6e8eb", status_foreground="#1f2328",
                   history="#57606a", private_background="#f3ecfd"),
    "dark": Theme("dark", background="#0d1117", foreground="#e6edf3", time="#8d96a0",
                  other_sender="#79c0ff", own_sender="#7ee787", own_background="#132a1b",
                  system="#e3b341", entry_background="#161b22",
                  status_background="#21262d", status_foreground="#e6edf3",
                  history="#8d96a0", private_background="#271a3d"),
}


class SessionLike(Protocol):
    """What the model needs of a session (a fake one in the display-free tests)."""

    def start(self) -> None: ...
    def send(self, text: str) -> None: ...
    def close(self) -> None: ...
    def join(self, timeout: float = ...) -> bool: ...


SessionFactory = Callable[[ConnectParams, "queue.Queue[SessionEvent]", int], SessionLike]


class ChatModel:
    """Connection state, history and theme of one client window."""

    def __init__(self, *, session_factory: SessionFactory = ChatSession,
                 clock: Callable[[], datetime] = datetime.now,
                 max_history: int = DEFAULT_MAX_HISTORY, theme: str = "light",
                 profiles: frozenset[str] = frozenset()) -> None:
        if theme not in THEMES:
            raise ValueError(f"unknown theme {theme!r}; choose from {', '.join(THEMES)}")
        self.events: queue.Queue[SessionEvent] = queue.Queue()
        self.state = ConnectionState.DISCONNECTED
        self.params: ConnectParams | None = None  # the last connection asked for
        self.reason = ""                            # why the last connection ended
        self.history: deque[ChatLine] = deque(maxlen=max_history)
        self.theme_name = theme
        self._session_factory = session_factory
        self._clock = clock
        self._session: SessionLike | None = None
        self._generation = 0
        #: The optional profiles the server claims (PROTOCOL.md section 8): "dm", "history".
        self.profiles = profiles
        #: Usernames seen in the room that a private message can address, in order of first sight.
        self.names: list[str] = []
        #: The recipient of what is typed next (profile dm), or None for everyone.
        self.dm_to: str | None = None

    # -- what the view shows -------------------------------------------------
    @property
    def theme(self) -> Theme:
        return THEMES[self.theme_name]

    @property
    def can_send(self) -> bool:
        return self.state is ConnectionState.CONNECTED

    @property
    def can_reconnect(self) -> bool:
        return self.state is ConnectionState.DISCONNECTED and self.params is not None

    @property
    def status_text(self) -> str:
        p = self.params
        if self.state is ConnectionState.CONNECTING and p:
            return f"Connecting to {p.address} as {p.name}…"
        if self.state is ConnectionState.CONNECTED and p:
            return f"Connected to {p.address} as {p.name}"
        if p is None:
            return "Not connected. Choose Connect… to join a room."
        return f"Disconnected: {self.reason}. Press Reconnect to try again."

    @property
    def title(self) -> str:
        p = self.params
        if self.state is ConnectionState.CONNECTED and p:
            return f"Chat: {p.name} @ {p.address}"
        return "Chat"

    @property
    def can_dm(self) -> bool:
        """Whether to offer private messages: only when the server claims profile dm,
        since a base server would relay "/dm bea ..." to everyone."""
        return "dm" in self.profiles

    def choose_recipient(self, name: str | None) -> None:
        """Address what is typed next to ``name`` privately, or (None) to everyone."""
        if name is not None and (not self.can_dm or name not in self.names):
            raise ValueError(f"cannot send privately to {name!r}")
        self.dm_to = name

    def toggle_theme(self) -> Theme:
        self.theme_name = "dark" if self.theme_name == "light" else "light"
        return self.theme

    # -- what the user does ----------------------------------------------------
    def connect(self, params: ConnectParams) -> None:
        """Drop any current connection and start a new one (events arrive via poll)."""
        self._end_session(wait=0.0)
        self._generation += 1
        self.params = params
        self.reason = ""
        self.state = ConnectionState.CONNECTING
        self._session = self._session_factory(params, self.events, self._generation)
        self._session.start()

    def reconnect(self) -> None:
        if self.params is None:
            raise RuntimeError("nothing to reconnect to: connect first")
        self.connect(self.params)

    def disconnect(self) -> None:
        """Hang up; the Disconnected event then arrives through poll as usual."""
        if self._session is not None:
            self._session.close()

    def shutdown(self, timeout: float = 3.0) -> None:
        """The window is closing: hang up and wait (bounded) for the threads to end."""
        self._end_session(wait=timeout)
        self.state = ConnectionState.DISCONNECTED

    def send(self, raw: str) -> ChatLine | None:
        """Send one typed line; return the line to show, or None when nothing was sent.

        Shortcodes become emoji first.  A blank line is not sent (Enter on an empty
        entry is a slip, not a message).  The server does not echo, so the line is
        added to the history here.
        """
        text = expand_shortcodes(raw.rstrip("\r\n"))
        if not text.strip() or self._session is None or not self.can_send:
            return None
        if len(text.encode()) > MIN_MAX_PAYLOAD:
            return self._add(ChatLine(self._clock(), LineKind.SYSTEM,
                                      "not sent: longer than the 1 MiB every server accepts"))
        assert self.params is not None
        if self.dm_to is not None:
            self._session.send(dm_payload(self.dm_to, text))
            return self._add(ChatLine(self._clock(), LineKind.OWN, text, self.params.name,
                                      recipient=self.dm_to))
        self._session.send(text)
        return self._add(ChatLine(self._clock(), LineKind.OWN, text, self.params.name))

    # -- the Tk loop's tick ------------------------------------------------------
    def poll(self, limit: int = POLL_BATCH) -> list[ChatLine]:
        """Apply up to ``limit`` queued events; return the history lines they added."""
        added: list[ChatLine] = []
        for _ in range(limit):
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                break
            line = self._apply(event)
            if line is not None:
                added.append(line)
        return added

    # -- internals -----------------------------------------------------------------
    def _apply(self, event: SessionEvent) -> ChatLine | None:
        if event.generation != self._generation:
            return None  # a late word from a connection we already replaced
        if isinstance(event, Connected):
            self.state = ConnectionState.CONNECTED
            return self._add(ChatLine(self._clock(), LineKind.SYSTEM,
                                      f"connected to {event.params.address} as {event.params.name}"))
        if isinstance(event, Received):
            return self._received(event)
        assert isinstance(event, Disconnected)
        self.state = ConnectionState.DISCONNECTED
        self.reason = event.reason
        self._session = None
        return self._add(ChatLine(self._clock(), LineKind.SYSTEM, f"disconnected: {event.reason}"))

    def _received(self, event: Received) -> ChatLine:
        """A relay as a line: history, a private message or a notice when the profiles say so."""
        original = unmark_history(event.sender) if "history" in self.profiles else None
        if original is not None:
            self._seen(original)
            return self._add(ChatLine(event.at, LineKind.HISTORY, event.text, original))
        if "dm" in self.profiles:
            if event.sender == SERVER_NAME:
                return self._add(ChatLine(event.at, LineKind.SYSTEM, f"server: {event.text}"))
            dm = parse_dm(event.text.encode())
            if dm is not None:
                self._seen(event.sender)
                return self._add(ChatLine(event.at, LineKind.PRIVATE, dm.text.decode(), event.sender))
        self._seen(event.sender)
        return self._add(ChatLine(event.at, LineKind.OTHER, event.text, event.sender))

    def _seen(self, name: str) -> None:
        """Remember a name a private message can address (one word, not ours, not reserved)."""
        own = self.params.name if self.params else None
        if name and name != own and " " not in name and not is_reserved(name) and name not in self.names:
            self.names.append(name)

    def _add(self, line: ChatLine) -> ChatLine:
        self.history.append(line)
        return line

    def _end_session(self, wait: float) -> None:
        session, self._session = self._session, None
        if session is not None:
            session.close()
            if wait > 0:
                session.join(wait)
