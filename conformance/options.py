"""The suite's options, defined once for the pytest plugin and the console script.

``add_suite_options(add, prefix)`` declares each option through ``add``, which
is ``pytest.OptionGroup.addoption`` (prefix ``chat-``: ``--chat-strict``) or
``argparse``'s ``add_argument`` (no prefix: ``--strict``), in the manner of
pytest-benchmark's ``add_global_options``.  The pytest plugin parses them once
into a frozen :class:`SuiteSettings` (pytest-timeout's way); nothing below reads
argv or the environment.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformance.peer import Timeouts
from conformance.selection import Expectation, load_expectations
from reference.cli_args import int_between, positive_seconds, profile_names
from reference.profiles import PROFILES
from reports.results import json_option

__all__ = ["DEFAULT_CASE_TIMEOUT", "DEFAULT_PATIENCE", "DEFAULT_ROOM_SIZE", "SuiteSettings",
           "add_suite_options", "positive_seconds", "profile_names", "room_size"]

DEFAULT_CASE_TIMEOUT = 60.0
#: How long the silent reader of relay.patient-reader stays while others chat (RELAY-7).
DEFAULT_PATIENCE = 3.0
#: Listeners in relay.big-room (RELAY-8): twice the "first 8 clients" students hard-code.
DEFAULT_ROOM_SIZE = 16
MAX_ROOM_SIZE = 500


room_size = int_between(2, MAX_ROOM_SIZE, "listeners")


def add_suite_options(add: Callable[..., Any], prefix: str = "") -> None:
    """Declare the options shared by ``pytest --chat-*`` and ``chat-conformance``."""
    add(f"--{prefix}strict", action="store_true", default=False,
        help="count a broken SHOULD (non-strict) as a failure")
    add(f"--{prefix}json", **json_option("conformance"))
    add(f"--{prefix}expectations", metavar="FILE", default=None,
        help="TOML file of [[expected-failure]] entries (case, reason) for a known-bad server")
    add(f"--{prefix}transcripts", action="store_true", default=False,
        help="print every failed case's detail and whole wire transcript after the root causes")
    add(f"--{prefix}list", action="store_true", default=False,
        help="list the selected cases with their requirement and stop")
    add(f"--{prefix}timeout", metavar="SECONDS", type=positive_seconds,
        default=Timeouts.arrive,
        help="how long a relay that should come may take (default %(default)s)")
    add(f"--{prefix}no-preflight", action="store_true", default=False,
        help="run every case even when the preflight finds that the target does not speak "
             "the protocol (silent, another dialect, never accepts)")
    add(f"--{prefix}case-timeout", metavar="SECONDS", type=positive_seconds,
        default=DEFAULT_CASE_TIMEOUT,
        help="hard limit per case, a backstop through pytest-timeout (default %(default)s; "
             "raised to --patience + 30 when that is longer)")
    add(f"--{prefix}patience", metavar="SECONDS", type=positive_seconds, default=DEFAULT_PATIENCE,
        help="how long a registered client that only reads must stay in the room while others "
             "chat (RELAY-7; default %(default)s; the long CI profile uses 65)")
    add(f"--{prefix}profile", metavar="NAMES", type=profile_names, default=frozenset(),
        help="the optional profiles the target claims (PROTOCOL.md section 8), separated by "
             f"commas: {', '.join(PROFILES)}; their cases run too, and a claimed profile's rules "
             "replace the base rule they amend (history: JOIN-5). Default: none, the base "
             "protocol only; with no target, the embedded reference serves them")
    add(f"--{prefix}room-size", metavar="N", type=room_size, default=DEFAULT_ROOM_SIZE,
        help="listeners in the big-room case, each of which must get every message "
             "(RELAY-8; default %(default)s)")


@dataclass(frozen=True)
class SuiteSettings:
    """Everything the suite was told, parsed once."""

    strict: bool = False
    json_path: Path | None = None
    expectations: tuple[Expectation, ...] = ()
    expectations_path: Path | None = None
    list_only: bool = False
    transcripts: bool = False
    case_patterns: tuple[str, ...] = ()
    timeouts: Timeouts = Timeouts()
    case_timeout: float = DEFAULT_CASE_TIMEOUT
    patience: float = DEFAULT_PATIENCE
    room_size: int = DEFAULT_ROOM_SIZE
    preflight: bool = True
    profiles: frozenset[str] = frozenset()

    @classmethod
    def from_options(cls, get: Callable[[str], Any]) -> SuiteSettings:
        """Build from ``get(dest)`` (pytest's ``config.getoption``); raise ValueError in one line."""
        arrive = float(get("chat_timeout"))
        timeouts = Timeouts(arrive=arrive, close=max(Timeouts.close, arrive),
                            join=max(Timeouts.join, arrive))
        exp_path = get("chat_expectations")
        return cls(
            strict=bool(get("chat_strict")),
            json_path=Path(get("chat_json")) if get("chat_json") else None,
            expectations=load_expectations(exp_path) if exp_path else (),
            expectations_path=Path(exp_path) if exp_path else None,
            list_only=bool(get("chat_list")),
            transcripts=bool(get("chat_transcripts")),
            case_patterns=tuple(get("chat_case") or ()),
            timeouts=timeouts,
            # The patient-reader case lasts --patience: the backstop must leave it room.
            case_timeout=max(float(get("chat_case_timeout")), float(get("chat_patience")) + 30),
            patience=float(get("chat_patience")),
            room_size=int(get("chat_room_size")),
            preflight=not get("chat_no_preflight"),
            profiles=frozenset(get("chat_profile") or ()),
        )
