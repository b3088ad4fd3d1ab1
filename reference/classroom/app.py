"""chat-client: the classroom Tk client for the 10-byte-header chat protocol.

    chat-client                          # a connect dialog asks for host, port, username
    chat-client --name ana               # connect straight away (127.0.0.1:1234 unless
    chat-client --host 10.0.0.5 --port 1234 --name ana     # --host/--port say otherwise)
    chat-client --demo                   # the reference server + 3 chatting bots, one command
    chat-client --demo --profile dm,history   # ... with private messages and history
    python -m reference.classroom.app ...    # the same

This file is the command line only: it turns argv into one frozen
:class:`ClientConfig`, opens the window (``reference.classroom.view``) over the model
(``reference.classroom.model``), and for ``--demo`` starts the reference server
through ``reference.target.open_target`` and the bots of ``reference.classroom.demo``,
and stops both when the window closes.
"""

from __future__ import annotations

import argparse
import getpass
import signal
import sys
import tkinter as tk
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import FrameType

from reference import exit_codes
from reference.classroom.demo import BOT_NAMES, DemoPace, DemoRoom
from reference.classroom.model import THEMES, ChatModel, parse_connect_form
from reference.classroom.session import ConnectParams
from reference.classroom.view import ChatWindow
from reference.profiles import PROFILES, parse_profiles
from reference.protocol import DEFAULT_HOST, DEFAULT_PORT
from reference.target import TargetError, TargetSpec, open_target
from reference.version import add_version_argument

__all__ = ["ClientConfig", "build_parser", "config_from_args", "main", "run"]

DEMO_NAME = "teacher"


@dataclass(frozen=True)
class DemoSettings:
    bots: int
    pace: DemoPace


@dataclass(frozen=True)
class ClientConfig:
    """Everything the command line decided, parsed once."""

    connect_now: bool              # --name (or --demo) given: no dialog
    params: ConnectParams | None   # where to connect (None: ask in the dialog)
    prefill: ConnectParams         # what the connect dialog starts with
    theme: str = "light"
    font_size: int = 12
    demo: DemoSettings | None = None
    #: The optional profiles the server claims (PROTOCOL.md section 8): the window uses them.
    profiles: frozenset[str] = frozenset()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chat-client",
        description="A Tk chat client for the 10-byte-header chat protocol. Without --name it "
                    "opens a connect dialog; with --name it connects straight away.")
    add_version_argument(parser)
    parser.add_argument("--host", default=None,
                        help=f"server host (default {DEFAULT_HOST})")
    parser.add_argument("--port", default=None,
                        help=f"server port (default {DEFAULT_PORT})")
    parser.add_argument("--name", default=None, help="your username; connects straight away")
    parser.add_argument("--theme", choices=sorted(THEMES), default="light",
                        help="colours (default %(default)s; Ctrl+L switches)")
    parser.add_argument("--font-size", type=int, default=12, metavar="POINTS",
                        help="text size, 8..40 (default %(default)s; Ctrl+plus/minus change it)")
    parser.add_argument("--profile", default=None, metavar="NAMES",
                        help="the optional profiles the server claims, separated by commas: "
                             f"{', '.join(PROFILES)}. dm adds a 'To:' picker for private "
                             "messages, history shows replayed lines as history. With --demo, "
                             "the demo server serves them. Default: none, the base protocol")
    demo = parser.add_argument_group("classroom demo")
    demo.add_argument("--demo", action="store_true",
                      help="start the reference server on a free port and a few bots that chat, "
                           f"and join as {DEMO_NAME!r} (or --name); all stop with the window")
    demo.add_argument("--bots", type=int, default=3, metavar="N",
                      help=f"how many bots in the demo, 1..{len(BOT_NAMES)} (default %(default)s)")
    demo.add_argument("--demo-minutes", type=float, default=45.0, metavar="MINUTES",
                      help="the bots fall silent after this long (default %(default)s)")
    return parser


def config_from_args(parser: argparse.ArgumentParser, args: argparse.Namespace,
                     default_name: str = "") -> ClientConfig:
    """Check the options together; a bad one ends in ``parser.error`` (exit 2)."""
    if not 8 <= args.font_size <= 40:
        parser.error(f"--font-size must be 8..40, not {args.font_size}")
    demo: DemoSettings | None = None
    if args.demo:
        if args.host is not None or args.port is not None:
            parser.error("--demo starts its own server: leave out --host and --port")
        if not 1 <= args.bots <= len(BOT_NAMES):
            parser.error(f"--bots must be 1..{len(BOT_NAMES)}, not {args.bots}")
        if not args.demo_minutes > 0:
            parser.error(f"--demo-minutes must be positive, not {args.demo_minutes}")
        demo = DemoSettings(args.bots, DemoPace(max_seconds=args.demo_minutes * 60.0))
    try:
        profiles = parse_profiles(args.profile) if args.profile is not None else frozenset()
    except ValueError as exc:
        parser.error(str(exc))
    host = DEFAULT_HOST if args.host is None else args.host
    port = str(DEFAULT_PORT) if args.port is None else args.port
    connect_now = args.name is not None or args.demo
    name = args.name if args.name is not None else (DEMO_NAME if args.demo else default_name)
    try:
        # The dialog's own checks, so the command line and the GUI refuse the same things.
        if connect_now:
            params: ConnectParams | None = parse_connect_form(host, port, name)
            assert params is not None
            prefill = params
        else:
            checked = parse_connect_form(host, port, "?")  # the dialog asks for the name
            params, prefill = None, ConnectParams(checked.host, checked.port, name)
    except ValueError as exc:
        flags = {"host": "--host", "port": "--port", "username": "--name"}
        flag = next((f for word, f in flags.items() if str(exc).startswith(word)), "")
        parser.error(f"{flag}: {exc}" if flag else str(exc))
    return ClientConfig(connect_now=connect_now, params=params, prefill=prefill,
                        theme=args.theme, font_size=args.font_size, demo=demo, profiles=profiles)


def _open_root() -> tk.Tk | None:
    try:
        return tk.Tk(className="chat-client")
    except tk.TclError as exc:
        print(f"chat-client: cannot open a window: {exc}", file=sys.stderr)
        return None


def run_window(root: tk.Tk, config: ClientConfig, params: ConnectParams | None,
               on_ready: Callable[[ChatWindow], None] | None = None) -> ChatWindow:
    """Show the window and run the Tk loop until it closes; return the (closed) window."""
    window = ChatWindow(root, ChatModel(theme=config.theme, profiles=config.profiles),
                        font_size=config.font_size,
                        prefill=config.prefill)
    if params is not None:
        window.connect(params)
    else:
        window.open_connect_dialog()

    def close_on_signal(_signum: int, _frame: FrameType | None) -> None:
        # Runs between Tk events on the main thread; let the loop close the window.
        root.after_idle(window.close)

    previous = {sig: signal.signal(sig, close_on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if on_ready is not None:
            on_ready(window)
        if not window.closed:
            root.mainloop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        window.close()
    return window


def run(config: ClientConfig, on_ready: Callable[[ChatWindow], None] | None = None) -> int:
    """Open the window (and the demo room); return the exit status."""
    root = _open_root()  # before any server starts: no display means nothing to clean up
    if root is None:  # run where it cannot run (no display): the invocation, not a finding
        return exit_codes.USAGE
    if config.demo is None:
        run_window(root, config, config.params, on_ready)
        return exit_codes.OK
    assert config.params is not None
    try:
        served = ("--profile", ",".join(sorted(config.profiles))) if config.profiles else ()
        with open_target(TargetSpec(reference_args=served)) as server:
            host, port = server.address
            print(f"chat-client: demo server listening on {host}:{port} "
                  f"with bots {', '.join(BOT_NAMES[:config.demo.bots])}", flush=True)
            with DemoRoom(server.address, config.demo.bots, pace=config.demo.pace):
                run_window(root, config, ConnectParams(host, port, config.params.name), on_ready)
    except (TargetError, OSError) as exc:
        print(f"chat-client: the classroom demo failed: {exc}", file=sys.stderr)
        if _exists(root):
            root.destroy()
        return exit_codes.TARGET_UNAVAILABLE  # the demo's server is the target that would not start
    return exit_codes.OK


def _exists(root: tk.Tk) -> bool:
    try:
        return bool(root.winfo_exists())
    except tk.TclError:
        return False


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        default_name = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        default_name = ""
    return run(config_from_args(parser, args, default_name=default_name))


if __name__ == "__main__":
    sys.exit(main())
