"""Root causes of a server's failures, ranked: what is broken, the evidence, and the fix.

Pure: case records (as in the results document) and the recognised dialects
in, a list of causes out, most likely first.  Like a compiler's diagnostics,
each cause says what the server does in one sentence, shows the smallest
piece of evidence (the failing case with the shortest transcript, its
expected/got and its last few wire events), says how to fix it with a link
to PROTOCOL.md, and counts every failed case it explains: a case that could
not even register its clients because relays are lost is counted under the
loss, not reported as a cause of its own.

The known defects (:mod:`conformance.defects`) are tried in order, most fundamental first (a dialect
breaks every exchange; a crash on invalid UTF-8 takes the room down; echo,
mislabelled and lost relays break every case that waits for a relay; then
partial reads, blocking reads and writes, unchecked headers).  Each defect
*claims* the failures that are direct evidence of it and, once it has
evidence, *absorbs* the failures it explains as consequences.  A failure no
known defect accounts for becomes a cause under its own requirement.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from conformance.defects import (
    CATALOGUE,
    DIALECT_SECTION,
    JOIN_RELAY,
    SYSTEMIC,
    Defect,
    Failure,
    dialect_defect,
)
from conformance.requirements import REQUIREMENTS, Level
from conformance.symptoms import read_symptom

__all__ = ["DIAGNOSED_VERDICTS", "SECTIONS", "Cause", "diagnose", "preflight_cause", "recognise_program",
           "section_link"]

#: Verdicts a cause can explain: broken MUSTs and SHOULDs (not harness errors, not known failures).
DIAGNOSED_VERDICTS = ("fail", "non-strict")
#: PROTOCOL.md's section anchor per requirement group (GitHub's heading anchors).
SECTIONS = {
    "FRAME": "1-frames", "JOIN": "2-joining", "RELAY": "3-relaying",
    "ROBUST": "4-robustness-one-client-must-never-hurt-the-room", "LIMIT": "5-limits",
    "ADDR": "5-limits", "PROFILE": "8-profiles-optional-extensions",
    "DM": "profile-dm-private-messages", "HISTORY": "profile-history-the-last-messages-for-a-newcomer",
}
TUTORIAL_SECTION = "7-where-the-tutorial-server-breaks-these-rules"
EVIDENCE_EVENTS = 6

Record = Mapping[str, Any]


def section_link(requirement: str) -> str:
    return f"PROTOCOL.md#{SECTIONS.get(requirement.split('-', 1)[0], '')}"


@dataclass
class Cause:
    """One root cause, as it goes into the results document's ``diagnosis`` list."""

    key: str
    requirement: str
    title: str
    explanation: str
    fix: str
    section: str
    failures: list[Failure] = field(default_factory=list)
    direct: list[Failure] = field(default_factory=list)
    dialect: bool = False

    def entry(self) -> dict[str, Any]:
        return {"requirement": self.requirement, "key": self.key, "title": self.title,
                "explanation": self.explanation, "fix": self.fix,
                "link": f"PROTOCOL.md#{self.section}",
                "cases": [f.id for f in self.failures], "evidence": evidence(self)}


#: Symptoms that show the server dying rather than the defect itself.
_DEATH = ("crash", "send-failed", "closed")


def evidence(cause: Cause) -> dict[str, Any]:
    """The smallest evidence: the failure with the shortest transcript, and its last events.

    Preferred: a case of the cause's own requirement, and, unless the cause is
    a crash, one where the server did not die (its transcript shows the defect,
    not the crash).
    """
    pool = cause.direct or cause.failures
    pool = [f for f in pool if f.requirement == cause.requirement] or pool
    crash_cause = all(f.symptom.kind in _DEATH for f in pool)
    best = min(pool, key=lambda f: ((f.symptom.kind in _DEATH) != crash_cause,
                                    len(str(f.record.get("transcript") or "").splitlines()) or 10**6,
                                    f.id))
    events = [line for line in str(best.record.get("transcript") or "").splitlines()
              if line.startswith("+")]
    return {"case": best.id, "detail": str(best.record.get("detail") or "").strip(),
            "transcript": events[-EVIDENCE_EVENTS:]}


def _fallback(requirement: str, failures: Sequence[Failure]) -> Cause:
    req = REQUIREMENTS.get(requirement)
    text = req.text if req else requirement
    crash = next((f.symptom.crash for f in failures if f.symptom.crash), "")
    explanation = (f"The server died: {crash}." if crash else
                   f"The server does not do what {requirement} asks: {text}")
    return Cause(f"requirement:{requirement}", requirement, f"{requirement} is broken", explanation,
                 f"Make the server meet {requirement}: {text} The failing cases below show where.",
                 SECTIONS.get(requirement.split("-", 1)[0], ""))


def _crashes(leftovers: dict[str, list[Failure]]) -> list[Cause]:
    """One cause per way of dying that no known defect explains, taken out of ``leftovers``.

    Its requirement is the one most of its cases check (PROTOCOL.md order breaks ties).
    """
    by_death: dict[str, list[Failure]] = {}
    for group in leftovers.values():
        for failure in group:
            if failure.symptom.crash:
                by_death.setdefault(failure.symptom.crash.split(" (its output", 1)[0], []).append(failure)
    found = []
    for death, group in by_death.items():
        if len(group) < 2:
            continue
        counts = Counter(f.requirement for f in group)
        requirement = min(counts, key=lambda r: (-counts[r], _order(r)))
        found.append(Cause(f"crash:{death.split(':', 1)[0]}", requirement,
                           f"the server dies with {death.split(':', 1)[0]}",
                           f"It exits with \"{death}\" (its last stderr line) in {len(group)} cases.",
                           "Run the evidence case's steps against the server, read the traceback it "
                           "prints, and handle that error for the one client instead of ending the loop.",
                           SECTIONS.get(requirement.split("-", 1)[0], ""),
                           failures=group, direct=list(group)))
        for failure in group:
            leftovers[failure.requirement].remove(failure)
    for requirement in [r for r, group in leftovers.items() if not group]:
        del leftovers[requirement]
    return found


def _level_rank(requirement: str) -> int:
    req = REQUIREMENTS.get(requirement)
    return 0 if req is None or req.level is Level.MUST else 1


def _order(requirement: str) -> int:
    return list(REQUIREMENTS).index(requirement) if requirement in REQUIREMENTS else len(REQUIREMENTS)


def diagnose(records: Iterable[Record], dialects: Sequence[str] = ()) -> list[Cause]:
    """The root causes of the failed records, most likely first (see the module docstring)."""
    records = list(records)
    failures = [Failure(r, read_symptom(r)) for r in records if r.get("verdict") in DIAGNOSED_VERDICTS]
    # A death's own record (crash[CASE]) goes with the cause of the case it happened in.
    deaths = [f for f in failures if f.id.startswith("crash[") and f.id[6:-1] in
              {str(r.get("id")) for r in records if r.get("verdict") in DIAGNOSED_VERDICTS}]
    failures = [f for f in failures if f not in deaths]
    run = {str(r.get("id")): str(r.get("verdict")) for r in records}
    run.update({f.id: f.symptom.kind for f in failures})
    for failure in failures:
        failure.run = run
    defects = [dialect_defect(d) for d in dialects] + list(CATALOGUE)
    causes: dict[str, Cause] = {}

    def cause_of(defect: Defect) -> Cause:
        if defect.key not in causes:
            section = defect.section or SECTIONS.get(defect.requirement.split("-", 1)[0], "")
            causes[defect.key] = Cause(defect.key, defect.requirement, defect.title, defect.explanation,
                                       defect.fix, section, dialect=defect.dialect)
        return causes[defect.key]

    # Systemic defects (a dialect, a crash on bad bytes, echoed, mislabelled or lost relays) break
    # every case that waits for a relay: once one has its own evidence, it explains those
    # failures before any case-specific defect may claim them.
    systemic = [d for d in defects if d.dialect or d.key in SYSTEMIC]
    established = {d.key for d in systemic if any(d.claims(f) for f in failures)}
    specific = [d for d in defects if d not in systemic]
    leftovers: dict[str, list[Failure]] = {}
    for failure in failures:
        direct = next((d for d in systemic if d.claims(failure)), None)
        absorbed = None if direct else next(
            (d for d in systemic if d.key in established and d.absorbs(failure)), None)
        direct = direct or (None if absorbed else next((d for d in specific if d.claims(failure)), None))
        if direct is not None:
            cause = cause_of(direct)
            cause.failures.append(failure)
            cause.direct.append(failure)
        elif absorbed is not None:
            cause_of(absorbed).failures.append(failure)
        else:
            leftovers.setdefault(failure.requirement, []).append(failure)
    for requirement, group in list(leftovers.items()):  # consequences of case-specific defects
        for failure in list(group):
            defect = next((d for d in specific if d.key in causes and d.absorbs(failure)), None)
            if defect is None and JOIN_RELAY.claims(failure):
                defect = JOIN_RELAY  # the last resort before a cause per requirement
            if defect is not None:
                cause_of(defect).failures.append(failure)
                if defect is JOIN_RELAY:
                    causes[defect.key].direct.append(failure)
                group.remove(failure)
        if not group:
            del leftovers[requirement]
    for cause in _crashes(leftovers):
        causes[cause.key] = cause
    for death in deaths:
        home = next((c for c in causes.values() if death.id[6:-1] in {f.id for f in c.failures}), None)
        if home is not None:
            home.failures.append(death)
        else:
            leftovers.setdefault(death.requirement, []).append(death)
    for requirement, group in leftovers.items():
        cause = _fallback(requirement, group)
        cause.failures = cause.direct = group
        causes[cause.key] = cause
    return sorted(causes.values(), key=lambda c: (not c.dialect, _level_rank(c.requirement),
                                                  -len(c.failures), _order(c.requirement)))


#: The classic tutorial server's defects (PROTOCOL.md section 7), as catalogue keys.
TUTORIAL_DEFECTS = ("partial-reads", "blocking-reads", "blocking-writes", "utf8-crash", "copied-header",
                    "bad-header", "over-limit", "empty-message")


#: What a preflight that stopped the run breaks, by its class (conformance.preflight).
_PREFLIGHT_REQUIREMENTS = {"silent": "RELAY-1", "needs-trigger": "RELAY-1", "never-accepts": "ROBUST-7",
                           "dialect": "RELAY-1"}


def preflight_cause(preflight: Mapping[str, Any]) -> dict[str, Any] | None:
    """The one root cause of a run the preflight stopped (no case ran), as a ``diagnosis`` entry."""
    if not preflight.get("stopped"):
        return None
    kind = str(preflight.get("class"))
    words = " ".join([str(preflight.get("headline") or ""), *map(str, preflight.get("dialects") or [])])
    breaks = re.search(r"breaks ([A-Z]+-\d+)", words)
    requirement = breaks.group(1) if breaks else _PREFLIGHT_REQUIREMENTS.get(kind, "RELAY-1")
    dialect = kind == "dialect"
    return {"requirement": requirement, "key": f"preflight:{kind}",
            "title": f"preflight: {kind.replace('-', ' ')}",
            "explanation": str(preflight.get("headline") or ""),
            "fix": ("Speak the protocol itself: 10-byte canonical headers, a username frame then the "
                    "message frame, to every client but the sender." if dialect else
                    "Make the server accept connections, read each client's username and relay every "
                    "later message to the others; then run the suite again."),
            "link": f"PROTOCOL.md#{DIALECT_SECTION if dialect else SECTIONS['RELAY']}",
            "cases": [], "evidence": {"case": "preflight", "detail": str(preflight.get("evidence") or ""),
                                      "transcript": [str(s) for s in preflight.get("steps") or []][-6:]}}


def recognise_program(causes: Sequence[Cause]) -> str | None:
    """A sentence naming a known program whose fingerprint the causes match, or None."""
    found = [c for c in causes if c.key in TUTORIAL_DEFECTS]
    if len(found) < 4 or any(c.dialect for c in causes):
        return None
    shorts = {d.key: d.short for d in CATALOGUE}
    known = ", ".join(f"{shorts[c.key]} ({c.requirement})" for c in found)
    return (f"This looks like the classic tutorial server; its known defects are {known} "
            f"(PROTOCOL.md#{TUTORIAL_SECTION}).")
