"""The known defects: how each breaks the protocol, and how to tell it from what it causes.

The catalogue :mod:`conformance.diagnosis` tries in order.  A :class:`Defect`
*claims* the failed cases that are direct evidence of it and *absorbs* the
ones it explains as consequences; each says what the server does and how to
fix it in a student's words, and which PROTOCOL.md requirement it breaks.
Dialects (``conformance.dialects``) become defects of their own through
:func:`dialect_defect`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from conformance.symptoms import Symptom

__all__ = ["CATALOGUE", "DIALECT_SECTION", "JOIN_RELAY", "SYSTEMIC", "Defect", "Failure", "case_is",
           "dialect_defect"]

DIALECT_SECTION = "6-known-dialects"
#: Defects that break every case waiting for a relay (dialects are systemic too).
SYSTEMIC = ("utf8-crash", "unclaimed-history", "history-unmarked", "echo", "mislabelled", "sequence",
            "history")

Record = Mapping[str, Any]


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


def case_is(f: Failure, *prefixes: str) -> bool:
    return any(f.id == p or f.id.startswith(p + "[") for p in prefixes)


def _relay_trouble(f: Failure) -> bool:
    """Something that a server losing, echoing or mislabelling relays would cause anywhere."""
    return f.symptom.kind in ("timeout", "relay", "invalid-frames", "bad-utf8") or f.symptom.at_join


def _half_name_registered(f: Failure) -> bool:
    """The lurker that sent half its name got relays, while a silent one got none: it was
    registered under the part of its name one recv() returned."""
    return (f.id == "join.unregistered-receives-nothing[half-sent-name]" and f.symptom.kind == "relay"
            and f.run.get("join.unregistered-receives-nothing[silent]") != "relay")


def _replays_history(f: Failure) -> bool:
    """join.no-history saw a newcomer get an old message first: then an unexpected relay at a
    join is a replayed message (JOIN-5), not a relay labelled with the wrong sender."""
    return f.run.get("join.no-history") == "relay"


def _decode_crash(f: Failure, partial: bool) -> bool:
    crash = f.symptom.crash
    return "UnicodeDecodeError" in crash and (("unexpected end of data" in crash) == partial)


def _not_refused(frame_case: str, misbehaviour: str) -> Callable[[Failure], bool]:
    """A bad frame's own case, or the room check after it, failed past the join barrier."""
    return lambda f: not f.symptom.at_join and case_is(
        f, frame_case, f"robust.protocol-error-isolated[{misbehaviour}]")


CATALOGUE: tuple[Defect, ...] = (
    Defect("utf8-crash", "FRAME-4", "the server dies on a payload that is not UTF-8",
           "It decodes every payload (to print it) and lets the UnicodeDecodeError escape its "
           "loop, so one client's bad byte ends the server for everyone.",
           "Decode inside a try; on UnicodeDecodeError close only that client's connection "
           "and relay nothing of it.",
           claims=lambda f: _decode_crash(f, partial=False) or case_is(
               f, "robust.protocol-error-isolated[invalid-utf8-name]",
               "robust.protocol-error-isolated[invalid-utf8-message]") and f.symptom.kind == "crash",
           short="a crash on invalid UTF-8"),
    Defect("unclaimed-history", "JOIN-5",
           "the server replays marked history (profile history) to newcomers, but was judged "
           "without --profile history",
           "Newcomers receive relays from \"*history* NAME\" before the live conversation: that "
           "is the optional history profile (PROTOCOL.md section 8). On the base protocol JOIN-5 "
           "forbids any replay, so every case whose newcomer reads one fails.",
           "If the server is meant to serve profile history, judge it with --profile history; "
           "otherwise send a newcomer nothing from before it registered.",
           claims=lambda f: f.symptom.kind == "relay" and f.symptom.sender.startswith("*history* "),
           absorbs=_relay_trouble, short="history replayed without the profile claimed"),
    Defect("history-unmarked", "HISTORY-2",
           "the server replays history to newcomers as if it were live",
           "A newcomer receives the messages said before it joined with their original sender "
           "names, the same two frames as a live relay: no client can tell them from messages "
           "just sent, and every case whose newcomer waits for a live relay reads old ones first.",
           "Send each replayed message from \"*history* \" + the sender's name (HISTORY-2), "
           "keeping the payload as it was.",
           claims=lambda f: case_is(f, "history.marked") and "without the" in f.record.get("detail", ""),
           absorbs=_relay_trouble, short="history replayed unmarked"),
    Defect("echo", "RELAY-2", "the server sends each message back to its sender",
           "Its relay loop walks every registered client, the sender included.",
           "Skip the sender when relaying: `if client is not sender`.",
           claims=lambda f: (case_is(f, "relay.no-echo") and f.symptom.self_relay
                             or case_is(f, "relay.burst-order") and " echoed" in f.symptom.got),
           absorbs=_relay_trouble),
    Defect("mislabelled", "RELAY-3", "relays are labelled with the wrong sender",
           "The username frame it sends before a message is not the sender's (a shared or stale "
           "variable), so clients attribute messages to the wrong person.",
           "Send the sending connection's own username frame with each of its messages.",
           claims=lambda f: (case_is(f, "relay.sender-label") and f.symptom.kind == "other"
                             or f.symptom.at_join and f.symptom.kind == "relay" and not f.symptom.self_relay
                             and not _replays_history(f)
                             or case_is(f, "relay.burst-order")
                             and bool(re.search(r" (mislabelled|unpaired)", f.symptom.got))
                             and not re.search(r" (lost|duplicated|reordered)", f.symptom.got)),
           absorbs=_relay_trouble),
    Defect("sequence", "RELAY-4", "messages are lost, duplicated or reordered",
           "Some of a sender's messages never reach a recipient, arrive twice, or overtake each "
           "other; every case that waits for a relay can then fail.",
           "Write each relay once, in the order received, to every other client; keep what a "
           "send() did not take in that client's buffer instead of dropping it.",
           claims=lambda f: (case_is(f, "relay.burst-order")
                             and bool(re.search(r"\d (lost|duplicated|reordered)", f.symptom.got))),
           absorbs=_relay_trouble),
    Defect("history", "JOIN-5", "the server replays earlier messages to each newcomer",
           "It keeps recent messages and sends them to every client as soon as it registers. The "
           "protocol cannot mark them as old, so every newcomer sees stale messages as if they had "
           "just been said, and every case that waits for a newcomer's next relay gets an old one.",
           "Send a client only the messages read after it registered; drop the history buffer "
           "(the base protocol has no history).",
           # The newcomer's first relay was another message than the one sent after it joined.
           claims=lambda f: case_is(f, "join.no-history") and f.symptom.kind == "relay",
           # Systemic: the suite joins newcomers to a running server in nearly every case, so a
           # replay is the unexpected relay those cases report.
           absorbs=lambda f: _relay_trouble(f) or f.symptom.got.startswith("a relay from"),
           short="history replayed"),
    # Before partial-reads: both relay a short copy of a large message, but only truncation
    # stays in step afterwards (frame.large-message tells them apart by the frame that follows).
    Defect("truncation", "RELAY-1", "the server cuts long messages",
           "It relays only the first part of a long message, in a well-formed frame with a new "
           "header for the shorter text, and then carries on in step: nothing looks wrong on the "
           "wire, but the message arrives cut.",
           "Relay the payload exactly as it was read; if a message is too long for you, refuse it "
           "by closing that connection (FRAME-6) instead of cutting it.",
           claims=lambda f: "the server truncated it" in f.symptom.got, short="long messages cut"),
    Defect("partial-reads", "ROBUST-1", "the server assumes one recv() returns a whole header or payload",
           "It reads the header with a single recv(10) and the payload with a single recv(n), so "
           "when a frame arrives in pieces it loses its place in the byte stream.",
           "Keep a per-client buffer; append what recv() returns and take a frame out only when "
           "its 10-byte header and all of its payload are there.",
           claims=lambda f: (case_is(f, "relay.basic", "frame.large-message") and not f.symptom.at_join
                             and f.run.get("relay.basic[whole-frames]", "pass") == "pass"
                             or _decode_crash(f, partial=True) or f.symptom.garbled
                             or _half_name_registered(f)),
           absorbs=lambda f: f.symptom.kind == "invalid-frames", short="partial reads"),
    Defect("blocking-reads", "ROBUST-2", "one slow or silent client freezes the server",
           "It reads with blocking recv() calls, so a client that sends half a frame, or connects "
           "and says nothing, stops the whole loop until it speaks.",
           "Make client sockets non-blocking (or use select()/selectors and read only what is "
           "ready) and keep partial frames in a per-client buffer.",
           # robust.quiet-spell keeps a silent connection open too: a timeout there is this
           # defect (a crash there is quiet-crash's); so does robust.connection-burst while the
           # burst sits connected (half of it half-way through a name) and the room chats.
           claims=lambda f: case_is(f, "robust.slowloris", "robust.silent-connection") or (
               case_is(f, "robust.quiet-spell") and f.symptom.kind != "crash") or (
               case_is(f, "robust.connection-burst") and f.symptom.kind == "timeout"
               and "while the burst comes in" in f.record.get("detail", "")),
           absorbs=lambda f: f.symptom.kind == "timeout" and case_is(
               f, "join.unregistered-receives-nothing", "join.registration-timeout"),
           short="blocking reads"),
    Defect("blocking-writes", "ROBUST-3", "a client that stops reading stalls everyone",
           "It writes each relay with a blocking send()/sendall(); once one client's socket "
           "buffer is full the loop waits on it and the room freezes.",
           "Queue outgoing bytes per client and write only when select() says the socket is "
           "writable; bound that queue (ROBUST-4).",
           claims=lambda f: case_is(f, "robust.non-reader"),
           # The other cases with a client that reads slowly (a small receive window).
           absorbs=lambda f: f.symptom.kind == "timeout" and case_is(
               f, "robust.non-reader-bounded", "relay.adjacent-frames", "lifecycle.reset-during-fanout"),
           short="blocking writes"),
    Defect("bad-header", "FRAME-3", "headers that are not a decimal length are not refused",
           "It trusts int(header): garbage either raises where nobody catches it or is read as a "
           "length, and the offender is not disconnected.",
           "Accept only ASCII digits (after stripping spaces); otherwise close that connection.",
           claims=_not_refused("frame.bad-header", "bad-header"),
           short="unchecked headers"),
    Defect("over-limit", "FRAME-6", "a huge declared length is not refused",
           "It passes any declared length to recv() and waits for the payload, instead of "
           "judging the header alone.",
           "Compare the declared length with your limit as soon as the header is complete and "
           "close the connection when it is above.",
           claims=_not_refused("frame.over-limit", "over-limit"),
           short="unchecked lengths"),
    Defect("empty-name", "JOIN-2", "an empty username is accepted",
           "A zero-length first frame registers a nameless client instead of being refused.",
           "Close a connection whose username frame is empty (or not UTF-8).",
           claims=lambda f: case_is(f, "join.empty-name", "robust.protocol-error-isolated[empty-name]")),
    Defect("invalid-utf8", "FRAME-4", "payloads that are not UTF-8 are not refused",
           "It relays (or keeps) a username or message that is not valid UTF-8 instead of "
           "closing that connection.",
           "Decode each username and message; on UnicodeDecodeError close that connection and "
           "relay nothing of it.",
           claims=lambda f: case_is(f, "frame.invalid-utf8",
                                  "robust.protocol-error-isolated[invalid-utf8-name]",
                                  "robust.protocol-error-isolated[invalid-utf8-message]")),
    Defect("copied-header", "FRAME-2", "the server forwards the sender's header bytes as they came",
           "It relays the header it received instead of writing its own, so a non-canonical "
           "header (right-justified, zero-padded) reaches the other clients.",
           'Build every header you send yourself: f"{len(payload):<10}".encode().',
           claims=lambda f: (case_is(f, "frame.lenient-header-relayed-canonically")
                             and "copied" in f.symptom.got),
           short="copied headers"),
    Defect("non-canonical", "FRAME-2", "the server's headers are not canonical",
           "It writes the length in another layout than left-justified, space-padded to 10 bytes.",
           'Write every header as f"{len(payload):<10}".encode().',
           claims=lambda f: case_is(f, "frame.canonical-headers", "frame.lenient-header-relayed-canonically")
           and f.symptom.kind == "header"),
    Defect("unregistered-relay", "JOIN-3", "connections that have not registered get the room's messages",
           "Its relay loop walks every accepted socket instead of the clients that sent a username.",
           "Relay only to clients whose username frame has arrived; keep the others in a "
           "separate 'not registered yet' set.",
           claims=lambda f: case_is(f, "join.unregistered-receives-nothing") and f.symptom.kind == "relay"
           and not _half_name_registered(f),
           absorbs=lambda f: case_is(f, "join.empty-name") and f.symptom.kind == "relay"),
    Defect("empty-message", "FRAME-8", "an empty message is taken for a closed connection",
           "`if not data:` after reading a payload also fires for the valid zero-length frame, so "
           "the sender is dropped and its empty message is not relayed.",
           "Treat only an empty recv() of a header as end of stream; relay a zero-length payload "
           "like any other.",
           claims=lambda f: case_is(f, "frame.zero-length-message"), short="empty messages dropped"),
    # Before the last resort (JOIN_RELAY): a room that works with a few clients but where
    # later joiners never hear anything is capped, not broken for everyone.
    Defect("capped-fanout", "RELAY-8", "the server relays to the first few clients only",
           "Past a fixed number of clients its relay loop stops (a fixed-size list, a `[:8]`), so "
           "in a big room the later joiners never receive anything.",
           "Relay to every registered client, however many there are; keep them in a list or "
           "dict that grows.",
           claims=lambda f: case_is(f, "relay.big-room", "relay.join-leave-mid-stream")
           and f.symptom.kind in ("timeout", "relay") and f.run.get("relay.basic[whole-frames]") == "pass",
           short="capped fan-out"),
    Defect("quiet-crash", "ROBUST-7", "the server dies when nothing happens for a while",
           "Its wait for the next event has a timeout (select(..., 1.0)), and the code after it "
           "assumes something is ready: a wakeup because the time ran out brings empty lists, and "
           "the error (an IndexError on read_sockets[0], say) ends the server in the first quiet "
           "second.",
           "Treat an empty wakeup as nothing to do: loop over whatever is ready (possibly nothing) "
           "and go back to waiting; or wait without a timeout.",
           claims=lambda f: f.symptom.kind == "crash" and case_is(f, "robust.quiet-spell"),
           short="crash when quiet"),
    Defect("leave-crash", "RELAY-6", "the server dies when a client leaves",
           "When a client closes its connection the server still writes to it (a goodbye, a relay) "
           "or uses its closed socket, and the error ends the server for everyone.",
           "On an empty recv() or a reset, remove the client from every list first, close its "
           "socket, and never write to it again.",
           claims=lambda f: f.symptom.kind == "crash" and not any(
               e in f.symptom.crash for e in ("UnicodeDecodeError", "ConnectionResetError",
                                              "BrokenPipeError"))
           and (any(w in f.symptom.last_action for w in ("closed the connection", "then closed", "(RST)"))
                or case_is(f, "lifecycle.leave", "lifecycle.closed-client-sent-nothing"))),
    Defect("reset-crash", "ROBUST-6", "the server dies when a client resets its connection",
           "A ConnectionResetError (or BrokenPipeError) from one client's recv() or send() "
           "escapes the loop and ends the server.",
           "Catch OSError around each client's recv() and send(); drop that client and carry on.",
           claims=lambda f: any(e in f.symptom.crash for e in ("ConnectionResetError", "BrokenPipeError"))),
)


#: Clients cannot even register: the suite's barrier (a member's message reaching the newcomer)
#: fails, the newcomer is closed or hears nothing, in cases that have nothing to do with
#: silent or half-sent connections (those are ROBUST-2's).  Tried after every other defect.
JOIN_RELAY = Defect(
    "join-relay", "RELAY-1", "a newly registered client never receives the room's messages",
    "Once a client has sent its username, another client's message does not reach it: the "
    "server closes the newcomer's connection or sends it nothing, so most cases cannot even start.",
    "Register a client as soon as its username frame is complete and relay every later message "
    "to it; the server's own log (stderr) usually says why it closes the connection.",
    claims=lambda f: (f.symptom.at_join and f.symptom.kind in ("timeout", "closed") and not case_is(
        f, "robust.silent-connection", "robust.slowloris", "robust.quiet-spell",
        "join.unregistered-receives-nothing")))


def dialect_defect(dialect: str) -> Defect:
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
