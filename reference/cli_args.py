"""argparse value types shared by every console script.

Each raises ``argparse.ArgumentTypeError`` with a short reason, so a bad
argument ends as one line (``chat-load: error: argument --rate: '0' must be
greater than 0``) and exit status 2.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable
from typing import Any

from reference.profiles import MAX_HISTORY_MESSAGES, MIN_HISTORY_MESSAGES, parse_profiles

__all__ = ["client_counts", "finite_number", "history_size", "int_between", "percentage", "port_number",
           "positive_float", "positive_int", "positive_seconds", "profile_names", "run_time"]


def _number(text: str, kind: type[int] | type[float]) -> int | float:
    try:
        return kind(text)
    except ValueError:
        noun = "an integer" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"{text!r} is not {noun}") from None


def positive_int(text: str) -> int:
    value = int(_number(text, int))
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than 0")
    return value


def positive_float(text: str) -> float:
    value = float(_number(text, float))
    if not value > 0:  # also rejects nan
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than 0")
    return value


def port_number(text: str) -> int:
    """0..65535; 0 asks the OS for a free port."""
    value = int(_number(text, int))
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not in 0..65535")
    return value


def finite_number(kind: type[int] | type[float], *, zero_ok: bool = False) -> Callable[[str], Any]:
    """A finite ``kind`` above 0 (or at least 0, with ``zero_ok``)."""
    what = "whole number" if kind is int else "number"
    bound = "0 or more" if zero_ok else "more than 0"

    def convert(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {what}") from None
        if not (value >= 0 if zero_ok else value > 0) or value == float("inf"):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite {what} {bound}")
        return value

    return convert


def int_between(low: int, high: int, noun: str) -> Callable[[str], int]:
    """A whole number of ``noun`` from ``low`` to ``high``."""

    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of {noun}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text!r} is not between {low} and {high} {noun}")
        return value

    return convert


def positive_seconds(text: str) -> float:
    """Seconds above 0, at most an hour (a timeout, a wait)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"{text!r} is not between 0 and 3600 seconds")
    return value


def percentage(text: str) -> float:
    """``'25'`` or ``'25%'`` -> 0.25; above 0, below 10000%."""
    try:
        value = float(text.strip().rstrip("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a percentage") from None
    if not value > 0:  # also rejects nan
        raise argparse.ArgumentTypeError(f"{text!r} must be above 0")
    if not math.isfinite(value) or value >= 10_000:
        raise argparse.ArgumentTypeError(f"{text!r} must be below 10000%")
    return value / 100.0


def client_counts(text: str) -> list[int]:
    """``'2,10,50'`` -> [2, 10, 50]: client counts of at least 2."""
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of client "
                                         "counts, e.g. 2,10,50") from None
    if not counts or min(counts) < 2:
        raise argparse.ArgumentTypeError(f"{text!r}: every client count must be at least 2")
    return counts


_TIMESPAN = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def run_time(text: str) -> int:
    """Whole seconds from ``90`` or locust's ``10s`` / ``1m30s`` / ``1h``."""
    raw = text.strip().lower()
    match = _TIMESPAN.fullmatch(raw) if raw and not raw.isdigit() else None
    if raw.isdigit():
        seconds = int(raw)
    elif match is not None and any(match.groups()):
        hours, minutes, secs = (int(g or 0) for g in match.groups())
        seconds = hours * 3600 + minutes * 60 + secs
    else:
        raise argparse.ArgumentTypeError(f"{text!r} is not a run time like 90, 10s, 1m30s or 1h")
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a run time more than 0")
    return seconds


def history_size(text: str) -> int:
    """``--history-size``: what HISTORY-3 allows."""
    if not text.strip().isdigit() or not MIN_HISTORY_MESSAGES <= int(text) <= MAX_HISTORY_MESSAGES:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of messages from "
                                         f"{MIN_HISTORY_MESSAGES} to {MAX_HISTORY_MESSAGES} (HISTORY-3)")
    return int(text)


def profile_names(text: str) -> frozenset[str]:
    """``--profile``: known profile names separated by commas."""
    try:
        return parse_profiles(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).split(": ", 1)[-1]) from None
