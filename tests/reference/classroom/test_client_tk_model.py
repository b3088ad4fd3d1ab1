"""The classroom client's logic without a display and without a network.

ChatModel is driven with a fake session whose events the test puts on the
model's queue by hand, exactly as the reader thread would; formatting, form
checks, shortcodes and theme colours are plain functions and data.
"""

from __future__ import annotations

import queue
from datetime import datetime

import pytest

from reference.classroom.emoji import PICKER_EMOJI, SHORTCODES, expand_shortcodes
from reference.classroom.model import (
    THEMES,
    ChatLine,
    ChatModel,
    ConnectionState,
    LineKind,
    line_segments,
    parse_connect_form,
)
from reference.classroom.session import Connected, ConnectParams, Disconnected, Received, SessionEvent

NOON = datetime(2024, 5, 6, 12, 0, 7)
PARAMS = ConnectParams("127.0.0.1", 1234, "ana")


class FakeSession:
    """Records what the model asks of a session; posts nothing by itself."""

    def __init__(self, params: ConnectParams, events: queue.Queue[SessionEvent], generation: int):
        self.params, self.events, self.generation = params, events, generation
        self.started = self.closed = False
        self.joined_with: float | None = None
        self.sent: list[str] = []

    def start(self) -> None:
        self.started = True

    def send(self, text: str) -> None:
        self.sent.append(text)

    def close(self) -> None:
        self.closed = True

    def join(self, timeout: float = 3.0) -> bool:
        self.joined_with = timeout
        return True


@pytest.fixture
def sessions() -> list[FakeSession]:
    return []


@pytest.fixture
def model(sessions: list[FakeSession]) -> ChatModel:
    def factory(params: ConnectParams, events: queue.Queue[SessionEvent], generation: int) -> FakeSession:
        sessions.append(FakeSession(params, events, generation))
        return sessions[-1]
    return ChatModel(session_factory=factory, clock=lambda: NOON, max_history=50)


def connected(model: ChatModel, sessions: list[FakeSession]) -> FakeSession:
    model.connect(PARAMS)
    model.events.put(Connected(sessions[-1].generation, PARAMS))
    model.poll()
    return sessions[-1]


# -- formatting --------------------------------------------------------------------
def test_other_line_shows_time_sender_and_text() -> None:
    segments = line_segments(ChatLine(NOON, LineKind.OTHER, "hello", "ben"))
    assert segments == [("12:00:07  ", "time"), ("ben", "other_sender"), ("  ", "text"),
                        ("hello", "text"), ("\n", "text")]


def test_own_line_is_set_apart_by_label_and_tags() -> None:
    segments = line_segments(ChatLine(NOON, LineKind.OWN, "hi", "ana"))
    assert ("ana (you)", "own_sender") in segments
    assert {tag for _, tag in segments[1:]} == {"own_sender", "own_text"}


def test_system_line_is_marked() -> None:
    text = "".join(t for t, _ in line_segments(ChatLine(NOON, LineKind.SYSTEM, "disconnected: x")))
    assert text == "12:00:07  -- disconnected: x\n"


# -- the connect form ---------------------------------------------------------------
def test_connect_form_accepts_and_trims() -> None:
    assert parse_connect_form(" localhost ", " 4321 ", " ana ") == ConnectParams("localhost", 4321, "ana")


@pytest.mark.parametrize(("host", "port", "name", "complaint"), [
    ("", "1234", "ana", "host is empty"),
    ("h", "0", "ana", "port must be"),
    ("h", "65536", "ana", "port must be"),
    ("h", "12a", "ana", "port must be"),
    ("h", "-5", "ana", "port must be"),
    ("h", "1234", "   ", "username is empty"),
])
def test_connect_form_names_the_bad_field(host: str, port: str, name: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        parse_connect_form(host, port, name)


# -- emoji -----------------------------------------------------------------------------
def test_shortcodes_expand_and_unknown_ones_stay() -> None:
    assert expand_shortcodes("party :tada: at :unknown_code: 10:30:00 :+1:") == \
        "party 🎉 at :unknown_code: 10:30:00 👍"


def test_every_picker_emoji_can_also_be_typed_as_a_shortcode() -> None:
    assert set(PICKER_EMOJI) <= set(SHORTCODES.values())
    assert len(set(PICKER_EMOJI)) == len(PICKER_EMOJI)


# -- themes ------------------------------------------------------------------------------
def _luminance(colour: str) -> float:
    channels = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(a: str, b: str) -> float:
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


@pytest.mark.parametrize("theme", sorted(THEMES))
def test_theme_text_is_readable_on_a_projector(theme: str) -> None:
    """Every text colour meets WCAG AA (4.5:1) against the background it is drawn on."""
    t = THEMES[theme]
    pairs = {"text": (t.foreground, t.background), "time": (t.time, t.background),
             "sender": (t.other_sender, t.background), "system": (t.system, t.background),
             "own sender": (t.own_sender, t.own_background), "own text": (t.foreground, t.own_background),
             "entry": (t.foreground, t.entry_background),
             "status": (t.status_foreground, t.status_background)}
    weak = {k: round(_contrast(*v), 2) for k, v in pairs.items() if _contrast(*v) < 4.5}
    assert not weak


def test_themes_differ_and_toggle(model: ChatModel) -> None:
    assert _luminance(THEMES["dark"].background) < 0.1 < _luminance(THEMES["light"].background)
    assert model.toggle_theme().name == "dark"
    assert model.toggle_theme().name == "light"
    with pytest.raises(ValueError, match="unknown theme"):
        ChatModel(theme="pink")


# -- state and queue handling ----------------------------------------------------------
def test_status_goes_connecting_connected(model: ChatModel, sessions: list[FakeSession]) -> None:
    assert model.state is ConnectionState.DISCONNECTED and "Connect…" in model.status_text
    assert not model.can_reconnect
    model.connect(PARAMS)
    assert sessions[-1].started and model.state is ConnectionState.CONNECTING
    assert model.status_text == "Connecting to 127.0.0.1:1234 as ana…"
    assert not model.can_send
    model.events.put(Connected(sessions[-1].generation, PARAMS))
    [line] = model.poll()
    assert line.kind is LineKind.SYSTEM and "connected to 127.0.0.1:1234" in line.text
    assert model.status_text == "Connected to 127.0.0.1:1234 as ana" and model.can_send
    assert model.title == "Chat: ana @ 127.0.0.1:1234"


def test_own_message_is_sent_and_shown_locally(model: ChatModel, sessions: list[FakeSession]) -> None:
    session = connected(model, sessions)
    line = model.send("hi :wave:\n")
    assert session.sent == ["hi 👋"]
    assert line == ChatLine(NOON, LineKind.OWN, "hi 👋", "ana") and model.history[-1] == line


@pytest.mark.parametrize("text", ["", "   ", "\n"])
def test_blank_lines_are_not_sent(model: ChatModel, sessions: list[FakeSession], text: str) -> None:
    session = connected(model, sessions)
    assert model.send(text) is None and session.sent == []


def test_nothing_is_sent_while_not_connected(model: ChatModel, sessions: list[FakeSession]) -> None:
    assert model.send("early") is None
    model.connect(PARAMS)
    assert model.send("still connecting") is None and sessions[-1].sent == []


def test_received_lines_keep_sender_and_arrival_time(model: ChatModel,
                                                     sessions: list[FakeSession]) -> None:
    session = connected(model, sessions)
    at = datetime(2024, 1, 1, 9, 30)
    model.events.put(Received(session.generation, "ben", "yo 🎉", at))
    assert model.poll() == [ChatLine(at, LineKind.OTHER, "yo 🎉", "ben")]


def test_disconnect_shows_reason_and_offers_reconnect(model: ChatModel,
                                                      sessions: list[FakeSession]) -> None:
    session = connected(model, sessions)
    model.events.put(Disconnected(session.generation, "server closed the connection"))
    [line] = model.poll()
    assert line.text == "disconnected: server closed the connection"
    assert model.state is ConnectionState.DISCONNECTED and model.can_reconnect
    assert "server closed the connection" in model.status_text and "Reconnect" in model.status_text
    assert model.send("lost") is None
    model.reconnect()
    assert len(sessions) == 2 and sessions[1].params == PARAMS and sessions[1].started
    assert sessions[1].generation != session.generation


def test_events_of_a_replaced_connection_are_ignored(model: ChatModel,
                                                     sessions: list[FakeSession]) -> None:
    old = connected(model, sessions)
    model.connect(ConnectParams("127.0.0.1", 4000, "ana"))
    assert old.closed
    model.events.put(Received(old.generation, "ghost", "late", NOON))
    model.events.put(Disconnected(old.generation, "you disconnected", by_user=True))
    assert model.poll() == [] and model.state is ConnectionState.CONNECTING


def test_poll_takes_a_bounded_batch(model: ChatModel, sessions: list[FakeSession]) -> None:
    session = connected(model, sessions)
    for i in range(30):
        model.events.put(Received(session.generation, "ben", str(i), NOON))
    assert [line.text for line in model.poll(limit=20)] == [str(i) for i in range(20)]
    assert [line.text for line in model.poll(limit=20)] == [str(i) for i in range(20, 30)]


def test_history_is_bounded(model: ChatModel, sessions: list[FakeSession]) -> None:
    session = connected(model, sessions)
    for i in range(80):
        model.events.put(Received(session.generation, "ben", str(i), NOON))
    model.poll()
    assert len(model.history) == 50 and model.history[-1].text == "79"


def test_shutdown_closes_and_waits_for_the_session(model: ChatModel,
                                                   sessions: list[FakeSession]) -> None:
    session = connected(model, sessions)
    model.shutdown(timeout=2.5)
    assert session.closed and session.joined_with == 2.5
    assert model.state is ConnectionState.DISCONNECTED


# -- the optional profiles (PROTOCOL.md section 8) -----------------------------------------
@pytest.fixture
def profile_model(sessions: list[FakeSession]) -> ChatModel:
    def factory(params: ConnectParams, events: queue.Queue[SessionEvent], generation: int) -> FakeSession:
        sessions.append(FakeSession(params, events, generation))
        return sessions[-1]
    return ChatModel(session_factory=factory, clock=lambda: NOON, max_history=50,
                     profiles=frozenset({"dm", "history"}))


def test_history_private_and_notices_become_their_own_lines(profile_model: ChatModel,
                                                           sessions: list[FakeSession]) -> None:
    session = connected(profile_model, sessions)
    g = session.generation
    for sender, text in (("*history* ben", "said an hour ago"), ("ben", "/dm ana just for you"),
                         ("*server*", 'no one named "zed" is here; your message was not delivered'),
                         ("cy", "/dm dan not for ana, but relayed to her anyway"), ("cy", "live")):
        profile_model.events.put(Received(g, sender, text, NOON))
    lines = profile_model.poll()
    assert [(line.kind, line.sender, line.text) for line in lines] == [
        (LineKind.HISTORY, "ben", "said an hour ago"),
        (LineKind.PRIVATE, "ben", "just for you"),
        (LineKind.SYSTEM, "", 'server: no one named "zed" is here; your message was not delivered'),
        (LineKind.PRIVATE, "cy", "not for ana, but relayed to her anyway"),
        (LineKind.OTHER, "cy", "live")]
    history = "".join(t for t, _ in line_segments(lines[0]))
    assert "ben (earlier)" in history and {tag for _, tag in line_segments(lines[0])} - {"time"} <= {
        "history", "history_sender"}
    assert "ben → you, privately" in "".join(t for t, _ in line_segments(lines[1]))
    assert profile_model.names == ["ben", "cy"]  # not ana herself, not *server*


def test_without_the_profiles_markers_are_ordinary_text(model: ChatModel,
                                                        sessions: list[FakeSession]) -> None:
    session = connected(model, sessions)
    model.events.put(Received(session.generation, "*history* ben", "/dm ana x", NOON))
    assert model.poll() == [ChatLine(NOON, LineKind.OTHER, "/dm ana x", "*history* ben")]
    assert not model.can_dm
    with pytest.raises(ValueError):
        model.choose_recipient("*history* ben")  # a base server would relay a "DM" to everyone


def test_dm_picker_sends_private_messages_to_a_name_seen(profile_model: ChatModel,
                                                         sessions: list[FakeSession]) -> None:
    session = connected(profile_model, sessions)
    profile_model.events.put(Received(session.generation, "ben", "hi all", NOON))
    profile_model.events.put(Received(session.generation, "ana maría", "a name with a space", NOON))
    profile_model.poll()
    assert profile_model.names == ["ben"]  # /dm cannot address a name with a space
    with pytest.raises(ValueError):
        profile_model.choose_recipient("zed")  # never seen
    profile_model.choose_recipient("ben")
    line = profile_model.send("see you at 5 :tada:")
    assert session.sent == ["/dm ben see you at 5 🎉"]
    assert line == ChatLine(NOON, LineKind.OWN, "see you at 5 🎉", "ana", recipient="ben")
    assert "ana (you) → ben, privately" in "".join(t for t, _ in line_segments(line))
    profile_model.choose_recipient(None)
    profile_model.send("to everyone")
    assert session.sent[-1] == "to everyone"
