"""argparse value types shared by every console script.

Each raises ``argparse.ArgumentTypeError`` with a short reason, so a bad
argument ends as one line (``chat-load: error: argument --rate: '0' must be
greater than 0``) and exit status 2.
"""

from __future__ import annotations

import argparse

__all__ = ["port_number", "positive_float", "positive_int"]


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
