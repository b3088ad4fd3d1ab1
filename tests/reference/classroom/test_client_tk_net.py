"""The classroom client against real servers, still without a display.

ChatModel with its real ChatSession threads talks to a reference server
started by reference.target; the demo bots chat on one; the command line
turns argv into a config or a one-line usage error.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from reference import exit_codes
from reference.classroom.app import ClientConfig, build_parser, config_from_args, main
from reference.classroom.demo import BOT_NAMES, DemoPace, DemoRoom
from reference.classroom.model import ChatLine, ChatModel, ConnectionState, LineKind
from reference.classroom.session import ConnectParams
from reference.client import ChatClient
from reference.process_group import join_command
from reference.protocol import Relay
from reference.target import SpawnedServer, TargetSpec, find_free_port, open_target

WAIT = 15.0  # generous: correctness waits must survive a loaded CI machine


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, int]]:
    with open_target(TargetSpec()) as handle:
        yield handle.address


def poll_until(model: ChatModel, done: Callable[[list[ChatLine]], bool],
               timeout: float = WAIT) -> list[ChatLine]:
    """Drain the model like the Tk loop does until ``done(lines so far)``."""
    __tracebackhide__ = True
    lines: list[ChatLine] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines += model.poll()
        if done(lines):
            return lines
        time.sleep(0.01)
    pytest.fail(f"condition not met within {timeout} s; lines: {lines}; status: {model.status_text}")


def connect_model(address: tuple[str, int], name: str) -> ChatModel:
    model = ChatModel()
    model.connect(ConnectParams(address[0], address[1], name))
    poll_until(model, lambda _: model.state is ConnectionState.CONNECTED)
    return model


def session_threads(before: set[threading.Thread]) -> list[str]:
    """ChatSession threads started since ``before`` that are still running."""
    return [t.name for t in set(threading.enumerate()) - before
            if t.name.startswith(("chat-reader-", "chat-writer-"))]


def test_model_sends_to_and_receives_from_a_headless_client(server: tuple[str, int]) -> None:
    model = connect_model(server, "tk-ana")
    with ChatClient.connect(*server, name="headless-ben") as ben:
        ben.send("sentinel")  # registered before ana speaks: the barrier for what follows
        poll_until(model, lambda lines: any(x.text == "sentinel" for x in lines))
        assert model.send("hello :wave: ünïcode") is not None
        assert ben.receive(timeout=WAIT) == Relay("tk-ana", "hello 👋 ünïcode")
        ben.send("back at you 🎉")
        lines = poll_until(model, lambda lines: bool(lines))
        assert lines == [ChatLine(lines[0].at, LineKind.OTHER, "back at you 🎉", "headless-ben")]
    model.shutdown()


def test_user_disconnect_is_reported_and_threads_end(server: tuple[str, int]) -> None:
    before = set(threading.enumerate())
    model = connect_model(server, "leaver")
    assert len(session_threads(before)) == 2  # the reader and the writer
    model.disconnect()
    poll_until(model, lambda _: model.state is ConnectionState.DISCONNECTED)
    assert model.reason == "you disconnected" and model.can_reconnect
    deadline = time.monotonic() + WAIT
    while session_threads(before) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert session_threads(before) == []


def test_unreachable_server_says_why() -> None:
    port = find_free_port()
    model = ChatModel()
    model.connect(ConnectParams("127.0.0.1", port, "ana"))
    poll_until(model, lambda _: model.state is ConnectionState.DISCONNECTED)
    assert model.reason == f"cannot connect to 127.0.0.1:{port}: connection refused"


def test_server_going_away_is_shown_and_reconnect_works() -> None:
    port = find_free_port()
    command = join_command([sys.executable, "-m", "reference.server", "--port", str(port)])
    handle = SpawnedServer(command)  # a fixed port, so the restarted server is where we were
    handle.start()
    try:
        model = connect_model(handle.address, "stayer")
        handle.stop()
        poll_until(model, lambda _: model.state is ConnectionState.DISCONNECTED)
        assert model.reason in ("server closed the connection", "server reset the connection")
        assert model.can_reconnect and "Reconnect" in model.status_text
        handle.start()
        model.reconnect()
        poll_until(model, lambda _: model.state is ConnectionState.CONNECTED)
        with ChatClient.connect(*handle.address, name="witness") as witness:
            witness.send("sentinel")
            poll_until(model, lambda lines: any(x.text == "sentinel" for x in lines))
            model.send("I'm back")
            assert witness.receive(timeout=WAIT) == Relay("stayer", "I'm back")
        model.shutdown()
    finally:
        handle.stop()


def test_protocol_error_from_the_server_is_explained() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(WAIT)

    def broken_server() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.sendall(b"not a len!")  # a header that is no decimal length (FRAME-3)
            conn.recv(1024)              # hold the line open until the client hangs up

    thread = threading.Thread(target=broken_server, daemon=True)
    thread.start()
    model = ChatModel()
    model.connect(ConnectParams("127.0.0.1", listener.getsockname()[1], "ana"))
    poll_until(model, lambda _: model.state is ConnectionState.DISCONNECTED)
    assert model.reason.startswith("the server sent bytes that break the protocol")
    assert "FRAME-3" in model.reason
    thread.join(WAIT)
    listener.close()


# -- the classroom demo's bots ----------------------------------------------------------
FAST = DemoPace(min_delay=0.05, max_delay=0.15, reply_delay=0.05, max_messages=40, max_seconds=60)


def test_demo_bots_chat_and_answer_people(server: tuple[str, int]) -> None:
    with ChatClient.connect(*server, name="student") as student, \
            DemoRoom(server, bots=3, pace=FAST, seed=1) as room:
        first = student.receive_all(3, timeout=WAIT)
        assert {r.sender for r in first} <= set(BOT_NAMES[:3])
        student.send("hello bots")
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            relay = student.receive(timeout=WAIT)
            if "student" in relay.text:
                break
        else:
            pytest.fail("no bot answered the student")
        assert relay.sender in BOT_NAMES and room.heard[0] == Relay("student", "hello bots")
    assert not room.running and room.ended_because == "stopped"


def test_demo_is_bounded_by_its_message_budget(server: tuple[str, int]) -> None:
    pace = DemoPace(min_delay=0.0, max_delay=0.01, max_messages=5, max_seconds=60)
    with ChatClient.connect(*server, name="counter") as counter, DemoRoom(server, 2, pace=pace) as room:
        assert len(counter.receive_all(5, timeout=WAIT)) == 5
        deadline = time.monotonic() + WAIT
        while room.running and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not room.running and room.sent == 5
        assert room.ended_because == "said 5 lines, the limit"
        assert counter.expect_silence(0.3) is None


def test_demo_refuses_impossible_settings() -> None:
    with pytest.raises(ValueError, match="bots must be"):
        DemoRoom(("127.0.0.1", 1), bots=len(BOT_NAMES) + 1)
    with pytest.raises(ValueError, match="min_delay"):
        DemoPace(min_delay=3, max_delay=1)


# -- the command line ----------------------------------------------------------------------
def parse(*argv: str) -> ClientConfig:
    parser = build_parser()
    return config_from_args(parser, parser.parse_args(argv), default_name="me")


def test_name_connects_straight_away_with_default_address() -> None:
    config = parse("--name", "ana")
    assert config.connect_now and config.params == ConnectParams("127.0.0.1", 1234, "ana")


def test_without_name_the_dialog_is_prefilled() -> None:
    config = parse("--host", "10.1.2.3", "--port", "5000")
    assert not config.connect_now and config.params is None
    assert config.prefill == ConnectParams("10.1.2.3", 5000, "me")


def test_demo_joins_as_teacher() -> None:
    config = parse("--demo", "--bots", "2", "--theme", "dark")
    assert config.demo is not None and config.demo.bots == 2
    assert config.params is not None and config.params.name == "teacher" and config.theme == "dark"


def test_profiles_are_parsed_once() -> None:
    assert parse("--name", "ana").profiles == frozenset()
    assert parse("--demo", "--profile", "history,dm").profiles == {"dm", "history"}


@pytest.mark.parametrize(("argv", "message"), [
    (["--port", "99999", "--name", "a"], "--port: port must be a number from 1 to 65535"),
    (["--name", ""], "--name: username is empty"),
    (["--demo", "--port", "1234"], "--demo starts its own server"),
    (["--demo", "--bots", "9"], "--bots must be 1..5"),
    (["--font-size", "2"], "--font-size must be 8..40"),
    (["--profile", "dm,themes"], "--profile: unknown profile 'themes'"),
])
def test_bad_options_are_one_clear_line(argv: list[str], message: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("chat-client: error: ") and message in last


def test_no_display_is_one_clear_line(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    assert main(["--demo"]) == exit_codes.USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("chat-client: cannot open a window")
