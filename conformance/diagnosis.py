"""Root causes of a server's failures, ranked: what is broken, the evidence, and the fix.

Pure: case records (as in the results document) and the recognised dialects
in, a list of causes out, most likely first.  Like a compiler's diagnostics,
each cause says what the server does in one sentence, shows the smallest
piece of evidence (the failing case with the shortest transcript, its
expected/got and its last few wire events), says how to fix it with a link
to PROTOCOL.md, and counts every failed case it explains: a case that could
not even register its clients because relays are lost is counted under the
loss, not reported as a cause of its own.

The known defects are tried in order, most fundamental first (a dialect
breaks every exchange; a crash on invalid UTF-8 takes the room down; echo,
mislabelled and lost relays break every case that waits for a relay; then
partial reads, blocking reads and writes, unchecked headers).  Each defect
*claims* the failures that are direct evidence of it and, once it has
evidence, *absorbs* the failures it explains as consequences.  A failure no
known defect accounts for becomes a cause under its own requirement.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from conformance.requirements import REQUIREMENTS, Level
from conformance.symptoms import Symptom, read_symptom

__all__ = ["DIAGNOSED_VERDICTS", "SECTIONS", "Cause", "diagnose", "recognise_program", "section_link"]

#: Verdicts a cause can explain: broken MUSTs and SHOULDs (not harness errors, not known failures).
DIAGNOSED_VERDICTS = ("fail", "non-strict")
#: PROTOCOL.md's section anchor per requirement group (GitHub's heading anchors).
SECTIONS = {
    "FRAME": "1-frames", "JOIN": "2-joining", "RELAY": "3-relaying",
    "ROBUST": "4-robustness-one-client-must-never-hurt-the-room", "LIMIT": "5-limits",
    "ADDR": "5-limits",
}
DIALECT_SECTION = "6-known-dialects"
TUTORIAL_SECTION = "7-where-the-tutorial-server-breaks-these-rules"
EVIDENCE_EVENTS = 6
#: Defects that break every case waiting for a relay (dialects are systemic too).
SYSTEMIC = ("utf8-crash", "echo", "mislabelled", "sequence")

Record = Mapping[str, Any]


def section_link(requirement: str) -> str:
    return f"PROTOCOL.md#{SECTIONS.get(requirement.split('-', 1)[0], '')}"


@dataclass
class Failure:
    record: Record
    symptom: Symptom
    #: Every case of the run: its symptom kind if it failed, else its verdict.
    run: Mapping[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return str(self.record.get("id"))

    @property
    def requirement(self) -> str:
        return str(self.record.get("requirement"))


@dataclass
class Defect:
    """A known way to break the protocol, and how to tell it from the failures it causes."""

    key: str
    requirement: str
    title: str
    explanation: str
    fix: str
    claims: Callable[[Failure], bool]
    absorbs: Callable[[Failure], bool] = lambda f: False
    section: str = ""
    short: str = ""        # a few words, for the list of a known program's defects

    @property
    def dialect(self) -> bool:
        return self.key.startswith("dialect:")


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


# -- the catalogue ------------------------------------------------------------------
def _case(f: Failure, *prefixes: str) -> bool:
    return any(f.id == p or f.id.startswith(p + "[") for p in prefixes)


def _relay_trouble(f: Failure) -> bool:
    """Something that a server losing, echoing or mislabelling relays would cause anywhere."""
    return f.symptom.kind in ("timeout", "relay", "invalid-frames", "bad-utf8") or f.symptom.at_join


def _half_name_registered(f: Failure) -> bool:
    """The lurker that sent half its name got relays, while a silent one got none: it was
    registered under the part of its name one recv() returned."""
    return (f.id == "join.unregistered-receives-nothing[half-sent-name]" and f.symptom.kind == "relay"
            and f.run.get("join.unregistered-receives-nothing[silent]") != "relay")


def _decode_crash(f: Failure, partial: bool) -> bool:
    crash = f.symptom.crash
    return "UnicodeDecodeError" in crash and (("unexpected end of data" in crash) == partial)


CATALOGUE: tuple[Defect, ...] = (
    Defect("utf8-crash", "FRAME-4", "the server dies on a payload that is not UTF-8",
           "It decodes every payload (to print it) and lets the UnicodeDecodeError escape its "
           "loop, so one client's bad byte ends the server for everyone.",
           "Decode inside a try; on UnicodeDecodeError close only that client's connection "
           "and relay nothing of it.",
           claims=lambda f: _decode_crash(f, partial=False) or _case(
               f, "robust.protocol-error-isolated[invalid-utf8-name]",
               "robust.protocol-error-isolated[invalid-utf8-message]") and f.symptom.kind == "crash",
           short="a crash on invalid UTF-8"),
    Defect("echo", "RELAY-2", "the server sends each message back to its sender",
           "Its relay loop walks every registered client, the sender included.",
           "Skip the sender when relaying: `if client is not sender`.",
           claims=lambda f: (_case(f, "relay.no-echo") and f.symptom.self_relay
                             or _case(f, "relay.burst-order") and " echoed" in f.symptom.got),
           absorbs=_relay_trouble),
    Defect("mislabelled", "RELAY-3", "relays are labelled with the wrong sender",
           "The username frame it sends before a message is not the sender's (a shared or stale "
           "variable), so clients attribute messages to the wrong person.",
           "Send the sending connection's own username frame with each of its messages.",
           claims=lambda f: (_case(f, "relay.sender-label") and f.symptom.kind == "other"
                             or f.symptom.at_join and f.symptom.kind == "relay" and not f.symptom.self_relay
                             or _case(f, "relay.burst-order")
                             and bool(re.search(r" (mislabelled|unpaired)", f.symptom.got))
                             and not re.search(r" (lost|duplicated|reordered)", f.symptom.got)),
           absorbs=_relay_trouble),
    Defect("sequence", "RELAY-4", "messages are lost, duplicated or reordered",
           "Some of a sender's messages never reach a recipient, arrive twice, or overtake each "
           "other; every case that waits for a relay can then fail.",
           "Write each relay once, in the order received, to every other client; keep what a "
           "send() did not take in that client's buffer instead of dropping it.",
           claims=lambda f: (_case(f, "relay.burst-order")
                             and bool(re.search(r"\d (lost|duplicated|reordered)", f.symptom.got))),
           absorbs=_relay_trouble),
    Defect("partial-reads", "ROBUST-1", "the server assumes one recv() returns a whole header or payload",
           "It reads the header with a single recv(10) and the payload with a single recv(n), so "
           "when a frame arrives in pieces it loses its place in the byte stream.",
           "Keep a per-client buffer; append what recv() returns and take a frame out only when "
           "its 10-byte header and all of its payload are there.",
           claims=lambda f: (_case(f, "relay.basic", "frame.large-message") and not f.symptom.at_join
                             and f.run.get("relay.basic[whole-frames]", "pass") == "pass"
                             or _decode_crash(f, partial=True) or f.symptom.garbled
                             or _half_name_registered(f)),
           absorbs=lambda f: f.symptom.kind == "invalid-frames", short="partial reads"),
    Defect("blocking-reads", "ROBUST-2", "one slow or silent client freezes the server",
           "It reads with blocking recv() calls, so a client that sends half a frame, or connects "
           "and says nothing, stops the whole loop until it speaks.",
           "Make client sockets non-blocking (or use select()/selectors and read only what is "
           "ready) and keep partial frames in a per-client buffer.",
           claims=lambda f: _case(f, "robust.slowloris", "robust.silent-connection"),
           absorbs=lambda f: f.symptom.kind == "timeout" and _case(
               f, "join.unregistered-receives-nothing", "join.registration-timeout"),
           short="blocking reads"),
    Defect("blocking-writes", "ROBUST-3", "a client that stops reading stalls everyone",
           "It writes each relay with a blocking send()/sendall(); once one client's socket "
           "buffer is full the loop waits on it and the room freezes.",
           "Queue outgoing bytes per client and write only when select() says the socket is "
           "writable; bound that queue (ROBUST-4).",
           claims=lambda f: _case(f, "robust.non-reader"),
           # The other cases with a client that reads slowly (a small receive window).
           absorbs=lambda f: f.symptom.kind == "timeout" and _case(
               f, "robust.non-reader-bounded", "relay.adjacent-frames", "lifecycle.reset-during-fanout"),
           short="blocking writes"),
    Defect("bad-header", "FRAME-3", "headers that are not a decimal length are not refused",
           "It trusts int(header): garbage either raises where nobody catches it or is read as a "
           "length, and the offender is not disconnected.",
           "Accept only ASCII digits (after stripping spaces); otherwise close that connection.",
           claims=lambda f: not f.symptom.at_join and _case(
               f, "frame.bad-header", "robust.protocol-error-isolated[bad-header]"),
           short="unchecked headers"),
    Defect("over-limit", "FRAME-6", "a huge declared length is not refused",
           "It passes any declared length to recv() and waits for the payload, instead of "
           "judging the header alone.",
           "Compare the declared length with your limit as soon as the header is complete and "
           "close the connection when it is above.",
           claims=lambda f: not f.symptom.at_join and _case(
               f, "frame.over-limit", "robust.protocol-error-isolated[over-limit]"),
           short="unchecked lengths"),
    Defect("empty-name", "JOIN-2", "an empty username is accepted",
           "A zero-length first frame registers a nameless client instead of being refused.",
           "Close a connection whose username frame is empty (or not UTF-8).",
           claims=lambda f: _case(f, "join.empty-name", "robust.protocol-error-isolated[empty-name]")),
    Defect("invalid-utf8", "FRAME-4", "payloads that are not UTF-8 are not refused",
           "It relays (or keeps) a username or message that is not valid UTF-8 instead of "
           "closing that connection.",
           "Decode each username and message; on UnicodeDecodeError close that connection and "
           "relay nothing of it.",
           claims=lambda f: _case(f, "frame.invalid-utf8",
                                  "robust.protocol-error-isolated[invalid-utf8-name]",
                                  "robust.protocol-error-isolated[invalid-utf8-message]")),
    Defect("copied-header", "FRAME-2", "the server forwards the sender's header bytes as they came",
           "It relays the header it received instead of writing its own, so a non-canonical "
           "header (right-justified, zero-padded) reaches the other clients.",
           'Build every header you send yourself: f"{len(payload):<10}".encode().',
           claims=lambda f: (_case(f, "frame.lenient-header-relayed-canonically")
                             and "copied" in f.symptom.got),
           short="copied headers"),
    Defect("non-canonical", "FRAME-2", "the server's headers are not canonical",
           "It writes the length in another layout than left-justified, space-padded to 10 bytes.",
           'Write every header as f"{len(payload):<10}".encode().',
           claims=lambda f: _case(f, "frame.canonical-headers", "frame.lenient-header-relayed-canonically")
           and f.symptom.kind == "header"),
    Defect("unregistered-relay", "JOIN-3", "connections that have not registered get the room's messages",
           "Its relay loop walks every accepted socket instead of the clients that sent a username.",
           "Relay only to clients whose username frame has arrived; keep the others in a "
           "separate 'not registered yet' set.",
           claims=lambda f: _case(f, "join.unregistered-receives-nothing") and f.symptom.kind == "relay"
           and not _half_name_registered(f),
           absorbs=lambda f: _case(f, "join.empty-name") and f.symptom.kind == "relay"),
    Defect("empty-message", "FRAME-8", "an empty message is taken for a closed connection",
           "`if not data:` after reading a payload also fires for the valid zero-length frame, so "
           "the sender is dropped and its empty message is not relayed.",
           "Treat only an empty recv() of a header as end of stream; relay a zero-length payload "
           "like any other.",
           claims=lambda f: _case(f, "frame.zero-length-message"), short="empty messages dropped"),
    Defect("reset-crash", "ROBUST-6", "the server dies when a client resets its connection",
           "A ConnectionResetError (or BrokenPipeError) from one client's recv() or send() "
           "escapes the loop and ends the server.",
           "Catch OSError around each client's recv() and send(); drop that client and carry on.",
           claims=lambda f: any(e in f.symptom.crash for e in ("ConnectionResetError", "BrokenPipeError"))),
)


def _dialect_defect(dialect: str) -> Defect:
    name, _, words = dialect.partition(":")
    breaks = re.search(r"breaks ([A-Z]+-\d+)", dialect)
    requirement = breaks.group(1) if breaks else "RELAY-1"
    words = words.strip()
    fix = _DIALECT_FIXES.get(name.strip(), "Speak the protocol itself: 10-byte canonical headers, a "
                             "username frame then the message frame, to every client but the sender.")
    return Defect(f"dialect:{name.strip()}", requirement, f"dialect: {name.strip()}",
                  words[:1].upper() + words[1:], fix,
                  claims=lambda f: f.symptom.kind != "still-open", section=DIALECT_SECTION)


_DIALECT_FIXES = {
    "echo": "Skip the sender when relaying: `if client is not sender`.",
    "single-frame relay": "Send two frames per message, the sender's username and then the message "
                          "as it came; leave formatting (`name> text`) to the clients.",
    "other header width": 'Use 10-byte headers when reading and writing: f"{len(payload):<10}".',
}


def _fallback(requirement: str, failures: Sequence[Failure]) -> Cause:
    req = REQUIREMENTS.get(requirement)
    text = req.text if req else requirement
    crash = next((f.symptom.crash for f in failures if f.symptom.crash), "")
    explanation = (f"The server died: {crash}." if crash else
                   f"The server does not do what {requirement} asks: {text}")
    return Cause(f"requirement:{requirement}", requirement, f"{requirement} is broken", explanation,
                 f"Make the server meet {requirement}: {text} The failing cases below show where.",
                 SECTIONS.get(requirement.split("-", 1)[0], ""))


def _level_rank(requirement: str) -> int:
    req = REQUIREMENTS.get(requirement)
    return 0 if req is None or req.level is Level.MUST else 1


def _order(requirement: str) -> int:
    return list(REQUIREMENTS).index(requirement) if requirement in REQUIREMENTS else len(REQUIREMENTS)


def diagnose(records: Iterable[Record], dialects: Sequence[str] = ()) -> list[Cause]:
    """The root causes of the failed records, most likely first (see the module docstring)."""
    records = list(records)
    failures = [Failure(r, read_symptom(r)) for r in records if r.get("verdict") in DIAGNOSED_VERDICTS]
    run = {str(r.get("id")): str(r.get("verdict")) for r in records}
    run.update({f.id: f.symptom.kind for f in failures})
    for failure in failures:
        failure.run = run
    defects = [_dialect_defect(d) for d in dialects] + list(CATALOGUE)
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
            if defect is not None:
                causes[defect.key].failures.append(failure)
                group.remove(failure)
        if not group:
            del leftovers[requirement]
    for requirement, group in leftovers.items():
        cause = _fallback(requirement, group)
        cause.failures = cause.direct = group
        causes[cause.key] = cause
    return sorted(causes.values(), key=lambda c: (not c.dialect, _level_rank(c.requirement),
                                                  -len(c.failures), _order(c.requirement)))


#: The classic tutorial server's defects (PROTOCOL.md section 7), as catalogue keys.
TUTORIAL_DEFECTS = ("partial-reads", "blocking-reads", "blocking-writes", "utf8-crash", "copied-header",
                    "bad-header", "over-limit", "empty-message")


def recognise_program(causes: Sequence[Cause]) -> str | None:
    """A sentence naming a known program whose fingerprint the causes match, or None."""
    found = [c for c in causes if c.key in TUTORIAL_DEFECTS]
    if len(found) < 4 or any(c.dialect for c in causes):
        return None
    shorts = {d.key: d.short for d in CATALOGUE}
    known = ", ".join(f"{shorts[c.key]} ({c.requirement})" for c in found)
    return (f"This looks like the classic tutorial server; its known defects are {known} "
            f"(PROTOCOL.md#{TUTORIAL_SECTION}).")
