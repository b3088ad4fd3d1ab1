"""Verdicts in the manner of Autobahn|Testsuite, and the conformance results document.

A case's verdict follows from its outcome and its requirement's level:

=============  ==========================================================
pass           the case held
fail           a MUST requirement is broken
non-strict     a SHOULD requirement is broken (a failure with ``--strict``)
informational  a MAY case: what the server does is reported, not judged
xfail / xpass  listed in the expectations file, and failed / passed
error          the harness itself failed (a bug to report, not the server's)
skipped        not run
=============  ==========================================================

The exit status is 0 only when no MUST fails and nothing errs (with
``--strict``, no SHOULD fails either); the records and the summary go into a
``conformance`` results document (reports/FORMAT.md) built by
:func:`reports.results.make_document`, with the ranked root causes of the
failures from :mod:`conformance.diagnosis`.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from conformance.diagnosis import diagnose, preflight_cause, recognise_program
from conformance.requirements import Level, Requirement
from conformance.selection import Expectation
from reference import exit_codes
from reference.printable import printable_tree
from reference.version import tool_name
from reports.results import make_document, target_info

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_NO_CASES",
    "EXIT_OK",
    "EXIT_TARGET",
    "VERDICTS",
    "CaseInfo",
    "CaseResult",
    "build_document",
    "exit_status",
    "judge",
    "summarise",
]

VERDICTS = ("pass", "fail", "non-strict", "informational", "xfail", "xpass", "error", "skipped")

# The statuses of every tool (reference/exit_codes.py), under the suite's names.
EXIT_OK = exit_codes.OK
EXIT_FAILED = exit_codes.FINDINGS    # a MUST failed (with --strict: or a SHOULD), or the harness erred
EXIT_NO_CASES = exit_codes.USAGE     # bad usage, or nothing selected
EXIT_TARGET = exit_codes.TARGET_UNAVAILABLE  # the target server is dead or could not be started
EXIT_INTERRUPTED = exit_codes.INTERRUPTED  # Ctrl-C or SIGTERM


@dataclass(frozen=True)
class CaseInfo:
    """What the suite knows about a case before running it."""

    id: str
    requirement: Requirement
    level: Level
    title: str                       # the first line of the case's docstring
    expected_failure: Expectation | None = None
    profiles: tuple[str, ...] = ()   # the optional profiles it judges (empty: the base protocol)


@dataclass
class CaseResult:
    info: CaseInfo
    verdict: str
    duration_s: float = 0.0
    detail: str = ""
    transcript: str | None = None
    notes: list[str] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        """The case's record in the results document (reports/FORMAT.md)."""
        req = self.info.requirement
        detail = "\n".join([self.detail, *self.notes]).strip()
        return {
            "id": self.info.id,
            "requirement": req.id,
            "requirement_text": req.text,
            "group": req.group,
            "level": self.info.level.value,
            "verdict": self.verdict,
            "duration_s": round(self.duration_s, 4),
            "detail": detail,
            "transcript": self.transcript or None,
            "title": self.info.title,
            "expected_failure": self.info.expected_failure.reason if self.info.expected_failure else None,
            "profile": ",".join(self.info.profiles) or None,
        }


def judge(info: CaseInfo, *, held: bool, server_fault: bool = True) -> str:
    """The verdict of a case that ran: ``held`` when nothing failed.

    ``server_fault`` is False when the harness itself raised something other
    than a failed expectation or a network error: that is an ``error``.
    """
    if info.level is Level.MAY and info.expected_failure is None:
        return "informational"  # reported, never judged: not even an exception changes the exit status
    if held:
        return "pass" if info.expected_failure is None else "xpass"
    if not server_fault:
        return "error"
    if info.expected_failure is not None:
        return "xfail"
    return {Level.MUST: "fail", Level.SHOULD: "non-strict", Level.MAY: "informational"}[info.level]


def counts_as_failure(verdict: str, strict: bool) -> bool:
    return verdict in ("fail", "error") or (strict and verdict == "non-strict")


def exit_status(verdicts: Iterable[str], strict: bool) -> int:
    return EXIT_FAILED if any(counts_as_failure(v, strict) for v in verdicts) else EXIT_OK


def summarise(results: Iterable[CaseResult], *, strict: bool, started: float,
              dialects: Iterable[str], status: int, **extra: Any) -> dict[str, Any]:
    """The document's ``summary``: counts per verdict and the facts of the run."""
    results = list(results)
    counts = Counter(r.verdict for r in results)
    summary: dict[str, Any] = {v: counts.get(v, 0) for v in VERDICTS}
    summary.update(total=len(results), strict=strict, exit_status=status,
                   duration_s=round(time.monotonic() - started, 3), dialects=list(dialects))
    summary.update(extra)
    return summary


def build_document(results: Iterable[CaseResult], summary: Mapping[str, Any], *,
                   label: str, address: tuple[str, int] | None,
                   command: str | None) -> dict[str, Any]:
    """The results document, with the ranked root causes of its failures (``diagnosis``).

    The terminal report is rendered from it, so every string in it (details
    quote what the server sent) is made printable here, once, for both; the
    diagnosis reads the records before that, as the suite wrote them.
    """
    records = [r.record() for r in results]
    causes = diagnose(records, list(summary.get("dialects") or []))
    summary = dict(summary)
    program = recognise_program(causes)
    if program:
        summary["recognised"] = program
    stopped = preflight_cause(summary.get("preflight") or {})  # no case ran: the preflight is the cause
    doc = make_document("conformance", tool=tool_name("chat-conformance"),
                        target=target_info(label, address, command),
                        summary=summary, records=records,
                        diagnosis=[stopped] if stopped else [c.entry() for c in causes])
    return cast(dict[str, Any], printable_tree(doc))
