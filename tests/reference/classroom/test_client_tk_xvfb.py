"""The classroom client's real window, on a virtual X screen (Xvfb), against a real server.

In-process tests build the window on the Xvfb display and pump Tk events
while they act, so they can read the widgets back; keystrokes come from
xdotool, as a person's would.  Subprocess tests run ``chat-client`` itself
(``--name`` and ``--demo``) and drive it only from outside.

The tests start their own Xvfb on a free display (``-displayfd``) and skip,
saying why, only when Xvfb or xdotool is not installed (``.ci/run`` installs
them).  Set CHAT_TK_SCREENSHOT=docs/tk-client.png to refresh the README's
screenshot from the screenshot test.
"""

from __future__ import annotations

import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
import tkinter as tk
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from reference.classroom.demo import DemoPace, DemoRoom
from reference.classroom.model import THEMES, ChatModel
from reference.classroom.session import ConnectParams
from reference.classroom.view import ChatWindow
from reference.client import ChatClient, join_room
from reference.process_group import join_command
from reference.protocol import Relay
from reference.target import SpawnedServer, TargetSpec, find_free_port, open_target

WAIT = 15.0
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("Xvfb") is None or shutil.which("xdotool") is None,
                                 reason="Xvfb and xdotool are needed for the window tests "
                                        "(apt-get install xvfb xdotool, as .ci/run does)")]


@pytest.fixture(scope="module")
def display() -> Iterator[str]:
    """A private Xvfb; ``-displayfd`` makes it pick a free display number itself."""
    read_end, write_end = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(write_end), "-screen", "0", "1024x768x24",
                             "-nolisten", "tcp"], pass_fds=(write_end,),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_end)
    try:
        ready, _, _ = select.select([read_end], [], [], WAIT)
        number = os.read(read_end, 64).decode().strip() if ready else ""
        if not number:
            pytest.fail(f"Xvfb did not report a display within {WAIT} s")
        yield f":{number}"
    finally:
        os.close(read_end)
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, int]]:
    with open_target(TargetSpec()) as handle:
        yield handle.address


def x_env(display: str) -> dict[str, str]:
    return {**os.environ, "DISPLAY": display}


def pump_until(root: tk.Tk, done: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    """Run the Tk loop (as mainloop would) until ``done()``; fail after ``timeout``."""
    __tracebackhide__ = True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        root.update()
        if done():
            return
        time.sleep(0.01)
    pytest.fail(f"{what}: not within {timeout} s")


def xdotool(display: str, *args: str, root: tk.Tk | None = None) -> None:
    """Run xdotool, pumping our own Tk loop meanwhile so the window answers."""
    __tracebackhide__ = True
    proc = subprocess.Popen(["xdotool", *args], env=x_env(display), stderr=subprocess.PIPE)
    deadline = time.monotonic() + WAIT
    while proc.poll() is None and time.monotonic() < deadline:
        if root is not None:
            root.update()
        time.sleep(0.01)
    if proc.poll() is None:
        proc.kill()
    _, err = proc.communicate(timeout=5)
    assert proc.returncode == 0, f"xdotool {' '.join(args)} failed: {err.decode(errors='replace')}"


@pytest.fixture
def window(display: str, server: tuple[str, int]) -> Iterator[ChatWindow]:
    root = tk.Tk(screenName=display, className="chat-client")
    win = ChatWindow(root, ChatModel())
    win.connect(ConnectParams(server[0], server[1], "tk-ana"))
    pump_until(root, lambda: win.status_label.cget("text").startswith("Connected"), "connected")
    yield win
    win.close()


def toplevel_id(display: str, win: ChatWindow) -> str:
    """The X window a person sees (Tk's wrapper, menu bar included), found by its title."""
    return find_window(display, "^" + re.escape(win.root.title()) + "$")


def find_window(display: str, title_regex: str) -> str:
    __tracebackhide__ = True
    found = subprocess.run(["xdotool", "search", "--sync", "--name", title_regex], env=x_env(display),
                           capture_output=True, text=True, timeout=WAIT)
    assert found.returncode == 0 and found.stdout.split(), f"no window titled {title_regex!r}"
    return found.stdout.split()[0]


def test_typed_line_reaches_a_headless_client(display: str, server: tuple[str, int],
                                              window: ChatWindow) -> None:
    with ChatClient.connect(*server, name="headless-ben") as ben:
        ben.send("sentinel")  # ben is registered once the window shows this
        pump_until(window.root, lambda: "sentinel" in window.history_text(), "sentinel shown")
        xid = toplevel_id(display, window)
        xdotool(display, "mousemove", "--window", xid, "300", "200", "windowfocus", "--sync", xid,
                "type", "--delay", "15", "typed by xdotool :rocket:", root=window.root)
        pump_until(window.root, lambda: window.entry.get() == "typed by xdotool :rocket:", "typed")
        xdotool(display, "key", "--clearmodifiers", "Return", root=window.root)
        pump_until(window.root, lambda: window.entry.get() == "", "entry cleared by Enter")
        assert ben.receive(timeout=WAIT) == Relay("tk-ana", "typed by xdotool 🚀")
    assert "tk-ana (you)  typed by xdotool 🚀" in window.history_text()


def test_headless_message_appears_in_the_window(server: tuple[str, int], window: ChatWindow) -> None:
    with ChatClient.connect(*server, name="headless-cat") as cat:
        # tk-ana registered long ago, so this is relayed to it: no barrier needed this way round.
        cat.send("hello from a headless client 🎉")
        pump_until(window.root, lambda: "hello from a headless client 🎉" in window.history_text(),
                   "headless message shown")
    start = window.history.search("headless-cat", "1.0")
    assert "other_sender" in window.history.tag_names(start)
    assert window.history.cget("state") == "disabled"  # history is read-only


def test_emoji_picker_puts_emoji_in_the_entry_and_on_the_wire(server: tuple[str, int],
                                                              window: ChatWindow) -> None:
    with ChatClient.connect(*server, name="headless-dan") as dan:
        dan.send("sentinel")
        pump_until(window.root, lambda: "headless-dan" in window.history_text(), "dan registered")
        window.entry.insert("end", "picked ")
        picker = window.open_emoji_picker()
        window.root.update()
        heart = next(b for b in picker.buttons if b.cget("text") == "🔥")
        heart.invoke()
        assert not picker.winfo_exists() and window.entry.get() == "picked 🔥"
        window.entry.focus_force()  # Tk delivers key events to the focused widget only
        window.root.update()
        window.entry.event_generate("<Return>")
        pump_until(window.root, lambda: window.entry.get() == "", "sent by Enter")
        assert dan.receive(timeout=WAIT) == Relay("tk-ana", "picked 🔥")


def test_dark_theme_switches_colours(window: ChatWindow) -> None:
    assert window.history.cget("background") == THEMES["light"].background
    window.entry.focus_force()
    window.entry.event_generate("<Control-l>")
    window.root.update()
    assert window.history.cget("background") == THEMES["dark"].background
    assert window.status_label.cget("background") == THEMES["dark"].status_background
    assert window.dark.get()


def test_history_keeps_a_reader_who_scrolled_up_in_place(server: tuple[str, int],
                                                         window: ChatWindow) -> None:
    with ChatClient.connect(*server, name="chatty") as chatty:
        for i in range(60):
            chatty.send(f"line {i}")
        pump_until(window.root, lambda: "line 59" in window.history_text(), "60 lines shown")
        assert window.history.yview()[1] == 1.0  # followed the new lines to the bottom
        window.history.yview_moveto(0.0)          # the reader scrolls up to reread
        chatty.send("one more")
        pump_until(window.root, lambda: "one more" in window.history_text(), "new line shown")
        assert window.history.yview()[0] == 0.0   # not yanked down
        window.entry.insert(0, "my own line")
        window.send_entry()
        window.root.update()
        assert window.history.yview()[1] == 1.0  # one's own line brings the view down


def test_closing_the_window_hangs_up_cleanly(display: str, server: tuple[str, int]) -> None:
    root = tk.Tk(screenName=display)
    win = ChatWindow(root, ChatModel())
    win.connect(ConnectParams(server[0], server[1], "closer"))
    pump_until(root, lambda: win.model.can_send, "connected")
    root.tk.call(root.protocol("WM_DELETE_WINDOW"))  # what the window manager's close does
    assert win.closed and win.model.state.value == "disconnected"
    with pytest.raises(tk.TclError):
        root.winfo_exists()


def test_server_loss_is_shown_and_the_reconnect_button_rejoins(display: str) -> None:
    port = find_free_port()
    handle = SpawnedServer(join_command([sys.executable, "-m", "reference.server", "--port", str(port)]))
    handle.start()  # a fixed port, so the restarted server is where the window reconnects
    root = tk.Tk(screenName=display)
    win = ChatWindow(root, ChatModel())
    try:
        win.connect(ConnectParams("127.0.0.1", port, "phoenix"))
        pump_until(root, lambda: win.model.can_send, "connected")
        assert win.reconnect_button.cget("state") == "disabled"
        handle.stop()
        pump_until(root, lambda: win.status_label.cget("text").startswith("Disconnected: server"),
                   "the loss shown in the status bar")
        assert win.reconnect_button.cget("state") == "normal"
        assert "disconnected: server" in win.history_text()
        handle.start()
        win.reconnect_button.invoke()
        pump_until(root, lambda: win.status_label.cget("text") ==
                   f"Connected to 127.0.0.1:{port} as phoenix", "reconnected")
    finally:
        win.close()
        handle.stop()


@pytest.mark.parametrize("host", ["127.0.0.1", "a-very-long-host-name-" * 12 + ".invalid"])
def test_reconnect_button_stays_visible_after_a_failed_connect(display: str, host: str) -> None:
    """However long the status text, the Reconnect button keeps its place in a normal-size window."""
    root = tk.Tk(screenName=display)
    root.geometry("640x400")
    win = ChatWindow(root, ChatModel())
    try:
        win.connect(ConnectParams(host, find_free_port(), "ana"))  # nothing listens there
        pump_until(root, lambda: win.reconnect_button.cget("state") == "normal", "the failure shown")
        assert win.status_label.cget("text").startswith("Disconnected: cannot connect to")
        root.update_idletasks()
        root.update()
        button, bar = win.reconnect_button, win.status_bar
        assert button.winfo_ismapped()
        assert button.winfo_width() >= button.winfo_reqwidth(), "the button is squeezed"
        assert button.winfo_x() + button.winfo_width() <= bar.winfo_width(), "the button is off the bar"
    finally:
        win.close()


def test_connect_dialog_checks_fields_then_connects(display: str, server: tuple[str, int]) -> None:
    root = tk.Tk(screenName=display)
    win = ChatWindow(root, ChatModel(), prefill=ConnectParams(server[0], server[1], ""))
    try:
        dialog = win.open_connect_dialog()
        root.update()
        assert not dialog.submit() and "username is empty" in dialog.error_label.cget("text")
        dialog.fields["name"].insert(0, "from-dialog")
        assert dialog.submit()
        pump_until(root, lambda: win.status_label.cget("text") ==
                   f"Connected to {server[0]}:{server[1]} as from-dialog", "dialog connected")
    finally:
        win.close()


def test_screenshot_of_a_live_demo_room(display: str, server: tuple[str, int], window: ChatWindow,
                                        tmp_path: Path) -> None:
    """The demo bots fill the window; ``import`` captures it (and refreshes the README's image)."""
    if shutil.which("import") is None:
        pytest.skip("ImageMagick's import is needed for the screenshot (apt-get install imagemagick)")
    pace = DemoPace(min_delay=0.05, max_delay=0.1, max_messages=9, max_seconds=60)
    with ChatClient.connect(*server, name="ben") as ben, DemoRoom(server, bots=3, pace=pace, seed=3):
        pump_until(window.root, lambda: window.history_text().count("\n") >= 10, "bots chatting")
        window.entry.insert(0, "welcome everyone :wave: today: the 10-byte header")
        window.send_entry()
        ben.send("is 🎉 one character or four bytes?")
        pump_until(window.root, lambda: "four bytes?" in window.history_text(), "question shown")
    xid = toplevel_id(display, window)
    xdotool(display, "mousemove", "1000", "750")  # no hover highlight in the picture
    for theme in ("light", "dark"):
        if window.model.theme_name != theme:
            window.toggle_theme()
        window.root.update()
        shot = tmp_path / f"tk-client{'-dark' if theme == 'dark' else ''}.png"
        subprocess.run(["import", "-window", xid, str(shot)], env=x_env(display), check=True,
                       timeout=WAIT)
        info = subprocess.run(["identify", "-format", "%w %h %k", str(shot)], capture_output=True,
                              text=True, check=True, timeout=WAIT).stdout.split()
        width, height, colours = (int(x) for x in info)
        # The whole window: its width, and its height plus the menu bar's.
        assert width == window.root.winfo_width() and height > window.root.winfo_height()
        assert colours > 50, "a blank or single-colour capture: the window did not render"
        if target := os.environ.get("CHAT_TK_SCREENSHOT"):  # e.g. docs/tk-client.png
            shutil.copyfile(shot, Path(target).with_name(shot.name))


# -- the optional profiles (PROTOCOL.md section 8) ---------------------------------------------
def _tags_of(window: ChatWindow, text: str) -> set[str]:
    """The Tk tags on the first character of ``text`` in the history widget."""
    index = window.history.search(text, "1.0", "end")
    assert index, f"{text!r} is not in the window"
    return set(window.history.tag_names(index))


def test_profiles_history_shown_as_history_and_dm_picker(display: str, tmp_path: Path) -> None:
    """Against ``chat-server --profile dm,history``: what was said before the window joined is
    drawn as history (its own tags, italic, "(earlier)"); the "To:" picker offers the names
    seen, and a line sent through it reaches that client only."""
    with open_target(TargetSpec(reference_args=("--profile", "dm,history"))) as handle:
        host, port = handle.address
        ben, cy = join_room(host, port, ["ben", "cy"], timeout=WAIT)
        try:
            ben.send("said before the window came")
            assert cy.receive(timeout=WAIT) == Relay("ben", "said before the window came")  # read: history
            root = tk.Tk(screenName=display, className="chat-client")
            win = ChatWindow(root, ChatModel(profiles=frozenset({"dm", "history"})))
            try:
                win.connect(ConnectParams(host, port, "tk-ana"))
                pump_until(root, lambda: "said before the window came" in win.history_text(), "history")
                assert "ben (earlier)" in win.history_text()
                assert {"history"} <= _tags_of(win, "said before the window came")
                assert win.history.tag_cget("history", "font") == str(win.italic)
                # Registered (the replay came), so a live line reaches it now.
                ben.send("said live")
                cy.receive(timeout=WAIT)
                cy.send("cy says hi")
                ben.receive(timeout=WAIT)
                pump_until(root, lambda: "cy says hi" in win.history_text(), "live lines")
                assert "history" not in _tags_of(win, "said live")
                assert win.dm_picker is not None and win.dm_menu is not None
                pump_until(root, lambda: win.dm_menu.index("end") == 2, "ben and cy in the picker")
                labels = [win.dm_menu.entrycget(i, "label") for i in range(3)]
                assert labels == ["everyone", "ben", "cy"]
                win.dm_menu.invoke(1)
                assert win.dm_picker.cget("text") == "To: ben" and win.model.dm_to == "ben"
                win.entry.insert(0, "just for ben :wave:")
                assert win.send_entry()
                assert ben.receive(timeout=WAIT) == Relay("tk-ana", "/dm ben just for ben 👋")
                assert cy.expect_silence(0.5) is None  # the private line went to ben only
                assert "tk-ana (you) → ben, privately" in win.history_text()
                ben.send("/dm tk-ana thanks, privately")
                pump_until(root, lambda: "ben → you, privately" in win.history_text(), "private line")
                assert {"private_text"} <= _tags_of(win, "thanks, privately")
                win.dm_menu.invoke(0)
                assert win.model.dm_to is None and win.dm_picker.cget("text") == "To: everyone"
                if target := os.environ.get("CHAT_TK_PROFILES_SCREENSHOT"):  # docs/tk-client-profiles.png
                    if shutil.which("import") is None:
                        pytest.skip("ImageMagick's import is needed for the screenshot")
                    root.update()
                    shot = tmp_path / "profiles.png"
                    subprocess.run(["import", "-window", toplevel_id(display, win), str(shot)],
                                   env=x_env(display), check=True, timeout=WAIT)
                    shutil.copyfile(shot, target)
            finally:
                win.close()
        finally:
            ben.close()
            cy.close()


# -- chat-client itself, as a separate process ------------------------------------------------
def run_client(display: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "reference.classroom.app", *args], env=x_env(display),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def quit_with_ctrl_q(display: str, proc: subprocess.Popen[str], xid: str) -> str:
    """Press Ctrl+Q in the window; return stderr once the process has exited 0."""
    __tracebackhide__ = True
    xdotool(display, "mousemove", "--window", xid, "300", "200", "windowfocus", "--sync", xid,
            "key", "--clearmodifiers", "ctrl+q")
    try:
        _, err = proc.communicate(timeout=WAIT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate(timeout=5)
        pytest.fail("chat-client did not exit after Ctrl+Q")
    assert proc.returncode == 0, err
    return err


def test_command_line_connects_straight_away_and_sends_typed_lines(display: str,
                                                                   server: tuple[str, int]) -> None:
    with ChatClient.connect(*server, name="headless-fay") as fay:
        with ChatClient.connect(*server, name="probe") as probe:
            probe.send("barrier")  # fay hears it, so fay is registered before eve types
            assert fay.receive(timeout=WAIT) == Relay("probe", "barrier")
        proc = run_client(display, "--host", server[0], "--port", str(server[1]), "--name", "cli-eve")
        try:
            xid = find_window(display, "^Chat: cli-eve @")  # the title says so once connected
            xdotool(display, "mousemove", "--window", xid, "300", "200", "windowfocus", "--sync", xid,
                    "type", "--delay", "15", "from the command line")
            xdotool(display, "key", "--clearmodifiers", "Return")
            assert fay.receive(timeout=WAIT) == Relay("cli-eve", "from the command line")
            assert quit_with_ctrl_q(display, proc, xid) == ""
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=5)


def test_demo_is_one_command_and_cleans_up_on_sigterm(display: str) -> None:
    proc = run_client(display, "--demo", "--bots", "2")
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], WAIT)
        banner = proc.stdout.readline() if ready else ""
        assert "demo server listening on" in banner, banner
        address = banner.split("listening on ")[1].split()[0]
        host, port = address.rsplit(":", 1)
        with ChatClient.connect(host, int(port), name="observer") as observer:
            relay = observer.receive(timeout=WAIT)  # the bots talk every few seconds
            assert relay.sender in ("ana", "ben")
            find_window(display, "^Chat: teacher @")
            proc.send_signal(signal.SIGTERM)  # as a desktop session's logout would
            _, err = proc.communicate(timeout=WAIT)
            assert proc.returncode == 0, err
        with pytest.raises(OSError):  # the demo's server went with the window
            ChatClient.connect(host, int(port), name="late", timeout=2.0).close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=5)
