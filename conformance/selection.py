"""Which cases run, and which are expected to fail: case-ID globs and the expectations file.

Case IDs contain brackets (``relay.basic[one-byte-per-send]``), so a pattern
here treats ``[`` and ``]`` literally; only ``*`` and ``?`` are wildcards::

    relay.basic[*]      every granularity of the basic relay
    frame.*             every framing case

An expectations file tracks a known-bad server in CI (TOML, read with tomllib)::

    [[expected-failure]]
    case = "relay.basic[one-byte-per-send]"
    reason = "reads the header with a single recv(10)"

A listed case that fails is ``xfail``; one that passes is ``xpass`` and is
reported, so a fixed bug gets noticed and the entry removed.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

__all__ = ["Expectation", "ExpectationsError", "load_expectations", "matches", "matching"]

_TABLE = "expected-failure"
_KEYS = {"case", "reason"}


class ExpectationsError(ValueError):
    """The expectations file cannot be used; the message says why, in one line."""


@lru_cache(maxsize=256)
def _compile(pattern: str) -> re.Pattern[str]:
    parts = [".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern]
    return re.compile("".join(parts) + r"\Z")


def matches(pattern: str, case_id: str) -> bool:
    """Whether ``case_id`` is ``pattern``, with ``*`` and ``?`` as the only wildcards."""
    return pattern == case_id or _compile(pattern).match(case_id) is not None


def matching(patterns: Iterable[str], case_id: str) -> str | None:
    """The first pattern that selects ``case_id``, or None."""
    return next((p for p in patterns if matches(p, case_id)), None)


@dataclass(frozen=True)
class Expectation:
    case: str      # a case ID or a glob of them
    reason: str


def load_expectations(path: str | Path) -> tuple[Expectation, ...]:
    """Read and check an expectations file; raise ExpectationsError in plain words."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ExpectationsError(f"expectations file {p}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ExpectationsError(f"expectations file {p}: cannot read it ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ExpectationsError(f"expectations file {p}: not valid TOML ({exc})") from None
    unknown = set(data) - {_TABLE}
    if unknown:
        raise ExpectationsError(f"expectations file {p}: unknown table {sorted(unknown)[0]!r}; "
                                f"write each entry as [[{_TABLE}]] with case and reason")
    entries = data.get(_TABLE, [])
    if not isinstance(entries, list):
        raise ExpectationsError(f"expectations file {p}: {_TABLE} must be an array of tables "
                                f"([[{_TABLE}]])")
    out = []
    for number, entry in enumerate(entries, 1):
        where = f"expectations file {p}, entry {number}"
        if not isinstance(entry, dict):
            raise ExpectationsError(f"{where}: not a table")
        extra = set(entry) - _KEYS
        if extra:
            raise ExpectationsError(f"{where}: unknown key {sorted(extra)[0]!r} (use case, reason)")
        case, reason = entry.get("case"), entry.get("reason")
        if not isinstance(case, str) or not case.strip():
            raise ExpectationsError(f"{where}: 'case' must be a case ID or glob, e.g. "
                                    f"\"relay.basic[*]\"")
        if not isinstance(reason, str) or not reason.strip():
            raise ExpectationsError(f"{where}: 'reason' must say why {case} is expected to fail")
        out.append(Expectation(case.strip(), reason.strip()))
    return tuple(out)
