"""The reference server's optional profiles (PROTOCOL.md section 8), as a real subprocess.

``chat-server --profile dm,history``: private messages reach their recipient only, an
unknown recipient gets the sender a notice, a newcomer gets the last messages marked as
history, reserved names are refused, and a bad ``--profile`` is one line and exit 2.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from reference.client import ChatClient, ServerClosedError, join_room
from reference.profiles import (
    DirectMessage,
    History,
    dm_payload,
    history_sender,
    parse_dm,
    parse_profiles,
    unmark_history,
)
from reference.protocol import Relay, encode_frame
from reference.target import SpawnedServer, reference_command

WAIT = 10.0


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[SpawnedServer]:
    marker = request.node.get_closest_marker("server_args")
    handle = SpawnedServer(reference_command("--log-level", "DEBUG", *(marker.args if marker else ())))
    handle.start()
    yield handle
    handle.stop()


def newcomer(server: SpawnedServer, name: str) -> ChatClient:
    return ChatClient.connect(*server.address, name=name, timeout=WAIT)


def test_parse_profiles_and_dm() -> None:
    assert parse_profiles("dm,history") == {"dm", "history"}
    assert parse_profiles(" history ") == {"history"}
    for bad in ("", "dm,", "tls", "dm,emoji"):
        with pytest.raises(ValueError, match="profile"):
            parse_profiles(bad)
    dm = parse_dm(b"/dm bea see you at 5")
    assert dm is not None and (dm.recipient, dm.text) == (b"bea", b"see you at 5")
    assert parse_dm(b"/dm") == parse_dm(b"/dm ") == DirectMessage(b"", b"")
    assert parse_dm(b"/dm bea") == parse_dm(b"/dm bea ") == DirectMessage(b"bea", b"")
    for public in (b"/dmitri is here", b" /dm bea x", b"/DM bea x", b"@bea hi", b"hello /dm bea"):
        assert parse_dm(public) is None
    assert dm_payload("bea", "hi") == "/dm bea hi"
    with pytest.raises(ValueError):
        dm_payload("ana maria", "hi")
    assert unmark_history(history_sender("ana maría")) == "ana maría"
    assert unmark_history("ana") is None


def test_history_is_bounded_by_count_and_bytes() -> None:
    history = History(max_messages=3, max_bytes=100)
    for n in range(5):
        history.add(f"m{n}".encode())
    assert list(history) == [b"m2", b"m3", b"m4"]
    history.add(b"x" * 101)  # larger than the whole bound: not kept
    assert len(history) == 3
    history.add(b"y" * 90)
    assert list(history) == [b"m3", b"m4", b"y" * 90] and history.bytes == 94
    history.add(b"z" * 90)  # past the byte bound: the oldest go until it fits
    assert list(history) == [b"z" * 90] and history.bytes == 90
    with pytest.raises(ValueError):
        History(max_messages=0)


@pytest.mark.parametrize("argv, says", [(["--profile", "dm,emoji"], "unknown profile 'emoji'"),
                                        (["--profile", ""], "give profile names")])
def test_bad_profile_is_one_line_and_exit_2(argv: list[str], says: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "reference.server", "--port", "0", *argv],
                          capture_output=True, text=True, timeout=WAIT)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and says in proc.stderr and proc.stderr.startswith("chat-server:")


@pytest.mark.server_args("--profile", "dm")
def test_dm_reaches_the_recipient_only(server: SpawnedServer) -> None:
    ana, bea, cy = join_room(*server.address, ["ana", "bea", "cy"], timeout=WAIT)
    ana.send("/dm bea see you at 5")
    ana.send("public after")
    assert bea.receive_all(2, timeout=WAIT) == [Relay("ana", "/dm bea see you at 5"),
                                                Relay("ana", "public after")]
    assert cy.receive(timeout=WAIT) == Relay("ana", "public after")  # the DM was not for cy
    assert ana.expect_silence(0.3) is None                           # never echoed
    ana.send("/dmitri is a name, not a command")
    assert cy.receive(timeout=WAIT) == bea.receive(timeout=WAIT) == Relay(
        "ana", "/dmitri is a name, not a command")


@pytest.mark.server_args("--profile", "dm")
def test_dm_to_an_unknown_name_gets_a_notice_and_nobody_else_anything(server: SpawnedServer) -> None:
    ana, bea = join_room(*server.address, ["ana", "bea"], timeout=WAIT)
    ana.send("/dm zed are you there?")
    notice = ana.receive(timeout=WAIT)
    assert notice.sender == "*server*" and '"zed"' in notice.text and "not delivered" in notice.text
    ana.send("/dm")
    assert ana.receive(timeout=WAIT).text.startswith("usage: /dm NAME TEXT")
    ana.send("/dm ana to myself")  # only other clients count: nobody else is called ana
    assert ana.receive(timeout=WAIT).sender == "*server*"
    ana.send("still here")
    assert bea.receive(timeout=WAIT) == Relay("ana", "still here")  # nothing of the three before
    assert server.is_alive()


@pytest.mark.server_args("--profile", "dm")
def test_reserved_names_are_refused(server: SpawnedServer) -> None:
    for name in ("*server*", "*history* ana", "*"):
        client = ChatClient.connect(*server.address, timeout=WAIT)
        client.send_raw(encode_frame(name.encode()))
        with pytest.raises(ServerClosedError):
            client.receive(timeout=WAIT)
        client.close()


def test_reserved_names_are_ordinary_without_a_profile(server: SpawnedServer) -> None:
    ana, star = join_room(*server.address, ["ana", "*server*"], timeout=WAIT)
    ana.send("/dm *server* hi")  # and /dm is an ordinary public message too
    assert star.receive(timeout=WAIT) == Relay("ana", "/dm *server* hi")


@pytest.mark.server_args("--profile", "dm,history", "--history-size", "10")
def test_newcomer_gets_the_last_messages_marked_and_no_dm(server: SpawnedServer) -> None:
    ana, bea = join_room(*server.address, ["ana", "bea"], timeout=WAIT)
    for n in range(12):
        ana.send(f"m{n}")
    ana.send("/dm bea a secret")
    assert [r.text for r in bea.receive_all(13, timeout=WAIT)][-2:] == ["m11", "/dm bea a secret"]
    newt = newcomer(server, "newt")
    assert newt.receive_all(10, timeout=WAIT) == [Relay(history_sender("ana"), f"m{n}")
                                                  for n in range(2, 12)]
    ana.send("live")
    assert newt.receive(timeout=WAIT) == Relay("ana", "live")  # the secret never comes
    assert bea.receive(timeout=WAIT) == Relay("ana", "live")   # nor a second replay to bea
    assert ana.expect_silence(0.3) is None


@pytest.mark.server_args("--profile", "history")
def test_first_newcomer_of_an_empty_room_gets_nothing(server: SpawnedServer) -> None:
    first = newcomer(server, "first")
    assert first.expect_silence(0.3) is None
